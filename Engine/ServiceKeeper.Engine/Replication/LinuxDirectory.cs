// A replicated directory on Linux, reached through a descriptor opened before the FUSE mount goes on top:
// applies FsMutation values with *at() syscalls beneath that descriptor (never following a symlink out of
// the tree) and offers the few read-side calls replication needs on the real tree.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using Microsoft.Win32.SafeHandles;
using ServiceKeeper.Engine.Replication.Fuse;

namespace ServiceKeeper.Engine.Replication
{
    public enum FileType : byte { Unknown = 0, Regular, Directory, Symlink, Fifo, CharacterDevice, BlockDevice, Socket }

    /// <summary>lstat of one entry. Mode carries the type and permission bits as st_mode.</summary>
    public readonly record struct FileStatus(
        FileType Type, uint Mode, int Uid, int Gid, long Size, long Blocks,
        long MtimeSeconds, long MtimeNanoseconds, long CtimeSeconds, long CtimeNanoseconds,
        ulong Inode, ulong Links, ulong Rdev)
    {
        public uint Permissions => Mode & 0xFFF;

        internal static FileType TypeOf(uint mode) => (mode & LibC.S_IFMT) switch
        {
            LibC.S_IFREG => FileType.Regular,
            LibC.S_IFDIR => FileType.Directory,
            LibC.S_IFLNK => FileType.Symlink,
            LibC.S_IFIFO => FileType.Fifo,
            LibC.S_IFCHR => FileType.CharacterDevice,
            LibC.S_IFBLK => FileType.BlockDevice,
            LibC.S_IFSOCK => FileType.Socket,
            _ => FileType.Unknown,
        };

        internal static FileStatus From(in NativeStat st) => new(
            TypeOf(st.Mode), st.Mode, (int)st.Uid, (int)st.Gid, st.Size, st.Blocks,
            st.Mtime.Seconds, st.Mtime.Nanoseconds, st.Ctime.Seconds, st.Ctime.Nanoseconds,
            st.Ino, st.Nlink, st.Rdev);
    }

    public readonly record struct DirectoryEntry(string Name, FileType Type, ulong Inode);

    [SkipLocalsInit]
    public sealed unsafe class LinuxDirectory : IMutationApplier, IDisposable
    {
        /// <summary>Fsync Flags bit 0: fdatasync instead of fsync.</summary>
        public const uint FsyncDataOnly = 1;

        /// <summary>Fsync Flags bit 1: a flush (close) barrier: nothing to do on disk, only ordering for the sink.</summary>
        public const uint FsyncFlushOnly = 2;

        internal const int PathMax = 4096;
        private const ulong Resolve = LibC.RESOLVE_BENEATH | LibC.RESOLVE_NO_SYMLINKS;
        private static volatile bool noOpenat2;
        private static volatile bool noFchmodat2;

        private readonly WriteHandleCache handles;
        private readonly uint umask;
        private int descriptor;

        private LinuxDirectory(string path, int fd, int cachedHandles)
        {
            Path = path;
            descriptor = fd;
            ProcPath = "/proc/self/fd/" + fd.ToString(CultureInfo.InvariantCulture);
            handles = new WriteHandleCache(cachedHandles);
            umask = ReadUmask();
        }

        /// <summary>How many times a file was opened to apply a mutation by path (the handle cache's misses).</summary>
        internal long PathOpens => handles.Opens;

        /// <summary>The directory's path (where a FUSE mount may now sit on top).</summary>
        public string Path { get; }

        /// <summary>The O_PATH descriptor of the real directory.</summary>
        public int Descriptor => descriptor;

        /// <summary>A path through which managed code reaches the real tree, also under a mount.</summary>
        public string ProcPath { get; }

