using System;
using System.IO;
using System.Linq;
using ServiceKeeper.Engine.Configuration;
using Xunit;
using static ServiceKeeper.Engine.Tests.Configuration.ConfigTestFiles;

namespace ServiceKeeper.Engine.Tests.Configuration
{
    public sealed class ClusterConfigFileTests
    {
        private const string Header = """<cluster id="6f1c2a0e-3b1d-4c55-9a7e-0d2f4b8c9e11" name="demo" created="2025-01-31T12:00:00Z">""";

        [Fact]
        public void Load_TwoNodeSample_ReadsNodesLansAndDefaults()
        {
            var cluster = TwoNodeCluster();

            Assert.Equal("6f1c2a0e-3b1d-4c55-9a7e-0d2f4b8c9e11", cluster.Id);
            Assert.Equal("demo", cluster.Name);
            Assert.Equal(new DateTime(2025, 1, 31, 12, 0, 0, DateTimeKind.Utc), cluster.CreatedUtc);
            Assert.Equal(DateTimeKind.Utc, cluster.CreatedUtc.Kind);
            Assert.Equal(new[] { "n1", "n2" }, cluster.Nodes.Select(n => n.Name));
            Assert.Equal("198.18.0.1", cluster.Nodes[0].ApiAddress);
            Assert.Equal(9453, cluster.Nodes[0].ApiPort);
            Assert.Equal("A1B2C3D4E5F60718293A4B5C6D7E8F9012345678", cluster.Nodes[0].CertificateThumbprint);
            Assert.Equal(ClusterConfigFile.DefaultApiPort, cluster.Nodes[1].ApiPort);
            Assert.Null(cluster.Nodes[1].CertificateThumbprint);
            Assert.Equal(new[] { "LAN1", "LAN2" }, cluster.Lans.Select(l => l.Name));
            Assert.Equal("198.19.0.2", cluster.FindLan("LAN2")!.AddressOf("n2"));
            Assert.Null(cluster.FindLan("LAN3"));
        }

        [Fact]
        public void Parse_CreatedWithOffset_IsConvertedToUtc()
        {
            var xml = TwoNodeXml().Replace("2025-01-31T12:00:00Z", "2025-01-31T14:00:00+02:00");
            Assert.Equal(new DateTime(2025, 1, 31, 12, 0, 0, DateTimeKind.Utc), ClusterConfigFile.Parse(xml, "cluster.xml").CreatedUtc);
        }

        [Fact]
        public void Parse_UppercaseGuid_IsNormalised()
        {
            var xml = TwoNodeXml().Replace("6f1c2a0e-3b1d-4c55-9a7e-0d2f4b8c9e11", "6F1C2A0E-3B1D-4C55-9A7E-0D2F4B8C9E11");
            Assert.Equal("6f1c2a0e-3b1d-4c55-9a7e-0d2f4b8c9e11", ClusterConfigFile.Parse(xml, "cluster.xml").Id);
        }

        [Fact]
        public void ToXml_ThenParse_GivesAnEqualCluster()
        {
            var original = TwoNodeCluster();

            var xml = ClusterConfigFile.ToXml(original);
            var again = ClusterConfigFile.Parse(xml, "cluster.xml");

            AssertEqual(original, again);
            Assert.Equal(xml, ClusterConfigFile.ToXml(again));
        }

        [Fact]
        public void ToXml_OfAClusterBuiltInCode_RoundTripsToTheTick()
        {
            var built = new ClusterConfig
            {
                Id = Guid.NewGuid().ToString(),
                Name = "lab.east",
                CreatedUtc = new DateTime(2025, 3, 4, 5, 6, 7, DateTimeKind.Utc).AddTicks(1234567),
                Nodes =
                {
                    new ClusterNodeConfig { Name = "node-a", ApiAddress = "node-a.example.net", ApiPort = 10443 },
                    new ClusterNodeConfig { Name = "node_b", ApiAddress = "2001:db8::2", CertificateThumbprint = new string('c', 64) },
                },
                Lans =
                {
                    new LanConfig { Name = "LAN1", Members = { new LanMember { Node = "node-a", Address = "2001:db8::1" }, new LanMember { Node = "node_b", Address = "2001:db8::2" } } },
                },
            };
            ClusterConfigFile.Validate(built);

            var again = ClusterConfigFile.Parse(ClusterConfigFile.ToXml(built), "cluster.xml");

            AssertEqual(built, again);
        }

