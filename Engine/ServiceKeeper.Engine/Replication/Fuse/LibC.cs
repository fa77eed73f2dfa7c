// The libc and raw syscalls the replicated file system needs (the *at() family, openat2, xattrs, stat),
// bound with byte* paths so callers can pass NUL-terminated UTF-8 from the stack or straight from libfuse.
using System;
using System.Runtime.InteropServices;

namespace ServiceKeeper.Engine.Replication.Fuse
{
    /// <summary>struct timespec.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    /// <summary>struct stat on x86-64 (144 bytes).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 144)]
    internal struct NativeStat
    {
        [FieldOffset(0)] public ulong Dev;
        [FieldOffset(8)] public ulong Ino;
        [FieldOffset(16)] public ulong Nlink;
        [FieldOffset(24)] public uint Mode;
        [FieldOffset(28)] public uint Uid;
        [FieldOffset(32)] public uint Gid;
        [FieldOffset(40)] public ulong Rdev;
        [FieldOffset(48)] public long Size;
        [FieldOffset(56)] public long BlockSize;
        [FieldOffset(64)] public long Blocks;
        [FieldOffset(72)] public Timespec Atime;
        [FieldOffset(88)] public Timespec Mtime;
        [FieldOffset(104)] public Timespec Ctime;
    }