        /// <summary>Opens <paramref name="path"/> (O_PATH|O_DIRECTORY); do it before mounting over the path.</summary>
        public static LinuxDirectory Open(string path, int cachedHandles = 32)
        {
            ArgumentException.ThrowIfNullOrEmpty(path);
            var full = System.IO.Path.GetFullPath(path);
            int fd;
            byte* b = stackalloc byte[PathMax + 1];
            if (EncodeRaw(full, b) < 0)
                throw new IOException("path too long: " + full);
            fd = LibC.OpenAt(LibC.AT_FDCWD, b, LibC.O_PATH | LibC.O_DIRECTORY | LibC.O_CLOEXEC, 0);
            if (fd < 0)
                throw Error(LibC.Errno, "cannot open directory " + full);
            return new LinuxDirectory(full, fd, cachedHandles);
        }

        public void Dispose()
        {
            var fd = Interlocked.Exchange(ref descriptor, -1);
            if (fd >= 0)
            {
                handles.Clear();
                LibC.Close(fd);
            }
        }

        // ---------------------------------------------------------------- mutations

        /// <summary>Applies <paramref name="m"/> to the real tree; 0 or -errno, never throws for a file system error.</summary>
        public int Apply(FsMutation m)
        {
            ArgumentNullException.ThrowIfNull(m);
            if (descriptor < 0)
                return -LibC.EBADF;
            try
            {
                return m.Op switch
                {
                    FsOp.Write => Write(m),
                    FsOp.Truncate => Truncate(m),
                    FsOp.Create => Create(m, keepOpen: false, out _),
                    FsOp.Mkdir => MakeEntry(m),
                    FsOp.Mknod => MakeEntry(m),
                    FsOp.Symlink => MakeEntry(m),
                    FsOp.Unlink => Remove(m, 0),
                    FsOp.Rmdir => Remove(m, LibC.AT_REMOVEDIR),
                    FsOp.Rename => Rename(m),
                    FsOp.Link => Link(m),
                    FsOp.Chmod => Chmod(m),
                    FsOp.Chown => OnEntry(m.Path, (p, n, _) => LibC.FChownAt(p, n, (uint)m.Uid, (uint)m.Gid, LibC.AT_SYMLINK_NOFOLLOW) < 0 ? -LibC.Errno : 0),
                    FsOp.Utimens => Utimens(m),
                    FsOp.Fallocate => WithWriteHandle(m, fd => LibC.FAllocate(fd, (int)m.Flags, m.Offset, m.Length) < 0 ? -LibC.Errno : 0),
                    FsOp.SetXattr => SetXattr(m),
                    FsOp.RemoveXattr => RemoveXattr(m),
                    FsOp.Fsync => Fsync(m),
                    _ => -LibC.EINVAL,
                };
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A bug here must not take the file system down; the caller sees EIO.
                return -LibC.EIO;
            }
        }

        private int Write(FsMutation m)
        {
            if (m.LocalHandle >= 0)
                return PWriteAll(m.LocalHandle, m.Data.Span, m.Offset);
            var entry = handles.Acquire(this, m.Path, out var r);
            if (entry == null)
                return r;
            try
            {
                return PWriteAll(entry.Fd, m.Data.Span, m.Offset);
            }
            finally
            {
                handles.Release(entry);
            }
        }

        internal static int PWriteAll(int fd, ReadOnlySpan<byte> data, long offset)
        {
            fixed (byte* p = data)
            {
                int done = 0;
                while (done < data.Length)
                {
                    var n = LibC.PWrite(fd, p + done, (nuint)(data.Length - done), offset + done);
                    if (n < 0)
                    {
                        var e = LibC.Errno;
                        if (e == 4)
                            continue; // EINTR
                        return -e;
                    }
                    if (n == 0)
                        return -LibC.EIO;
                    done += (int)n;
                }
                return 0;
            }
        }

        private int Truncate(FsMutation m) =>
            WithWriteHandle(m, fd => LibC.FTruncate(fd, m.Offset) < 0 ? -LibC.Errno : 0);

        private int WithWriteHandle(FsMutation m, Func<int, int> action)
        {
            if (m.LocalHandle >= 0)
                return action(m.LocalHandle);
            var entry = handles.Acquire(this, m.Path, out var r);
            if (entry == null)
                return r;
            try
            {
                return action(entry.Fd);
            }
            finally
            {
                handles.Release(entry);
            }
        }