        [Fact]
        public void ToXml_WritesUtf8DeclarationAndUnixLineEnds()
        {
            var xml = ClusterConfigFile.ToXml(TwoNodeCluster());

            Assert.StartsWith("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<cluster ", xml);
            Assert.DoesNotContain("\r", xml);
            Assert.Contains("created=\"2025-01-31T12:00:00Z\"", xml);
        }

        [Fact]
        public void Load_MissingFile_NamesThePathWithoutLine()
        {
            var path = Path.Combine(Path.GetTempPath(), "sk-no-such-dir-" + Guid.NewGuid(), "cluster.xml");
            var ex = Assert.Throws<ConfigurationException>(() => ClusterConfigFile.Load(path));
            AssertPlace(ex, path, 0, "cannot read the file");
        }

        [Fact]
        public void Parse_MalformedXml_GivesTheXmlErrorLine()
        {
            var ex = AssertClusterError($"{Header}\n<nodes>\n<node name=\"n1\" api=\"198.18.0.1\">\n</nodes>\n</cluster>", 4, "malformed XML");
            Assert.DoesNotContain("Line 4", ex.Reason);
            Assert.True(ex.Column > 0);
        }

        [Fact]
        public void Parse_RootNotCluster_IsRefused()
        {
            AssertClusterError("<service mode=\"mirror\"/>", 1, "cluster.xml starts with <cluster>");
        }

        [Fact]
        public void Parse_IdNotGuid_IsRefused()
        {
            AssertClusterError(TwoNodeXml().Replace("6f1c2a0e-3b1d-4c55-9a7e-0d2f4b8c9e11", "cluster-1"), 3, "'cluster-1', not a GUID");
        }

        [Fact]
        public void Parse_BadCreatedTime_IsRefused()
        {
            AssertClusterError(TwoNodeXml().Replace("2025-01-31T12:00:00Z", "yesterday"), 3, "not an ISO-8601 time");
        }

        [Fact]
        public void Parse_UnknownAttribute_ListsTheAllowedOnes()
        {
            AssertClusterError(TwoNodeXml().Replace("<node name=\"n2\" api=\"198.18.0.2\"/>", "<node name=\"n2\" api=\"198.18.0.2\" prot=\"1\"/>"),
                6, "unknown attribute 'prot' on <node>; allowed: name, api, port, thumbprint.");
        }

        [Fact]
        public void Parse_UnknownElement_ListsTheAllowedOnes()
        {
            AssertClusterError($"{Header}\n<nodes/>\n<networks/>\n</cluster>", 3, "unknown element <networks> in <cluster>; allowed: <nodes>, <lans>.");
        }

        [Fact]
        public void Parse_DuplicateNodeNamesIgnoringCase_IsRefused()
        {
            AssertClusterError(TwoNodeXml().Replace("<node name=\"n2\" api=", "<node name=\"N1\" api="), 6, "node 'N1' is declared twice");
        }

        [Theory]
        [InlineData("-n2")]
        [InlineData("n 2")]
        [InlineData("n2/x")]
        public void Parse_NodeNameNotHostLike_IsRefused(string name)
        {
            AssertClusterError(TwoNodeXml().Replace("<node name=\"n2\" api=", $"<node name=\"{name}\" api="), 6, $"node name '{name}' is not valid");
        }

        [Fact]
        public void Parse_LanMemberNotDeclared_NamesTheDeclaredNodes()
        {
            AssertClusterError(TwoNodeXml().Replace("<node name=\"n2\" addr=\"198.19.0.2\"/>", "<node name=\"n9\" addr=\"198.19.0.2\"/>"),
                15, "lan 'LAN2': 'n9' is not a node declared in <nodes> (n1, n2).");
        }

        [Theory]
        [InlineData("198.19.0")]
        [InlineData("n2.example.net")]
        [InlineData("198.19.0.256")]
        public void Parse_LanAddressNotIp_IsRefused(string address)
        {
            AssertClusterError(TwoNodeXml().Replace("addr=\"198.19.0.2\"", $"addr=\"{address}\""), 15, $"address '{address}' of node 'n2' is not an IP address");
        }

