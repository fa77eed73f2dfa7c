using System;
using System.Linq;
using System.Net;
using ServiceKeeper.Engine.Configuration;
using Xunit;
using static ServiceKeeper.Engine.Tests.Configuration.ConfigTestFiles;

namespace ServiceKeeper.Engine.Tests.Configuration
{
    public sealed class UserConfigMirrorTests
    {
        [Fact]
        public void Load_FullMirrorSample_ReadsEverySection()
        {
            var config = UserConfigFile.Load(PathOf("mirror-full.xml"), TwoNodeCluster());

            Assert.Equal(ModuleMode.Mirror, config.Mode);
            Assert.Equal(DefaultPrimaryPolicy.Node, config.DefaultPrimary);
            Assert.Equal("n1", config.DefaultPrimaryNode);
            Assert.True(config.Failover);
            Assert.Equal(5, config.MaxLoop);
            Assert.Equal(TimeSpan.FromHours(12), config.LoopInterval);
            Assert.False(config.Boot);
            Assert.Equal(new[] { "n1", "n2" }, config.Nodes);
            Assert.Null(config.Farm);

            var heart = config.Heart!;
            Assert.Equal(TimeSpan.FromMilliseconds(200), heart.Pulse);
            Assert.Equal(TimeSpan.FromSeconds(1), heart.Timeout);
            Assert.Null(heart.Port);
            Assert.Equal(new[] { "LAN1", "LAN2" }, heart.Heartbeats);

            var nic = Assert.Single(config.Vip.Interfaces);
            Assert.Equal("eth0", nic.Name);
            Assert.True(nic.Check);
            Assert.Equal(VipInterfaceKind.Real, nic.Kind);
            var vip = Assert.Single(nic.Addresses);
            Assert.Equal(IPAddress.Parse("198.18.0.100"), vip.Address);
            Assert.Equal(24, vip.PrefixLength);
            Assert.Equal(VipWhere.OneSideAlias, vip.Where);
            Assert.Empty(config.Vip.LoadBalancing);

            var rfs = config.Rfs!;
            Assert.Equal(RfsAsync.None, rfs.Async);
            Assert.Equal(TimeSpan.FromSeconds(60), rfs.LockTimeout);
            Assert.Equal(TimeSpan.FromSeconds(10), rfs.SendTimeout);
            Assert.Equal(4801, rfs.Port);
            Assert.Equal(new[] { "/var/lib/pgsql/data", "/srv/archive" }, rfs.Directories.Select(d => d.Path));
            Assert.Equal(new[] { "pg_stat_tmp", "log/old" }, rfs.Directories[0].NotReplicated);
            Assert.Equal(new[] { "PG_VERSION" }, rfs.Directories[0].ToCheck);

            Assert.Equal(TimeSpan.FromMinutes(2), config.User.NiceStopTimeout);
            Assert.Equal(TimeSpan.FromSeconds(30), config.User.ForceStopTimeout);
            Assert.Equal(new[] { ("PGDATA", "/var/lib/pgsql/data"), ("PGPORT", "5432") }, config.User.Variables.Select(v => (v.Name, v.Value)));

            Assert.Equal(TimeSpan.FromSeconds(5), config.Errd.PollTimer);
            var postgres = config.Errd.Processes[0];
            Assert.Equal(("postgres", false, 1, (int?)null, CheckAction.Restart, ProcessClass.Prim),
                (postgres.Name, postgres.IsRegex, postgres.AtLeast, postgres.AtMost, postgres.Action, postgres.Class));
            var writer = config.Errd.Processes[1];
            Assert.Equal(("^pg_.*writer$", true, 1, (int?)2, CheckAction.StopStart),
                (writer.Name, writer.IsRegex, writer.AtLeast, writer.AtMost, writer.Action));

            Assert.Equal(new[] { "tcp.db", "ping.gw", "intf.eth0", "ip.vip", "custom.app", "module.storage", "splitbrain.witness" },
                config.Checks.Select(c => c.ResourceName));
            var tcp = Assert.IsType<TcpCheckConfig>(config.Checks[0]);
            Assert.Equal(("127.0.0.1", 5432, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(2), CheckWhen.Prim),
                (tcp.Address, tcp.Port, tcp.Interval, tcp.Timeout, tcp.When));
            var intf = Assert.IsType<InterfaceCheckConfig>(config.Checks[2]);
            Assert.Equal(IPAddress.Parse("198.18.0.1"), intf.LocalAddress);
            Assert.Equal(IPAddress.Parse("198.18.0.100"), Assert.IsType<IpCheckConfig>(config.Checks[3]).Address);
            var custom = Assert.IsType<CustomCheckConfig>(config.Checks[4]);
            Assert.Equal(("appcheck", "--deep 50%"), (custom.Exec, custom.Arguments));
            var module = Assert.IsType<ModuleCheckConfig>(config.Checks[5]);
            Assert.Equal(("storage", "198.18.0.50", (int?)9453), (module.ModuleName, module.Address, module.Port));
            var split = Assert.IsType<SplitBrainCheckConfig>(config.Checks[6]);
            Assert.Equal(new[] { IPAddress.Parse("198.18.0.254"), IPAddress.Parse("198.18.0.253") }, split.Witnesses);

            Assert.Contains("db_down: if (tcp.db == down) then restart();", config.FailoverRules);
        }

