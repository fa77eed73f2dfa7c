// The script runner against real /bin/sh scripts: arguments, environment, output, exit codes,
// missing programs, interpreters, and the process tree killed at the timeout.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Scripts;
using ServiceKeeper.Engine.Tests.Checkers;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Scripts;

public sealed class ProcessScriptRunnerTests : IDisposable
{
    private static readonly IReadOnlyDictionary<string, string> NoEnvironment = new Dictionary<string, string>();
    private readonly TempDirectory _dir = new();
    private readonly MemoryModuleLog _log = new();
    private readonly ProcessScriptRunner _runner;

    public ProcessScriptRunnerTests() => _runner = new ProcessScriptRunner(_log);

    public void Dispose() => _dir.Dispose();

    private static ScriptInvocation Invocation(string path, IReadOnlyList<string>? args = null, IReadOnlyDictionary<string, string>? env = null, TimeSpan? timeout = null) =>
        new("m1", "start_prim", path, args ?? Array.Empty<string>(), env ?? NoEnvironment, timeout ?? Wait.Long);

    [LinuxFact]
    public async Task Run_PassesArgumentsAndEnvironment_ToTheScript()
    {
        var script = _dir.Script("bin/start_prim", "#!/bin/sh\necho \"args=$#:$1|$2\"\necho \"var=$SK_VAR path=${PATH:+set}\"\n");

        var result = await _runner.RunAsync(
            Invocation(script, new[] { "SECOND", "with space" }, new Dictionary<string, string> { ["SK_VAR"] = "hello world" }),
            CancellationToken.None);

        Assert.True(result.Succeeded, $"exit {result.ExitCode}");
        Assert.Equal(new[] { "args=2:SECOND|with space", "var=hello world path=set" }, _log.Texts("start_prim"));
        Assert.All(_log.Lines, l => Assert.Equal("m1", l.Module));
    }

    [LinuxFact]
    public async Task Run_CopiesEveryOutputLine_InOrder_FromStdoutAndStderr()
    {
        var script = _dir.Script("bin/chatty", "#!/bin/sh\ni=1\nwhile [ $i -le 500 ]; do echo \"line $i\"; i=$((i+1)); done\necho oops >&2\nprintf 'no newline'\n");

        var result = await _runner.RunAsync(Invocation(script), CancellationToken.None);

        Assert.Equal(0, result.ExitCode);
        var texts = _log.Texts("start_prim");
        Assert.Equal(Enumerable.Range(1, 500).Select(i => $"line {i}").Append("no newline"), texts.Where(t => t != "oops"));
        Assert.Contains("oops", texts);
    }

    [LinuxFact]
    public async Task Run_NonZeroExit_IsReportedNotThrown()
    {
        var script = _dir.Script("bin/fail", "#!/bin/sh\necho failing\nexit 3\n");

        var result = await _runner.RunAsync(Invocation(script), CancellationToken.None);

        Assert.Equal(3, result.ExitCode);
        Assert.False(result.TimedOut);
        Assert.False(result.Missing);
        Assert.False(result.Succeeded);
        Assert.Equal(new[] { "failing" }, _log.Texts("start_prim"));
    }

    [Fact]
    public async Task Run_MissingScript_ReturnsMissing_AndStartsNothing()
    {
        var result = await _runner.RunAsync(Invocation(Path.Combine(_dir.Path, "bin", "prestart")), CancellationToken.None);

        Assert.True(result.Missing);
        Assert.False(result.Succeeded);
        Assert.Equal(ProcessScriptRunner.MissingExitCode, result.ExitCode);
        Assert.Empty(_log.Lines);
    }

    [Fact]
    public async Task Run_UnknownBareCommand_ReturnsMissing()
    {
        var result = await _runner.RunAsync(Invocation("sk-no-such-command-" + Guid.NewGuid().ToString("N")), CancellationToken.None);

        Assert.True(result.Missing);
    }

    [LinuxFact]
    public async Task Run_BareCommand_IsFoundOnPath()
    {
        var result = await _runner.RunAsync(Invocation("sh", new[] { "-c", "echo from path; exit 4" }), CancellationToken.None);

        Assert.Equal(4, result.ExitCode);
        Assert.Equal(new[] { "from path" }, _log.Texts("start_prim"));
    }

    [LinuxFact]
    public async Task Run_ScriptWithoutExecuteBit_RunsThroughSh()
    {
        var script = _dir.Script("bin/stop_prim", "echo \"plain $1\"\nexit 5\n", executable: false);

        var result = await _runner.RunAsync(Invocation(script, new[] { "force" }), CancellationToken.None);

        Assert.Equal(5, result.ExitCode);
        Assert.Equal(new[] { "plain force" }, _log.Texts("start_prim"));
    }

    [LinuxFact]
    public async Task Run_ExecutableWithoutShebang_RunsThroughSh()
    {
        var script = _dir.Script("bin/noshebang", "echo \"no shebang $1\"\n");

        var result = await _runner.RunAsync(Invocation(script, new[] { "x" }), CancellationToken.None);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(new[] { "no shebang x" }, _log.Texts("start_prim"));
    }

    [LinuxFact]
    public async Task Run_ModuleScript_RunsInItsOwnFolder()
    {
        var script = _dir.Script("bin/where", "#!/bin/sh\ncat ./marker\n");
        File.WriteAllText(Path.Combine(_dir.Path, "bin", "marker"), "beside the script\n");

        await _runner.RunAsync(Invocation(script), CancellationToken.None);

        Assert.Equal(new[] { "beside the script" }, _log.Texts("start_prim"));
    }

