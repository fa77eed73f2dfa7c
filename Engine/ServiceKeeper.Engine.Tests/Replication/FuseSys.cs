// System calls for the FUSE tests, on absolute paths: they return 0 (or a descriptor / a size) or -errno,
// so a test asserts the exact errno an application would see. (DllImport: this project has no unsafe code.)
using System;
using System.Runtime.InteropServices;
using System.Text;

namespace ServiceKeeper.Engine.Tests.Replication
{
    [StructLayout(LayoutKind.Explicit, Size = 144)]
    internal struct TestStat
    {
        [FieldOffset(8)] public ulong Ino;
        [FieldOffset(16)] public ulong Nlink;
        [FieldOffset(24)] public uint Mode;
        [FieldOffset(28)] public uint Uid;
        [FieldOffset(32)] public uint Gid;
        [FieldOffset(48)] public long Size;
        [FieldOffset(64)] public long Blocks;
        [FieldOffset(88)] public long MtimeSec;
        [FieldOffset(96)] public long MtimeNsec;
    }

    internal static class FuseSys
    {
        public const int ENOENT = 2, EACCES = 13, EEXIST = 17, ENOTDIR = 20, EISDIR = 21, EINVAL = 22, EROFS = 30, ENOTEMPTY = 39, ENODATA = 61, EOPNOTSUPP = 95, ESTALE = 116;
        public const int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0x40, O_EXCL = 0x80, O_TRUNC = 0x200, O_DIRECTORY = 0x10000, O_TMPFILE = 0x410000;
        public const int SEEK_SET = 0, SEEK_DATA = 3, SEEK_HOLE = 4;
        private const int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100, AT_REMOVEDIR = 0x200, O_CLOEXEC = 0x80000;

        [DllImport("libc", EntryPoint = "open", SetLastError = true)]
        private static extern int open(string path, int flags, uint mode);

        [DllImport("libc", EntryPoint = "close")]
        private static extern int close(int fd);

        [DllImport("libc", EntryPoint = "mkdir", SetLastError = true)]
        private static extern int mkdir(string path, uint mode);

        [DllImport("libc", EntryPoint = "rmdir", SetLastError = true)]
        private static extern int rmdir(string path);

        [DllImport("libc", EntryPoint = "unlink", SetLastError = true)]
        private static extern int unlink(string path);

        [DllImport("libc", EntryPoint = "renameat2", SetLastError = true)]
        private static extern int renameat2(int a, string from, int b, string to, uint flags);

        [DllImport("libc", EntryPoint = "link", SetLastError = true)]
        private static extern int link(string from, string to);

        [DllImport("libc", EntryPoint = "symlink", SetLastError = true)]
        private static extern int symlink(string target, string link);

        [DllImport("libc", EntryPoint = "chmod", SetLastError = true)]
        private static extern int chmod(string path, uint mode);

        [DllImport("libc", EntryPoint = "fstatat", SetLastError = true)]
        private static extern int fstatat(int dirfd, string path, out TestStat st, int flags);

        [DllImport("libc", EntryPoint = "lsetxattr", SetLastError = true)]
        private static extern int lsetxattr(string path, string name, byte[] value, nuint size, int flags);

        [DllImport("libc", EntryPoint = "lgetxattr", SetLastError = true)]
        private static extern nint lgetxattr(string path, string name, byte[] value, nuint size);

        [DllImport("libc", EntryPoint = "llistxattr", SetLastError = true)]
        private static extern nint llistxattr(string path, byte[] list, nuint size);

        [DllImport("libc", EntryPoint = "lremovexattr", SetLastError = true)]
        private static extern int lremovexattr(string path, string name);

        [DllImport("libc", EntryPoint = "pwrite", SetLastError = true)]
        private static extern nint pwrite(int fd, byte[] data, nuint count, long offset);

        [DllImport("libc", EntryPoint = "lseek", SetLastError = true)]
        private static extern long lseek(int fd, long offset, int whence);

        [DllImport("libc", EntryPoint = "utimensat", SetLastError = true)]
        private static extern int utimensat(int dirfd, string path, long[] times, int flags);

        [DllImport("libc", EntryPoint = "pread", SetLastError = true)]
        private static extern nint pread(int fd, byte[] data, nuint count, long offset);

        [DllImport("libc", EntryPoint = "ftruncate", SetLastError = true)]
        private static extern int ftruncate(int fd, long length);

        [DllImport("libc", EntryPoint = "truncate", SetLastError = true)]
        private static extern int truncate(string path, long length);

        [DllImport("libc", EntryPoint = "fchmod", SetLastError = true)]
        private static extern int fchmod(int fd, uint mode);