        [Fact]
        public void Parse_Checkers_TakeTheDefaultActionsOfTheReference()
        {
            var config = UserConfigFile.Parse("""
                <service mode="mirror">
                  <errd><proc name="app"/></errd>
                  <check>
                    <tcp ident="a"><to addr="127.0.0.1" port="80"/></tcp>
                    <ping ident="b"><to addr="198.18.0.254"/></ping>
                    <intf ident="c"><to local_addr="198.18.0.1"/></intf>
                    <ip ident="d"><to addr="198.18.0.100"/></ip>
                    <custom ident="e" exec="check.sh"/>
                    <module name="f"/>
                    <splitbrain ident="g" arg="198.18.0.254"/>
                  </check>
                </service>
                """, UserFile);

            Assert.Equal(CheckAction.StopStart, config.Errd.Processes[0].Action);
            Assert.Equal(
                new[] { CheckAction.Restart, CheckAction.Wait, CheckAction.Wait, CheckAction.StopStart, CheckAction.Restart, CheckAction.Wait, CheckAction.Wait },
                config.Checks.Select(c => c.Action));
            Assert.Equal(
                new[] { CheckWhen.Prim, CheckWhen.Both, CheckWhen.Both, CheckWhen.Prim, CheckWhen.Prim, CheckWhen.Both, CheckWhen.Both },
                config.Checks.Select(c => c.When));
            Assert.All(config.Checks.OfType<PeriodicCheckerConfig>(), c =>
            {
                Assert.Equal(TimeSpan.FromSeconds(10), c.Interval);
                Assert.Equal(TimeSpan.FromSeconds(5), c.Timeout);
            });
            Assert.Equal("ping", Assert.IsType<SplitBrainCheckConfig>(config.Checks[6]).Exec);
        }

        [Fact]
        public void Parse_MinimalMirrorWithTwoNodeCluster_FillsDefaultsNodesAndHeartbeats()
        {
            var config = UserConfigFile.Load(PathOf("mirror-minimal.xml"), TwoNodeCluster());

            Assert.Equal(new[] { "n1", "n2" }, config.Nodes);
            Assert.Equal(DefaultPrimaryPolicy.Alone, config.DefaultPrimary);
            Assert.Null(config.DefaultPrimaryNode);
            Assert.True(config.Failover);
            Assert.True(config.Boot);
            Assert.Equal(3, config.MaxLoop);
            Assert.Equal(TimeSpan.FromHours(24), config.LoopInterval);
            // Detection in about 1.5 s: the SafeKit default of 30 s is the bar to beat.
            Assert.Equal(TimeSpan.FromMilliseconds(50), config.Heart!.Pulse);
            Assert.Equal(TimeSpan.FromMilliseconds(1500), config.Heart.Timeout);
            Assert.Null(config.Heart.Port);
            Assert.Equal(new[] { "LAN1", "LAN2" }, config.Heart.Heartbeats);
            Assert.Equal(RfsAsync.Second, config.Rfs!.Async);
            Assert.Equal(TimeSpan.FromSeconds(100), config.Rfs.LockTimeout);
            Assert.Equal(TimeSpan.FromSeconds(30), config.Rfs.SendTimeout);
            Assert.Equal(TimeSpan.FromSeconds(300), config.User.NiceStopTimeout);
            Assert.Equal(TimeSpan.FromSeconds(300), config.User.ForceStopTimeout);
            Assert.Equal(TimeSpan.FromSeconds(10), config.Errd.PollTimer);
            Assert.Empty(config.Checks);
            Assert.Null(config.FailoverRules);
        }

