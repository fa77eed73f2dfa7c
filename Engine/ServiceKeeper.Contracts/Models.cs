// Objects that cross the wire between the engine, the PowerShell module and other engines.
// Type names are part of the PowerShell output contract: keep them stable.
using System;
using System.Collections.Generic;

namespace ServiceKeeper.Contracts
{
    /// <summary>An IPv4/IPv6 address configured on one of a node's interfaces.</summary>
    public sealed class InterfaceAddress
    {
        public string Interface { get; set; } = "";
        public string Address { get; set; } = "";
        public int PrefixLength { get; set; }

        public override string ToString() => Address + "/" + PrefixLength + " (" + Interface + ")";
    }

    /// <summary>What one engine says about itself: GET /v1/node.</summary>
    public sealed class NodeInfo
    {
        public string Name { get; set; } = "";
        public string EngineVersion { get; set; } = "";
        public string OperatingSystem { get; set; } = "";
        public List<InterfaceAddress> Addresses { get; set; } = new List<InterfaceAddress>();
        public int ApiPort { get; set; }
        public DateTime UtcTime { get; set; }
        public string? ClusterId { get; set; }
        public string? ClusterName { get; set; }
        /// <summary>SHA-256 of the cluster configuration this node holds, to compare nodes.</summary>
        public string? ClusterConfigHash { get; set; }
        public string? CertificateThumbprint { get; set; }
        public NodeCapabilities Capabilities { get; set; } = new NodeCapabilities();
    }

    public sealed class NodeCapabilities
    {
        public bool Fuse { get; set; }
        public string? FuseReason { get; set; }
        public bool Nftables { get; set; }
        public string? NftablesReason { get; set; }
        /// <summary>Cluster ports (heartbeat UDP, replication TCP) another program already holds.</summary>
        public List<string> PortsInUse { get; set; } = new List<string>();
    }

    /// <summary>One network of the cluster and the address of each node on it.</summary>
    public sealed class ClusterNetwork
    {
        public string Name { get; set; } = "";
        public List<ClusterNetworkMember> Members { get; set; } = new List<ClusterNetworkMember>();
    }

    public sealed class ClusterNetworkMember
    {
        public string Node { get; set; } = "";
        public string Address { get; set; } = "";
    }

    public sealed class ClusterNode
    {
        public string Name { get; set; } = "";
        /// <summary>Address the API of this node is reached at (the one given to New-SKCluster).</summary>
        public string ApiAddress { get; set; } = "";
        public int ApiPort { get; set; }
        public string? CertificateThumbprint { get; set; }
    }

    /// <summary>The cluster as every node holds it: GET /v1/cluster.</summary>
    public sealed class ClusterInfo
    {
        public string Id { get; set; } = "";
        public string Name { get; set; } = "";
        public DateTime CreatedUtc { get; set; }
        public List<ClusterNode> Nodes { get; set; } = new List<ClusterNode>();
        public List<ClusterNetwork> Networks { get; set; } = new List<ClusterNetwork>();
        public string ConfigHash { get; set; } = "";
    }

    /// <summary>A node of the cluster as seen from the node that was asked: Get-SKNode.</summary>
    public sealed class NodeStatus
    {
        public string Name { get; set; } = "";
        public string ClusterName { get; set; } = "";
        public List<string> Addresses { get; set; } = new List<string>();
        public bool Reachable { get; set; }
        public string? EngineVersion { get; set; }
        /// <summary>Node clock minus the asking node's clock, corrected for half the round trip.</summary>
        public double? ClockOffsetMs { get; set; }
        public string? Error { get; set; }
    }

    public enum CheckResult { Passed, Warning, Failed }

    /// <summary>One line of the validation report: Test-SKCluster.</summary>
    public sealed class ClusterCheck
    {
        public string Check { get; set; } = "";
        public string? Node { get; set; }
        public string? Network { get; set; }
        public CheckResult Result { get; set; }
        public string Reason { get; set; } = "";
    }

    public sealed class ModuleInfo
    {
        public string Name { get; set; } = "";
        /// <summary>mirror or farm.</summary>
        public string Kind { get; set; } = "";
        public List<string> Nodes { get; set; } = new List<string>();
        public List<string> Scripts { get; set; } = new List<string>();
        public string ConfigHash { get; set; } = "";
        public DateTime InstalledUtc { get; set; }
        /// <summary>Mirror: the node the first start makes primary.</summary>
        public string? InitialPrimary { get; set; }
    }

