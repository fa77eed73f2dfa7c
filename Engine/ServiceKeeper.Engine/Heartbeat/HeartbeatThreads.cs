// Dedicated threads for heartbeats. Not the thread pool: under CPU saturation pool starvation would delay
// heartbeats and fail over a healthy node. On Linux, Thread.Priority needs help to mean anything, so the
// thread also lowers its own nice value (allowed for root, which the engine runs as); without the right it
// stays at the default priority and says so once.
using System;
using System.Runtime.InteropServices;
using System.Threading;

namespace ServiceKeeper.Engine.Heartbeat
{
    internal static partial class HeartbeatThreads
    {
        // nice -10 weighs ~9x a nice-0 CPU hog in the Linux scheduler; realtime classes are not used, so a bug
        // in these threads can never lock a core.
        private const int LinuxNice = -10;
        private const int PrioProcess = 0;

        public static Thread Start(string name, Action body, Action<string>? onBoostFailed = null)
        {
            var thread = new Thread(() =>
            {
                if (!TryBoost(out var error)) onBoostFailed?.Invoke(error);
                body();
            })
            {
                Name = name,
                IsBackground = true,
                Priority = ThreadPriority.AboveNormal,
            };
            thread.Start();
            return thread;
        }

        private static bool TryBoost(out string error)
        {
            error = "";
            if (!OperatingSystem.IsLinux()) return true;
            try
            {
                // With PRIO_PROCESS and a thread id, Linux changes that thread only.
                if (setpriority(PrioProcess, gettid(), LinuxNice) == 0) return true;
                error = $"setpriority failed (errno {Marshal.GetLastPInvokeError()})";
            }
            catch (Exception ex) when (ex is EntryPointNotFoundException or DllNotFoundException)
            {
                error = ex.Message;
            }
            return false;
        }

        [LibraryImport("libc", SetLastError = true)]
        private static partial int setpriority(int which, int who, int prio);

        [LibraryImport("libc")]
        private static partial int gettid();
    }
}
