// ip.<ident> with the real Linux VIP manager inside a lab node.
using System;
using System.Net;
using System.Runtime.Versioning;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Network;
using ServiceKeeper.Engine.Tests.Testing;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Network;

public sealed class IpCheckerTests
{
    private static readonly IPAddress Vip = IPAddress.Parse("198.18.0.50");

    private readonly ITestOutputHelper _output;

    public IpCheckerTests(ITestOutputHelper output) => _output = output;

    [NetnsFact]
    [SupportedOSPlatform("linux")]
    public async Task VipRemovedBySomeone_IsDown_AndUpAgainWhenReadded()
    {
        using var lab = NetworkTestKit.CreateLab(_output);
        var n1 = lab.Nodes[0];
        var manager = new LinuxVirtualIpManager();
        NetnsThread.Run(n1.Namespace, () => manager.AddAsync(Vip, 24, "eth0", CancellationToken.None).GetAwaiter().GetResult());

        var config = new IpCheckConfig { Ident = "vip", Address = Vip, Interval = TimeSpan.FromMilliseconds(100), Timeout = TimeSpan.FromSeconds(5) };
        var checker = new IpChecker(config, NetworkTestKit.Context(TimeProvider.System), manager);
        var reports = new ReportLog();
        using var stop = new CancellationTokenSource();
        var run = NetnsThread.RunAsync(n1.Namespace, () => checker.RunAsync(reports.Add, stop.Token));
        try
        {
            var up = reports.WaitForCount(1);
            Assert.Equal(("ip.vip", ResourceValue.Up, CheckAction.StopStart), (up.Resource, up.Value, up.Action));

            lab.ExecInNode(n1, "ip", "addr", "del", "198.18.0.50/24", "dev", "eth0").EnsureSuccess();
            var down = reports.WaitForCount(2);
            Assert.Equal(ResourceValue.Down, down.Value);
            Assert.Contains("198.18.0.50", down.Reason, StringComparison.Ordinal);

            NetnsThread.Run(n1.Namespace, () => manager.AddAsync(Vip, 24, "eth0", CancellationToken.None).GetAwaiter().GetResult());
            Assert.Equal(ResourceValue.Up, reports.WaitForCount(3).Value);
            reports.AssertStaysAt(3, TimeSpan.FromMilliseconds(500));
        }
        finally
        {
            stop.Cancel();
        }
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
    }

    [Fact]
    public async Task AManagerThatCannotCheck_IsDownWithItsReason()
    {
        var config = new IpCheckConfig { Ident = "vip", Address = Vip, Interval = TimeSpan.FromMilliseconds(100) };
        var checker = new IpChecker(config, NetworkTestKit.Context(TimeProvider.System), new UnsupportedVirtualIpManager());
        var reports = new ReportLog();
        using var stop = new CancellationTokenSource();
        var run = checker.RunAsync(reports.Add, stop.Token);

        var down = reports.WaitForCount(1);
        Assert.Equal(ResourceValue.Down, down.Value);
        Assert.StartsWith("198.18.0.50: virtual IPs on Windows are not supported yet", down.Reason, StringComparison.Ordinal);

        stop.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
    }
}
