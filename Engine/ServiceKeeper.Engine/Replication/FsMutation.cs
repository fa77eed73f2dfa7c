// The seam between the file system that intercepts an application's changes (Replication/Fuse) and
// what happens to them besides the local apply (replication to the secondary, the dirty journal).
// One FsMutation describes one mutating operation by path relative to the replicated directory, so
// the same value is applied on the primary (through the FUSE file system) and on the secondary
// (by the replication receiver), both through IMutationApplier.
using System;

namespace ServiceKeeper.Engine.Replication
{
    public enum FsOp : byte
    {
        Write = 1,
        Truncate,
        Create,
        Mkdir,
        Mknod,
        Unlink,
        Rmdir,
        Rename,
        Link,
        Symlink,
        Chmod,
        Chown,
        Utimens,
        Fallocate,
        SetXattr,
        RemoveXattr,
        /// <summary>fsync / fdatasync / flush: a barrier; Flags bit 0 = data only.</summary>
        Fsync,
    }

    /// <summary>
    /// One mutating operation. Paths are relative to the replicated directory, '/'-separated, without a
    /// leading slash ("" is the directory itself). Times are already resolved (never UTIME_NOW), so both
    /// nodes store the same value; <see cref="UtimeOmit"/> leaves a time unchanged.
    /// </summary>
    public sealed class FsMutation
    {
        public const long UtimeOmit = (1L << 30) - 2;

        public FsOp Op { get; set; }

        public string Path { get; set; } = "";

        /// <summary>Rename: the new path. Link: the new link's path. Symlink: the link's content (Path is the link).</summary>
        public string? Target { get; set; }

        /// <summary>Write / Fallocate: where; Truncate: the new size.</summary>
        public long Offset { get; set; }

        /// <summary>
        /// Fallocate: how many bytes. Write: how many bytes of the same write follow in later parts (a large write is sent
        /// in parts): the secondary acknowledges a write once, after its last part.
        /// </summary>
        public long Length { get; set; }

        /// <summary>Write: the bytes; SetXattr: the value. Valid until IMutationSink.Complete returns; keep a copy to hold it longer.</summary>
        public ReadOnlyMemory<byte> Data { get; set; }

        /// <summary>Create / Mkdir / Mknod / Chmod: permission and type bits.</summary>
        public uint Mode { get; set; }

        /// <summary>Create / Mkdir / Mknod / Symlink / Chown: owner; -1 leaves it unchanged.</summary>
        public int Uid { get; set; } = -1;

        public int Gid { get; set; } = -1;

        /// <summary>Rename: renameat2 flags. Fallocate: mode. SetXattr: XATTR_CREATE/REPLACE. Create: open flags. Fsync: bit 0 = datasync.</summary>
        public uint Flags { get; set; }

        /// <summary>SetXattr / RemoveXattr: the attribute's name.</summary>
        public string? Name { get; set; }

        public ulong Rdev { get; set; }

        public long AtimeSeconds { get; set; }
        public long AtimeNanoseconds { get; set; } = UtimeOmit;
        public long MtimeSeconds { get; set; }
        public long MtimeNanoseconds { get; set; } = UtimeOmit;

        /// <summary>
        /// On the node that made the change, an open descriptor of the file when the kernel gave one
        /// (write, truncate, fsync on an open file); -1 otherwise. Never sent: the other node works by path.
        /// </summary>
        public int LocalHandle { get; set; } = -1;

        public override string ToString() => Target == null ? $"{Op} {Path}" : $"{Op} {Path} -> {Target}";
    }

    /// <summary>Applies mutations to a directory tree; returns 0 or -errno, never throws for a file system error.</summary>
    public interface IMutationApplier
    {
        int Apply(FsMutation mutation);
    }

    /// <summary>A mutation in flight between <see cref="IMutationSink.Begin"/> and <see cref="IMutationSink.Complete"/>.</summary>
    public readonly record struct MutationTicket(long Sequence, object? State);

    /// <summary>
    /// Sees every mutation the file system makes, on the file system's own threads. The file system calls
    /// Begin before it applies the mutation locally (so sending and applying overlap), then Complete with
    /// the local result; Complete blocks until whatever the sink promised is done (the secondary applied or
    /// stored the change, or the change is in the dirty journal) and returns the result the application
    /// gets (0 or -errno). A sink orders mutations of one file: Begin may wait for an earlier one.
    /// </summary>
    public interface IMutationSink
    {
        MutationTicket Begin(FsMutation mutation);

        int Complete(MutationTicket ticket, int localResult);
    }
}
