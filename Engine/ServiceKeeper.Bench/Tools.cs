// Programs the bench runs and the clock it shares with the poller.
using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;

namespace ServiceKeeper.Bench;

internal static class Tools
{
    private static readonly string[] Dirs = (Environment.GetEnvironmentVariable("PATH") ?? "")
        .Split(':', StringSplitOptions.RemoveEmptyEntries)
        .Concat(new[] { "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin" })
        .ToArray();

    public static string? Find(string name) =>
        Dirs.Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    public static string Ip => Find("ip") ?? throw new InvalidOperationException("'ip' was not found: install iproute2.");

    /// <summary>The system python: a version-manager shim (pyenv) costs ~100 ms per start, which the application start would pay.</summary>
    public static string Python =>
        File.Exists("/usr/bin/python3") ? "/usr/bin/python3"
        : Find("python3") ?? throw new InvalidOperationException("'python3' was not found: install python3.");

    public static string? Keepalived => Find("keepalived");

    /// <summary>CLOCK_MONOTONIC in ms, the clock of python's time.monotonic() (Stopwatch reads it on Linux).</summary>
    public static double NowMs() => Stopwatch.GetTimestamp() * 1000.0 / Stopwatch.Frequency;

    /// <summary>Polls <paramref name="condition"/> every <paramref name="pollMs"/>; TimeoutException with <paramref name="state"/> after <paramref name="timeout"/>.</summary>
    public static void WaitFor(Func<bool> condition, string what, TimeSpan timeout, CancellationToken ct, Func<string>? state = null, int pollMs = 100)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            ct.ThrowIfCancellationRequested();
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"waited {timeout.TotalSeconds:0} s for {what}; now: {state?.Invoke() ?? "?"}");
            Thread.Sleep(pollMs);
        }
    }
}