        /// <summary>
        /// Creates a regular file (O_CREAT with m.Flags), then sets the exact mode and the owner. With
        /// <paramref name="keepOpen"/> the descriptor (opened with m.Flags' access mode) is returned in fd.
        /// </summary>
        internal int Create(FsMutation m, bool keepOpen, out int fd)
        {
            fd = -1;
            byte* b = stackalloc byte[PathMax + 1];
            int enc = Encode(m.Path, b, allowDot: false);
                if (enc < 0)
                    return enc;
            int flags = (int)m.Flags & LibC.OpenFlagsPassed & ~(LibC.O_APPEND | LibC.O_DIRECT | LibC.O_DIRECTORY);
            if (!keepOpen)
                flags = (flags & ~LibC.O_ACCMODE) | LibC.O_WRONLY;
            uint perm = m.Mode & 0xFFF;
            handles.Invalidate(m.Path, subtree: false);
            int f = OpenBeneath(b, flags | LibC.O_CREAT | LibC.O_EXCL | LibC.O_CLOEXEC, perm);
            bool created = f >= 0;
            if (f < 0)
            {
                var e = LibC.Errno;
                if (e != LibC.EEXIST || ((int)m.Flags & LibC.O_EXCL) != 0)
                    return -e;
                // It appeared since the kernel looked: open it as it is, without touching mode or owner.
                f = OpenBeneath(b, flags | LibC.O_CLOEXEC, 0);
                if (f < 0)
                    return -LibC.Errno;
            }
            if (created)
            {
                if ((perm & umask) != 0 && LibC.FChmod(f, perm) < 0)
                    return CloseAndFail(f);
                if ((m.Uid >= 0 || m.Gid >= 0) && FChown(f, m.Uid, m.Gid) < 0)
                    return CloseAndFail(f);
            }
            if (keepOpen)
                fd = f;
            else
                LibC.Close(f);
            return 0;
        }

        private static int CloseAndFail(int fd)
        {
            var e = LibC.Errno;
            LibC.Close(fd);
            return -e;
        }

        private static int FChown(int fd, int uid, int gid)
        {
            // fchownat with AT_EMPTY_PATH works on any descriptor.
            byte empty = 0;
            return LibC.FChownAt(fd, &empty, (uint)uid, (uint)gid, LibC.AT_EMPTY_PATH);
        }

        private int MakeEntry(FsMutation m) => OnEntry(m.Path, (parent, name, _) =>
        {
            int r;
            switch (m.Op)
            {
                case FsOp.Mkdir:
                    r = LibC.MkdirAt(parent, name, m.Mode & 0xFFF);
                    break;
                case FsOp.Mknod:
                    r = LibC.MknodAt(parent, name, m.Mode, m.Rdev);
                    break;
                default:
                    if (m.Target == null)
                        return -LibC.EINVAL;
                    byte* t = stackalloc byte[PathMax + 1];
                    if (EncodeRaw(m.Target, t) < 0)
                        return -LibC.ENAMETOOLONG;
                    r = LibC.SymlinkAt(t, parent, name);
                    break;
            }
            if (r < 0)
                return -LibC.Errno;
            if (m.Op != FsOp.Symlink && (m.Mode & 0xFFF & umask) != 0)
                ChmodNoFollow(parent, name, m.Mode & 0xFFF);
            if ((m.Uid >= 0 || m.Gid >= 0) && LibC.FChownAt(parent, name, (uint)m.Uid, (uint)m.Gid, LibC.AT_SYMLINK_NOFOLLOW) < 0)
                return -LibC.Errno;
            return 0;
        });

        private int Remove(FsMutation m, int flags) => OnEntry(m.Path, (parent, name, _) =>
        {
            handles.Invalidate(m.Path, subtree: flags != 0);
            return LibC.UnlinkAt(parent, name, flags) < 0 ? -LibC.Errno : 0;
        });

        private int Rename(FsMutation m)
        {
            if (m.Target == null)
                return -LibC.EINVAL;
            handles.Invalidate(m.Path, subtree: true);
            handles.Invalidate(m.Target, subtree: true);
            return OnEntry(m.Path, (p1, n1, _) => OnEntry(m.Target, (p2, n2, _) =>
                LibC.RenameAt2(p1, n1, p2, n2, m.Flags) < 0 ? -LibC.Errno : 0));
        }

