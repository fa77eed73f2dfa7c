// Each kind of invalid userconfig.xml: the error must name the file, the line of the culprit and why.
using System;
using System.IO;
using ServiceKeeper.Engine.Configuration;
using Xunit;
using static ServiceKeeper.Engine.Tests.Configuration.ConfigTestFiles;

namespace ServiceKeeper.Engine.Tests.Configuration
{
    public sealed class UserConfigErrorTests
    {
        [Fact]
        public void UserConfig_WithUnknownTimeUnit_NamesFileLineAndReason()
        {
            var path = PathOf("bad-unknown-time-unit.xml");
            var ex = Assert.Throws<ConfigurationException>(() => UserConfigFile.Load(path));
            AssertPlace(ex, path, 4, "'timeout' of <heart> is '2sec', not a time value; expected a number with a unit ms, s, m, h or d");
            Assert.Equal(10, ex.Column);
        }

        [Fact]
        public void UserConfig_Malformed_GivesTheXmlParserLine()
        {
            var path = PathOf("bad-malformed.xml");
            var ex = Assert.Throws<ConfigurationException>(() => UserConfigFile.Load(path));
            AssertPlace(ex, path, 5, "malformed XML: ");
            Assert.Contains("heartbeat", ex.Reason);
            Assert.IsType<System.Xml.XmlException>(ex.InnerException);
        }

        [Fact]
        public void UserConfig_MissingFile_NamesThePath()
        {
            var path = Path.Combine(Path.GetTempPath(), "sk-no-such-" + Guid.NewGuid(), "userconfig.xml");
            var ex = Assert.Throws<ConfigurationException>(() => UserConfigFile.Load(path));
            AssertPlace(ex, path, 0, "cannot read the file");
        }

        [Fact]
        public void UserConfig_WithDtd_IsRefused()
        {
            AssertUserConfigError("<?xml version=\"1.0\"?>\n<!DOCTYPE service [<!ENTITY x \"y\">]>\n<service mode=\"mirror\"/>", 2, "malformed XML: a DOCTYPE is not allowed");
        }

        [Fact]
        public void UserConfig_RootNotService_IsRefused()
        {
            AssertUserConfigError("<cluster/>", 1, "userconfig.xml starts with <service>");
        }

        [Fact]
        public void UserConfig_WithoutMode_ListsTheModes()
        {
            AssertUserConfigError("<service/>", 1, "<service> needs a 'mode' attribute; allowed: mirror, farm.");
        }

        [Fact]
        public void UserConfig_WithUnknownMode_ListsTheModes()
        {
            AssertUserConfigError("<service mode=\"cluster\"/>", 1, "'mode' of <service> is 'cluster'; allowed: mirror, farm.");
        }

        [Fact]
        public void UserConfig_WithUnknownElement_ListsTheAllowedChildren()
        {
            AssertUserConfigError("""
                <service mode="mirror">
                  <hearts/>
                </service>
                """, 2, "unknown element <hearts> in <service>; allowed: <nodes>, <heart>, <farm>, <vip>, <rfs>, <user>, <errd>, <check>, <failover>.");
        }

        [Fact]
        public void UserConfig_WithUnknownAttribute_ListsTheAllowedAttributes()
        {
            AssertUserConfigError("""
                <service mode="mirror">
                  <heart pulse="1s"
                         timout="3s"/>
                </service>
                """, 3, "unknown attribute 'timout' on <heart>; allowed: pulse, timeout, port.");
        }

        [Fact]
        public void UserConfig_WithUnknownAction_ListsTheAllowedActions()
        {
            AssertUserConfigError("""
                <service mode="mirror">
                  <check>
                    <tcp ident="db" action="reboot"><to addr="127.0.0.1" port="5432"/></tcp>
                  </check>
                </service>
                """, 3, "'action' of <tcp> is 'reboot'; allowed: restart, stopstart, stop, wait, noaction.");
        }

        [Fact]
        public void UserConfig_ErrdWithWaitAction_IsRefusedWithTheAllowedActions()
        {
            AssertUserConfigError("""
                <service mode="mirror">
                  <errd><proc name="app" action="wait"/></errd>
                </service>
                """, 2, "'action' of <proc> is 'wait'; allowed: restart, stopstart, stop, noaction.");
        }

        [Fact]
        public void UserConfig_WithBadOnOff_SaysOnOrOff()
        {
            AssertUserConfigError("<service mode=\"mirror\" boot=\"yes\"/>", 1, "'boot' of <service> is 'yes'; allowed: on, off.");
        }

