// Settings of a ReplicatedMount and the counters it keeps.
using System;

namespace ServiceKeeper.Engine.Replication
{
    public sealed class ReplicatedMountOptions
    {
        /// <summary>Every mutation fails with EROFS (the secondary's view of the tree it receives).</summary>
        public bool ReadOnly { get; set; }

        /// <summary>Source column of /proc/mounts, e.g. "servicekeeper:sql". Commas are replaced.</summary>
        public string FsName { get; set; } = "servicekeeper";

        /// <summary>Kernel attribute cache, seconds; default 1 (0 when ReadOnly, so data written underneath shows at once).</summary>
        public double? AttrTimeout { get; set; }

        /// <summary>Kernel name cache, seconds; default 1 (0 when ReadOnly).</summary>
        public double? EntryTimeout { get; set; }

        /// <summary>Cache of "does not exist", seconds; default 0 (names appear underneath on the secondary).</summary>
        public double? NegativeTimeout { get; set; }

        /// <summary>Largest write the kernel sends in one request.</summary>
        public int MaxWrite { get; set; } = 1 << 20;

        /// <summary>Let every user use the mount (the kernel checks permissions from the attributes).</summary>
        public bool AllowOther { get; set; } = true;

        internal double EffectiveAttrTimeout => AttrTimeout ?? (ReadOnly ? 0 : 1);

        internal double EffectiveEntryTimeout => EntryTimeout ?? (ReadOnly ? 0 : 1);

        internal double EffectiveNegativeTimeout => NegativeTimeout ?? 0;
    }

    /// <summary>Counters since the mount: every callback, mutations among them, bytes, results below zero, callbacks that threw.</summary>
    public readonly record struct ReplicatedMountStatistics(
        long Operations, long Mutations, long BytesRead, long BytesWritten, long Errors, long Failures);
}