        [Fact]
        public void Parse_NodeTwiceOnALan_IsRefused()
        {
            AssertClusterError(TwoNodeXml().Replace("<node name=\"n2\" addr=\"198.19.0.2\"/>", "<node name=\"n1\" addr=\"198.19.0.2\"/>"),
                15, "lan 'LAN2': node 'n1' is listed twice");
        }

        [Fact]
        public void Parse_TwoNodesWithOneAddress_IsRefused()
        {
            AssertClusterError(TwoNodeXml().Replace("addr=\"198.19.0.2\"", "addr=\"198.19.0.1\""), 15, "nodes 'n1' and 'n2' have the same address 198.19.0.1");
        }

        [Fact]
        public void Parse_EmptyLans_IsRefused()
        {
            AssertClusterError($"{Header}\n<nodes><node name=\"n1\" api=\"198.18.0.1\"/></nodes>\n<lans/>\n</cluster>", 3, "at least one lan");
        }

        [Fact]
        public void Parse_NoLansElement_IsRefused()
        {
            AssertClusterError($"{Header}\n<nodes><node name=\"n1\" api=\"198.18.0.1\"/></nodes>\n</cluster>", 1, "needs a <lans> element");
        }

        [Fact]
        public void Parse_NodeOnNoLan_IsRefused()
        {
            var xml = TwoNodeXml().Replace("<node name=\"n2\" api=\"198.18.0.2\"/>", "<node name=\"n2\" api=\"198.18.0.2\"/><node name=\"n3\" api=\"198.18.0.3\"/>");
            AssertClusterError(xml, 6, "node 'n3' is on no lan");
        }

        [Theory]
        [InlineData("0")]
        [InlineData("65536")]
        [InlineData("-1")]
        public void Parse_PortOutOfRange_IsRefused(string port)
        {
            AssertClusterError(TwoNodeXml().Replace("port=\"9453\"", $"port=\"{port}\""), 5, $"port {port} is outside 1-65535");
        }

        [Fact]
        public void Parse_PortNotANumber_IsRefused()
        {
            AssertClusterError(TwoNodeXml().Replace("port=\"9453\"", "port=\"https\""), 5, "'port' of <node> is 'https'; expected a whole number.");
        }

        [Fact]
        public void Parse_ThumbprintNotHex_IsRefused()
        {
            AssertClusterError(TwoNodeXml().Replace("A1B2C3D4E5F60718293A4B5C6D7E8F9012345678", "not-a-thumbprint"), 5, "is not a SHA-1 or SHA-256 hex digest");
        }

        [Fact]
        public void Parse_ApiAddressNeitherIpNorHost_IsRefused()
        {
            AssertClusterError(TwoNodeXml().Replace("api=\"198.18.0.2\"", "api=\"bad host!\""), 6, "api address 'bad host!' is neither an IP address nor a host name");
        }

        [Fact]
        public void Validate_ClusterBuiltInCode_ErrorNamesTheFileWithoutLine()
        {
            var cluster = TwoNodeCluster();
            cluster.Lans[0].Members[1].Node = "ghost";

            var ex = Assert.Throws<ConfigurationException>(() => ClusterConfigFile.Validate(cluster));

            AssertPlace(ex, "cluster.xml", 0, "'ghost' is not a node declared in <nodes>");
            Assert.Equal(0, ex.Column);
        }

        private static string TwoNodeXml() => File.ReadAllText(PathOf("cluster-2nodes.xml"));

        private static void AssertEqual(ClusterConfig expected, ClusterConfig actual)
        {
            Assert.Equal(expected.Id, actual.Id);
            Assert.Equal(expected.Name, actual.Name);
            Assert.Equal(expected.CreatedUtc, actual.CreatedUtc);
            Assert.Equal(
                expected.Nodes.Select(n => (n.Name, n.ApiAddress, n.ApiPort, n.CertificateThumbprint)),
                actual.Nodes.Select(n => (n.Name, n.ApiAddress, n.ApiPort, n.CertificateThumbprint)));
            Assert.Equal(
                expected.Lans.Select(l => l.Name + ":" + string.Join(",", l.Members.Select(m => m.Node + "=" + m.Address))),
                actual.Lans.Select(l => l.Name + ":" + string.Join(",", l.Members.Select(m => m.Node + "=" + m.Address))));
        }
    }
}