    /// <summary>State of one module on one node: Get-SKState.</summary>
    public sealed class ModuleState
    {
        public string Module { get; set; } = "";
        public string Node { get; set; } = "";
        /// <summary>mirror or farm.</summary>
        public string Kind { get; set; } = "";
        /// <summary>STOP, WAIT, ALONE, PRIM, SECOND (mirror) or STOP, WAIT, UP (farm).</summary>
        public string State { get; set; } = "";
        /// <summary>Ready (stable) or Transient (starting, stopping, resynchronising).</summary>
        public bool Ready { get; set; }
        /// <summary>Why the node is in this state; always set for WAIT.</summary>
        public string? Reason { get; set; }
        public DateTime SinceUtc { get; set; }
        /// <summary>Generation of this node's data (mirror): equal on both nodes when they are in sync.</summary>
        public string? DataGeneration { get; set; }
        /// <summary>This node's data may serve as primary without losing acknowledged writes.</summary>
        public bool UpToDate { get; set; }
        /// <summary>The other node's state as this node last heard it (mirror).</summary>
        public string? PeerState { get; set; }
        public bool CheckersEnabled { get; set; } = true;
        public bool ErrdEnabled { get; set; } = true;
        public bool FailoverEnabled { get; set; } = true;
        /// <summary>Resynchronisation progress while SECOND is Transient.</summary>
        public long? ResyncBytesDone { get; set; }
        public long? ResyncBytesTotal { get; set; }
        public double? ResyncBytesPerSecond { get; set; }
        public double? ResyncEtaSeconds { get; set; }
        /// <summary>False when the node could not be asked; Error says why and State is empty.</summary>
        public bool Reachable { get; set; } = true;
        public string? Error { get; set; }
    }

    /// <summary>A checker's resource on one node: Get-SKResource.</summary>
    public sealed class ModuleResource
    {
        public string Module { get; set; } = "";
        public string Node { get; set; } = "";
        /// <summary>class.ident, for example tcp.db, errd.postgres, splitbrain.witness.</summary>
        public string Resource { get; set; } = "";
        /// <summary>init, up or down.</summary>
        public string Value { get; set; } = "";
        /// <summary>What the module does when it goes down: restart, stopstart, stop, wait, noaction.</summary>
        public string Action { get; set; } = "";
        public string? Reason { get; set; }
        public DateTime SinceUtc { get; set; }
    }

    /// <summary>One line of a module's log on one node: transitions, script output: Get-SKLog.</summary>
    public sealed class LogLine
    {
        public string Module { get; set; } = "";
        public string Node { get; set; } = "";
        public long Sequence { get; set; }
        public DateTime TimeUtc { get; set; }
        /// <summary>"module" for the engine's own lines, else the script or checker that wrote it.</summary>
        public string Source { get; set; } = "";
        public string Text { get; set; } = "";
    }

    /// <summary>A farm node's share of the traffic: Get-SKFarmLoad.</summary>
    public sealed class FarmLoad
    {
        public string Module { get; set; } = "";
        public string Node { get; set; } = "";
        public string State { get; set; } = "";
        public int Power { get; set; }
        /// <summary>How many of the 256 buckets this node owns.</summary>
        public int Buckets { get; set; }
        /// <summary>Buckets / 256, in percent.</summary>
        public double SharePercent { get; set; }
        /// <summary>Connections to the virtual IP this node tracks now (conntrack), when known.</summary>
        public int? Connections { get; set; }
        public bool Reachable { get; set; } = true;
        public string? Error { get; set; }
    }
    /// <summary>One replicated directory of a mirror module on one node: Get-SKReplication.</summary>
    public sealed class ReplicationStatus
    {
        public string Module { get; set; } = "";
        public string Node { get; set; } = "";
        public string Directory { get; set; } = "";
        /// <summary>sync (the secondary has applied each write) or sync-disk (it has made it durable).</summary>
        public string Mode { get; set; } = "";
        /// <summary>replicating, alone (changes journaled for the peer), resyncing, receiving (secondary, up to date),
        /// stale (secondary, not up to date) or stopped.</summary>
        public string State { get; set; } = "";
        public string? PeerNode { get; set; }
        /// <summary>Mutations sent and not yet acknowledged by the secondary.</summary>
        public long OperationsPending { get; set; }
        public long BytesPending { get; set; }
        /// <summary>Bytes the journal marks for the next resync (primary without its secondary).</summary>
        public long BytesDirty { get; set; }
        public long FilesDirty { get; set; }
        public long BytesReplicated { get; set; }
        public long OperationsReplicated { get; set; }
        /// <summary>Replicated bytes per second over the last seconds.</summary>
        public double WriteBytesPerSecond { get; set; }
        /// <summary>Mean wait for the secondary's acknowledgement over the last seconds, in milliseconds.</summary>
        public double AckMilliseconds { get; set; }
        /// <summary>Last moment both copies were known identical.</summary>
        public DateTime? LastSyncPointUtc { get; set; }
        public ResyncProgress? Resync { get; set; }
        /// <summary>The last resync that finished here.</summary>
        public ResyncProgress? LastResync { get; set; }
        public bool Reachable { get; set; } = true;
        public string? Error { get; set; }
    }

