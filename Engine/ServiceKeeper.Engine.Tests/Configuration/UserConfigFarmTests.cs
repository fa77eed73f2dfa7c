using System;
using System.Linq;
using System.Net;
using ServiceKeeper.Engine.Configuration;
using Xunit;
using static ServiceKeeper.Engine.Tests.Configuration.ConfigTestFiles;

namespace ServiceKeeper.Engine.Tests.Configuration
{
    public sealed class UserConfigFarmTests
    {
        [Fact]
        public void Load_FullFarmSample_ReadsEverySection()
        {
            var config = UserConfigFile.Load(PathOf("farm-full.xml"), ThreeNodeCluster());

            Assert.Equal(ModuleMode.Farm, config.Mode);
            Assert.Null(config.Heart);
            Assert.Null(config.Rfs);
            // No <nodes>: the hosts of the load balancing are the module's nodes.
            Assert.Equal(new[] { "n1", "n2", "n3" }, config.Nodes);

            var farm = config.Farm!;
            Assert.Equal(TimeSpan.FromMilliseconds(100), farm.Pulse);
            Assert.Equal(15, farm.MasterLostCount);
            Assert.Equal(12, farm.SlaveLostCount);
            Assert.Equal(new[] { "LAN1" }, farm.Lans);

            var nic = Assert.Single(config.Vip.Interfaces);
            Assert.Null(nic.Name);
            Assert.Equal(VipInterfaceKind.Virtual, nic.Kind);
            Assert.Equal(VirtualInterfaceType.MulticastMac, nic.VirtualType);
            var vip = Assert.Single(nic.Addresses);
            Assert.Equal((IPAddress.Parse("198.18.0.200"), (int?)null, VipWhere.Alias), (vip.Address, vip.PrefixLength, vip.Where));

            var group = Assert.Single(config.Vip.LoadBalancing);
            Assert.Equal("web", group.Name);
            Assert.Equal(new[] { ("n1", 2), ("n2", 1), ("n3", 0) }, group.Hosts.Select(h => (h.Name, h.Power)));
            Assert.Equal(3, group.Rules.Count);
            Assert.Equal((IPAddress.Parse("198.18.0.200"), (int?)80, TransportProtocol.Tcp, LoadBalancingFilter.OnAddress),
                (group.Rules[0].VirtualAddress, group.Rules[0].Port, group.Rules[0].Protocol, group.Rules[0].Filter));
            Assert.Equal(((IPAddress?)null, (int?)443, LoadBalancingFilter.OnPort),
                (group.Rules[1].VirtualAddress, group.Rules[1].Port, group.Rules[1].Filter));
            Assert.Equal(((int?)null, TransportProtocol.Udp, LoadBalancingFilter.OnIpId),
                (group.Rules[2].Port, group.Rules[2].Protocol, group.Rules[2].Filter));

            var nginx = Assert.Single(config.Errd.Processes);
            Assert.Equal((CheckAction.Restart, ProcessClass.Both), (nginx.Action, nginx.Class));
            Assert.All(config.Checks, c => Assert.Equal(CheckWhen.Both, c.When));
            var ping = Assert.IsType<PingCheckConfig>(config.Checks[1]);
            Assert.Equal((TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(1)), (ping.Interval, ping.Timeout));
        }

        [Fact]
        public void Parse_FarmWithoutNodesOrBalancing_RunsOnEveryClusterNodeWithFarmDefaults()
        {
            var config = UserConfigFile.Parse("""<service mode="farm"/>""", UserFile, ThreeNodeCluster());

            Assert.Equal(new[] { "n1", "n2", "n3" }, config.Nodes);
            Assert.Equal(TimeSpan.FromMilliseconds(50), config.Farm!.Pulse);
            Assert.Equal(30, config.Farm.MasterLostCount);
            Assert.Equal(30, config.Farm.SlaveLostCount);
            // n3 has no address on LAN2, so only LAN1 links the whole farm.
            Assert.Equal(new[] { "LAN1" }, config.Farm.Lans);
        }

        [Fact]
        public void Parse_FarmOnExplicitNodes_KeepsThem()
        {
            var config = UserConfigFile.Parse("""
                <service mode="farm"><nodes><node name="n2"/></nodes></service>
                """, UserFile, ThreeNodeCluster());

            Assert.Equal(new[] { "n2" }, config.Nodes);
            Assert.Equal(new[] { "LAN1", "LAN2" }, config.Farm!.Lans);
        }

        [Fact]
        public void Parse_GroupWithoutCluster_SharesAmongAllNodesEqually()
        {
            var config = UserConfigFile.Parse("""
                <service mode="farm">
                  <vip>
                    <interface_list><interface name="eth0"><virtual_interface><virtual_addr addr="198.18.0.200"/></virtual_interface></interface></interface_list>
                    <loadbalancing_list><group name="g"><rule port="80"/></group></loadbalancing_list>
                  </vip>
                </service>
                """, UserFile, TwoNodeCluster());

            Assert.Equal(new[] { ("n1", 1), ("n2", 1) }, config.Vip.LoadBalancing[0].Hosts.Select(h => (h.Name, h.Power)));
            Assert.Equal(VipWhere.Alias, config.Vip.Interfaces[0].Addresses[0].Where);
        }
    }
}
