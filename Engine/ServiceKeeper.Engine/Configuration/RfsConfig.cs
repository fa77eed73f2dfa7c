// <rfs>: the directories a mirror replicates to its secondary, and how long replication may wait.
using System;
using System.Collections.Generic;

namespace ServiceKeeper.Engine.Configuration
{
    /// <summary>async: when the secondary acknowledges a write.</summary>
    public enum RfsAsync
    {
        /// <summary>"second": once applied on the secondary (in its page cache). DESIGN's "sync".</summary>
        Second,
        /// <summary>"none": once durable on the secondary's disk. DESIGN's "sync-disk".</summary>
        None,
    }

    public sealed class RfsConfig
    {
        public static readonly TimeSpan DefaultLockTimeout = TimeSpan.FromSeconds(100);
        public static readonly TimeSpan DefaultSendTimeout = TimeSpan.FromSeconds(30);

        public RfsAsync Async { get; set; } = RfsAsync.Second;

        /// <summary>How long a file lock request waits for the peer.</summary>
        public TimeSpan LockTimeout { get; set; } = DefaultLockTimeout;

        /// <summary>How long the primary waits for the secondary to answer before it goes ALONE.</summary>
        public TimeSpan SendTimeout { get; set; } = DefaultSendTimeout;

        /// <summary>TCP port of the replication; null lets the engine choose one per module.</summary>
        public int? Port { get; set; }

        public List<ReplicatedDirectory> Directories { get; set; } = new();
    }

    public sealed class ReplicatedDirectory
    {
        /// <summary>Absolute path; keeps its path on both nodes.</summary>
        public string Path { get; set; } = "";

        /// <summary>&lt;notreplicated path&gt;: paths relative to <see cref="Path"/> left out of replication (temp files).</summary>
        public List<string> NotReplicated { get; set; } = new();

        /// <summary>&lt;tocheck path&gt;: relative paths that must exist before the application starts, so an
        /// unmounted or empty disk is not taken for the data.</summary>
        public List<string> ToCheck { get; set; } = new();
    }
}