        private int Link(FsMutation m)
        {
            if (m.Target == null)
                return -LibC.EINVAL;
            return OnEntry(m.Path, (p1, n1, _) => OnEntry(m.Target, (p2, n2, _) =>
                LibC.LinkAt(p1, n1, p2, n2, 0) < 0 ? -LibC.Errno : 0));
        }

        private int Chmod(FsMutation m) => OnEntry(m.Path, (parent, name, _) => ChmodNoFollow(parent, name, m.Mode & 0xFFF));

        private static int ChmodNoFollow(int parent, byte* name, uint mode)
        {
            if (!noFchmodat2)
            {
                if (LibC.FChmodAt2(parent, name, mode, LibC.AT_SYMLINK_NOFOLLOW) == 0)
                    return 0;
                var e = LibC.Errno;
                if (e != LibC.ENOSYS)
                    return -e;
                noFchmodat2 = true;
            }
            int fd = LibC.OpenAt(parent, name, LibC.O_PATH | LibC.O_NOFOLLOW | LibC.O_CLOEXEC, 0);
            if (fd < 0)
                return -LibC.Errno;
            try
            {
                NativeStat st;
                if (LibC.FStat(fd, &st) < 0)
                    return -LibC.Errno;
                if ((st.Mode & LibC.S_IFMT) == LibC.S_IFLNK)
                    return -LibC.EOPNOTSUPP;
                byte* proc = stackalloc byte[32];
                ProcFdPath(fd, proc);
                return LibC.Chmod(proc, mode) < 0 ? -LibC.Errno : 0;
            }
            finally
            {
                LibC.Close(fd);
            }
        }

        private int Utimens(FsMutation m) => OnEntry(m.Path, (parent, name, _) =>
        {
            Timespec* t = stackalloc Timespec[2];
            t[0] = new Timespec { Seconds = m.AtimeSeconds, Nanoseconds = m.AtimeNanoseconds };
            t[1] = new Timespec { Seconds = m.MtimeSeconds, Nanoseconds = m.MtimeNanoseconds };
            return LibC.UtimensAt(parent, name, t, LibC.AT_SYMLINK_NOFOLLOW) < 0 ? -LibC.Errno : 0;
        });

        private int SetXattr(FsMutation m)
        {
            if (m.Name == null)
                return -LibC.EINVAL;
            return OnEntryProc(m.Path, proc =>
            {
                byte* n = stackalloc byte[256];
                if (EncodeName(m.Name, n) < 0)
                    return -LibC.ERANGE;
                fixed (byte* v = m.Data.Span)
                {
                    byte dummy = 0;
                    return LibC.SetXattr((byte*)proc, n, v == null ? &dummy : v, (nuint)m.Data.Length, (int)m.Flags) < 0 ? -LibC.Errno : 0;
                }
            });
        }

        private int RemoveXattr(FsMutation m)
        {
            if (m.Name == null)
                return -LibC.EINVAL;
            return OnEntryProc(m.Path, proc =>
            {
                byte* n = stackalloc byte[256];
                if (EncodeName(m.Name, n) < 0)
                    return -LibC.ERANGE;
                return LibC.RemoveXattr((byte*)proc, n) < 0 ? -LibC.Errno : 0;
            });
        }

        private int Fsync(FsMutation m)
        {
            if ((m.Flags & FsyncFlushOnly) != 0)
                return 0;
            bool data = (m.Flags & FsyncDataOnly) != 0;
            if (m.LocalHandle >= 0)
                return (data ? LibC.FDataSync(m.LocalHandle) : LibC.FSync(m.LocalHandle)) < 0 ? -LibC.Errno : 0;
            byte* b = stackalloc byte[PathMax + 1];
            int enc = Encode(m.Path, b, allowDot: true);
                if (enc < 0)
                    return enc;
            int fd = OpenBeneath(b, LibC.O_RDONLY | LibC.O_NONBLOCK | LibC.O_CLOEXEC, 0);
            if (fd < 0)
                return -LibC.Errno;
            int r = (data ? LibC.FDataSync(fd) : LibC.FSync(fd)) < 0 ? -LibC.Errno : 0;
            LibC.Close(fd);
            return r;
        }

