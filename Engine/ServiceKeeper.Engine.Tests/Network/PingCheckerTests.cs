// ping.<ident>: loopback from here, a node of a lab that gets cut from inside its neighbour's namespace.
using System;
using System.Runtime.Versioning;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Tests.Testing;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Network;

public sealed class PingCheckerTests
{
    private readonly ITestOutputHelper _output;

    public PingCheckerTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task Loopback_IsUp_AndReportedOnce()
    {
        var config = new PingCheckConfig { Ident = "lo", Address = "127.0.0.1", Interval = TimeSpan.FromMilliseconds(100), Timeout = TimeSpan.FromSeconds(5) };
        var checker = new PingChecker(config, NetworkTestKit.Context(TimeProvider.System));
        var reports = new ReportLog();
        using var stop = new CancellationTokenSource();
        var run = checker.RunAsync(reports.Add, stop.Token);

        var up = reports.WaitForCount(1);
        Assert.Equal(("ping.lo", ResourceValue.Up, CheckAction.Wait), (up.Resource, up.Value, up.Action));
        reports.AssertStaysAt(1, TimeSpan.FromMilliseconds(800));

        stop.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
    }

    [NetnsFact]
    [SupportedOSPlatform("linux")]
    public async Task CutNeighbour_GoesDown_AndHealedComesBackUp()
    {
        using var lab = NetworkTestKit.CreateLab(_output);
        var (n1, n2) = (lab.Nodes[0], lab.Nodes[1]);
        var config = new PingCheckConfig { Ident = "n2", Address = n2.Address, Interval = TimeSpan.FromMilliseconds(200), Timeout = TimeSpan.FromSeconds(1) };
        var checker = new PingChecker(config, NetworkTestKit.Context(TimeProvider.System));
        var reports = new ReportLog();
        using var stop = new CancellationTokenSource();
        var run = NetnsThread.RunAsync(n1.Namespace, () => checker.RunAsync(reports.Add, stop.Token));
        try
        {
            Assert.Equal(ResourceValue.Up, reports.WaitForCount(1).Value);

            lab.Cut(n2);
            var down = reports.WaitForCount(2);
            Assert.Equal(ResourceValue.Down, down.Value);
            Assert.Contains(n2.Address, down.Reason, StringComparison.Ordinal);

            lab.Heal(n2);
            Assert.Equal(ResourceValue.Up, reports.WaitForCount(3).Value);
        }
        finally
        {
            stop.Cancel();
        }
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
    }
}
