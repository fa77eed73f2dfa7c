// Shared plumbing of the checker and script tests: temp folders, real throw-away processes, a
// recorder for resource changes and checker contexts.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Threading;
using System.Threading.Channels;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging.Abstractions;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Scripts;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Checkers;

/// <summary>[Fact] for tests of Linux behaviour (/proc, /bin/sh, execute bits).</summary>
public sealed class LinuxFactAttribute : FactAttribute
{
    public LinuxFactAttribute()
    {
        if (!OperatingSystem.IsLinux())
            Skip = "Linux only: /proc, /bin/sh and execute bits";
    }
}

internal static class Wait
{
    /// <summary>Generous: these waits only end early on success.</summary>
    public static readonly TimeSpan Long = TimeSpan.FromSeconds(20);

    /// <summary>Polls until <paramref name="condition"/> holds; fails the test after <see cref="Long"/>.</summary>
    public static void Until(Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > Long)
                Assert.Fail($"timed out after {Long.TotalSeconds:0}s waiting for: {what}");
            Thread.Sleep(20);
        }
    }
}

internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sktest-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    /// <summary>Writes a script file; executable unless told otherwise.</summary>
    public string Script(string relativePath, string text, bool executable = true)
    {
        var path = System.IO.Path.Combine(Path, relativePath);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text.Replace("\r\n", "\n", StringComparison.Ordinal));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, executable
                ? UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute
                : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        }
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>
/// Real processes with names nobody else uses: a copy of sleep called skXXXX..., so errd can count
/// them by name. Everything started is killed on Dispose, also when the test failed.
/// </summary>
internal sealed class TestProcesses : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly List<Process> _started = new();

    /// <summary>A unique program name of <paramref name="length"/> characters starting with "sk".</summary>
    public static string UniqueName(int length = 12) =>
        ("sk" + Guid.NewGuid().ToString("N"))[..length];

    /// <summary>A copy of sleep under <paramref name="name"/>; its processes show that name in /proc.</summary>
    public string SleepBinary(string name)
    {
        var path = Path.Combine(_dir.Path, name);
        File.Copy(ProgramPath.FindOnPath("sleep") ?? throw new InvalidOperationException("sleep not found"), path);
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        return path;
    }

    public Process Start(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { UseShellExecute = false };
        foreach (var arg in args)
            psi.ArgumentList.Add(arg);
        var process = Process.Start(psi)!;
        lock (_started)
            _started.Add(process);
        return process;
    }

    public void Track(Process process)
    {
        lock (_started)
            _started.Add(process);
    }

    public static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
        }
        process.WaitForExit(10_000);
    }

    /// <summary>Kills a pid we learnt from a script; true if it was running.</summary>
    public static bool KillPid(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            process.Kill();
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>Running: in /proc and not a zombie (a container's init may never reap it).</summary>
    public static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0];
            return state != "Z" && state != "X";
        }
        catch (IOException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        lock (_started)
        {
            foreach (var process in _started)
            {
                Kill(process);
                process.Dispose();
            }
            _started.Clear();
        }
        _dir.Dispose();
    }
}

/// <summary>Collects what a checker reports and runs it until disposed.</summary>
internal sealed class CheckerRun : IAsyncDisposable
{
    private readonly Channel<ResourceChange> _changes = Channel.CreateUnbounded<ResourceChange>();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _run;

    public CheckerRun(IChecker checker)
    {
        _run = checker.RunAsync(change => _changes.Writer.TryWrite(change), _stop.Token);
    }

    /// <summary>The next change; fails after <see cref="Wait.Long"/>.</summary>
    public async Task<ResourceChange> NextAsync()
    {
        using var timeout = new CancellationTokenSource(Wait.Long);
        try
        {
            return await _changes.Reader.ReadAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            if (_run.IsFaulted)
                throw new Xunit.Sdk.XunitException("the checker failed: " + _run.Exception);
            throw new Xunit.Sdk.XunitException($"no change reported within {Wait.Long.TotalSeconds:0}s");
        }
    }

    /// <summary>Changes reported so far and not yet read.</summary>
    public int Pending => _changes.Reader.Count;

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        // RunAsync ends normally when cancelled: a throw here is a bug of the checker.
        await _run.WaitAsync(Wait.Long);
        _stop.Dispose();
    }
}

internal static class Contexts
{
    public static CheckerContext Create(
        TimeProvider? time = null,
        IProcessTable? processes = null,
        IScriptRunner? scripts = null,
        string? moduleDirectory = null,
        IReadOnlyDictionary<string, string>? environment = null,
        Func<string, string?, int?, CancellationToken, Task<bool>>? isModuleReady = null) => new()
    {
        Module = "m1",
        Node = "n1",
        ModuleDirectory = moduleDirectory ?? Path.GetTempPath(),
        Time = time ?? TimeProvider.System,
        LoggerFactory = NullLoggerFactory.Instance,
        Processes = processes ?? new FakeProcessTable(),
        Scripts = scripts ?? new ProcessScriptRunner(new MemoryModuleLog()),
        Environment = environment ?? new Dictionary<string, string>(),
        IsModuleReady = isModuleReady ?? ((_, _, _, _) => Task.FromResult(true)),
    };
}

internal sealed class FakeProcessTable : IProcessTable
{
    public volatile IReadOnlyList<ProcessEntry> Processes = Array.Empty<ProcessEntry>();
    public volatile Exception? Failure;

    public IReadOnlyList<ProcessEntry> Snapshot() => Failure is { } e ? throw e : Processes;

    public void Set(params (string Name, string CommandLine)[] processes) =>
        Processes = processes.Select((p, i) => new ProcessEntry(1000 + i, p.Name, p.CommandLine)).ToList();
}

/// <summary>An IModuleLog in memory, for tests that look at what a runner wrote.</summary>
internal sealed class MemoryModuleLog : IModuleLog
{
    private readonly List<(string Module, string Source, string Text)> _lines = new();

    public IReadOnlyList<(string Module, string Source, string Text)> Lines
    {
        get
        {
            lock (_lines)
                return _lines.ToList();
        }
    }

    public IReadOnlyList<string> Texts(string source) => Lines.Where(l => l.Source == source).Select(l => l.Text).ToList();

    public void Write(string module, string source, string text)
    {
        lock (_lines)
            _lines.Add((module, source, text));
    }

    public IReadOnlyList<Contracts.LogLine> Read(string module, int tail, long? afterSequence) => throw new NotSupportedException();
}

internal static class Witnesses
{
    public static readonly IPAddress A = IPAddress.Parse("198.18.0.254");
    public static readonly IPAddress B = IPAddress.Parse("198.18.0.253");
}
