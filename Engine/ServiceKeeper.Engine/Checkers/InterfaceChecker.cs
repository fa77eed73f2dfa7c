// <intf ident><to local_addr/></intf>: the NIC that holds a local address has its link.
using System;
using System.Linq;
using System.Net;
using System.Net.NetworkInformation;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Network;

namespace ServiceKeeper.Engine.Checkers
{
    /// <summary>
    /// Resource intf.&lt;ident&gt;: Up while an interface holds <see cref="InterfaceCheckConfig.LocalAddress"/> and is
    /// operationally up (set up and carrier present). Read through getifaddrs (NetworkInterface), which
    /// sees the network namespace of the calling thread.
    /// </summary>
    public sealed class InterfaceChecker : PeriodicChecker
    {
        private readonly IPAddress _localAddress;

        public InterfaceChecker(InterfaceCheckConfig config, CheckerContext context)
            : base(config, context)
        {
            if (config.LocalAddress.Equals(IPAddress.None))
                throw new ArgumentException($"{config.ResourceName}: no local address to watch.", nameof(config));
            _localAddress = config.LocalAddress;
        }

        protected override string Target => $"interface of {_localAddress}";

        protected override Task<ProbeResult> ProbeAsync(CancellationToken ct)
        {
            var nic = NetworkInterface.GetAllNetworkInterfaces()
                .FirstOrDefault(n => n.GetIPProperties().UnicastAddresses.Any(u => IpSubnet.SameAddress(u.Address, _localAddress)));
            var result = nic switch
            {
                null => ProbeResult.Down($"no interface holds {_localAddress}"),
                { OperationalStatus: OperationalStatus.Up } => ProbeResult.Up($"{nic.Name} ({_localAddress}) is up"),
                _ => ProbeResult.Down($"{nic.Name} ({_localAddress}) is {nic.OperationalStatus.ToString().ToLowerInvariant()} (set down or no carrier)"),
            };
            return Task.FromResult(result);
        }
    }
}
