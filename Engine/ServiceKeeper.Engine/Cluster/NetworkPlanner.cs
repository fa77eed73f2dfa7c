// Finds the cluster's networks from the addresses the engines report: one LAN per subnet every node is on.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Configuration;

namespace ServiceKeeper.Engine.Cluster
{
    public static class NetworkPlanner
    {
        /// <summary>
        /// LAN1 is the subnet of the addresses the admin gave (the API addresses); every other subnet that all
        /// nodes share becomes LAN2, LAN3... in the first node's interface order. Nodes with no common subnet
        /// (routed networks) get one LAN made of the API addresses.
        /// </summary>
        public static List<LanConfig> Plan(IReadOnlyList<(string Node, IPAddress ApiAddress, List<InterfaceAddress> Addresses)> nodes)
        {
            var subnets = new List<Subnet>();
            foreach (var address in nodes[0].Addresses)
            {
                var subnet = SubnetOf(address);
                if (subnet == null || subnets.Contains(subnet.Value)) continue;
                if (nodes.All(n => n.Addresses.Any(a => SubnetOf(a) == subnet)))
                    subnets.Add(subnet.Value);
            }
            // The subnet of the given addresses first, when it is shared.
            subnets = subnets.OrderBy(s => InSubnet(nodes[0].ApiAddress, s) ? 0 : 1).ToList();
            if (subnets.Count == 0 || !InSubnet(nodes[0].ApiAddress, subnets[0]))
            {
                var lans = new List<LanConfig> { Lan(1, nodes.Select(n => (n.Node, n.ApiAddress.ToString()))) };
                lans.AddRange(subnets.Select((s, i) => Lan(i + 2, nodes.Select(n => (n.Node, AddressIn(n.Addresses, s))))));
                return lans;
            }
            return subnets.Select((s, i) => Lan(i + 1, nodes.Select(n =>
                (n.Node, i == 0 && InSubnet(n.ApiAddress, s) ? n.ApiAddress.ToString() : AddressIn(n.Addresses, s))))).ToList();
        }

        private static LanConfig Lan(int number, IEnumerable<(string Node, string Address)> members) => new()
        {
            Name = "LAN" + number,
            Members = members.Select(m => new LanMember { Node = m.Node, Address = m.Address }).ToList(),
        };

        private static string AddressIn(List<InterfaceAddress> addresses, Subnet subnet) =>
            addresses.First(a => SubnetOf(a) == subnet).Address;

        // A record struct compares IPAddress with Equals; a tuple's == would compare references.
        private readonly record struct Subnet(IPAddress Network, int Prefix);

        private static Subnet? SubnetOf(InterfaceAddress address) =>
            IPAddress.TryParse(address.Address, out var ip) && address.PrefixLength > 0
                ? new Subnet(Mask(ip, address.PrefixLength), address.PrefixLength)
                : null;

        private static bool InSubnet(IPAddress address, Subnet subnet) =>
            address.AddressFamily == subnet.Network.AddressFamily && Mask(address, subnet.Prefix).Equals(subnet.Network);

        private static IPAddress Mask(IPAddress address, int prefix)
        {
            var bytes = address.GetAddressBytes();
            for (int i = 0; i < bytes.Length; i++)
            {
                int bits = Math.Clamp(prefix - i * 8, 0, 8);
                bytes[i] &= (byte)(0xFF << (8 - bits));
            }
            return new IPAddress(bytes);
        }
    }
}
