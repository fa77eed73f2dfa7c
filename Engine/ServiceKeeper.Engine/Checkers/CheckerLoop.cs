// The loop every polling checker shares: look every interval, report only when the resource flips.
using System;
using System.Threading;
using System.Threading.Tasks;

namespace ServiceKeeper.Engine.Checkers
{
    internal static class CheckerLoop
    {
        /// <summary>
        /// Runs <paramref name="check"/> every <paramref name="interval"/> until cancelled and reports each flip
        /// (the first report leaves Init). With <paramref name="firstAfterInterval"/> the first look waits one interval.
        /// </summary>
        public static async Task RunAsync(
            IChecker checker, CheckerContext context, TimeSpan interval, bool firstAfterInterval,
            Func<CancellationToken, ValueTask<(ResourceValue Value, string Reason)>> check,
            Action<ResourceValue, string> logFlip, Action<ResourceChange> report, CancellationToken ct)
        {
            ArgumentNullException.ThrowIfNull(report);
            var last = ResourceValue.Init;
            using var timer = new PeriodicTimer(interval, context.Time);
            try
            {
                if (firstAfterInterval && !await timer.WaitForNextTickAsync(ct).ConfigureAwait(false)) return;
                do
                {
                    var (value, reason) = await check(ct).ConfigureAwait(false);
                    if (value == last) continue;
                    last = value;
                    logFlip(value, reason);
                    report(new ResourceChange(checker.Resource, value, checker.Action, reason, context.Time.GetUtcNow()));
                }
                while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false));
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // Stopped with the module.
            }
        }
    }
}