        [Fact]
        public void UserConfig_WithNonNumericCount_SaysWholeNumber()
        {
            AssertUserConfigError("<service mode=\"mirror\" maxloop=\"three\"/>", 1, "'maxloop' of <service> is 'three'; expected a whole number.");
        }

        [Fact]
        public void UserConfig_WithNegativeMaxLoop_IsRefused()
        {
            AssertUserConfigError("<service mode=\"mirror\" maxloop=\"-1\"/>", 1, "maxloop is -1");
        }

        [Fact]
        public void UserConfig_WithZeroPulse_IsRefused()
        {
            AssertUserConfigError("<service mode=\"farm\">\n<farm pulse=\"0s\"/>\n</service>", 2, "pulse is 0; it must be greater than 0.");
        }

        [Fact]
        public void UserConfig_WithSectionTwice_IsRefused()
        {
            AssertUserConfigError("""
                <service mode="mirror">
                  <heart/>
                  <heart/>
                </service>
                """, 3, "<heart> appears more than once in <service>");
        }

        [Fact]
        public void UserConfig_WithTextInsideAnElement_IsRefused()
        {
            AssertUserConfigError("""
                <service mode="mirror">
                  <heart>LAN1</heart>
                </service>
                """, 2, "unexpected text 'LAN1' in <heart>.");
        }

        [Fact]
        public void UserConfig_HeartTimeoutBelowTwoPulses_IsRefused()
        {
            AssertUserConfigError("""
                <service mode="mirror">
                  <heart pulse="700ms" timeout="1s"/>
                </service>
                """, 2, "heart timeout 1s is shorter than twice the pulse 700ms");
        }

        [Fact]
        public void UserConfig_FarmLostCountOfOne_IsRefused()
        {
            AssertUserConfigError("<service mode=\"farm\">\n<farm mlost_count=\"1\"/>\n</service>", 2, "mlost_count is 1; at least 2");
        }

        [Fact]
        public void FarmConfig_WithRfs_SaysRfsIsForMirrors()
        {
            var path = PathOf("bad-farm-with-rfs.xml");
            var ex = Assert.Throws<ConfigurationException>(() => UserConfigFile.Load(path));
            AssertPlace(ex, path, 4, "<rfs> is for mirror modules");
        }

