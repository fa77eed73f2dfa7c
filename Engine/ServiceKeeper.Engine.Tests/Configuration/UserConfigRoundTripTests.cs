using System;
using System.Linq;
using System.Net;
using ServiceKeeper.Engine.Configuration;
using Xunit;
using static ServiceKeeper.Engine.Tests.Configuration.ConfigTestFiles;

namespace ServiceKeeper.Engine.Tests.Configuration
{
    public sealed class UserConfigRoundTripTests
    {
        [Theory]
        [InlineData("mirror-full.xml", false)]
        [InlineData("mirror-minimal.xml", false)]
        [InlineData("farm-full.xml", true)]
        public void ToXml_ThenParse_GivesTheSameConfiguration(string sample, bool threeNodes)
        {
            var cluster = threeNodes ? ThreeNodeCluster() : TwoNodeCluster();
            var original = UserConfigFile.Load(PathOf(sample), cluster);

            var xml = UserConfigFile.ToXml(original);
            var again = UserConfigFile.Parse(xml, UserFile, cluster);

            Assert.Equal(xml, UserConfigFile.ToXml(again));
            Assert.Equal(original.Mode, again.Mode);
            Assert.Equal(original.Nodes, again.Nodes);
            Assert.Equal(original.Checks.Select(c => (c.ResourceName, c.Action, c.When)), again.Checks.Select(c => (c.ResourceName, c.Action, c.When)));
            Assert.Equal(original.FailoverRules, again.FailoverRules);
        }

        [Fact]
        public void ToXml_ValueWithPercents_IsEscapedSoItReadsBackTheSame()
        {
            var config = UserConfigFile.Parse("""
                <service mode="mirror">
                  <user><var name="P" value="%%PATH%%;50%"/></user>
                  <failover><![CDATA[ x %% y ]]></failover>
                </service>
                """, UserFile);
            Assert.Equal("%PATH%;50%", config.User.Variables[0].Value);

            var again = UserConfigFile.Parse(UserConfigFile.ToXml(config), UserFile);

            Assert.Equal("%PATH%;50%", again.User.Variables[0].Value);
            Assert.Equal(" x % y ", again.FailoverRules);
        }

        [Fact]
        public void ToXml_WritesDefaultsExplicitly()
        {
            var xml = UserConfigFile.ToXml(UserConfigFile.Load(PathOf("mirror-minimal.xml"), TwoNodeCluster()));

            Assert.Contains("<service mode=\"mirror\" defaultprim=\"alone\" failover=\"on\" maxloop=\"3\" loop_interval=\"1d\" boot=\"on\">", xml);
            Assert.Contains("<heart pulse=\"50ms\" timeout=\"1500ms\">", xml);
            Assert.Contains("<heartbeat name=\"LAN2\" />", xml);
            Assert.Contains("<rfs async=\"second\" locktimeout=\"100s\" sendtimeout=\"30s\">", xml);
            Assert.DoesNotContain("\r", xml);
        }

        [Fact]
        public void ToXml_OfAFarmBuiltInCode_ParsesBack()
        {
            var config = new UserConfig
            {
                Mode = ModuleMode.Farm,
                Nodes = { "n1", "n2" },
                Farm = new FarmConfig(),
                Vip =
                {
                    Interfaces = { new VipInterfaceConfig { Kind = VipInterfaceKind.Virtual, Addresses = { new VirtualAddressConfig { Address = IPAddress.Parse("198.18.0.200"), Where = VipWhere.Alias } } } },
                    LoadBalancing = { new LoadBalancingGroup { Name = "web", Hosts = { new LoadBalancingHost { Name = "n1" }, new LoadBalancingHost { Name = "n2", Power = 3 } }, Rules = { new LoadBalancingRule { Port = 80 } } } },
                },
                Checks = { new TcpCheckConfig { Ident = "http", When = CheckWhen.Both, Address = "localhost", Port = 80 } },
                FailoverRules = "a ]]> b",
            };
            UserConfigFile.Validate(config, TwoNodeCluster());

            var again = UserConfigFile.Parse(UserConfigFile.ToXml(config), UserFile, TwoNodeCluster());

            Assert.Equal(new[] { "LAN1", "LAN2" }, again.Farm!.Lans);
            Assert.Equal(new[] { 1, 3 }, again.Vip.LoadBalancing[0].Hosts.Select(h => h.Power));
            Assert.Equal("localhost", Assert.IsType<TcpCheckConfig>(again.Checks[0]).Address);
            Assert.Equal("a ]]> b", again.FailoverRules);
        }
    }
}
