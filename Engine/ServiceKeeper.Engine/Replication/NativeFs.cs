// The few Linux calls replication needs besides LinuxDirectory: lstat with everything (statx), extended
// attributes, fsync/syncfs of a path. Paths are absolute (typically under LinuxDirectory.ProcPath, so they
// read the real tree under a FUSE mount). Errors come back as -errno, never as exceptions.
using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;

namespace ServiceKeeper.Engine.Replication
{
    internal enum FsEntryType : byte { File = 1, Directory, Symlink, Other }

    internal readonly record struct FsStat(
        FsEntryType Type, uint Mode, int Uid, int Gid, long Size, long MtimeNs, long CtimeNs,
        ulong Inode, uint Links, ulong Rdev)
    {
        /// <summary>Permission bits and file type as st_mode.</summary>
        public uint Permissions => Mode & 0xFFF;
    }

    internal static unsafe partial class NativeFs
    {
        private const int AtFdCwd = -100;
        private const int AtSymlinkNoFollow = 0x100;
        private const uint StatxBasicStats = 0x7ff;
        private const int ORdonly = 0, OCloexec = 0x80000, ONofollow = 0x20000, ODirectory = 0x10000;

        [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        private static partial int StatxNative(int dirfd, string path, int flags, uint mask, byte* buffer);

        [LibraryImport("libc", EntryPoint = "llistxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        private static partial nint LListXattr(string path, byte* list, nuint size);

        [LibraryImport("libc", EntryPoint = "lgetxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        private static partial nint LGetXattr(string path, string name, byte* value, nuint size);

        [LibraryImport("libc", EntryPoint = "posix_fadvise")]
        private static partial int PosixFadvise(int fd, long offset, long length, int advice);

        /// <summary>
        /// Starts reading the given ranges into the page cache (POSIX_FADV_WILLNEED, asynchronous): scattered reads
        /// that follow then find their data or wait for I/O already queued together, not one request at a time.
        /// </summary>
        public static void WillNeed(Microsoft.Win32.SafeHandles.SafeFileHandle file, IEnumerable<(long Offset, long Length)> ranges)
        {
            bool added = false;
            try
            {
                file.DangerousAddRef(ref added);
                int fd = (int)file.DangerousGetHandle();
                foreach (var (offset, length) in Coalesce(ranges)) PosixFadvise(fd, offset, length, 3);
            }
            finally
            {
                if (added) file.DangerousRelease();
            }
        }

        /// <summary>Ranges in the given order, each one that starts where the previous ended merged into it; empty ones dropped.</summary>
        internal static IEnumerable<(long Offset, long Length)> Coalesce(IEnumerable<(long Offset, long Length)> ranges)
        {
            long start = 0, end = 0;
            foreach (var (offset, length) in ranges)
            {
                if (length <= 0) continue;
                if (offset == end && end > start) { end += length; continue; }
                if (end > start) yield return (start, end - start);
                (start, end) = (offset, offset + length);
            }
            if (end > start) yield return (start, end - start);
        }

        [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        private static partial int Open(string path, int flags, int mode);

        [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
        private static partial int Fsync(int fd);

        [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
        private static partial int Fdatasync(int fd);

        [LibraryImport("libc", EntryPoint = "syncfs", SetLastError = true)]
        private static partial int SyncFs(int fd);

        [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
        private static partial int Close(int fd);

        public static int Stat(string path, out FsStat stat)
        {
            byte* b = stackalloc byte[256];
            if (StatxNative(AtFdCwd, path, AtSymlinkNoFollow, StatxBasicStats, b) != 0)
            {
                stat = default;
                return -Marshal.GetLastPInvokeError();
            }
            uint mode = *(ushort*)(b + 28);
            var type = (mode & 0xF000) switch { 0x8000 => FsEntryType.File, 0x4000 => FsEntryType.Directory, 0xA000 => FsEntryType.Symlink, _ => FsEntryType.Other };
            long Time(int at) => *(long*)(b + at) * 1_000_000_000L + *(uint*)(b + at + 8);
            ulong rdev = ((ulong)*(uint*)(b + 128) << 32) | *(uint*)(b + 132);
            stat = new FsStat(type, mode, (int)*(uint*)(b + 20), (int)*(uint*)(b + 24), *(long*)(b + 40), Time(112), Time(96),
                *(ulong*)(b + 32), *(uint*)(b + 16), rdev);
            return 0;
        }

        /// <summary>Names and values of a path's extended attributes (not following a symlink); empty on error.</summary>
        public static SortedDictionary<string, byte[]> Xattrs(string path)
        {
            var result = new SortedDictionary<string, byte[]>(StringComparer.Ordinal);
            var size = LListXattr(path, null, 0);
            if (size <= 0) return result;
            var names = new byte[size + 256];
            fixed (byte* n = names) size = LListXattr(path, n, (nuint)names.Length);
            if (size <= 0) return result;
            int start = 0;
            for (int i = 0; i < size; i++)
            {
                if (names[i] != 0) continue;
                var name = Encoding.UTF8.GetString(names, start, i - start);
                start = i + 1;
                var len = LGetXattr(path, name, null, 0);
                if (len < 0) continue;
                var value = new byte[len];
                fixed (byte* v = value) len = len == 0 ? 0 : LGetXattr(path, name, v, (nuint)value.Length);
                if (len < 0) continue;
                result[name] = len == value.Length ? value : value.AsSpan(0, (int)len).ToArray();
            }
            return result;
        }

        /// <summary>fsync (or fdatasync) a file or directory by path, not following a final symlink.</summary>
        public static int SyncPath(string path, bool dataOnly)
        {
            int fd = Open(path, ORdonly | OCloexec | ONofollow, 0);
            if (fd < 0) return -Marshal.GetLastPInvokeError();
            int r = dataOnly ? Fdatasync(fd) : Fsync(fd);
            int err = r == 0 ? 0 : -Marshal.GetLastPInvokeError();
            Close(fd);
            return err;
        }

        /// <summary>syncfs on the file system holding a directory: everything written before is durable.</summary>
        public static int SyncFileSystem(string directory)
        {
            int fd = Open(directory, ORdonly | OCloexec | ODirectory, 0);
            if (fd < 0) return -Marshal.GetLastPInvokeError();
            int r = SyncFs(fd);
            int err = r == 0 ? 0 : -Marshal.GetLastPInvokeError();
            Close(fd);
            return err;
        }
    }
}
