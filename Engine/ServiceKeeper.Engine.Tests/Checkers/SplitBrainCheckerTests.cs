// splitbrain: up while any witness answers; fake probers on a fake clock, plus one real ping on loopback.
using System;
using System.Collections.Concurrent;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Time.Testing;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Scripts;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Checkers;

public sealed class SplitBrainCheckerTests
{
    private readonly FakeTimeProvider _time = new();

    private static SplitBrainCheckConfig Config(string arguments, string exec = SplitBrainCheckConfig.PingExec) =>
        new() { Ident = "witness", Exec = exec, Arguments = arguments };

    [Fact]
    public void Defaults_ProbeEverySecond_AndWait()
    {
        var checker = new SplitBrainChecker(Config("198.18.0.254 198.18.0.253"), Contexts.Create());

        Assert.Equal(TimeSpan.FromSeconds(1), SplitBrainChecker.DefaultInterval);
        Assert.Equal(TimeSpan.FromSeconds(1), SplitBrainChecker.DefaultTimeout);
        Assert.Equal("splitbrain.witness", checker.Resource);
        Assert.Equal(CheckAction.Wait, checker.Action);
        Assert.Equal(CheckWhen.Both, checker.When);
        Assert.Equal(new[] { Witnesses.A, Witnesses.B }, checker.Witnesses);
    }

    [Fact]
    public async Task Run_AnyWitnessAnswering_IsUp_NoneAnswering_IsDown()
    {
        var answering = new ConcurrentDictionary<IPAddress, bool> { [Witnesses.A] = false, [Witnesses.B] = true };
        var checker = new SplitBrainChecker(Config("198.18.0.254 198.18.0.253"), Contexts.Create(time: _time),
            prober: (w, _, _) => Task.FromResult(answering[w]));
        await using var run = new CheckerRun(checker);

        var up = await run.NextAsync();
        Assert.Equal(ResourceValue.Up, up.Value);
        Assert.Equal("witness 198.18.0.253 answers", up.Reason);

        answering[Witnesses.B] = false;
        _time.Advance(SplitBrainChecker.DefaultInterval);
        var down = await run.NextAsync();
        Assert.Equal(ResourceValue.Down, down.Value);
        Assert.Equal("no witness answers (198.18.0.254, 198.18.0.253)", down.Reason);

        answering[Witnesses.A] = true;
        _time.Advance(SplitBrainChecker.DefaultInterval);
        Assert.Equal(ResourceValue.Up, (await run.NextAsync()).Value);
    }

    [Fact]
    public async Task Run_OneWitnessHanging_DoesNotHideTheOtherAnswer()
    {
        var checker = new SplitBrainChecker(Config("198.18.0.254 198.18.0.253"), Contexts.Create(time: _time),
            prober: (w, _, ct) => w.Equals(Witnesses.A) ? Task.Delay(Timeout.Infinite, ct).ContinueWith(_ => false) : Task.FromResult(true));
        await using var run = new CheckerRun(checker);

        Assert.Equal(ResourceValue.Up, (await run.NextAsync()).Value);
    }

    [Fact]
    public async Task Run_ProberIgnoringItsTimeout_CountsAsNoAnswer()
    {
        var probing = new SemaphoreSlim(0);
        var checker = new SplitBrainChecker(Config("198.18.0.254"), Contexts.Create(time: _time),
            prober: (_, _, _) =>
            {
                probing.Release();
                return new TaskCompletionSource<bool>().Task; // never answers, ignores cancellation
            });
        await using var run = new CheckerRun(checker);

        Assert.True(await probing.WaitAsync(Wait.Long));
        _time.Advance(TimeSpan.FromSeconds(2));

        Assert.Equal(ResourceValue.Down, (await run.NextAsync()).Value);
    }

    [Fact]
    public async Task Run_ThrowingProber_CountsAsNoAnswer()
    {
        var checker = new SplitBrainChecker(Config("198.18.0.254"), Contexts.Create(time: _time),
            prober: (_, _, _) => throw new InvalidOperationException("network is unreachable"));
        await using var run = new CheckerRun(checker);

        Assert.Equal(ResourceValue.Down, (await run.NextAsync()).Value);
    }

    [Fact]
    public async Task Run_NoWitnessAddress_IsDown()
    {
        await using var run = new CheckerRun(new SplitBrainChecker(Config("not-an-address"), Contexts.Create(time: _time),
            prober: (_, _, _) => Task.FromResult(true)));

        var change = await run.NextAsync();

        Assert.Equal(ResourceValue.Down, change.Value);
        Assert.Contains("no witness address", change.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_RealPingToLoopback_IsUp()
    {
        await using var run = new CheckerRun(new SplitBrainChecker(Config("127.0.0.1"), Contexts.Create(), timeout: TimeSpan.FromSeconds(5)));

        var change = await run.NextAsync();

        Assert.Equal(ResourceValue.Up, change.Value);
        Assert.Equal("witness 127.0.0.1 answers", change.Reason);
    }

    [LinuxFact]
    public async Task Run_ExecProgram_GetsEachWitness_AndExitCodeZeroMeansReachable()
    {
        using var module = new TempDirectory();
        module.Script("bin/witness", "#!/bin/sh\n[ \"$1\" = 127.0.0.2 ]\n");
        var context = Contexts.Create(scripts: new ProcessScriptRunner(new MemoryModuleLog()), moduleDirectory: module.Path);

        await using (var run = new CheckerRun(new SplitBrainChecker(Config("127.0.0.3 127.0.0.2", exec: "witness"), context, timeout: TimeSpan.FromSeconds(10))))
            Assert.Equal("witness 127.0.0.2 answers", (await run.NextAsync()).Reason);

        await using (var run = new CheckerRun(new SplitBrainChecker(Config("127.0.0.3 127.0.0.4", exec: "witness"), context, timeout: TimeSpan.FromSeconds(10))))
            Assert.Equal("no witness answers (127.0.0.3, 127.0.0.4)", (await run.NextAsync()).Reason);
    }
}
