// A module's userconfig.xml as a model: macros expanded, defaults filled, validated. Mirror-only parts
// (Heart, Rfs) are null in a farm and farm-only parts (Farm) null in a mirror.
using System;
using System.Collections.Generic;

namespace ServiceKeeper.Engine.Configuration
{
    public enum ModuleMode
    {
        /// <summary>2 nodes, active/passive, replicated data.</summary>
        Mirror,
        /// <summary>1..N nodes, active/active, load-balanced VIP.</summary>
        Farm,
    }

    /// <summary>defaultprim: which node a mirror prefers as primary once both are up and in sync.</summary>
    public enum DefaultPrimaryPolicy
    {
        /// <summary>"alone": no preference; roles stay as they are after a failover.</summary>
        Alone,
        /// <summary>"lastprim": the node that was primary last time.</summary>
        LastPrimary,
        /// <summary>A node name: swap back to it automatically after it has resynced.</summary>
        Node,
    }

    public sealed class UserConfig
    {
        public static readonly TimeSpan DefaultLoopInterval = TimeSpan.FromHours(24);
        public const int DefaultMaxLoop = 3;

        public ModuleMode Mode { get; set; }

        /// <summary>Mirror only.</summary>
        public DefaultPrimaryPolicy DefaultPrimary { get; set; } = DefaultPrimaryPolicy.Alone;

        /// <summary>The preferred primary when <see cref="DefaultPrimary"/> is <see cref="DefaultPrimaryPolicy.Node"/>.</summary>
        public string? DefaultPrimaryNode { get; set; }

        /// <summary>failover="off": when the primary fails the secondary waits for an explicit prim. Mirror only.</summary>
        public bool Failover { get; set; } = true;

        /// <summary>Restarts allowed within <see cref="LoopInterval"/> before the module stops on this node.</summary>
        public int MaxLoop { get; set; } = DefaultMaxLoop;

        public TimeSpan LoopInterval { get; set; } = DefaultLoopInterval;

        /// <summary>Start the module when the engine starts. On by default: a rebooted node should rejoin, and a
        /// stale one only waits (it never starts the application on old data).</summary>
        public bool Boot { get; set; } = true;

        /// <summary>The nodes the module runs on (mirror: exactly 2). From &lt;nodes&gt;, else resolved: see
        /// UserConfigFile. Empty only when parsed without a cluster and nothing in the file names them.</summary>
        public List<string> Nodes { get; set; } = new();

        /// <summary>Mirror heartbeats; always set in a mirror.</summary>
        public HeartConfig? Heart { get; set; }

        /// <summary>Farm heartbeats; always set in a farm.</summary>
        public FarmConfig? Farm { get; set; }

        public VipConfig Vip { get; set; } = new();

        /// <summary>Replicated directories; mirror only, null when the mirror replicates nothing.</summary>
        public RfsConfig? Rfs { get; set; }

        public UserScriptsConfig User { get; set; } = new();

        public ErrdConfig Errd { get; set; } = new();

        /// <summary>Checkers in file order.</summary>
        public List<CheckerConfig> Checks { get; set; } = new();

        /// <summary>The text of &lt;failover&gt; as written (CDATA content), macros expanded; null when absent.</summary>
        public string? FailoverRules { get; set; }

        /// <summary>The macros the file defined, already applied everywhere; kept for diagnostics.</summary>
        public Dictionary<string, string> Macros { get; set; } = new(StringComparer.Ordinal);
    }
}
