// <tcp ident><to addr port/></tcp>: the application accepts TCP connections.
using System;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Engine.Configuration;

namespace ServiceKeeper.Engine.Checkers
{
    /// <summary>Resource tcp.&lt;ident&gt;: Up while a TCP connect to address:port completes within the timeout.</summary>
    public sealed class TcpChecker : PeriodicChecker
    {
        private readonly EndPoint _endPoint;

        public TcpChecker(TcpCheckConfig config, CheckerContext context)
            : base(config, context)
        {
            if (string.IsNullOrWhiteSpace(config.Address))
                throw new ArgumentException($"{config.ResourceName}: no address to connect to.", nameof(config));
            if (config.Port is < 1 or > 65535)
                throw new ArgumentOutOfRangeException(nameof(config), config.Port, $"{config.ResourceName}: the port must be 1..65535.");
            _endPoint = IPAddress.TryParse(config.Address, out var ip)
                ? new IPEndPoint(ip, config.Port)
                : new DnsEndPoint(config.Address, config.Port);
            Target = ip is null ? $"{config.Address}:{config.Port}" : _endPoint.ToString()!;
        }

        protected override string Target { get; }

        protected override async Task<ProbeResult> ProbeAsync(CancellationToken ct)
        {
            // Connect only: the application sees a connection opened and closed, no data.
            using var socket = _endPoint is IPEndPoint ip
                ? new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp)
                : new Socket(SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await socket.ConnectAsync(_endPoint, ct);
                return ProbeResult.Up($"{Target} accepts connections");
            }
            catch (SocketException e)
            {
                return ProbeResult.Down($"{Target}: {e.Message}");
            }
        }
    }
}