        // ---------------------------------------------------------------- path plumbing

        private delegate int EntryAction(int parentFd, byte* name, byte* fullPath);

        /// <summary>Resolves the parent of <paramref name="relPath"/> beneath the root (no symlinks) and runs action on (parent, last name).</summary>
        private int OnEntry(string relPath, EntryAction action)
        {
            byte* b = stackalloc byte[PathMax + 1];
            byte* full = stackalloc byte[PathMax + 1];
            int len = Encode(relPath, b, allowDot: true);
            if (len < 0)
                return len;
            Buffer.MemoryCopy(b, full, PathMax + 1, len + 1);
            int slash = -1;
            for (int i = len - 1; i >= 0; i--)
            {
                if (b[i] == (byte)'/')
                {
                    slash = i;
                    break;
                }
            }
            if (slash < 0)
                return action(descriptor, b, full);
            b[slash] = 0;
            int parent = OpenBeneath(b, LibC.O_PATH | LibC.O_DIRECTORY | LibC.O_CLOEXEC, 0);
            if (parent < 0)
                return -LibC.Errno;
            try
            {
                return action(parent, b + slash + 1, full);
            }
            finally
            {
                LibC.Close(parent);
            }
        }

        /// <summary>Opens the entry itself (O_PATH, not following a final symlink) and runs action on its /proc/self/fd path.</summary>
        private int OnEntryProc(string relPath, Func<IntPtr, int> action)
        {
            byte* b = stackalloc byte[PathMax + 1];
            int enc = Encode(relPath, b, allowDot: true);
                if (enc < 0)
                    return enc;
            int fd = OpenBeneath(b, LibC.O_PATH | LibC.O_NOFOLLOW | LibC.O_CLOEXEC, 0);
            if (fd < 0)
                return -LibC.Errno;
            try
            {
                byte* proc = stackalloc byte[32];
                ProcFdPath(fd, proc);
                return action((IntPtr)proc);
            }
            finally
            {
                LibC.Close(fd);
            }
        }

        /// <summary>openat2 beneath the root without symlinks (a final symlink is refused unless O_PATH|O_NOFOLLOW). -1/errno on failure.</summary>
        internal int OpenBeneath(byte* relPath, int flags, uint mode)
        {
            if (!noOpenat2)
            {
                int fd = LibC.OpenAt2(descriptor, relPath, (ulong)(uint)flags, (flags & LibC.O_CREAT) != 0 ? mode : 0, Resolve);
                if (fd >= 0 || LibC.Errno != LibC.ENOSYS)
                    return fd;
                noOpenat2 = true;
            }
            return LibC.OpenAt(descriptor, relPath, flags | LibC.O_NOFOLLOW, mode);
        }

        /// <summary>Opens a regular file for writing by path (the handle cache's miss path).</summary>
        internal int OpenForWrite(string relPath)
        {
            byte* b = stackalloc byte[PathMax + 1];
            int enc = Encode(relPath, b, allowDot: false);
                if (enc < 0)
                    return enc;
            int fd = OpenBeneath(b, LibC.O_WRONLY | LibC.O_CLOEXEC | LibC.O_NONBLOCK, 0);
            return fd < 0 ? -LibC.Errno : fd;
        }