        [Fact]
        public void MirrorConfig_WithFarmSection_SaysFarmIsForFarms()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n  <farm pulse=\"100ms\"/>\n</service>", 2, "<farm> is for farm modules");
        }

        [Fact]
        public void FarmConfig_WithHeartSection_SaysHeartIsForMirrors()
        {
            AssertUserConfigError("<service mode=\"farm\">\n  <heart/>\n</service>", 2, "<heart> is for mirror modules");
        }

        [Fact]
        public void MirrorConfig_WithVirtualInterface_SaysItIsForFarms()
        {
            AssertUserConfigError("""
                <service mode="mirror">
                  <vip><interface_list><interface>
                    <virtual_interface><virtual_addr addr="198.18.0.100"/></virtual_interface>
                  </interface></interface_list></vip>
                </service>
                """, 3, "<virtual_interface> is for farm modules");
        }

        [Fact]
        public void FarmConfig_WithRealInterface_SaysItIsForMirrors()
        {
            AssertUserConfigError("""
                <service mode="farm">
                  <vip><interface_list><interface>
                    <real_interface><virtual_addr addr="198.18.0.100"/></real_interface>
                  </interface></interface_list></vip>
                </service>
                """, 3, "<real_interface> is for mirror modules");
        }

        [Fact]
        public void MirrorConfig_WithAliasEverywhere_IsRefused()
        {
            AssertUserConfigError("""
                <service mode="mirror">
                  <vip><interface_list><interface><real_interface>
                    <virtual_addr addr="198.18.0.100" where="alias"/>
                  </real_interface></interface></interface_list></vip>
                </service>
                """, 3, "where=\"alias\" is for farm modules");
        }

        [Fact]
        public void MirrorConfig_WithLoadBalancing_SaysItIsForFarms()
        {
            AssertUserConfigError("""
                <service mode="mirror">
                  <vip>
                    <interface_list><interface><real_interface><virtual_addr addr="198.18.0.100"/></real_interface></interface></interface_list>
                    <loadbalancing_list><group name="g"/></loadbalancing_list>
                  </vip>
                </service>
                """, 4, "<loadbalancing_list> is for farm modules");
        }

        [Fact]
        public void FarmConfig_WithSplitBrain_SaysItIsForMirrors()
        {
            AssertUserConfigError("""
                <service mode="farm">
                  <check><splitbrain ident="w" arg="198.18.0.254"/></check>
                </service>
                """, 2, "<splitbrain> is for mirror modules");
        }

        [Fact]
        public void FarmConfig_WithCheckerWhenPrim_IsRefused()
        {
            AssertUserConfigError("""
                <service mode="farm">
                  <check>
                    <tcp ident="web" when="prim"><to addr="127.0.0.1" port="80"/></tcp>
                  </check>
                </service>
                """, 3, "when=\"prim\" is for mirror modules");
        }

        [Fact]
        public void FarmConfig_WithProcessClassPrim_IsRefused()
        {
            AssertUserConfigError("<service mode=\"farm\">\n<errd><proc name=\"nginx\" class=\"prim\"/></errd>\n</service>", 2, "class=\"prim\" is for mirror modules");
        }

        [Fact]
        public void FarmConfig_WithDefaultPrim_IsRefused()
        {
            AssertUserConfigError("<service mode=\"farm\" defaultprim=\"n1\"/>", 1, "defaultprim is for mirror modules");
        }

        [Theory]
        [InlineData("198.18.0", "not an IP address or IP/prefix")]
        [InlineData("vip.example.net", "not an IP address or IP/prefix")]
        [InlineData("198.18.0.100/", "not an IP address or IP/prefix")]
        [InlineData("198.18.0.100/33", "prefix /33 of 198.18.0.100 is outside 1-32")]
        [InlineData("127.0.0.5", "cannot be a virtual address")]
        [InlineData("224.0.0.1", "cannot be a virtual address")]
        [InlineData("0.0.0.0", "cannot be a virtual address")]
        public void UserConfig_WithVipNotAUsableIpOrPrefix_IsRefused(string address, string reason)
        {
            AssertUserConfigError($"""
                <service mode="mirror">
                  <vip><interface_list><interface><real_interface>
                    <virtual_addr addr="{address}"/>
                  </real_interface></interface></interface_list></vip>
                </service>
                """, 3, reason);
        }

        [Fact]
        public void UserConfig_WithVipTwice_IsRefused()
        {
            AssertUserConfigError("""
                <service mode="mirror">
                  <vip><interface_list><interface><real_interface>
                    <virtual_addr addr="198.18.0.100"/>
                    <virtual_addr addr="198.18.0.100/24"/>
                  </real_interface></interface></interface_list></vip>
                </service>
                """, 4, "virtual address 198.18.0.100 is declared twice");
        }

        [Fact]
        public void UserConfig_WithVipThatIsANodeAddress_IsRefused()
        {
            AssertUserConfigError("""
                <service mode="mirror">
                  <vip><interface_list><interface><real_interface>
                    <virtual_addr addr="198.18.0.2"/>
                  </real_interface></interface></interface_list></vip>
                </service>
                """, 3, "virtual address 198.18.0.2 is the address of node 'n2' on lan 'LAN1'", TwoNodeCluster());
        }

        [Fact]
        public void UserConfig_WithHeartbeatLanNotInCluster_ListsTheClusterLans()
        {
            AssertUserConfigError("""
                <service mode="mirror">
                  <heart>
                    <heartbeat name="LAN1"/>
                    <heartbeat name="LAN3"/>
                  </heart>
                </service>
                """, 4, "<heartbeat name=\"LAN3\">: 'LAN3' is not a lan of cluster 'demo' (LAN1, LAN2).", TwoNodeCluster());
        }

        [Fact]
        public void UserConfig_WithHeartbeatLanANodeIsNotOn_NamesTheNode()
        {
            AssertUserConfigError("""
                <service mode="mirror">
                  <nodes><node name="n1"/><node name="n3"/></nodes>
                  <heart><heartbeat name="LAN2"/></heart>
                </service>
                """, 3, "node 'n3' has no address on lan 'LAN2'", ThreeNodeCluster());
        }

        [Fact]
        public void UserConfig_WithFarmLanNotInCluster_IsRefused()
        {
            AssertUserConfigError("<service mode=\"farm\">\n<farm>\n<lan name=\"WAN\"/>\n</farm>\n</service>", 3, "'WAN' is not a lan of cluster 'lab'", ThreeNodeCluster());
        }

        [Fact]
        public void UserConfig_WithHeartbeatListedTwice_IsRefused()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n<heart>\n<heartbeat name=\"LAN1\"/>\n<heartbeat name=\"LAN1\"/>\n</heart>\n</service>", 4, "listed twice");
        }

        [Fact]
        public void UserConfig_WithModuleNodeNotInCluster_ListsTheClusterNodes()
        {
            AssertUserConfigError("""
                <service mode="mirror">
                  <nodes>
                    <node name="n1"/>
                    <node name="n4"/>
                  </nodes>
                </service>
                """, 4, "node 'n4' is not a node of cluster 'lab' (n1, n2, n3).", ThreeNodeCluster());
        }

        [Fact]
        public void MirrorConfig_WithThreeNodes_IsRefused()
        {
            AssertUserConfigError("""
                <service mode="mirror">
                  <nodes><node name="n1"/><node name="n2"/><node name="n3"/></nodes>
                </service>
                """, 2, "a mirror module runs on exactly 2 nodes; <nodes> lists 3 (n1, n2, n3).");
        }

        [Fact]
        public void MirrorConfig_WithoutNodesOnThreeNodeCluster_AsksForNodes()
        {
            AssertUserConfigError("<service mode=\"mirror\"/>", 1, "a mirror module runs on 2 nodes and cluster 'lab' has 3 (n1, n2, n3)", ThreeNodeCluster());
        }

        [Fact]
        public void UserConfig_WithNodeListedTwice_IsRefused()
        {
            AssertUserConfigError("<service mode=\"farm\">\n<nodes>\n<node name=\"n1\"/>\n<node name=\"n1\"/>\n</nodes>\n</service>", 4, "node 'n1' is listed twice");
        }

        [Fact]
        public void MirrorConfig_WithDefaultPrimNotAModuleNode_IsRefused()
        {
            AssertUserConfigError("<service mode=\"mirror\" defaultprim=\"n3\"/>", 1, "defaultprim 'n3' is not alone, lastprim or one of the module's nodes (n1, n2).", TwoNodeCluster());
        }

        [Fact]
        public void UserConfig_WithDuplicateIdent_PointsAtTheSecond()
        {
            AssertUserConfigError("""
                <service mode="mirror">
                  <check>
                    <tcp ident="db"><to addr="127.0.0.1" port="5432"/></tcp>
                    <ping ident="db"><to addr="198.18.0.254"/></ping>
                    <tcp ident="db"><to addr="127.0.0.1" port="5433"/></tcp>
                  </check>
                </service>
                """, 5, "duplicate ident: another <tcp> is already 'db' (resource tcp.db).");
        }

        [Theory]
        [InlineData("a.b")]
        [InlineData("a b")]
        public void UserConfig_WithIdentThatCannotNameAResource_IsRefused(string ident)
        {
            AssertUserConfigError($"<service mode=\"mirror\">\n<check><custom ident=\"{ident}\" exec=\"x\"/></check>\n</service>", 2, $"ident '{ident}' is not valid");
        }

        [Fact]
        public void UserConfig_WithAtLeastAboveAtMax_IsRefused()
        {
            AssertUserConfigError("""
                <service mode="mirror">
                  <errd>
                    <proc name="worker" atleast="3" atmax="2"/>
                  </errd>
                </service>
                """, 3, "process 'worker': atleast 3 is greater than atmax 2");
        }

        [Fact]
        public void UserConfig_WithAtMaxNotANumber_SaysNumberOrNone()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n<errd><proc name=\"w\" atmax=\"many\"/></errd>\n</service>", 2, "expected a whole number or 'none'");
        }

        [Fact]
        public void UserConfig_WithBadProcessRegex_IsRefused()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n<errd><proc name=\"pg_(writer\" regex=\"on\"/></errd>\n</service>", 2, "'pg_(writer' is not a valid regular expression");
        }

        [Fact]
        public void UserConfig_WithProcessWatchedTwice_IsRefused()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n<errd>\n<proc name=\"pg\"/>\n<proc name=\"pg\"/>\n</errd>\n</service>", 4, "process 'pg' is watched twice");
        }

        [Fact]
        public void FarmConfig_WithNegativePower_IsRefused()
        {
            AssertUserConfigError("""
                <service mode="farm">
                  <vip>
                    <interface_list><interface><virtual_interface><virtual_addr addr="198.18.0.200"/></virtual_interface></interface></interface_list>
                    <loadbalancing_list><group name="web"><cluster>
                      <host name="n1" power="1"/>
                      <host name="n2" power="-1"/>
                    </cluster></group></loadbalancing_list>
                  </vip>
                </service>
                """, 6, "power of host 'n2' is -1; it must be 0 or more");
        }

        [Fact]
        public void FarmConfig_WithEveryPowerZero_IsRefused()
        {
            AssertUserConfigError("""
                <service mode="farm">
                  <vip>
                    <interface_list><interface><virtual_interface><virtual_addr addr="198.18.0.200"/></virtual_interface></interface></interface_list>
                    <loadbalancing_list><group name="web"><cluster><host name="n1" power="0"/></cluster></group></loadbalancing_list>
                  </vip>
                </service>
                """, 4, "every host has power 0");
        }

        [Fact]
        public void FarmConfig_WithHostNotAModuleNode_IsRefused()
        {
            AssertUserConfigError("""
                <service mode="farm">
                  <nodes><node name="n1"/><node name="n2"/></nodes>
                  <vip>
                    <interface_list><interface><virtual_interface><virtual_addr addr="198.18.0.200"/></virtual_interface></interface></interface_list>
                    <loadbalancing_list><group name="web"><cluster>
                      <host name="n1"/>
                      <host name="n3"/>
                    </cluster></group></loadbalancing_list>
                  </vip>
                </service>
                """, 7, "host 'n3' is not one of the module's nodes (n1, n2)");
        }

        [Fact]
        public void FarmConfig_WithNodeLeftOutOfAGroup_AsksForPowerZero()
        {
            AssertUserConfigError("""
                <service mode="farm">
                  <nodes><node name="n1"/><node name="n2"/></nodes>
                  <vip>
                    <interface_list><interface><virtual_interface><virtual_addr addr="198.18.0.200"/></virtual_interface></interface></interface_list>
                    <loadbalancing_list><group name="web">
                      <cluster><host name="n1"/></cluster>
                    </group></loadbalancing_list>
                  </vip>
                </service>
                """, 6, "node 'n2' is not a <host>; list it, with power=\"0\"");
        }

        [Fact]
        public void FarmConfig_WithRuleOnUnknownVip_IsRefused()
        {
            AssertUserConfigError("""
                <service mode="farm">
                  <vip>
                    <interface_list><interface><virtual_interface><virtual_addr addr="198.18.0.200"/></virtual_interface></interface></interface_list>
                    <loadbalancing_list><group name="web">
                      <rule virtual_addr="198.18.0.201" port="80"/>
                    </group></loadbalancing_list>
                  </vip>
                </service>
                """, 5, "rule virtual_addr 198.18.0.201 is not a virtual address of this module (198.18.0.200).");
        }

        [Theory]
        [InlineData("<tcp ident=\"db\"><to addr=\"127.0.0.1\" port=\"70000\"/></tcp>", "port 70000 is outside 1-65535")]
        [InlineData("<tcp ident=\"db\"><to addr=\"127.0.0.1\" port=\"0\"/></tcp>", "port 0 is outside 1-65535")]
        [InlineData("<module name=\"other\"><to port=\"65536\"/></module>", "port 65536 is outside 1-65535")]
        public void UserConfig_WithCheckerPortOutOfRange_IsRefused(string checker, string reason)
        {
            AssertUserConfigError($"<service mode=\"mirror\">\n<check>\n{checker}\n</check>\n</service>", 3, reason);
        }

        [Fact]
        public void UserConfig_WithReplicationPortOutOfRange_IsRefused()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n<rfs port=\"99999\"><replicated dir=\"/srv\"/></rfs>\n</service>", 2, "is outside 1-65535");
        }

        [Fact]
        public void UserConfig_WithTcpCheckerWithoutTo_SaysWhatIsMissing()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n<check>\n<tcp ident=\"db\"/>\n</check>\n</service>", 3, "<tcp> needs a <to addr=\"...\" port=\"...\"/> child.");
        }

        [Fact]
        public void UserConfig_WithCheckerAddressNotAHost_IsRefused()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n<check>\n<ping ident=\"gw\"><to addr=\"10.0.0\"/></ping>\n</check>\n</service>", 3, "'10.0.0' is neither an IP address nor a host name");
        }

        [Fact]
        public void UserConfig_WithSplitBrainWitnessNotAnIp_IsRefused()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n<check>\n<splitbrain ident=\"w\" exec=\"ping\" arg=\"198.18.0.254 router\"/>\n</check>\n</service>", 3, "witness 'router' is not an IP address");
        }

        [Fact]
        public void UserConfig_WithTwoSplitBrainCheckers_IsRefused()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n<check>\n<splitbrain ident=\"a\" arg=\"198.18.0.254\"/>\n<splitbrain ident=\"b\" arg=\"198.18.0.253\"/>\n</check>\n</service>", 4, "a module has one <splitbrain> checker");
        }

        [Fact]
        public void UserConfig_WithCustomExecOutsideBin_IsRefused()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n<check>\n<custom ident=\"c\" exec=\"../other/check\"/>\n</check>\n</service>", 3, "must be a file name in the module's bin/ or an absolute path");
        }

        [Theory]
        [InlineData("var/lib/data", "is not an absolute path")]
        [InlineData("/var/lib/../data", "has '.' or '..' in it")]
        [InlineData("/", "is a file system root")]
        [InlineData(@"C:\", "is a file system root")]
        public void UserConfig_WithReplicatedDirNotAbsolute_IsRefused(string dir, string reason)
        {
            AssertUserConfigError($"""
                <service mode="mirror">
                  <rfs>
                    <replicated dir="{dir}"/>
                  </rfs>
                </service>
                """, 3, reason);
        }

        [Fact]
        public void UserConfig_WithOverlappingReplicatedDirs_IsRefused()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n<rfs>\n<replicated dir=\"/srv/app\"/>\n<replicated dir=\"/srv/app/data\"/>\n</rfs>\n</service>", 4, "overlaps '/srv/app'");
        }

        [Fact]
        public void UserConfig_WithRfsButNoReplicatedDir_IsRefused()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n<rfs/>\n</service>", 2, "<rfs> has no <replicated dir=");
        }

        [Theory]
        [InlineData("/tmp/cache", "not absolute")]
        [InlineData(@"\cache", "not absolute")]
        [InlineData("../etc", "'..' would leave the replicated dir '/srv/app'")]
        [InlineData("cache/../../etc", "'..' would leave the replicated dir")]
        [InlineData(".", "names the replicated dir itself")]
        public void UserConfig_WithNotReplicatedPathAbsoluteOrEscaping_IsRefused(string path, string reason)
        {
            AssertUserConfigError($"""
                <service mode="mirror">
                  <rfs>
                    <replicated dir="/srv/app">
                      <notreplicated path="tmp"/>
                      <notreplicated path="{path}"/>
                    </replicated>
                  </rfs>
                </service>
                """, 5, reason);
        }

        [Fact]
        public void UserConfig_WithToCheckEscaping_IsRefused()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n<rfs>\n<replicated dir=\"/srv/app\">\n<tocheck path=\"../flag\"/>\n</replicated>\n</rfs>\n</service>", 4, "<tocheck path=\"../flag\">");
        }

        [Theory]
        [InlineData("1X", "not valid in an environment")]
        [InlineData("A-B", "not valid in an environment")]
        public void UserConfig_WithBadVariableName_IsRefused(string name, string reason)
        {
            AssertUserConfigError($"<service mode=\"mirror\">\n<user>\n<var name=\"{name}\" value=\"1\"/>\n</user>\n</service>", 3, reason);
        }

        [Fact]
        public void UserConfig_WithVariableTwice_IsRefused()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n<user>\n<var name=\"A\"/>\n<var name=\"A\"/>\n</user>\n</service>", 4, "variable 'A' is defined twice");
        }

        [Fact]
        public void UserConfig_WithElementInFailoverRules_IsRefused()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n<failover>\n<rule/>\n</failover>\n</service>", 3, "it holds rules as text");
        }

        [Fact]
        public void Validate_ConfigBuiltInCode_ErrorNamesTheFileWithoutLine()
        {
            var config = new UserConfig { Mode = ModuleMode.Mirror, Nodes = { "n1", "n2" } };
            config.Checks.Add(new TcpCheckConfig { Ident = "db", Address = "127.0.0.1", Port = 0 });

            var ex = Assert.Throws<ConfigurationException>(() => UserConfigFile.Validate(config));

            AssertPlace(ex, "userconfig.xml", 0, "port 0 is outside 1-65535");
        }
    }
}
