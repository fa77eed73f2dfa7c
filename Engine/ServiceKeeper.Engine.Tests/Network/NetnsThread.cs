// Runs test code inside a network namespace: on a dedicated thread switched with setns(CLONE_NEWNET).
// Sockets take the namespace of the thread that creates them, so code run here talks through the
// namespace's interfaces. The thread ends with the delegate and is never reused.
using System;
using System.Collections.Concurrent;
using System.IO;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;

namespace ServiceKeeper.Engine.Tests.Network;

internal static class NetnsThread
{
    private const int CLONE_NEWNET = 0x40000000;

    [DllImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static extern int SetNs(IntPtr fd, int nstype);

    /// <summary>Runs <paramref name="body"/> in namespace <paramref name="ns"/> (/run/netns/&lt;ns&gt;) and returns its result or rethrows its exception.</summary>
    public static T Run<T>(string ns, Func<T> body) => Start(ns, body).GetAwaiter().GetResult();

    public static void Run(string ns, Action body) => Run(ns, () =>
    {
        body();
        return true;
    });

    /// <summary>Starts <paramref name="body"/> on a new thread in the namespace; the task ends with it.</summary>
    public static Task<T> Start<T>(string ns, Func<T> body)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        StartThread(ns, () =>
        {
            try
            {
                Enter(ns);
                done.SetResult(body());
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        });
        return done.Task;
    }

    /// <summary>
    /// Runs an async delegate in the namespace: its thread pumps a single-threaded SynchronizationContext,
    /// so every continuation that does not ConfigureAwait(false) comes back to the namespace thread.
    /// </summary>
    public static Task RunAsync(string ns, Func<Task> body) => RunAsync(ns, async () =>
    {
        await body();
        return true;
    });

    public static Task<T> RunAsync<T>(string ns, Func<Task<T>> body)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        StartThread(ns, () =>
        {
            var context = new PumpContext();
            Task<T> task;
            try
            {
                Enter(ns);
                SynchronizationContext.SetSynchronizationContext(context);
                task = body();
            }
            catch (Exception e)
            {
                done.SetException(e);
                return;
            }
            task.ContinueWith(_ => context.Complete(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            context.RunUntilComplete();
            if (task.IsCanceled)
                done.SetCanceled();
            else if (task.IsFaulted)
                done.SetException(task.Exception!.InnerExceptions);
            else
                done.SetResult(task.Result);
        });
        return done.Task;
    }

    private static void StartThread(string ns, Action body) =>
        new Thread(() => body()) { IsBackground = true, Name = "netns " + ns }.Start();

    private static void Enter(string ns)
    {
        using var handle = File.OpenHandle(Path.Combine("/run/netns", ns));
        if (SetNs(handle.DangerousGetHandle(), CLONE_NEWNET) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"setns(/run/netns/{ns}, CLONE_NEWNET) failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).");
        }
    }

    private sealed class PumpContext : SynchronizationContext
    {
        private readonly BlockingCollection<(SendOrPostCallback Callback, object? State)> _queue = new();
        private readonly object _lock = new();
        private bool _completed;

        public override void Post(SendOrPostCallback d, object? state)
        {
            lock (_lock)
            {
                if (!_completed)
                {
                    _queue.Add((d, state));
                    return;
                }
            }
            // Late continuation after the delegate ended: nobody pumps any more.
            ThreadPool.QueueUserWorkItem(_ => d(state));
        }

        public override void Send(SendOrPostCallback d, object? state) =>
            throw new NotSupportedException("Synchronous Send to the namespace thread is not supported.");

        public override SynchronizationContext CreateCopy() => this;

        public void Complete()
        {
            lock (_lock)
            {
                _completed = true;
                _queue.CompleteAdding();
            }
        }

        public void RunUntilComplete()
        {
            foreach (var (callback, state) in _queue.GetConsumingEnumerable())
                callback(state);
        }
    }
}
