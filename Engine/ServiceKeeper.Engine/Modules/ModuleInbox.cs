// The way into a module host's loop for a request that waits for its answer (a command, maintenance): the loop
// alone touches the machine, so the API posts the request with a completion the loop sets.
using System;
using System.Threading.Channels;
using System.Threading.Tasks;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Engine.Modules
{
    internal static class ModuleInbox
    {
        /// <summary>
        /// Posts the message <paramref name="message"/> makes around a new completion; the task ends with the state the
        /// loop sets, or fails at once with InvalidModuleState when the inbox is closed (the module is being removed).
        /// </summary>
        public static Task<ModuleState> AskAsync(this ChannelWriter<object> inbox, string module, Func<TaskCompletionSource<ModuleState>, object> message)
        {
            var done = new TaskCompletionSource<ModuleState>(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!inbox.TryWrite(message(done)))
                done.SetException(new SKApiException(ErrorIds.InvalidModuleState, $"{module} is being removed."));
            return done.Task;
        }

        /// <summary>
        /// Unless <paramref name="stopped"/> already holds: posts the stop <paramref name="stop"/> makes (not waiting for
        /// its answer) and polls until <paramref name="stopped"/> holds or <paramref name="timeout"/> has passed.
        /// </summary>
        public static async Task StopAndWaitAsync(this ChannelWriter<object> inbox, Func<TaskCompletionSource<ModuleState>, object> stop,
            Func<bool> stopped, TimeProvider time, TimeSpan timeout)
        {
            if (stopped()) return;
            inbox.TryWrite(stop(new TaskCompletionSource<ModuleState>(TaskCreationOptions.RunContinuationsAsynchronously)));
            var deadline = time.GetUtcNow() + timeout;
            while (!stopped() && time.GetUtcNow() < deadline)
                await Task.Delay(50);
        }
    }
}