    /// <summary>struct open_how for openat2(2).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    internal static unsafe partial class LibC
    {
        private const string Lib = "libc";

        public const int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_ACCMODE = 3;
        public const int O_CREAT = 0x40, O_EXCL = 0x80, O_NOCTTY = 0x100, O_TRUNC = 0x200, O_APPEND = 0x400;
        public const int O_NONBLOCK = 0x800, O_DIRECT = 0x4000, O_DIRECTORY = 0x10000, O_NOFOLLOW = 0x20000;
        public const int O_CLOEXEC = 0x80000, O_PATH = 0x200000;

        /// <summary>
        /// Open flags worth passing on from the kernel's request (openat2 refuses unknown bits such as
        /// __FMODE_EXEC): access mode, O_TRUNC, O_APPEND, O_NONBLOCK, O_DSYNC/O_SYNC, O_DIRECT, O_LARGEFILE,
        /// O_DIRECTORY, O_NOFOLLOW, O_NOATIME.
        /// </summary>
        public const int OpenFlagsPassed = O_ACCMODE | O_TRUNC | O_APPEND | O_NONBLOCK | 0x101000 | O_DIRECT | 0x8000 | O_DIRECTORY | O_NOFOLLOW | 0x40000;

        public const int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100, AT_REMOVEDIR = 0x200, AT_EMPTY_PATH = 0x1000;

        public const ulong RESOLVE_NO_XDEV = 1, RESOLVE_NO_MAGICLINKS = 2, RESOLVE_NO_SYMLINKS = 4, RESOLVE_BENEATH = 8;

        public const uint S_IFMT = 0xF000, S_IFSOCK = 0xC000, S_IFLNK = 0xA000, S_IFREG = 0x8000, S_IFBLK = 0x6000;
        public const uint S_IFDIR = 0x4000, S_IFCHR = 0x2000, S_IFIFO = 0x1000, S_ISGID = 0x400;

        public const int EPERM = 1, ENOENT = 2, EIO = 5, EBADF = 9, EAGAIN = 11, ENOMEM = 12, EACCES = 13, EBUSY = 16, EEXIST = 17;
        public const int EXDEV = 18, ENOTDIR = 20, EISDIR = 21, EINVAL = 22, ENOSPC = 28, EROFS = 30, ERANGE = 34;
        public const int ENAMETOOLONG = 36, ENOSYS = 38, ENOTEMPTY = 39, ELOOP = 40, ENODATA = 61, EILSEQ = 84;
        public const int EOPNOTSUPP = 95, ENOTCONN = 107;

        public const int SYS_openat2 = 437, SYS_fchmodat2 = 452;
        public const int CLOCK_REALTIME = 0;
        public const int MNT_DETACH = 2;
        public const long UTIME_NOW = (1L << 30) - 1;
        public const long UTIME_OMIT = (1L << 30) - 2;

        [LibraryImport(Lib, EntryPoint = "openat", SetLastError = true)]
        public static partial int OpenAt(int dirfd, byte* path, int flags, uint mode);

        [LibraryImport(Lib, EntryPoint = "syscall", SetLastError = true)]
        private static partial long Syscall4(long number, long a1, long a2, long a3, long a4);

        [LibraryImport(Lib, EntryPoint = "close")]
        public static partial int Close(int fd);

        [LibraryImport(Lib, EntryPoint = "dup", SetLastError = true)]
        public static partial int Dup(int fd);

        [LibraryImport(Lib, EntryPoint = "read", SetLastError = true)]
        public static partial nint Read(int fd, byte* buffer, nuint count);

        [LibraryImport(Lib, EntryPoint = "pread", SetLastError = true)]
        public static partial nint PRead(int fd, byte* buffer, nuint count, long offset);

        [LibraryImport(Lib, EntryPoint = "pwrite", SetLastError = true)]
        public static partial nint PWrite(int fd, byte* buffer, nuint count, long offset);

        [LibraryImport(Lib, EntryPoint = "ftruncate", SetLastError = true)]
        public static partial int FTruncate(int fd, long length);

        [LibraryImport(Lib, EntryPoint = "fsync", SetLastError = true)]
        public static partial int FSync(int fd);

        [LibraryImport(Lib, EntryPoint = "fdatasync", SetLastError = true)]
        public static partial int FDataSync(int fd);

        [LibraryImport(Lib, EntryPoint = "fallocate", SetLastError = true)]
        public static partial int FAllocate(int fd, int mode, long offset, long length);

        [LibraryImport(Lib, EntryPoint = "lseek", SetLastError = true)]
        public static partial long LSeek(int fd, long offset, int whence);

        [LibraryImport(Lib, EntryPoint = "mkdirat", SetLastError = true)]
        public static partial int MkdirAt(int dirfd, byte* path, uint mode);

        [LibraryImport(Lib, EntryPoint = "mknodat", SetLastError = true)]
        public static partial int MknodAt(int dirfd, byte* path, uint mode, ulong dev);

        [LibraryImport(Lib, EntryPoint = "unlinkat", SetLastError = true)]
        public static partial int UnlinkAt(int dirfd, byte* path, int flags);

        [LibraryImport(Lib, EntryPoint = "renameat2", SetLastError = true)]
        public static partial int RenameAt2(int olddirfd, byte* oldpath, int newdirfd, byte* newpath, uint flags);

        [LibraryImport(Lib, EntryPoint = "linkat", SetLastError = true)]
        public static partial int LinkAt(int olddirfd, byte* oldpath, int newdirfd, byte* newpath, int flags);

        [LibraryImport(Lib, EntryPoint = "symlinkat", SetLastError = true)]
        public static partial int SymlinkAt(byte* target, int newdirfd, byte* linkpath);

        [LibraryImport(Lib, EntryPoint = "readlinkat", SetLastError = true)]
        public static partial nint ReadlinkAt(int dirfd, byte* path, byte* buffer, nuint size);

        [LibraryImport(Lib, EntryPoint = "fchownat", SetLastError = true)]
        public static partial int FChownAt(int dirfd, byte* path, uint uid, uint gid, int flags);

        [LibraryImport(Lib, EntryPoint = "fchmod", SetLastError = true)]
        public static partial int FChmod(int fd, uint mode);

        [LibraryImport(Lib, EntryPoint = "fchown", SetLastError = true)]
        public static partial int FChown(int fd, uint uid, uint gid);

        [LibraryImport(Lib, EntryPoint = "futimens", SetLastError = true)]
        public static partial int FUtimens(int fd, Timespec* times);

        [LibraryImport(Lib, EntryPoint = "chmod", SetLastError = true)]
        public static partial int Chmod(byte* path, uint mode);

        [LibraryImport(Lib, EntryPoint = "utimensat", SetLastError = true)]
        public static partial int UtimensAt(int dirfd, byte* path, Timespec* times, int flags);

        [LibraryImport(Lib, EntryPoint = "fstatat", SetLastError = true)]
        public static partial int FStatAt(int dirfd, byte* path, NativeStat* st, int flags);

        [LibraryImport(Lib, EntryPoint = "fstat", SetLastError = true)]
        public static partial int FStat(int fd, NativeStat* st);

        [LibraryImport(Lib, EntryPoint = "stat", SetLastError = true)]
        public static partial int Stat(byte* path, NativeStat* st);

        [LibraryImport(Lib, EntryPoint = "fstatvfs", SetLastError = true)]
        public static partial int FStatVfs(int fd, void* buffer);

        [LibraryImport(Lib, EntryPoint = "faccessat", SetLastError = true)]
        public static partial int FAccessAt(int dirfd, byte* path, int mode, int flags);

        [LibraryImport(Lib, EntryPoint = "getdents64", SetLastError = true)]
        public static partial nint GetDents64(int fd, byte* buffer, nuint size);

        [LibraryImport(Lib, EntryPoint = "getxattr", SetLastError = true)]
        public static partial nint GetXattr(byte* path, byte* name, byte* value, nuint size);

        [LibraryImport(Lib, EntryPoint = "lgetxattr", SetLastError = true)]
        public static partial nint LGetXattr(byte* path, byte* name, byte* value, nuint size);

        [LibraryImport(Lib, EntryPoint = "llistxattr", SetLastError = true)]
        public static partial nint LListXattr(byte* path, byte* list, nuint size);

        [LibraryImport(Lib, EntryPoint = "setxattr", SetLastError = true)]
        public static partial int SetXattr(byte* path, byte* name, byte* value, nuint size, int flags);

        [LibraryImport(Lib, EntryPoint = "listxattr", SetLastError = true)]
        public static partial nint ListXattr(byte* path, byte* list, nuint size);

        [LibraryImport(Lib, EntryPoint = "removexattr", SetLastError = true)]
        public static partial int RemoveXattr(byte* path, byte* name);

        [LibraryImport(Lib, EntryPoint = "umount2", SetLastError = true)]
        public static partial int Umount2(byte* target, int flags);

        [LibraryImport(Lib, EntryPoint = "clock_gettime")]
        public static partial int ClockGetTime(int clock, Timespec* ts);

        [LibraryImport(Lib, EntryPoint = "open", SetLastError = true)]
        public static partial int Open(byte* path, int flags, uint mode);

        [LibraryImport(Lib, EntryPoint = "write", SetLastError = true)]
        public static partial nint WriteFd(int fd, byte* buffer, nuint count);

        [LibraryImport(Lib, EntryPoint = "mount", SetLastError = true)]
        public static partial int Mount(byte* source, byte* target, byte* fsType, ulong flags, byte* data);

        [LibraryImport(Lib, EntryPoint = "writev", SetLastError = true)]
        public static partial nint Writev(int fd, IoVec* iov, int count);

        [LibraryImport(Lib, EntryPoint = "__errno_location")]
        public static partial int* ErrnoLocation();

        [LibraryImport(Lib, EntryPoint = "geteuid")]
        public static partial uint GetEuid();

        [LibraryImport(Lib, EntryPoint = "getegid")]
        public static partial uint GetEgid();

        public const ulong MS_RDONLY = 1, MS_NOSUID = 2, MS_NODEV = 4;

        [LibraryImport(Lib, EntryPoint = "umask")]
        public static partial uint Umask(uint mask);

        public static int Errno => Marshal.GetLastPInvokeError();

        /// <summary>openat2(2): returns the descriptor or -1 with errno set.</summary>
        public static int OpenAt2(int dirfd, byte* path, ulong flags, ulong mode, ulong resolve)
        {
            var how = new OpenHow { Flags = flags, Mode = mode, Resolve = resolve };
            return (int)Syscall4(SYS_openat2, dirfd, (long)path, (long)&how, sizeof(OpenHow));
        }

        /// <summary>fchmodat2(2) (Linux 6.6): honours AT_SYMLINK_NOFOLLOW. -1 with errno set on failure.</summary>
        public static int FChmodAt2(int dirfd, byte* path, uint mode, int flags) =>
            (int)Syscall4(SYS_fchmodat2, dirfd, (long)path, mode, flags);

        public static Timespec Now()
        {
            Timespec ts;
            ClockGetTime(CLOCK_REALTIME, &ts);
            return ts;
        }
    }
}
