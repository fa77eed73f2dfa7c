// The shared checker loop on a fake clock: when it probes, when it reports, how it counts failures.
using System;
using System.Collections.Concurrent;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Time.Testing;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Configuration;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Network;

public sealed class PeriodicCheckerTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly ReportLog _reports = new();
    private readonly CancellationTokenSource _stop = new();

    [Fact]
    public async Task FirstProbe_LeavesInit_AndSteadyProbesReportNothingMore()
    {
        var checker = Checker(Up, Up, Up, Up);
        var run = checker.RunAsync(_reports.Add, _stop.Token);

        await checker.WaitForProbe(1);
        for (var i = 2; i <= 4; i++)
            await Step(checker, i);

        var up = Assert.Single(_reports.Snapshot());
        Assert.Equal(new ResourceChange("tcp.db", ResourceValue.Up, CheckAction.Restart, "fine", _time.GetUtcNow() - 3 * Interval), up);
        await Stop(run);
    }

    [Fact]
    public async Task EveryFlip_IsReportedOnce()
    {
        var checker = Checker(Up, Down("refused"), Down("refused"), Up, Up);
        var run = checker.RunAsync(_reports.Add, _stop.Token);

        await checker.WaitForProbe(1);
        for (var i = 2; i <= 5; i++)
            await Step(checker, i);

        Assert.Equal(new[] { ResourceValue.Up, ResourceValue.Down, ResourceValue.Up }, _reports.Values);
        Assert.Equal("refused", _reports.Snapshot()[1].Reason);
        await Stop(run);
    }

    [Fact]
    public async Task ConsecutiveFailures_AnUpResourceGoesDownOnlyAfterThatManyFailedProbesInARow()
    {
        var checker = new ScriptedChecker(Config(), NetworkTestKit.Context(_time),
            new[] { Up, Down("slow"), Down("slow"), Up, Down("slow"), Down("slow"), Down("slow"), Down("slow"), Up }) { ConsecutiveFailures = 3 };
        var run = checker.RunAsync(_reports.Add, _stop.Token);

        await checker.WaitForProbe(1);
        for (var i = 2; i <= 6; i++)
            await Step(checker, i);
        Assert.Equal(new[] { ResourceValue.Up }, _reports.Values);            // probes 2, 3 and 5 were tolerated

        await Step(checker, 7);
        await Step(checker, 8);                                              // probe 7 was the third failure in a row
        Assert.Equal(new[] { ResourceValue.Up, ResourceValue.Down }, _reports.Values);
        Assert.Equal("slow (3 failed probes in a row)", _reports.Snapshot()[1].Reason);

        await Step(checker, 9);
        await Step(checker, 10);                                             // probe 9 was up again
        Assert.Equal(new[] { ResourceValue.Up, ResourceValue.Down, ResourceValue.Up }, _reports.Values);
        await Stop(run);
    }

    [Fact]
    public async Task FirstProbe_Down_LeavesInitAtOnce_EvenWithAThreshold()
    {
        var checker = new ScriptedChecker(Config(), NetworkTestKit.Context(_time), new[] { Down("refused"), Down("refused") }) { ConsecutiveFailures = 3 };
        var run = checker.RunAsync(_reports.Add, _stop.Token);

        await checker.WaitForProbe(1);
        await Step(checker, 2);

        var down = Assert.Single(_reports.Snapshot());
        Assert.Equal(ResourceValue.Down, down.Value);
        Assert.Equal("refused", down.Reason);
        await Stop(run);
    }

    [Fact]
    public async Task AProbeThatThrows_IsDownWithItsMessage()
    {
        Func<CancellationToken, Task<ProbeResult>> faults = _ => Task.FromException<ProbeResult>(new InvalidOperationException("boom, later"));
        var checker = Checker(Up, _ => throw new InvalidOperationException("boom, at once"), Up, faults, faults);
        var run = checker.RunAsync(_reports.Add, _stop.Token);

        await checker.WaitForProbe(1);
        for (var i = 2; i <= 5; i++)
            await Step(checker, i);

        Assert.Equal(new[] { "fine", "scripted: boom, at once", "fine", "scripted: boom, later" }, _reports.Snapshot().Select(c => c.Reason));
        Assert.Equal(new[] { ResourceValue.Up, ResourceValue.Down, ResourceValue.Up, ResourceValue.Down }, _reports.Values);
        await Stop(run);
    }

    [Fact]
    public async Task AProbeThatDoesNotAnswer_IsDownAtTheTimeout_AndItsTokenIsCancelled()
    {
        var hanging = new TaskCompletionSource<ProbeResult>();
        var checker = Checker(Up, _ => hanging.Task, Up);
        var run = checker.RunAsync(_reports.Add, _stop.Token);
        await checker.WaitForProbe(1);
        await Step(checker, 2);

        _time.Advance(Timeout - TimeSpan.FromMilliseconds(1));
        Assert.Single(_reports.Snapshot());
        _time.Advance(TimeSpan.FromMilliseconds(1));

        var down = _reports.WaitForCount(2);
        Assert.Equal(ResourceValue.Down, down.Value);
        Assert.Equal("scripted: no answer within 5 s", down.Reason);
        Assert.True(checker.Tokens[1].IsCancellationRequested);

        // The next probe still starts one interval after the slow one started.
        _time.Advance(Interval - Timeout);
        await checker.WaitForProbe(3);
        _reports.WaitForCount(3);
        await Stop(run);
    }

    [Fact]
    public async Task Cancellation_EndsTheRun_AndASecondConcurrentRunIsRefused()
    {
        var checker = Checker(Up);
        var run = checker.RunAsync(_reports.Add, _stop.Token);
        await checker.WaitForProbe(1);

        await Assert.ThrowsAsync<InvalidOperationException>(() => checker.RunAsync(_reports.Add, CancellationToken.None));
        await Stop(run);
    }

    [Fact]
    public void ConsecutiveFailures_BelowOne_IsRefused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new ScriptedChecker(Config(), NetworkTestKit.Context(_time), Array.Empty<Func<CancellationToken, Task<ProbeResult>>>()) { ConsecutiveFailures = 0 });

    [Theory]
    [InlineData(ResourceValue.Init, 0, true, 3, ResourceValue.Up, 0, true)]
    [InlineData(ResourceValue.Init, 0, false, 3, ResourceValue.Down, 1, true)]
    [InlineData(ResourceValue.Up, 0, true, 3, ResourceValue.Up, 0, false)]
    [InlineData(ResourceValue.Up, 0, false, 1, ResourceValue.Down, 1, true)]
    [InlineData(ResourceValue.Up, 1, false, 3, ResourceValue.Up, 2, false)]
    [InlineData(ResourceValue.Up, 2, false, 3, ResourceValue.Down, 3, true)]
    [InlineData(ResourceValue.Down, 3, false, 3, ResourceValue.Down, 4, false)]
    [InlineData(ResourceValue.Down, 4, true, 3, ResourceValue.Up, 0, true)]
    public void Next_IsTheDecisionTable(ResourceValue value, int failures, bool probeUp, int threshold, ResourceValue nextValue, int nextFailures, bool flipped)
    {
        var (next, flip) = PeriodicChecker.Next(new PeriodicChecker.ProbeState(value, failures), probeUp, threshold);
        Assert.Equal(new PeriodicChecker.ProbeState(nextValue, nextFailures), next);
        Assert.Equal(flipped, flip);
    }

    private static Func<CancellationToken, Task<ProbeResult>> Up => _ => Task.FromResult(ProbeResult.Up("fine"));

    private static Func<CancellationToken, Task<ProbeResult>> Down(string reason) => _ => Task.FromResult(ProbeResult.Down(reason));

    private static TcpCheckConfig Config() => new() { Ident = "db", Address = "127.0.0.1", Port = 1, Interval = Interval, Timeout = Timeout };

    private ScriptedChecker Checker(params Func<CancellationToken, Task<ProbeResult>>[] script) =>
        new(Config(), NetworkTestKit.Context(_time), script);

    /// <summary>
    /// One interval on, until probe <paramref name="probe"/> has started: every earlier probe has been
    /// reported by then. That probe may have been reported too (the fake clock runs the loop inline),
    /// so tests assert at a probe that does not flip.
    /// </summary>
    private async Task Step(ScriptedChecker checker, int probe)
    {
        _time.Advance(Interval);
        await checker.WaitForProbe(probe);
    }

    private async Task Stop(Task run)
    {
        _stop.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
    }

    /// <summary>Plays probes from a script (then stays Up) and records each probe's token.</summary>
    private sealed class ScriptedChecker : PeriodicChecker
    {
        private readonly Func<CancellationToken, Task<ProbeResult>>[] _script;
        private readonly SemaphoreSlim _started = new(0);
        private int _count;

        public ScriptedChecker(TcpCheckConfig config, CheckerContext context, Func<CancellationToken, Task<ProbeResult>>[] script)
            : base(config, context)
        {
            _script = script;
        }

        public ConcurrentDictionary<int, CancellationToken> TokenMap { get; } = new();

        protected override string Target => "scripted";

        public CancellationToken[] Tokens => TokenMap.OrderBy(p => p.Key).Select(p => p.Value).ToArray();

        public async Task WaitForProbe(int probe)
        {
            while (Volatile.Read(ref _count) < probe)
                Assert.True(await _started.WaitAsync(TimeSpan.FromSeconds(10)), $"probe {probe} did not start");
        }

        protected override Task<ProbeResult> ProbeAsync(CancellationToken ct)
        {
            var index = Interlocked.Increment(ref _count) - 1;
            TokenMap[index] = ct;
            var step = index < _script.Length ? _script[index] : Up;
            try
            {
                return step(ct);
            }
            finally
            {
                _started.Release();
            }
        }
    }
}
