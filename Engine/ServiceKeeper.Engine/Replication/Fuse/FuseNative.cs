// libfuse3 (high-level API, FUSE_USE_VERSION 35 layouts on x86-64) as ReplicatedMount uses it: fuse_new,
// fuse_mount, fuse_loop_mt on a dedicated thread, fuse_get_context in callbacks. Never fuse_main: it forks
// and installs signal handlers.
using System;
using System.Runtime.InteropServices;

namespace ServiceKeeper.Engine.Replication.Fuse
{
    /// <summary>struct fuse_args.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct FuseArgs
    {
        public int Argc;
        public byte** Argv;
        public int Allocated;
    }

    /// <summary>struct fuse_file_info (40 bytes): flags @0, bitfield word @4, fh @16.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 40)]
    internal struct FuseFileInfo
    {
        [FieldOffset(0)] public int Flags;
        [FieldOffset(4)] public uint Bits;
        [FieldOffset(16)] public ulong Fh;
        [FieldOffset(24)] public ulong LockOwner;

        public const uint DirectIo = 1 << 1;
        public const uint KeepCache = 1 << 2;
    }

    /// <summary>struct fuse_context.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 40)]
    internal struct FuseContext
    {
        [FieldOffset(0)] public IntPtr Fuse;
        [FieldOffset(8)] public uint Uid;
        [FieldOffset(12)] public uint Gid;
        [FieldOffset(16)] public int Pid;
        [FieldOffset(24)] public IntPtr PrivateData;
        [FieldOffset(32)] public uint Umask;
    }

    /// <summary>struct fuse_conn_info: the fields set in init.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 128)]
    internal struct FuseConnInfo
    {
        [FieldOffset(8)] public uint MaxWrite;
        [FieldOffset(12)] public uint MaxRead;
        [FieldOffset(16)] public uint MaxReadahead;
        [FieldOffset(20)] public uint Capable;
        [FieldOffset(24)] public uint Want;
        [FieldOffset(28)] public uint MaxBackground;

        public const uint CapAtomicOTrunc = 1 << 3;
        public const uint CapWritebackCache = 1 << 16;
        public const uint CapHandleKillpriv = 1 << 20;
        public const uint CapParallelDirops = 1 << 18;
        public const uint CapAsyncRead = 1 << 0;
    }

    /// <summary>struct fuse_config (128 bytes): the offsets of the fields set in init.</summary>
    internal static class FuseConfig
    {
        public const int HardRemove = 60, UseIno = 64, NullpathOk = 104;
    }

    /// <summary>struct fuse_operations: 42 function pointers; the slot indexes below.</summary>
    internal static class FuseOp
    {
        public const int Count = 42;
        public const int Getattr = 0, Readlink = 1, Mknod = 2, Mkdir = 3, Unlink = 4, Rmdir = 5, Symlink = 6, Rename = 7;
        public const int Link = 8, Chmod = 9, Chown = 10, Truncate = 11, Open = 12, Read = 13, Write = 14, Statfs = 15;
        public const int Flush = 16, Release = 17, Fsync = 18, Setxattr = 19, Getxattr = 20, Listxattr = 21, Removexattr = 22;
        public const int Opendir = 23, Readdir = 24, Releasedir = 25, Fsyncdir = 26, Init = 27, Destroy = 28, Access = 29;
        public const int Create = 30, Lock = 31, Utimens = 32, Bmap = 33, Ioctl = 34, Poll = 35, WriteBuf = 36, ReadBuf = 37;
        public const int Flock = 38, Fallocate = 39, CopyFileRange = 40, Lseek = 41;
    }

    /// <summary>struct fuse_custom_io: writev, read, splice_receive, splice_send.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct FuseCustomIo
    {
        public IntPtr Writev;
        public IntPtr Read;
        public IntPtr SpliceReceive;
        public IntPtr SpliceSend;
    }

    /// <summary>struct iovec.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct IoVec
    {
        public byte* Base;
        public nuint Length;
    }

    internal static unsafe partial class FuseNative
    {
        public const string Library = "libfuse3.so.3";

        [LibraryImport(Library, EntryPoint = "fuse_version")]
        public static partial int Version();

        [LibraryImport(Library, EntryPoint = "fuse_opt_add_arg")]
        public static partial int OptAddArg(FuseArgs* args, byte* arg);

        [LibraryImport(Library, EntryPoint = "fuse_opt_free_args")]
        public static partial void OptFreeArgs(FuseArgs* args);

        /// <summary>fuse_new@FUSE_3.1 (the default version).</summary>
        [LibraryImport(Library, EntryPoint = "fuse_new")]
        public static partial IntPtr New(FuseArgs* args, IntPtr* operations, nuint size, IntPtr userData);

        [LibraryImport(Library, EntryPoint = "fuse_mount")]
        public static partial int Mount(IntPtr fuse, byte* mountpoint);

        [LibraryImport(Library, EntryPoint = "fuse_unmount")]
        public static partial void Unmount(IntPtr fuse);

        /// <summary>fuse_loop_mt@FUSE_3.12: config NULL = defaults.</summary>
        [LibraryImport(Library, EntryPoint = "fuse_loop_mt")]
        public static partial int LoopMt(IntPtr fuse, IntPtr config);

        [LibraryImport(Library, EntryPoint = "fuse_destroy")]
        public static partial void Destroy(IntPtr fuse);

        [LibraryImport(Library, EntryPoint = "fuse_get_session")]
        public static partial IntPtr GetSession(IntPtr fuse);

        /// <summary>Serve an already mounted /dev/fuse descriptor through our own read/writev (instead of fuse_session_mount).</summary>
        [LibraryImport(Library, EntryPoint = "fuse_session_custom_io")]
        public static partial int SessionCustomIo(IntPtr session, FuseCustomIo* io, int fd);

        [LibraryImport(Library, EntryPoint = "fuse_get_context")]
        public static partial FuseContext* GetContext();
    }
}