        /// <summary>
        /// Writes <paramref name="relPath"/> as NUL-terminated UTF-8 into b (PathMax+1 bytes). A leading '/'
        /// is dropped; "" becomes "." (the root) when allowed. "." and ".." components are refused.
        /// Returns the length or -errno.
        /// </summary>
        internal static int Encode(string relPath, byte* b, bool allowDot)
        {
            var s = relPath.AsSpan();
            if (s.Length > 0 && s[0] == '/')
                s = s.Slice(1);
            if (s.Length == 0)
            {
                if (!allowDot)
                    return -LibC.ENOENT;
                b[0] = (byte)'.';
                b[1] = 0;
                return 1;
            }
            if (s.Length > PathMax || Encoding.UTF8.GetMaxByteCount(s.Length) > PathMax && Encoding.UTF8.GetByteCount(s) > PathMax)
                return -LibC.ENAMETOOLONG;
            int len = Encoding.UTF8.GetBytes(s, new Span<byte>(b, PathMax));
            b[len] = 0;
            // Refuse empty, "." and ".." components: the kernel never sends them and they could climb out.
            int start = 0;
            for (int i = 0; i <= len; i++)
            {
                if (i == len || b[i] == (byte)'/')
                {
                    int n = i - start;
                    if (n == 0 || (n == 1 && b[start] == (byte)'.') || (n == 2 && b[start] == (byte)'.' && b[start + 1] == (byte)'.'))
                        return -LibC.EINVAL;
                    start = i + 1;
                }
            }
            return len;
        }

        private static int EncodeRaw(string s, byte* b)
        {
            if (Encoding.UTF8.GetByteCount(s) > PathMax)
                return -LibC.ENAMETOOLONG;
            int len = Encoding.UTF8.GetBytes(s, new Span<byte>(b, PathMax));
            b[len] = 0;
            return len;
        }

        private static int EncodeName(string name, byte* b)
        {
            if (Encoding.UTF8.GetByteCount(name) > 255)
                return -LibC.ERANGE;
            int len = Encoding.UTF8.GetBytes(name, new Span<byte>(b, 255));
            b[len] = 0;
            return len;
        }

        internal static void ProcFdPath(int fd, byte* b)
        {
            var prefix = "/proc/self/fd/"u8;
            prefix.CopyTo(new Span<byte>(b, 32));
            int n = prefix.Length;
            fd.TryFormat(new Span<byte>(b + n, 12), out int w, default, CultureInfo.InvariantCulture);
            b[n + w] = 0;
        }

        private static uint ReadUmask()
        {
            try
            {
                foreach (var line in File.ReadLines("/proc/self/status"))
                {
                    if (line.StartsWith("Umask:", StringComparison.Ordinal))
                        return Convert.ToUInt32(line.Substring(6).Trim(), 8);
                }
            }
            catch (IOException)
            {
            }
            return 0xFFF; // unknown: always set the mode explicitly
        }

