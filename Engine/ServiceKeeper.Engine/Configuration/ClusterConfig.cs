// cluster.xml as a model: the nodes, how their engines are reached, and the networks (lans) that link
// them. The same file is on every node.
using System;
using System.Collections.Generic;
using System.Linq;

namespace ServiceKeeper.Engine.Configuration
{
    public sealed class ClusterConfig
    {
        /// <summary>A GUID in "D" form; tells clusters apart when a node is moved from one to another.</summary>
        public string Id { get; set; } = "";
        public string Name { get; set; } = "";
        public DateTime CreatedUtc { get; set; }
        public List<ClusterNodeConfig> Nodes { get; set; } = new();
        public List<LanConfig> Lans { get; set; } = new();

        public ClusterNodeConfig? FindNode(string name) => Nodes.FirstOrDefault(n => n.Name == name);

        public LanConfig? FindLan(string name) => Lans.FirstOrDefault(l => l.Name == name);
    }

    public sealed class ClusterNodeConfig
    {
        /// <summary>The name the node's engine runs with (`--node-name`); compared ordinally everywhere.</summary>
        public string Name { get; set; } = "";
        /// <summary>Address (IP or host name) the node's API is reached at.</summary>
        public string ApiAddress { get; set; } = "";
        public int ApiPort { get; set; } = ClusterConfigFile.DefaultApiPort;
        /// <summary>Hex thumbprint of the node's TLS certificate, pinned by the other nodes; null until known.</summary>
        public string? CertificateThumbprint { get; set; }
    }

    /// <summary>A network every member node has an address on; heartbeats and replication run over lans.</summary>
    public sealed class LanConfig
    {
        public string Name { get; set; } = "";
        public List<LanMember> Members { get; set; } = new();

        public string? AddressOf(string node) => Members.FirstOrDefault(m => m.Node == node)?.Address;
    }

    public sealed class LanMember
    {
        public string Node { get; set; } = "";
        /// <summary>An IP address of the node on this lan.</summary>
        public string Address { get; set; } = "";
    }
}
