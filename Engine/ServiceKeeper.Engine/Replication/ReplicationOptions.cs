// Configuration of the replication engine of one mirror module (parsed from <rfs> by the host), shared by
// ReplicationSource (primary) and ReplicationTarget (secondary). One TCP connection per module carries
// every replicated directory ("tree") of the module; a tree is named by its Id on both nodes.
using System;
using System.Collections.Generic;
using ServiceKeeper.Engine.Configuration;

namespace ServiceKeeper.Engine.Replication
{
    /// <summary>One replicated directory.</summary>
    /// <param name="Id">Stable name, identical on both nodes (the directory's absolute path does well).</param>
    /// <param name="ReadRoot">Where the real tree can be read and stat'ed without going through the FUSE mount
    /// (LinuxDirectory.ProcPath, "/proc/self/fd/N"); a plain path when nothing is mounted over it.</param>
    /// <param name="Applier">Applies mutations to the real tree (LinuxDirectory); used by the secondary.</param>
    /// <param name="NotReplicated">Relative paths left out, with everything under them.</param>
    public sealed record ReplicatedTree(string Id, string ReadRoot, IMutationApplier Applier, IReadOnlyList<string> NotReplicated);

    /// <param name="Module">Module name: checked in the handshake, first word of every log line.</param>
    /// <param name="ClusterKey">cluster.key: authenticates the handshake; session keys derive from it.</param>
    /// <param name="StateDirectory">Where each tree's dirty journal and sync point live (modules/&lt;m&gt;/state).</param>
    public sealed record ReplicationOptions(
        string Module,
        string LocalNode,
        string PeerNode,
        byte[] ClusterKey,
        RfsAsync Mode,
        TimeSpan SendTimeout,
        IReadOnlyList<ReplicatedTree> Trees,
        string StateDirectory)
    {
        /// <summary>Journal zone: the unit the dirty journal marks and journal resync sends.</summary>
        public int ZoneBytes { get; init; } = 64 << 10;

        /// <summary>Block compared by hash in a hash resync.</summary>
        public int HashBlockBytes { get; init; } = 64 << 10;

        /// <summary>
        /// Block compared by hash inside each dirty journal zone: the secondary hashes the zone in blocks of this size and
        /// only differing blocks are sent (a 4 KiB change in a 64 KiB zone sends 4 KiB). 0 or ZoneBytes: whole zones.
        /// </summary>
        public int ZoneCompareBlockBytes { get; init; } = 4 << 10;

        /// <summary>Files a resync works on at once.</summary>
        public int ResyncParallelism { get; init; } = 4;

        /// <summary>Resync bytes sent and not yet acknowledged before the resync waits (live writes are never held back).</summary>
        public long ResyncWindowBytes { get; init; } = 32L << 20;

        /// <summary>How far back a persisted sync point is set: covers clock skew between the nodes and write latency.</summary>
        public TimeSpan SyncPointMargin { get; init; } = TimeSpan.FromSeconds(10);

        /// <summary>How often the journal and the sync point are written to disk.</summary>
        public TimeSpan FlushInterval { get; init; } = TimeSpan.FromSeconds(1);

        /// <summary>How often the secondary, while in sync, makes its copy durable (syncfs) and moves its sync point.</summary>
        public TimeSpan SyncPointInterval { get; init; } = TimeSpan.FromSeconds(5);

        /// <summary>Handshake deadline for a new connection.</summary>
        public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

        public string ModeName => Mode == RfsAsync.None ? "sync-disk" : "sync";
    }
}