        [Fact]
        public void Parse_MinimalMirrorWithoutCluster_LeavesNodesAndHeartbeatsToTheCluster()
        {
            var config = UserConfigFile.Load(PathOf("mirror-minimal.xml"));

            Assert.Empty(config.Nodes);
            Assert.Empty(config.Heart!.Heartbeats);
        }

        [Fact]
        public void Parse_MirrorOnTwoOfThreeNodes_HeartbeatsOnlyOnLansBothAreOn()
        {
            var config = UserConfigFile.Parse("""
                <service mode="mirror">
                  <nodes><node name="n1"/><node name="n3"/></nodes>
                </service>
                """, UserFile, ThreeNodeCluster());

            Assert.Equal(new[] { "n1", "n3" }, config.Nodes);
            Assert.Equal(new[] { "LAN1" }, config.Heart!.Heartbeats);
        }

        [Fact]
        public void Parse_SafeKitStyleBareMilliseconds_AreMilliseconds()
        {
            var config = UserConfigFile.Parse("""<service mode="mirror"><heart pulse="700" timeout="30000"/></service>""", UserFile);

            Assert.Equal(TimeSpan.FromMilliseconds(700), config.Heart!.Pulse);
            Assert.Equal(TimeSpan.FromSeconds(30), config.Heart.Timeout);
        }

        [Theory]
        [InlineData("alone", DefaultPrimaryPolicy.Alone, null)]
        [InlineData("lastprim", DefaultPrimaryPolicy.LastPrimary, null)]
        [InlineData("n2", DefaultPrimaryPolicy.Node, "n2")]
        public void Parse_DefaultPrim_ReadsPolicyAndNode(string text, DefaultPrimaryPolicy policy, string? node)
        {
            var config = UserConfigFile.Parse($"""<service mode="mirror" defaultprim="{text}"/>""", UserFile, TwoNodeCluster());

            Assert.Equal(policy, config.DefaultPrimary);
            Assert.Equal(node, config.DefaultPrimaryNode);
        }

        [Fact]
        public void Parse_FailoverOffAndWindowsReplicatedDir_AreAccepted()
        {
            var config = UserConfigFile.Parse("""
                <service mode="mirror" failover="off">
                  <rfs><replicated dir="D:\SQLData"><notreplicated path="tmp\cache"/></replicated></rfs>
                </service>
                """, UserFile);

            Assert.False(config.Failover);
            Assert.Equal(@"D:\SQLData", config.Rfs!.Directories[0].Path);
        }

        [Fact]
        public void Parse_CommentsAndIpv6Vip_AreAccepted()
        {
            var config = UserConfigFile.Parse("""
                <service mode="mirror">
                  <!-- the VIP moves with the primary -->
                  <vip><interface_list><interface><real_interface>
                    <virtual_addr addr="2001:db8::100/64"/>
                  </real_interface></interface></interface_list></vip>
                </service>
                """, UserFile);

            var vip = config.Vip.AllAddresses.Single();
            Assert.Equal(IPAddress.Parse("2001:db8::100"), vip.Address);
            Assert.Equal(64, vip.PrefixLength);
            Assert.Null(config.Vip.Interfaces[0].Name);
        }
    }
}
