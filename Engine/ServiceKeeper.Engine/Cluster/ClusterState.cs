// The cluster this node belongs to, as persisted in <home>/cluster/: cluster.xml and cluster.key.
using System;
using System.IO;
using System.Security.Cryptography;
using System.Text;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Hosting;

namespace ServiceKeeper.Engine.Cluster
{
    public sealed class ClusterState
    {
        private readonly EngineHome _home;
        private volatile Snapshot? _current;

        private sealed record Snapshot(ClusterConfig Config, string Xml, string Key, string Hash);

        public ClusterState(EngineHome home)
        {
            _home = home;
        }

        public ClusterConfig? Config => _current?.Config;
        public string? ConfigHash => _current?.Hash;
        public string? ConfigXml => _current?.Xml;
        /// <summary>Shared secret of the cluster (hex), for heartbeat and replication authentication.</summary>
        public string? Key => _current?.Key;

        /// <summary>Loads what is on disk; an invalid cluster.xml stops the engine before it starts.</summary>
        public void Load(string nodeName)
        {
            if (!File.Exists(_home.ClusterXml))
            {
                _current = null;
                return;
            }
            var xml = File.ReadAllText(_home.ClusterXml);
            var config = ClusterConfigFile.Parse(xml, _home.ClusterXml);
            if (!File.Exists(_home.ClusterKey))
                throw new ConfigurationException(_home.ClusterKey, 0, 0, "the cluster key is missing; remove the cluster and create it again.");
            var key = File.ReadAllText(_home.ClusterKey).Trim();
            if (!config.Nodes.Exists(n => n.Name == nodeName))
                throw new ConfigurationException(_home.ClusterXml, 0, 0,
                    $"this node is started as '{nodeName}' but the cluster '{config.Name}' has no such node; start it with --node-name set to its cluster name.");
            _current = new Snapshot(config, xml, key, Hash(xml));
        }

        public void Save(string xml, string key, string nodeName)
        {
            var config = ClusterConfigFile.Parse(xml, "cluster.xml");
            if (!config.Nodes.Exists(n => n.Name == nodeName))
                throw new ConfigurationException("cluster.xml", 0, 0, $"the cluster '{config.Name}' has no node named '{nodeName}'.");
            EngineHome.WriteSecret(_home.ClusterKey, key + "\n");
            EngineHome.WriteAtomic(_home.ClusterXml, xml);
            _current = new Snapshot(config, xml, key, Hash(xml));
        }

        public void Delete()
        {
            File.Delete(_home.ClusterXml);
            File.Delete(_home.ClusterKey);
            _current = null;
        }

        public static string Hash(string xml) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(xml))).ToLowerInvariant();
    }
}
