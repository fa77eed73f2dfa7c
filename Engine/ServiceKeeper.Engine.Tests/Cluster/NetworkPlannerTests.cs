using System.Collections.Generic;
using System.Linq;
using System.Net;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Cluster;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Cluster
{
    public class NetworkPlannerTests
    {
        private static InterfaceAddress A(string nic, string address, int prefix) =>
            new() { Interface = nic, Address = address, PrefixLength = prefix };

        private static (string, IPAddress, List<InterfaceAddress>) Node(string name, string api, params InterfaceAddress[] addresses) =>
            (name, IPAddress.Parse(api), addresses.ToList());

        [Fact]
        public void TwoSharedSubnets_BecomeTwoLans_TheGivenOneFirst()
        {
            var lans = NetworkPlanner.Plan([
                Node("n1", "198.19.0.1", A("eth0", "198.18.0.1", 24), A("eth1", "198.19.0.1", 24)),
                Node("n2", "198.19.0.2", A("eth0", "198.18.0.2", 24), A("eth1", "198.19.0.2", 24)),
            ]);

            Assert.Equal(["LAN1", "LAN2"], lans.Select(l => l.Name));
            Assert.Equal(["198.19.0.1", "198.19.0.2"], lans[0].Members.Select(m => m.Address));
            Assert.Equal(["198.18.0.1", "198.18.0.2"], lans[1].Members.Select(m => m.Address));
            Assert.Equal(["n1", "n2"], lans[1].Members.Select(m => m.Node));
        }

        [Fact]
        public void SubnetNotSharedByEveryNode_IsNotALan()
        {
            var lans = NetworkPlanner.Plan([
                Node("n1", "198.18.0.1", A("eth0", "198.18.0.1", 24), A("eth1", "198.19.0.1", 24)),
                Node("n2", "198.18.0.2", A("eth0", "198.18.0.2", 24)),
            ]);

            var lan = Assert.Single(lans);
            Assert.Equal(["198.18.0.1", "198.18.0.2"], lan.Members.Select(m => m.Address));
        }

        [Fact]
        public void RoutedNodesWithoutCommonSubnet_GetOneLanOfTheGivenAddresses()
        {
            var lans = NetworkPlanner.Plan([
                Node("n1", "198.18.1.1", A("eth0", "198.18.1.1", 24)),
                Node("n2", "198.18.2.1", A("eth0", "198.18.2.1", 24)),
            ]);

            var lan = Assert.Single(lans);
            Assert.Equal("LAN1", lan.Name);
            Assert.Equal(["198.18.1.1", "198.18.2.1"], lan.Members.Select(m => m.Address));
        }

        [Fact]
        public void GivenAddressOutsideSharedSubnets_IsLan1_SharedSubnetsFollow()
        {
            var lans = NetworkPlanner.Plan([
                Node("n1", "198.18.1.1", A("eth0", "198.18.1.1", 24), A("eth1", "198.19.0.1", 16)),
                Node("n2", "198.18.2.1", A("eth0", "198.18.2.1", 24), A("eth1", "198.19.5.7", 16)),
            ]);

            Assert.Equal(["LAN1", "LAN2"], lans.Select(l => l.Name));
            Assert.Equal(["198.19.0.1", "198.19.5.7"], lans[1].Members.Select(m => m.Address));
        }
    }
}
