// Reads and writes cluster.xml:
//   <cluster id="GUID" name="demo" created="2025-01-01T00:00:00.0000000Z">
//     <nodes><node name="n1" api="198.18.0.1" port="9453" thumbprint="HEX"/>...</nodes>
//     <lans><lan name="LAN1"><node name="n1" addr="198.18.0.1"/>...</lan>...</lans>
//   </cluster>
using System;
using System.Globalization;
using System.Xml.Linq;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Engine.Configuration
{
    public static class ClusterConfigFile
    {
        public const string FileName = "cluster.xml";
        public const int DefaultApiPort = SKEndpoint.DefaultHttpsPort;

        private const string CreatedFormat = "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK";

        /// <exception cref="ConfigurationException">The file cannot be read or is not a valid cluster.xml.</exception>
        public static ClusterConfig Load(string path) => Parse(ConfigXml.ReadFile(path), path);

        /// <param name="fileName">How errors name the file.</param>
        /// <exception cref="ConfigurationException">Malformed XML or an invalid cluster.</exception>
        public static ClusterConfig Parse(string xml, string fileName)
        {
            var document = ConfigXml.Parse(xml, fileName);
            var map = new SourceMap();
            var config = Read(document.Root!, fileName, map);
            ClusterConfigValidator.Validate(config, fileName, map);
            return config;
        }

        /// <summary>Checks a cluster built in code, before it is written and pushed to the nodes.</summary>
        /// <exception cref="ConfigurationException">The first problem found; it has no line.</exception>
        public static void Validate(ClusterConfig config, string fileName = FileName) =>
            ClusterConfigValidator.Validate(config, fileName, new SourceMap());

        /// <summary>The file text; Parse(ToXml(c)) gives back an equal cluster. Byte-identical for equal
        /// clusters on every OS, because nodes compare cluster.xml by hash.</summary>
        public static string ToXml(ClusterConfig config)
        {
            var root = new XElement("cluster",
                new XAttribute("id", config.Id),
                new XAttribute("name", config.Name),
                new XAttribute("created", DateTime.SpecifyKind(config.CreatedUtc, DateTimeKind.Utc).ToString(CreatedFormat, CultureInfo.InvariantCulture)));
            var nodes = new XElement("nodes");
            foreach (var node in config.Nodes)
            {
                nodes.Add(new XElement("node",
                    new XAttribute("name", node.Name),
                    new XAttribute("api", node.ApiAddress),
                    new XAttribute("port", node.ApiPort.ToString(CultureInfo.InvariantCulture)),
                    node.CertificateThumbprint == null ? null : new XAttribute("thumbprint", node.CertificateThumbprint)));
            }
            var lans = new XElement("lans");
            foreach (var lan in config.Lans)
            {
                var element = new XElement("lan", new XAttribute("name", lan.Name));
                foreach (var member in lan.Members)
                    element.Add(new XElement("node", new XAttribute("name", member.Node), new XAttribute("addr", member.Address)));
                lans.Add(element);
            }
            root.Add(nodes, lans);
            return ConfigXml.Write(root);
        }

        private static ClusterConfig Read(XElement root, string file, SourceMap map)
        {
            var config = new ClusterConfig();
            if (root.Name != "cluster")
                throw ConfigXml.Error(file, root, $"the root element is <{root.Name.LocalName}>; cluster.xml starts with <cluster>.");
            var e = new ConfigElement(root, file, map, config, "id", "name", "created");
            var id = e.Required("id");
            if (!Guid.TryParse(id, out var guid))
                throw e.Error($"'id' of <cluster> is '{id}', not a GUID.");
            config.Id = guid.ToString("D");
            config.Name = e.Required("name");
            var created = e.Required("created");
            if (!DateTimeOffset.TryParseExact(created, CreatedFormat, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var when))
                throw e.Error($"'created' of <cluster> is '{created}', not an ISO-8601 time (2025-01-31T12:00:00Z).");
            config.CreatedUtc = when.UtcDateTime;

            var children = e.Children("nodes", "lans");
            var nodes = e.AtMostOne(children, "nodes") ?? throw e.Error("<cluster> needs a <nodes> element listing its nodes.");
            var lans = e.AtMostOne(children, "lans") ?? throw e.Error("<cluster> needs a <lans> element: heartbeats need at least one lan.");

            map.Record(config.Nodes, SourceMap.Element, nodes);
            foreach (var x in new ConfigElement(nodes, file, map, null).Children("node"))
            {
                var node = new ClusterNodeConfig();
                var n = new ConfigElement(x, file, map, node, "name", "api", "port", "thumbprint");
                n.Children();
                node.Name = n.Required("name");
                node.ApiAddress = n.Required("api");
                node.ApiPort = n.Integer("port", DefaultApiPort);
                node.CertificateThumbprint = n.Text("thumbprint")?.Trim();
                config.Nodes.Add(node);
            }

            map.Record(config.Lans, SourceMap.Element, lans);
            foreach (var x in new ConfigElement(lans, file, map, null).Children("lan"))
            {
                var lan = new LanConfig();
                var l = new ConfigElement(x, file, map, lan, "name");
                lan.Name = l.Required("name");
                foreach (var y in l.Children("node"))
                {
                    var member = new LanMember();
                    var m = new ConfigElement(y, file, map, member, "name", "addr");
                    m.Children();
                    member.Node = m.Required("name");
                    member.Address = m.Required("addr");
                    lan.Members.Add(member);
                }
                config.Lans.Add(lan);
            }
            return config;
        }
    }
}