        [DllImport("libc", EntryPoint = "copy_file_range", SetLastError = true)]
        private static extern nint copy_file_range(int fdIn, ref long offIn, int fdOut, ref long offOut, nuint length, uint flags);

        [DllImport("libc", EntryPoint = "fchown", SetLastError = true)]
        private static extern int fchown(int fd, uint uid, uint gid);

        [DllImport("libc", EntryPoint = "futimens", SetLastError = true)]
        private static extern int futimens(int fd, long[] times);

        [DllImport("libc", EntryPoint = "fstat", SetLastError = true)]
        private static extern int fstat(int fd, out TestStat st);

        [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
        private static extern int fsync(int fd);

        [DllImport("libc", EntryPoint = "fallocate", SetLastError = true)]
        private static extern int fallocate(int fd, int mode, long offset, long length);

        private static int R(long r) => r < 0 ? -Marshal.GetLastPInvokeError() : (int)r;

        public static int Open(string path, int flags, uint mode = 0x1A4) => R(open(path, flags | O_CLOEXEC, mode));

        public static int Close(int fd) => close(fd);

        public static int Mkdir(string path, uint mode = 0x1ED) => R(mkdir(path, mode));

        public static int Rmdir(string path) => R(rmdir(path));

        public static int Unlink(string path) => R(unlink(path));

        public static int Rename(string from, string to, uint flags = 0) => R(renameat2(AT_FDCWD, from, AT_FDCWD, to, flags));

        public static int Link(string from, string to) => R(link(from, to));

        public static int Symlink(string target, string linkPath) => R(symlink(target, linkPath));

        public static int Chmod(string path, uint mode) => R(chmod(path, mode));

        public static int Lstat(string path, out TestStat st) => R(fstatat(AT_FDCWD, path, out st, AT_SYMLINK_NOFOLLOW));

        public static TestStat Lstat(string path)
        {
            int r = Lstat(path, out var st);
            if (r != 0)
                throw new InvalidOperationException($"lstat {path}: {Marshal.GetPInvokeErrorMessage(-r)}");
            return st;
        }

        public static int SetXattr(string path, string name, byte[] value, int flags = 0) =>
            R(lsetxattr(path, name, value, (nuint)value.Length, flags));

        public static byte[]? GetXattr(string path, string name, out int error)
        {
            var buf = new byte[65536];
            var r = R(lgetxattr(path, name, buf, (nuint)buf.Length));
            error = r < 0 ? r : 0;
            return r < 0 ? null : buf.AsSpan(0, r).ToArray();
        }

        public static string[] ListXattr(string path)
        {
            var buf = new byte[65536];
            var r = R(llistxattr(path, buf, (nuint)buf.Length));
            return r <= 0 ? Array.Empty<string>() : Encoding.UTF8.GetString(buf, 0, r).Split('\0', StringSplitOptions.RemoveEmptyEntries);
        }

        public static int RemoveXattr(string path, string name) => R(lremovexattr(path, name));

        public static int PWrite(int fd, byte[] data, long offset) => R(pwrite(fd, data, (nuint)data.Length, offset));

        public static int PRead(int fd, byte[] data, long offset) => R(pread(fd, data, (nuint)data.Length, offset));

        public static int FTruncate(int fd, long length) => R(ftruncate(fd, length));
        public static int Truncate(string path, long length) => R(truncate(path, length));

        public static int FChmod(int fd, uint mode) => R(fchmod(fd, mode));

        public static int Fstat(int fd, out TestStat st) => R(fstat(fd, out st));

        public static int FChown(int fd, uint uid, uint gid) => R(fchown(fd, uid, gid));

        public static int FUtimens(int fd, long atimeSec, long atimeNs, long mtimeSec, long mtimeNs) =>
            R(futimens(fd, new[] { atimeSec, atimeNs, mtimeSec, mtimeNs }));

        public static long CopyFileRange(int fdIn, long offIn, int fdOut, long offOut, long length)
        {
            var r = copy_file_range(fdIn, ref offIn, fdOut, ref offOut, (nuint)length, 0);
            return r < 0 ? -Marshal.GetLastPInvokeError() : r;
        }

        public static int Fsync(int fd) => R(fsync(fd));

        public static int FAllocate(int fd, int mode, long offset, long length) => R(fallocate(fd, mode, offset, length));

        public static long Seek(int fd, long offset, int whence)
        {
            var r = lseek(fd, offset, whence);
            return r < 0 ? -Marshal.GetLastPInvokeError() : r;
        }

        public static int Utimens(string path, long atimeSec, long atimeNs, long mtimeSec, long mtimeNs) =>
            R(utimensat(AT_FDCWD, path, new[] { atimeSec, atimeNs, mtimeSec, mtimeNs }, AT_SYMLINK_NOFOLLOW));
    }
}
