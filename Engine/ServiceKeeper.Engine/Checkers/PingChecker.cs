// <ping ident><to addr/></ping>: an ICMP echo, usually to the gateway.
using System;
using System.Net;
using System.Net.NetworkInformation;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Engine.Configuration;

namespace ServiceKeeper.Engine.Checkers
{
    /// <summary>Resource ping.&lt;ident&gt;: Up while an ICMP echo to the address is answered within the timeout.</summary>
    public sealed class PingChecker : PeriodicChecker
    {
        private readonly string _address;

        public PingChecker(PingCheckConfig config, CheckerContext context)
            : base(config, context)
        {
            if (string.IsNullOrWhiteSpace(config.Address))
                throw new ArgumentException($"{config.ResourceName}: no address to ping.", nameof(config));
            _address = config.Address;
        }

        protected override string Target => _address;

        protected override async Task<ProbeResult> ProbeAsync(CancellationToken ct)
        {
            using var ping = new Ping();
            try
            {
                // Ping opens its socket within this call, before it awaits anything.
                var reply = IPAddress.TryParse(_address, out var ip)
                    ? await ping.SendPingAsync(ip, Timeout, null, null, ct)
                    : await ping.SendPingAsync(_address, Timeout, null, null, ct);
                return reply.Status == IPStatus.Success
                    ? ProbeResult.Up($"{_address} answers ping")
                    : ProbeResult.Down($"{_address} does not answer ping ({reply.Status})");
            }
            catch (PingException e)
            {
                // "An exception occurred during a Ping request" says nothing; the inner one does.
                return ProbeResult.Down($"{_address}: {e.InnerException?.Message ?? e.Message}");
            }
        }
    }
}
