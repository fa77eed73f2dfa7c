// <ip ident><to addr/></ip>: the VIP is still configured on this node.
using System;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Network;

namespace ServiceKeeper.Engine.Checkers
{
    /// <summary>Resource ip.&lt;ident&gt;: Up while the address is on one of this node's interfaces; Down when someone removed it.</summary>
    public sealed class IpChecker : PeriodicChecker
    {
        private readonly IPAddress _address;
        private readonly IVirtualIpManager _addresses;

        /// <summary>With this platform's VIP manager (<see cref="VirtualIpManagers.ForCurrentPlatform"/>).</summary>
        public IpChecker(IpCheckConfig config, CheckerContext context)
            : this(config, context, VirtualIpManagers.ForCurrentPlatform())
        {
        }

        public IpChecker(IpCheckConfig config, CheckerContext context, IVirtualIpManager addresses)
            : base(config, context)
        {
            ArgumentNullException.ThrowIfNull(addresses);
            if (config.Address.Equals(IPAddress.None))
                throw new ArgumentException($"{config.ResourceName}: no address to watch.", nameof(config));
            _address = config.Address;
            _addresses = addresses;
        }

        protected override string Target => _address.ToString();

        protected override Task<ProbeResult> ProbeAsync(CancellationToken ct) =>
            Task.FromResult(_addresses.IsPresent(_address, null)
                ? ProbeResult.Up($"{_address} is configured on this node")
                : ProbeResult.Down($"{_address} is no longer configured on this node"));
    }
}