    /// <summary>A resynchronisation of one directory, running or finished.</summary>
    public sealed class ResyncProgress
    {
        /// <summary>journal (dirty zones), hash (block hashes of files changed since the last sync point) or full.</summary>
        public string Method { get; set; } = "";
        public long BytesDone { get; set; }
        public long BytesTotal { get; set; }
        public long FilesDone { get; set; }
        public long FilesTotal { get; set; }
        /// <summary>Bytes actually sent over the network (what a block comparison saved shows here).</summary>
        public long BytesSent { get; set; }
        public double BytesPerSecond { get; set; }
        public double? EtaSeconds { get; set; }
        public DateTime StartedUtc { get; set; }
        public DateTime? FinishedUtc { get; set; }
    }

    /// <summary>One way the secondary's copy differs from the primary's: Test-SKReplication.</summary>
    public sealed class ReplicationDifference
    {
        public string Module { get; set; } = "";
        public string Directory { get; set; } = "";
        /// <summary>Relative to Directory.</summary>
        public string Path { get; set; } = "";
        /// <summary>MissingOnSecondary, ExtraOnSecondary, Type, Content, Size, Mode, Owner, Link, Xattr.</summary>
        public string Kind { get; set; } = "";
        public string? Primary { get; set; }
        public string? Secondary { get; set; }
    }
    /// <summary>What one node holds in a module's replicated directories, by content hash (engine to engine, for Test-SKReplication).</summary>
    public sealed class ReplicationManifest
    {
        public string Node { get; set; } = "";
        public List<ManifestDirectory> Directories { get; set; } = new List<ManifestDirectory>();
    }

    /// <summary>
    /// Which paths a node lists in its manifest: Test-SKReplication's later passes ask only for what differed in the
    /// pass before. A directory not named is left out of the manifest.
    /// </summary>
    public sealed class ManifestRequest
    {
        public List<ManifestPaths> Directories { get; set; } = new List<ManifestPaths>();
    }

    public sealed class ManifestPaths
    {
        public string Directory { get; set; } = "";
        /// <summary>Relative to Directory; "" (the directory itself) lists none of its paths.</summary>
        public List<string> Paths { get; set; } = new List<string>();
    }

    public sealed class ManifestDirectory
    {
        public string Directory { get; set; } = "";
        public List<ManifestEntry> Entries { get; set; } = new List<ManifestEntry>();
    }

    /// <summary>One path of a replicated directory (not-replicated paths are left out).</summary>
    public sealed class ManifestEntry
    {
        public string Path { get; set; } = "";
        /// <summary>file, directory, symlink or other.</summary>
        public string Type { get; set; } = "";
        public long Size { get; set; }
        /// <summary>Permission bits (octal in text: 0644).</summary>
        public int Mode { get; set; }
        public int Uid { get; set; }
        public int Gid { get; set; }
        /// <summary>Modification time, nanoseconds since the Unix epoch (files and symlinks).</summary>
        public long MtimeNanoseconds { get; set; }
        /// <summary>SHA-256 of the content (files).</summary>
        public string? Sha256 { get; set; }
        /// <summary>Target of a symlink.</summary>
        public string? Link { get; set; }
        /// <summary>Hard links: entries with the same group share one inode.</summary>
        public int? LinkGroup { get; set; }
        /// <summary>Extended attributes: name → SHA-256 of the value.</summary>
        public Dictionary<string, string>? Xattrs { get; set; }
    }
}
