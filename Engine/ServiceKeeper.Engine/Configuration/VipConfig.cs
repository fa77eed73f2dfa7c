// <vip>: the virtual addresses clients use and, in a farm, how their traffic is shared.
// Mirror: <real_interface> with where="one_side_alias" (the VIP is on the primary only).
// Farm: <virtual_interface> with where="alias" (the VIP is on every node; a packet filter picks who answers).
using System.Collections.Generic;
using System.Linq;
using System.Net;

namespace ServiceKeeper.Engine.Configuration
{
    public enum VipInterfaceKind
    {
        /// <summary>&lt;real_interface&gt;: mirror.</summary>
        Real,
        /// <summary>&lt;virtual_interface&gt;: farm.</summary>
        Virtual,
    }

    /// <summary>How a farm VIP is answered in ARP so the switch floods client frames to every node.</summary>
    public enum VirtualInterfaceType
    {
        /// <summary>"multicast_mac": ARP answers with a multicast MAC derived from the VIP (see DESIGN.md).</summary>
        MulticastMac,
    }

    public enum VipWhere
    {
        /// <summary>"one_side_alias": on the mirror's primary only.</summary>
        OneSideAlias,
        /// <summary>"alias": on every farm node.</summary>
        Alias,
    }

    public enum TransportProtocol { Tcp, Udp }

    /// <summary>What the farm filter hashes to pick the node that serves a packet.</summary>
    public enum LoadBalancingFilter
    {
        /// <summary>"on_addr": client IP; a client always reaches the same node (affinity).</summary>
        OnAddress,
        /// <summary>"on_port": client IP and port; spreads one client's connections, no affinity.</summary>
        OnPort,
        /// <summary>"on_ipid": the IP identification field; per packet, for stateless UDP.</summary>
        OnIpId,
    }

    public sealed class VipConfig
    {
        public List<VipInterfaceConfig> Interfaces { get; set; } = new();

        /// <summary>&lt;loadbalancing_list&gt; groups; farm only.</summary>
        public List<LoadBalancingGroup> LoadBalancing { get; set; } = new();

        public IEnumerable<VirtualAddressConfig> AllAddresses => Interfaces.SelectMany(i => i.Addresses);
    }

    public sealed class VipInterfaceConfig
    {
        /// <summary>The NIC ("eth0"); null: the interface whose subnet holds the VIP, found at start.</summary>
        public string? Name { get; set; }

        /// <summary>check="on": an implicit intf checker on this NIC (resource intf.NAME).</summary>
        public bool Check { get; set; } = true;

        public VipInterfaceKind Kind { get; set; }

        /// <summary>type of &lt;virtual_interface&gt;; farm only.</summary>
        public VirtualInterfaceType VirtualType { get; set; } = VirtualInterfaceType.MulticastMac;

        public List<VirtualAddressConfig> Addresses { get; set; } = new();
    }

    public sealed class VirtualAddressConfig
    {
        public IPAddress Address { get; set; } = IPAddress.None;

        /// <summary>From addr="IP/prefix"; null: the prefix of the interface's subnet.</summary>
        public int? PrefixLength { get; set; }

        public VipWhere Where { get; set; } = VipWhere.OneSideAlias;

        /// <summary>check="on": an implicit ip checker that the VIP is still configured.</summary>
        public bool Check { get; set; } = true;

        public override string ToString() => PrefixLength == null ? Address.ToString() : $"{Address}/{PrefixLength}";
    }

    public sealed class LoadBalancingGroup
    {
        public string Name { get; set; } = "";
        public List<LoadBalancingHost> Hosts { get; set; } = new();
        public List<LoadBalancingRule> Rules { get; set; } = new();
    }

    public sealed class LoadBalancingHost
    {
        public const int DefaultPower = 1;

        public string Name { get; set; } = "";

        /// <summary>Weight in the 256 buckets; 0 takes none (the node stays a member but serves nothing).</summary>
        public int Power { get; set; } = DefaultPower;
    }

    public sealed class LoadBalancingRule
    {
        /// <summary>virtual_addr; null ("*"): every VIP of the module.</summary>
        public IPAddress? VirtualAddress { get; set; }

        /// <summary>null ("*" or absent): every port.</summary>
        public int? Port { get; set; }

        public TransportProtocol Protocol { get; set; } = TransportProtocol.Tcp;

        public LoadBalancingFilter Filter { get; set; } = LoadBalancingFilter.OnAddress;
    }
}
