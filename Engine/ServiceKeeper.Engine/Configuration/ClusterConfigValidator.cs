// The rules a cluster.xml must follow, checked on the model so that a cluster built in code (New-SKCluster)
// is held to the same rules as one read from disk.
using System;
using System.Collections.Generic;
using System.Linq;

namespace ServiceKeeper.Engine.Configuration
{
    internal sealed class ClusterConfigValidator
    {
        private readonly ClusterConfig config;
        private readonly string file;
        private readonly SourceMap map;

        private ClusterConfigValidator(ClusterConfig config, string file, SourceMap map)
        {
            this.config = config;
            this.file = file;
            this.map = map;
        }

        public static void Validate(ClusterConfig config, string file, SourceMap map) =>
            new ClusterConfigValidator(config, file, map).Run();

        private void Run()
        {
            if (!Guid.TryParse(config.Id, out _))
                throw Fail(config, "id", $"cluster id '{config.Id}' is not a GUID.");
            if (!ConfigSyntax.IsName(config.Name))
                throw Fail(config, "name", $"cluster name '{config.Name}' is not valid: {ConfigSyntax.NameRule}.");
            CheckNodes();
            CheckLans();
        }

        private void CheckNodes()
        {
            if (config.Nodes.Count == 0)
                throw Fail(config.Nodes, SourceMap.Element, "<nodes> is empty: a cluster has at least one node.");
            // Host names are case-insensitive: n1 and N1 would be the same machine to DNS and to an admin.
            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var node in config.Nodes)
            {
                if (!ConfigSyntax.IsName(node.Name))
                    throw Fail(node, "name", $"node name '{node.Name}' is not valid: {ConfigSyntax.NameRule}.");
                if (!seen.Add(node.Name))
                    throw Fail(node, "name", $"node '{node.Name}' is declared twice (names are compared ignoring case).");
                if (!ConfigSyntax.IsHostOrIp(node.ApiAddress))
                    throw Fail(node, "api", $"node '{node.Name}': api address '{node.ApiAddress}' is neither an IP address nor a host name.");
                if (node.ApiPort is < 1 or > 65535)
                    throw Fail(node, "port", $"node '{node.Name}': port {node.ApiPort} is outside 1-65535.");
                if (node.CertificateThumbprint != null && !IsThumbprint(node.CertificateThumbprint))
                    throw Fail(node, "thumbprint", $"node '{node.Name}': thumbprint '{node.CertificateThumbprint}' is not a SHA-1 or SHA-256 hex digest (40 or 64 hex digits).");
            }
        }

        private void CheckLans()
        {
            if (config.Lans.Count == 0)
                throw Fail(config.Lans, SourceMap.Element, "<lans> is empty: heartbeats need at least one lan.");
            var lanNames = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            var declared = string.Join(", ", config.Nodes.Select(n => n.Name));
            foreach (var lan in config.Lans)
            {
                if (!ConfigSyntax.IsName(lan.Name))
                    throw Fail(lan, "name", $"lan name '{lan.Name}' is not valid: {ConfigSyntax.NameRule}.");
                if (!lanNames.Add(lan.Name))
                    throw Fail(lan, "name", $"lan '{lan.Name}' is declared twice.");
                if (lan.Members.Count == 0)
                    throw Fail(lan, SourceMap.Element, $"lan '{lan.Name}' has no nodes.");
                var members = new HashSet<string>(StringComparer.Ordinal);
                var addresses = new Dictionary<System.Net.IPAddress, string>();
                foreach (var member in lan.Members)
                {
                    if (config.FindNode(member.Node) == null)
                        throw Fail(member, "name", $"lan '{lan.Name}': '{member.Node}' is not a node declared in <nodes> ({declared}).");
                    if (!members.Add(member.Node))
                        throw Fail(member, "name", $"lan '{lan.Name}': node '{member.Node}' is listed twice; a node has one address per lan.");
                    if (!ConfigSyntax.TryParseIp(member.Address, out var ip))
                        throw Fail(member, "addr", $"lan '{lan.Name}': address '{member.Address}' of node '{member.Node}' is not an IP address.");
                    if (addresses.TryGetValue(ip, out var other))
                        throw Fail(member, "addr", $"lan '{lan.Name}': nodes '{other}' and '{member.Node}' have the same address {member.Address}.");
                    addresses[ip] = member.Node;
                }
            }
            foreach (var node in config.Nodes)
            {
                if (!config.Lans.Any(l => l.Members.Any(m => m.Node == node.Name)))
                    throw Fail(node, SourceMap.Element, $"node '{node.Name}' is on no lan: it could not exchange heartbeats with the others.");
            }
        }

        private static bool IsThumbprint(string text) =>
            (text.Length == 40 || text.Length == 64) && text.All(char.IsAsciiHexDigit);

        private ConfigurationException Fail(object target, string key, string reason) => map.Error(file, target, key, reason);
    }
}
