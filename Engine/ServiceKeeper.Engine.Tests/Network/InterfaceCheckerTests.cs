// intf.<ident> inside a lab node: carrier lost, link set down, address nowhere.
using System;
using System.Net;
using System.Runtime.Versioning;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Tests.Testing;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Network;

[SupportedOSPlatform("linux")]
public sealed class InterfaceCheckerTests
{
    private readonly ITestOutputHelper _output;

    public InterfaceCheckerTests(ITestOutputHelper output) => _output = output;

    [NetnsFact]
    public async Task NoCarrierOrLinkDown_IsDown_AndBackUpWhenTheLinkReturns()
    {
        using var lab = NetworkTestKit.CreateLab(_output);
        var n1 = lab.Nodes[0];
        var config = new InterfaceCheckConfig { Ident = "eth0", LocalAddress = IPAddress.Parse(n1.Address), Interval = TimeSpan.FromMilliseconds(100), Timeout = TimeSpan.FromSeconds(5) };
        var checker = new InterfaceChecker(config, NetworkTestKit.Context(TimeProvider.System));
        var reports = new ReportLog();
        using var stop = new CancellationTokenSource();
        var run = NetnsThread.RunAsync(n1.Namespace, () => checker.RunAsync(reports.Add, stop.Token));
        try
        {
            var up = reports.WaitForCount(1);
            Assert.Equal(("intf.eth0", ResourceValue.Up, CheckAction.Wait), (up.Resource, up.Value, up.Action));

            lab.Cut(n1);                                                    // the switch port goes down: no carrier
            var down = reports.WaitForCount(2);
            Assert.Equal(ResourceValue.Down, down.Value);
            Assert.Contains("eth0", down.Reason, StringComparison.Ordinal);

            lab.Heal(n1);
            Assert.Equal(ResourceValue.Up, reports.WaitForCount(3).Value);

            lab.ExecInNode(n1, "ip", "link", "set", "eth0", "down").EnsureSuccess();
            Assert.Equal(ResourceValue.Down, reports.WaitForCount(4).Value);

            lab.ExecInNode(n1, "ip", "link", "set", "eth0", "up").EnsureSuccess();
            Assert.Equal(ResourceValue.Up, reports.WaitForCount(5).Value);
        }
        finally
        {
            stop.Cancel();
        }
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
    }

    [NetnsFact]
    public async Task AnAddressNoInterfaceHolds_IsDownFromTheStart()
    {
        using var lab = NetworkTestKit.CreateLab(_output);
        var config = new InterfaceCheckConfig { Ident = "x", LocalAddress = IPAddress.Parse("198.18.0.99"), Interval = TimeSpan.FromMilliseconds(100) };
        var checker = new InterfaceChecker(config, NetworkTestKit.Context(TimeProvider.System));
        var reports = new ReportLog();
        using var stop = new CancellationTokenSource();
        var run = NetnsThread.RunAsync(lab.Nodes[0].Namespace, () => checker.RunAsync(reports.Add, stop.Token));

        var down = reports.WaitForCount(1);
        Assert.Equal(ResourceValue.Down, down.Value);
        Assert.Equal("no interface holds 198.18.0.99", down.Reason);

        stop.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
    }
}