    [LinuxFact]
    public async Task Run_StdinIsClosed()
    {
        var script = _dir.Script("bin/reader", "#!/bin/sh\nif read line; then echo \"got $line\"; else echo eof; fi\n");

        var result = await _runner.RunAsync(Invocation(script, timeout: TimeSpan.FromSeconds(30)), CancellationToken.None);

        Assert.False(result.TimedOut);
        Assert.Equal(new[] { "eof" }, _log.Texts("start_prim"));
    }

    [LinuxFact]
    public async Task Run_Timeout_KillsTheWholeProcessTree()
    {
        var pidFile = Path.Combine(_dir.Path, "child.pid");
        var script = _dir.Script("bin/hang", $"#!/bin/sh\nsleep 600 &\necho $! > '{pidFile}'\necho started\nwait\n");
        int? child = null;
        try
        {
            var result = await _runner.RunAsync(Invocation(script, timeout: TimeSpan.FromSeconds(3)), CancellationToken.None);
            child = ReadPid(pidFile);

            Assert.True(result.TimedOut);
            Assert.False(result.Succeeded);
            Assert.NotNull(child);
            Wait.Until(() => !TestProcesses.IsAlive(child!.Value), $"the background sleep {child} to die");
            Assert.Contains("started", _log.Texts("start_prim"));
            Assert.Contains(_log.Texts("start_prim"), t => t.StartsWith("timed out after", StringComparison.Ordinal));
        }
        finally
        {
            if ((child ?? ReadPid(pidFile)) is { } pid)
                TestProcesses.KillPid(pid);
        }
    }

    [LinuxFact]
    public async Task Run_Cancelled_KillsTheTree_AndThrows()
    {
        var pidFile = Path.Combine(_dir.Path, "child.pid");
        var script = _dir.Script("bin/hang", $"#!/bin/sh\nsleep 600 &\necho $! > '{pidFile}'\nwait\n");
        using var cts = new CancellationTokenSource();
        try
        {
            var run = _runner.RunAsync(Invocation(script), cts.Token);
            Wait.Until(() => ReadPid(pidFile) is not null, "the script to start its child");
            cts.Cancel();

            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
            var child = ReadPid(pidFile)!.Value;
            Wait.Until(() => !TestProcesses.IsAlive(child), $"the background sleep {child} to die");
        }
        finally
        {
            if (ReadPid(pidFile) is { } pid)
                TestProcesses.KillPid(pid);
        }
    }

    [LinuxFact]
    public async Task Run_DaemonLeftBehind_DoesNotHoldTheResult_AndItsOutputStillReachesTheLog()
    {
        var pidFile = Path.Combine(_dir.Path, "daemon.pid");
        // The daemon inherits stdout: the pipe stays open after the script exits.
        var script = _dir.Script("bin/start_prim", $"#!/bin/sh\n(sleep 1; echo from daemon; exec sleep 600) &\necho $! > '{pidFile}'\necho started\nexit 0\n");
        try
        {
            var clock = Stopwatch.StartNew();
            var result = await _runner.RunAsync(Invocation(script, timeout: TimeSpan.FromSeconds(60)), CancellationToken.None);

            Assert.True(result.Succeeded);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}");
            Assert.Contains("started", _log.Texts("start_prim"));
            Wait.Until(() => _log.Texts("start_prim").Contains("from daemon"), "the daemon's line");
            Assert.True(TestProcesses.IsAlive(ReadPid(pidFile)!.Value), "a start script's daemon outlives it");
        }
        finally
        {
            if (ReadPid(pidFile) is { } pid)
                TestProcesses.KillPid(pid);
        }
    }

    [LinuxFact]
    public async Task Run_WithRealModuleLog_LinesArriveNumberedInOrder()
    {
        using var logDir = new TempDirectory();
        using var moduleLog = new ModuleLog(logDir.Path, "n1");
        var runner = new ProcessScriptRunner(moduleLog);
        var script = _dir.Script("bin/count", "#!/bin/sh\nfor i in 1 2 3; do echo $i; done\n");

        await runner.RunAsync(Invocation(script), CancellationToken.None);

        var lines = moduleLog.Read("m1", 10, null);
        Assert.Equal(new[] { "1", "2", "3" }, lines.Select(l => l.Text));
        Assert.Equal(new long[] { 1, 2, 3 }, lines.Select(l => l.Sequence));
        Assert.All(lines, l => Assert.Equal("start_prim", l.Source));
    }

    [Fact]
    public void StartInfo_PowerShellScript_UsesPwshWithBypass_WhenPwshIsInstalled()
    {
        var psi = ProcessScriptRunner.StartInfo(Path.Combine(_dir.Path, "start_prim.ps1"), new[] { "a b" }, viaShell: false);
        if (ProgramPath.FindOnPath(OperatingSystem.IsWindows() ? "pwsh.exe" : "pwsh") is null && !OperatingSystem.IsWindows())
        {
            // Without PowerShell on Linux a .ps1 runs as any executable (its #! decides).
            Assert.EndsWith("start_prim.ps1", psi.FileName, StringComparison.Ordinal);
            return;
        }
        Assert.Contains("-ExecutionPolicy", psi.ArgumentList);
        Assert.Equal(new[] { "-File", Path.Combine(_dir.Path, "start_prim.ps1"), "a b" }, psi.ArgumentList.TakeLast(3));
    }

    private static int? ReadPid(string file)
    {
        try
        {
            return int.TryParse(File.ReadAllText(file).Trim(), out var pid) ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
