// tcp.<ident> against a real listener on loopback.
using System;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Configuration;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Network;

public sealed class TcpCheckerTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(800);

    [Fact]
    public async Task ListenerUpDownUp_ReportsExactlyOncePerFlip()
    {
        var listener = Listen(0);
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var config = new TcpCheckConfig { Ident = "app", Address = "127.0.0.1", Port = port, Interval = TimeSpan.FromMilliseconds(100), Timeout = TimeSpan.FromSeconds(5) };
        var checker = new TcpChecker(config, NetworkTestKit.Context(TimeProvider.System));
        var reports = new ReportLog();
        using var stop = new CancellationTokenSource();
        var run = checker.RunAsync(reports.Add, stop.Token);
        try
        {
            var up = reports.WaitForCount(1);
            Assert.Equal(("tcp.app", ResourceValue.Up, CheckAction.Restart), (up.Resource, up.Value, up.Action));
            reports.AssertStaysAt(1, Quiet);

            listener.Stop();
            var down = reports.WaitForCount(2);
            Assert.Equal(ResourceValue.Down, down.Value);
            Assert.Contains($"127.0.0.1:{port}", down.Reason, StringComparison.Ordinal);
            reports.AssertStaysAt(2, Quiet);

            listener = Listen(port);
            Assert.Equal(ResourceValue.Up, reports.WaitForCount(3).Value);
            reports.AssertStaysAt(3, Quiet);
        }
        finally
        {
            stop.Cancel();
            listener.Stop();
        }
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
    }

    [Fact]
    public void Constructor_RefusesAMissingAddressOrABadPort()
    {
        var context = NetworkTestKit.Context(TimeProvider.System);
        Assert.Throws<ArgumentException>(() => new TcpChecker(new TcpCheckConfig { Ident = "x", Port = 80 }, context));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TcpChecker(new TcpCheckConfig { Ident = "x", Address = "127.0.0.1", Port = 0 }, context));
    }

    // Accepts and closes connections, so the backlog never fills.
    private static TcpListener Listen(int port)
    {
        var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Start();
        _ = Task.Run(async () =>
        {
            try
            {
                while (true)
                    (await listener.AcceptSocketAsync()).Dispose();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
            {
            }
        });
        return listener;
    }
}