        private static IOException Error(int errno, string what) =>
            new($"{what}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);

        // ---------------------------------------------------------------- read side

        /// <summary>lstat of <paramref name="relPath"/> ("" = the directory); false when it does not exist or cannot be reached.</summary>
        public bool TryStat(string relPath, out FileStatus status)
        {
            status = default;
            FileStatus result = default;
            int r = OnEntry(relPath, (parent, name, _) =>
            {
                NativeStat st;
                if (LibC.FStatAt(parent, name, &st, LibC.AT_SYMLINK_NOFOLLOW) < 0)
                    return -LibC.Errno;
                result = FileStatus.From(st);
                return 0;
            });
            status = result;
            return r == 0;
        }

        /// <summary>Opens a regular file for reading (no symlink followed); 0 or -errno.</summary>
        public int TryOpenRead(string relPath, out SafeFileHandle? handle)
        {
            handle = null;
            byte* b = stackalloc byte[PathMax + 1];
            int enc = Encode(relPath, b, allowDot: true);
                if (enc < 0)
                    return enc;
            int fd = OpenBeneath(b, LibC.O_RDONLY | LibC.O_CLOEXEC | LibC.O_NONBLOCK, 0);
            if (fd < 0)
                return -LibC.Errno;
            handle = new SafeFileHandle((IntPtr)fd, ownsHandle: true);
            return 0;
        }

        /// <summary>Opens a file for reading (RandomAccess.Read / new FileStream(handle, FileAccess.Read)); throws IOException.</summary>
        public SafeFileHandle OpenRead(string relPath)
        {
            int r = TryOpenRead(relPath, out var handle);
            return r == 0 ? handle! : throw Error(-r, "cannot open " + relPath);
        }

        /// <summary>The target of the symlink <paramref name="relPath"/>; throws IOException.</summary>
        public string ReadLink(string relPath)
        {
            string? target = null;
            int r = OnEntry(relPath, (parent, name, _) =>
            {
                byte* buf = stackalloc byte[PathMax + 1];
                var n = LibC.ReadlinkAt(parent, name, buf, PathMax);
                if (n < 0)
                    return -LibC.Errno;
                target = Encoding.UTF8.GetString(buf, (int)n);
                return 0;
            });
            return r == 0 ? target! : throw Error(-r, "cannot read link " + relPath);
        }

        /// <summary>Names of the extended attributes of <paramref name="relPath"/> (not following a symlink); empty when none or unsupported.</summary>
        public IReadOnlyList<string> ListXattrs(string relPath)
        {
            var names = new List<string>();
            OnEntryProc(relPath, proc =>
            {
                for (int attempt = 0; attempt < 4; attempt++)
                {
                    var size = LibC.ListXattr((byte*)proc, null, 0);
                    if (size <= 0)
                        return size < 0 ? -LibC.Errno : 0;
                    var buf = new byte[size];
                    fixed (byte* p = buf)
                    {
                        var n = LibC.ListXattr((byte*)proc, p, (nuint)buf.Length);
                        if (n < 0)
                        {
                            if (LibC.Errno == LibC.ERANGE)
                                continue;
                            return -LibC.Errno;
                        }
                        int start = 0;
                        for (int i = 0; i < n; i++)
                        {
                            if (buf[i] == 0)
                            {
                                if (i > start)
                                    names.Add(Encoding.UTF8.GetString(buf, start, i - start));
                                start = i + 1;
                            }
                        }
                        return 0;
                    }
                }
                return -LibC.ERANGE;
            });
            return names;
        }

        /// <summary>The value of extended attribute <paramref name="name"/>, or null when it is not set.</summary>
        public byte[]? GetXattr(string relPath, string name)
        {
            byte[]? value = null;
            OnEntryProc(relPath, proc =>
            {
                byte* n = stackalloc byte[256];
                if (EncodeName(name, n) < 0)
                    return -LibC.ERANGE;
                for (int attempt = 0; attempt < 4; attempt++)
                {
                    var size = LibC.GetXattr((byte*)proc, n, null, 0);
                    if (size < 0)
                        return -LibC.Errno;
                    var buf = new byte[size];
                    fixed (byte* p = buf)
                    {
                        var got = LibC.GetXattr((byte*)proc, n, p, (nuint)buf.Length);
                        if (got < 0)
                        {
                            if (LibC.Errno == LibC.ERANGE)
                                continue;
                            return -LibC.Errno;
                        }
                        value = got == buf.Length ? buf : buf.AsSpan(0, (int)got).ToArray();
                        return 0;
                    }
                }
                return -LibC.ERANGE;
            });
            return value;
        }

        /// <summary>The entries of directory <paramref name="relPath"/> without "." and ".."; throws IOException.</summary>
        public List<DirectoryEntry> ReadDirectory(string relPath)
        {
            byte* b = stackalloc byte[PathMax + 1];
            if (Encode(relPath, b, allowDot: true) < 0)
                throw Error(LibC.ENAMETOOLONG, relPath);
            int fd = OpenBeneath(b, LibC.O_RDONLY | LibC.O_DIRECTORY | LibC.O_CLOEXEC, 0);
            if (fd < 0)
                throw Error(LibC.Errno, "cannot open directory " + relPath);
            var list = new List<DirectoryEntry>();
            byte* buf = stackalloc byte[16384];
            try
            {
                while (true)
                {
                    var n = LibC.GetDents64(fd, buf, 16384);
                    if (n < 0)
                        throw Error(LibC.Errno, "cannot read directory " + relPath);
                    if (n == 0)
                        return list;
                    for (long off = 0; off < n;)
                    {
                        byte* d = buf + off;
                        ulong ino = *(ulong*)d;
                        ushort reclen = *(ushort*)(d + 16);
                        byte type = d[18];
                        var name = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(d + 19);
                        if (!(name.Length == 1 && name[0] == '.') && !(name.Length == 2 && name[0] == '.' && name[1] == '.'))
                            list.Add(new DirectoryEntry(Encoding.UTF8.GetString(name), FileStatus.TypeOf((uint)type << 12), ino));
                        off += reclen;
                    }
                }
            }
            finally
            {
                LibC.Close(fd);
            }
        }

        // ---------------------------------------------------------------- write handle cache

        /// <summary>
        /// Descriptors of files written by path (the secondary's stream of writes), least recently used
        /// evicted. Entries are reference counted so an eviction never closes a descriptor in use.
        /// </summary>
        private sealed class WriteHandleCache
        {
            private readonly int capacity;
            private readonly Dictionary<string, Entry> byPath = new(StringComparer.Ordinal);
            private readonly LinkedList<Entry> lru = new();
            private readonly object gate = new();

            private long opens;

            public WriteHandleCache(int capacity) => this.capacity = Math.Max(0, capacity);

            public long Opens => Interlocked.Read(ref opens);

            public sealed class Entry
            {
                public Entry(string path, int fd)
                {
                    Path = path;
                    Fd = fd;
                    Node = new LinkedListNode<Entry>(this);
                }

                public string Path { get; }
                public int Fd { get; }
                public int Refs;
                public bool Evicted;
                public LinkedListNode<Entry> Node { get; }
            }

            public Entry? Acquire(LinuxDirectory dir, string path, out int result)
            {
                result = 0;
                lock (gate)
                {
                    if (byPath.TryGetValue(path, out var hit))
                    {
                        hit.Refs++;
                        lru.Remove(hit.Node);
                        lru.AddFirst(hit.Node);
                        return hit;
                    }
                }
                int fd = dir.OpenForWrite(path);
                Interlocked.Increment(ref opens);
                if (fd < 0)
                {
                    result = fd;
                    return null;
                }
                var entry = new Entry(path, fd) { Refs = 1 };
                if (capacity == 0)
                {
                    entry.Evicted = true;
                    return entry;
                }
                lock (gate)
                {
                    if (byPath.TryGetValue(path, out var raced))
                    {
                        // Another thread opened it meanwhile: use theirs.
                        raced.Refs++;
                        LibC.Close(fd);
                        return raced;
                    }
                    byPath.Add(path, entry);
                    lru.AddFirst(entry.Node);
                    while (byPath.Count > capacity && lru.Last != null)
                        EvictLocked(lru.Last.Value);
                }
                return entry;
            }

            public void Release(Entry entry)
            {
                bool close;
                lock (gate)
                {
                    entry.Refs--;
                    close = entry.Evicted && entry.Refs == 0;
                }
                if (close)
                    LibC.Close(entry.Fd);
            }

            /// <summary>Forgets <paramref name="path"/> (and with subtree everything under it).</summary>
            public void Invalidate(string path, bool subtree)
            {
                lock (gate)
                {
                    if (byPath.Count == 0)
                        return;
                    if (byPath.TryGetValue(path, out var e))
                        EvictLocked(e);
                    if (!subtree)
                        return;
                    List<Entry>? under = null;
                    foreach (var entry in lru)
                    {
                        if (path.Length == 0 || (entry.Path.Length > path.Length && entry.Path[path.Length] == '/' && entry.Path.StartsWith(path, StringComparison.Ordinal)))
                            (under ??= new List<Entry>()).Add(entry);
                    }
                    if (under != null)
                    {
                        foreach (var entry in under)
                            EvictLocked(entry);
                    }
                }
            }

            public void Clear()
            {
                lock (gate)
                {
                    while (lru.Last != null)
                        EvictLocked(lru.Last.Value);
                }
            }

            private void EvictLocked(Entry e)
            {
                if (e.Evicted)
                    return;
                e.Evicted = true;
                byPath.Remove(e.Path);
                lru.Remove(e.Node);
                if (e.Refs == 0)
                    LibC.Close(e.Fd);
            }
        }
    }
}
