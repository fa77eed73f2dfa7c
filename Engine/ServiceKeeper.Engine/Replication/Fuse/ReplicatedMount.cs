// The in-place passthrough FUSE file system of a replicated directory: mounted over LinuxDirectory.Path, it
// serves every operation from the real tree underneath (through the descriptor opened before the mount) and
// hands every mutation to the sink around the local apply: Begin, Apply, Complete.
using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Unicode;
using System.Threading;
using ServiceKeeper.Engine.Replication.Fuse;

namespace ServiceKeeper.Engine.Replication
{
    [SkipLocalsInit]
    public sealed unsafe class ReplicatedMount : IDisposable
    {
        private const ulong WritableBit = 1UL << 32;
        private const ulong SetIdBit = 1UL << 33; // the file had set-user/group-ID bits when opened
        private const uint S_ISUID = 0x800, S_IXGRP = 0x8;
        private static readonly TimeSpan BusyWait = TimeSpan.FromSeconds(2);
        private static readonly TimeSpan LoopWait = TimeSpan.FromSeconds(10);

        [ThreadStatic] private static NativeMemoryManager? threadMemory;
        [ThreadStatic] private static FsMutation? threadMutation;
        [ThreadStatic] private static byte[]? threadPathBytes;
        [ThreadStatic] private static string? threadPath;

        private readonly LinuxDirectory directory;
        private readonly ReplicatedMountOptions options;
        private readonly ManualResetEventSlim loopExited = new(false);
        private readonly byte[] procPrefix;
        private volatile IMutationSink? sink;
        private GCHandle self;
        private IntPtr fuse;
        private IntPtr* operations;
        private FuseArgs* args;
        private FuseCustomIo* customIo;
        private Thread? loop;
        private int loopResult;
        private int disposed;
        private string? connection;

        private long operationCount, mutationCount, bytesRead, bytesWritten, errorCount, failureCount;

        /// <summary>Handle (fi->fh) → the other name in the tree of an open file whose own name is gone (a hard link).</summary>
        private readonly System.Collections.Concurrent.ConcurrentDictionary<ulong, string> otherNames = new();
        private volatile bool anyOtherNames;

        private ReplicatedMount(LinuxDirectory directory, ReplicatedMountOptions options)
        {
            this.directory = directory;
            this.options = options;
            procPrefix = Encoding.UTF8.GetBytes(directory.ProcPath + "/");
        }

        /// <summary>The mount point (the replicated directory's path).</summary>
        public string Path => directory.Path;

        public ReplicatedMountOptions Options => options;

        /// <summary>Sees every mutation; null = local only. May be changed while mounted.</summary>
        public IMutationSink? Sink
        {
            get => sink;
            set => sink = value;
        }

        public ReplicatedMountStatistics Statistics => new(
            Interlocked.Read(ref operationCount), Interlocked.Read(ref mutationCount), Interlocked.Read(ref bytesRead),
            Interlocked.Read(ref bytesWritten), Interlocked.Read(ref errorCount), Interlocked.Read(ref failureCount));

        /// <summary>The result of fuse_loop_mt once the mount is gone (0 = clean).</summary>
        public int LoopResult => loopResult;

        // ---------------------------------------------------------------- lifecycle

        /// <summary>Whether this host can mount: libfuse3 loads, /dev/fuse opens, fusermount3 exists.</summary>
        public static bool IsSupported(out string reason)
        {
            if (!OperatingSystem.IsLinux())
            {
                reason = "FUSE needs Linux";
                return false;
            }
            if (!NativeLibrary.TryLoad(FuseNative.Library, out _))
            {
                reason = FuseNative.Library + " does not load (install the fuse3 package)";
                return false;
            }
            int version = FuseNative.Version();
            if (version < 312)
            {
                reason = $"libfuse {version / 100}.{version % 100} is older than 3.12";
                return false;
            }
            byte* dev = stackalloc byte[16];
            "/dev/fuse\0"u8.CopyTo(new Span<byte>(dev, 16));
            int fd = LibC.Open(dev, LibC.O_RDWR | LibC.O_CLOEXEC, 0);
            if (fd < 0)
            {
                reason = "/dev/fuse cannot be opened: " + Marshal.GetPInvokeErrorMessage(LibC.Errno);
                return false;
            }
            LibC.Close(fd);
            if (FindFusermount() == null)
            {
                reason = "fusermount3 is not installed";
                return false;
            }
            reason = "";
            return true;
        }

        /// <summary>Detaches a mount a killed engine left on <paramref name="path"/> (it answers ENOTCONN). Does nothing otherwise.</summary>
        public static void CleanupStale(string path)
        {
            byte* b = stackalloc byte[LinuxDirectory.PathMax + 1];
            if (!EncodeAbsolute(path, b))
                return;
            NativeStat st;
            if (LibC.Stat(b, &st) == 0 || LibC.Errno != LibC.ENOTCONN)
                return;
            if (LibC.Umount2(b, LibC.MNT_DETACH) != 0)
                RunFusermount("-uz", path);
        }

        /// <summary>
        /// Mounts the file system over <paramref name="directory"/>.Path. The directory must have been opened
        /// before (it stays the way to the real contents); the caller keeps owning it.
        /// </summary>
        public static ReplicatedMount Mount(LinuxDirectory directory, ReplicatedMountOptions options)
        {
            ArgumentNullException.ThrowIfNull(directory);
            ArgumentNullException.ThrowIfNull(options);
            if (!IsSupported(out var reason))
                throw new PlatformNotSupportedException(reason);
            ObjectDisposedException.ThrowIf(directory.Descriptor < 0, directory);
            var mount = new ReplicatedMount(directory, options);
            try
            {
                mount.Start();
            }
            catch
            {
                mount.Dispose();
                throw;
            }
            return mount;
        }

        private void Start()
        {
            self = GCHandle.Alloc(this, GCHandleType.Normal);
            operations = (IntPtr*)NativeMemory.AllocZeroed((nuint)(FuseOp.Count * sizeof(IntPtr)));
            FillOperations(operations);
            args = (FuseArgs*)NativeMemory.AllocZeroed((nuint)sizeof(FuseArgs));
            AddArg("servicekeeper");
            AddArg("-o");
            AddArg(MountOptions());
            fuse = FuseNative.New(args, operations, (nuint)(FuseOp.Count * sizeof(IntPtr)), GCHandle.ToIntPtr(self));
            if (fuse == IntPtr.Zero)
                throw new IOException("fuse_new failed (see standard error for the option it refused)");
            byte* b = stackalloc byte[LinuxDirectory.PathMax + 1];
            if (!EncodeAbsolute(Path, b))
                throw new IOException("path too long: " + Path);
            if (!MountDirect(b) && FuseNative.Mount(fuse, b) != 0)
            {
                FuseNative.Destroy(fuse);
                fuse = IntPtr.Zero;
                throw new IOException("cannot mount FUSE over " + Path + " (see standard error)");
            }
            connection = FindConnection(Path);
            loop = new Thread(RunLoop) { IsBackground = true, Name = "fuse " + options.FsName };
            loop.Start();
        }

        /// <summary>
        /// Mounts /dev/fuse ourselves (as root) and serves it through fuse_session_custom_io, so the INIT reply
        /// can announce FUSE_HANDLE_KILLPRIV_V2, which libfuse 3.14 cannot: with it the kernel marks the
        /// super block SB_NOSEC and stops asking getxattr("security.capability") before every write, one
        /// round trip per write. False when it cannot (not root): the caller falls back to fuse_mount.
        /// </summary>
        private bool MountDirect(byte* target)
        {
            byte* dev = stackalloc byte[16];
            "/dev/fuse\0"u8.CopyTo(new Span<byte>(dev, 16));
            int fd = LibC.Open(dev, LibC.O_RDWR | LibC.O_CLOEXEC, 0);
            if (fd < 0)
                return false;
            var data = string.Create(CultureInfo.InvariantCulture,
                $"fd={fd},rootmode=40000,user_id={LibC.GetEuid()},group_id={LibC.GetEgid()},default_permissions{(options.AllowOther ? ",allow_other" : "")}\0");
            var source = FsNameOption() + "\0";
            ulong flags = LibC.MS_NOSUID | LibC.MS_NODEV | (options.ReadOnly ? LibC.MS_RDONLY : 0);
            fixed (byte* d = Encoding.UTF8.GetBytes(data))
            fixed (byte* src = Encoding.UTF8.GetBytes(source))
            fixed (byte* type = "fuse.servicekeeper\0"u8)
            {
                if (LibC.Mount(src, target, type, flags, d) != 0)
                {
                    LibC.Close(fd);
                    return false;
                }
            }
            // OnRead sets errno only when a read fails, i.e. first at the unmount, on libfuse's thread: bind and compile that
            // call here (a test run's hang dump showed the reader stuck in its first call, and Dispose waiting for the loop).
            _ = LibC.ErrnoLocation();
            customIo = (FuseCustomIo*)NativeMemory.AllocZeroed((nuint)sizeof(FuseCustomIo));
            customIo->Read = (IntPtr)(delegate* unmanaged[Cdecl]<int, byte*, nuint, void*, nint>)&OnRead;
            customIo->Writev = (IntPtr)(delegate* unmanaged[Cdecl]<int, IoVec*, int, void*, nint>)&OnWritev;
            lock (PendingInits)
                PendingInits.Add(fd);
            Volatile.Write(ref pendingInitCount, PendingInits.Count);
            lender = new HandleLender();
            Lenders[fd] = lender;
            deviceFd = fd;
            if (FuseNative.SessionCustomIo(FuseNative.GetSession(fuse), customIo, fd) != 0)
            {
                Lenders.TryRemove(fd, out _);
                lender = null;
                deviceFd = -1;
                lock (PendingInits)
                    PendingInits.Remove(fd);
                LibC.Umount2(target, LibC.MNT_DETACH);
                LibC.Close(fd);
                return false;
            }
            return true;
        }

        private static readonly System.Collections.Generic.HashSet<int> PendingInits = new();
        private static int pendingInitCount;

        /// <summary>/dev/fuse descriptor → the lender of the mount served on it (see HandleLender).</summary>
        private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, HandleLender> Lenders = new();
        private HandleLender? lender;
        private int deviceFd = -1;

        /// <summary>libfuse's reads of requests, on a descriptor we mounted: the lender sees each one before libfuse.</summary>
        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static nint OnRead(int fd, byte* buffer, nuint size, void* userdata)
        {
            var n = LibC.Read(fd, buffer, size);
            if (n < 0)
            {
                *LibC.ErrnoLocation() = Marshal.GetLastPInvokeError();
                return n;
            }
            try
            {
                if (Lenders.TryGetValue(fd, out var l))
                    l.OnRequest(buffer, n);
            }
            catch
            {
                // never let the lender break a request
            }
            return n;
        }

        /// <summary>libfuse's replies: the first one on a descriptor we mounted is INIT's, which gets KILLPRIV_V2.</summary>
        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static nint OnWritev(int fd, IoVec* iov, int count, void* userdata)
        {
            try
            {
                if (Lenders.TryGetValue(fd, out var l))
                    l.OnReply(iov, count);
            }
            catch
            {
                // never let the lender break a reply
            }
            try
            {
                if (Volatile.Read(ref pendingInitCount) != 0)
                {
                    bool first;
                    lock (PendingInits)
                    {
                        first = PendingInits.Remove(fd);
                        pendingInitCount = PendingInits.Count;
                    }
                    // fuse_out_header (16 bytes: len, error, unique) + fuse_init_out (major, minor, max_readahead, flags, ...)
                    if (first && count >= 2 && iov[0].Length >= 16 && *(int*)(iov[0].Base + 4) == 0 &&
                        iov[1].Length >= 16 && *(uint*)iov[1].Base == 7)
                    {
                        *(uint*)(iov[1].Base + 12) |= FuseHandleKillprivV2;
                    }
                }
            }
            catch
            {
                // never let the patch break the reply
            }
            var r = LibC.Writev(fd, iov, count);
            if (r < 0)
                *LibC.ErrnoLocation() = Marshal.GetLastPInvokeError();
            return r;
        }

        private const uint FuseHandleKillprivV2 = 1u << 28;

        private string FsNameOption() => options.FsName.Replace(',', '_').Replace('\\', '_').Replace(' ', '_');

        private string MountOptions()
        {
            var fsName = FsNameOption();
            var o = new StringBuilder();
            o.Append("fsname=").Append(fsName).Append(",subtype=servicekeeper,default_permissions,auto_cache");
            if (options.AllowOther)
                o.Append(",allow_other");
            if (options.ReadOnly)
                o.Append(",ro");
            o.Append(CultureInfo.InvariantCulture, $",attr_timeout={options.EffectiveAttrTimeout:0.###}");
            o.Append(CultureInfo.InvariantCulture, $",entry_timeout={options.EffectiveEntryTimeout:0.###}");
            o.Append(CultureInfo.InvariantCulture, $",negative_timeout={options.EffectiveNegativeTimeout:0.###}");
            return o.ToString();
        }

        private void AddArg(string arg)
        {
            var bytes = Encoding.UTF8.GetBytes(arg + "\0");
            fixed (byte* p = bytes)
            {
                if (FuseNative.OptAddArg(args, p) != 0)
                    throw new OutOfMemoryException("fuse_opt_add_arg");
            }
        }

        private void RunLoop()
        {
            try
            {
                loopResult = FuseNative.LoopMt(fuse, IntPtr.Zero);
            }
            finally
            {
                loopExited.Set();
            }
        }

        /// <summary>Unmounts (lazily when still busy after a short wait), waits for the loop, frees everything.</summary>
        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) != 0)
                return;
            bool exited = true;
            if (fuse != IntPtr.Zero && loop != null)
            {
                Unmount();
                exited = loopExited.Wait(LoopWait);
                if (!exited && connection != null)
                {
                    // Something still holds the detached mount: cut the connection so the loop can end.
                    AbortConnection(connection);
                    exited = loopExited.Wait(LoopWait);
                }
            }
            if (!exited)
                return; // leak rather than free memory a live loop thread still uses
            if (lender != null)
                Lenders.TryRemove(new System.Collections.Generic.KeyValuePair<int, HandleLender>(deviceFd, lender));
            if (fuse != IntPtr.Zero)
            {
                // Closes /dev/fuse; the kernel side is gone (the device polls POLLERR), so no second umount.
                FuseNative.Unmount(fuse);
                FuseNative.Destroy(fuse);
                fuse = IntPtr.Zero;
            }
            if (args != null)
            {
                FuseNative.OptFreeArgs(args);
                NativeMemory.Free(args);
                args = null;
            }
            if (customIo != null)
            {
                NativeMemory.Free(customIo);
                customIo = null;
            }
            if (operations != null)
            {
                NativeMemory.Free(operations);
                operations = null;
            }
            if (self.IsAllocated)
                self.Free();
            loopExited.Dispose();
        }

        private void Unmount()
        {
            byte* b = stackalloc byte[LinuxDirectory.PathMax + 1];
            if (!EncodeAbsolute(Path, b))
                return;
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                if (LibC.Umount2(b, 0) == 0)
                    return;
                int e = LibC.Errno;
                if (e == LibC.EINVAL || e == LibC.ENOENT)
                    return; // not mounted any more
                if (e == LibC.EPERM)
                {
                    RunFusermount("-u", Path);
                    if (!loopExited.Wait(BusyWait))
                        RunFusermount("-uz", Path);
                    return;
                }
                if (e != LibC.EBUSY || deadline.Elapsed > BusyWait)
                    break;
                if (loopExited.Wait(50))
                    return;
            }
            LibC.Umount2(b, LibC.MNT_DETACH);
        }

        /// <summary>
        /// Aborts FUSE connection <paramref name="connection"/> (its device minor) through fusectl, mounting
        /// fusectl on /sys/fs/fuse/connections first when nobody has (systemd does at boot; containers may not).
        /// </summary>
        internal static bool AbortConnection(string connection)
        {
            var abort = $"/sys/fs/fuse/connections/{connection}/abort";
            if (!File.Exists(abort) && Directory.Exists("/sys/fs/fuse/connections"))
            {
                fixed (byte* src = "fusectl\0"u8)
                fixed (byte* target = "/sys/fs/fuse/connections\0"u8)
                    LibC.Mount(src, target, src, 0, null);
            }
            try
            {
                File.WriteAllText(abort, "1");
                return true;
            }
            catch (IOException)
            {
                return false;
            }
            catch (UnauthorizedAccessException)
            {
                return false;
            }
        }

        /// <summary>The connection (device minor, as under /sys/fs/fuse/connections) of the FUSE mount on the path.</summary>
        internal static string? ConnectionOf(string path) => FindConnection(path);

        private static string? FindFusermount()
        {
            foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            {
                var candidate = System.IO.Path.Combine(dir, "fusermount3");
                if (File.Exists(candidate))
                    return candidate;
            }
            foreach (var candidate in new[] { "/usr/bin/fusermount3", "/bin/fusermount3", "/usr/local/bin/fusermount3" })
            {
                if (File.Exists(candidate))
                    return candidate;
            }
            return null;
        }

        private static void RunFusermount(string flags, string path)
        {
            var exe = FindFusermount();
            if (exe == null)
                return;
            try
            {
                var psi = new ProcessStartInfo(exe) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
                psi.ArgumentList.Add(flags);
                psi.ArgumentList.Add(path);
                using var p = Process.Start(psi);
                p?.WaitForExit(10000);
            }
            catch (System.ComponentModel.Win32Exception)
            {
            }
        }

        /// <summary>The /sys/fs/fuse/connections name (device minor) of the FUSE mount on <paramref name="path"/>.</summary>
        private static string? FindConnection(string path)
        {
            try
            {
                string? found = null;
                foreach (var line in File.ReadLines("/proc/self/mountinfo"))
                {
                    // id parent major:minor root mountpoint options ... - fstype source superopts
                    var fields = line.Split(' ');
                    if (fields.Length < 10 || Unescape(fields[4]) != path)
                        continue;
                    int dash = Array.IndexOf(fields, "-");
                    if (dash < 0 || dash + 1 >= fields.Length || !fields[dash + 1].StartsWith("fuse", StringComparison.Ordinal))
                        continue;
                    var dev = fields[2];
                    found = dev.Substring(dev.IndexOf(':') + 1);
                }
                return found;
            }
            catch (IOException)
            {
                return null;
            }
        }

        private static string Unescape(string s) => s.Contains('\\')
            ? s.Replace("\\040", " ", StringComparison.Ordinal).Replace("\\011", "\t", StringComparison.Ordinal)
                .Replace("\\012", "\n", StringComparison.Ordinal).Replace("\\134", "\\", StringComparison.Ordinal)
            : s;

        private static bool EncodeAbsolute(string path, byte* b)
        {
            if (Encoding.UTF8.GetByteCount(path) > LinuxDirectory.PathMax)
                return false;
            int n = Encoding.UTF8.GetBytes(path, new Span<byte>(b, LinuxDirectory.PathMax));
            b[n] = 0;
            return true;
        }

        // ---------------------------------------------------------------- plumbing for the callbacks

        private static ReplicatedMount Current() =>
            (ReplicatedMount)GCHandle.FromIntPtr(FuseNative.GetContext()->PrivateData).Target!;

        private int Done(int result)
        {
            Interlocked.Increment(ref operationCount);
            if (result < 0)
                Interlocked.Increment(ref errorCount);
            return result;
        }

        private static int Failed(ReplicatedMount? mount)
        {
            if (mount != null)
            {
                Interlocked.Increment(ref mount.operationCount);
                Interlocked.Increment(ref mount.errorCount);
                Interlocked.Increment(ref mount.failureCount);
            }
            return -LibC.EIO;
        }

        private static ReadOnlySpan<byte> DotLiteral => ".\0"u8;

        /// <summary>The path libfuse gives ("/a/b") relative to the root descriptor ("a/b", "." for the root).</summary>
        private static byte* Relative(byte* path)
        {
            if (path[0] == (byte)'/' && path[1] != 0)
                return path + 1;
            return (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(DotLiteral));
        }

        /// <summary>The mutation's path ("a/b"), or null when the name is not UTF-8 (it could not be replicated faithfully).</summary>
        private static string? PathOf(byte* path)
        {
            var span = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(path);
            if (span.Length > 0 && span[0] == (byte)'/')
                span = span.Slice(1);
            if (!Utf8.IsValid(span))
                return null;
            return Encoding.UTF8.GetString(span);
        }

        /// <summary>PathOf with a per-thread cache: a stream of writes to one file allocates no string.</summary>
        private static string? CachedPathOf(byte* path)
        {
            var span = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(path);
            var cached = threadPathBytes;
            if (cached != null && span.SequenceEqual(cached))
                return threadPath;
            var s = PathOf(path);
            if (s != null)
            {
                threadPathBytes = span.ToArray();
                threadPath = s;
            }
            return s;
        }

        private static NativeMemoryManager Memory => threadMemory ??= new NativeMemoryManager();

        /// <summary>A mutation to fill: a fresh one when a sink may keep it, else this thread's scratch value.</summary>
        private FsMutation NewMutation(FsOp op, string path)
        {
            FsMutation m;
            if (sink != null)
            {
                m = new FsMutation();
            }
            else
            {
                m = threadMutation ??= new FsMutation();
                m.Target = null;
                m.Offset = 0;
                m.Length = 0;
                m.Data = default;
                m.Mode = 0;
                m.Uid = -1;
                m.Gid = -1;
                m.Flags = 0;
                m.Name = null;
                m.Rdev = 0;
                m.AtimeSeconds = 0;
                m.AtimeNanoseconds = FsMutation.UtimeOmit;
                m.MtimeSeconds = 0;
                m.MtimeNanoseconds = FsMutation.UtimeOmit;
                m.LocalHandle = -1;
            }
            m.Op = op;
            m.Path = path;
            return m;
        }

        /// <summary>
        /// The sink this mutation goes to, read once. When a sink appeared since <paramref name="m"/> was taken
        /// as this thread's scratch value, the sink may keep it: the thread stops reusing it.
        /// </summary>
        private IMutationSink? SinkFor(FsMutation m)
        {
            var s = sink;
            if (s != null && ReferenceEquals(m, threadMutation))
                threadMutation = null;
            return s;
        }

        /// <summary>Begin, apply locally, Complete: the one way every mutation goes.</summary>
        private int Mutate(FsMutation m)
        {
            Interlocked.Increment(ref mutationCount);
            var s = SinkFor(m);
            if (s == null)
                return directory.Apply(m);
            var ticket = s.Begin(m);
            int r;
            try
            {
                r = directory.Apply(m);
            }
            catch
            {
                r = -LibC.EIO;
            }
            return s.Complete(ticket, r);
        }

        private static int Fd(FuseFileInfo* fi) => (int)(fi->Fh & 0xFFFFFFFF);

        private static bool Writable(FuseFileInfo* fi) => (fi->Fh & WritableBit) != 0;

        /// <summary>Owner for a new entry: the caller, except the group in a set-group-ID directory (which the kernel gives).</summary>
        private void OwnerFor(byte* path, FsMutation m)
        {
            var ctx = FuseNative.GetContext();
            m.Uid = (int)ctx->Uid;
            m.Gid = (int)ctx->Gid;
            var span = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(path);
            int slash = span.LastIndexOf((byte)'/');
            NativeStat st;
            int r;
            if (slash <= 0)
            {
                r = LibC.FStatAt(directory.Descriptor, Relative(path + span.Length), &st, 0);
            }
            else
            {
                byte* parent = stackalloc byte[slash + 1];
                span.Slice(1, slash - 1).CopyTo(new Span<byte>(parent, slash));
                parent[slash - 1] = 0;
                r = LibC.FStatAt(directory.Descriptor, parent, &st, 0);
            }
            if (r == 0 && (st.Mode & LibC.S_ISGID) != 0)
                m.Gid = -1;
        }

        // ---------------------------------------------------------------- open files whose name is gone
        //
        // Mounted with hard_remove: unlinking or renaming over a file that is still open removes its name at once.
        // Without it libfuse renames such a file to .fuse_hidden* until its last release; that rename was
        // replicated like any other, and a crash left the hidden file behind on both nodes. With hard_remove,
        // libfuse gives a NULL path to the callbacks that carry a handle of such a file (getattr, truncate, chmod,
        // chown and utimens with fi; read, write, flush, fsync, release, fallocate, lseek, readdir, releasedir,
        // fsyncdir): they work from fi->fh alone. nullpath_ok (fuse_config @104) stays off on purpose: it would
        // take the path away from every one of those calls, and the path libfuse computes under its tree lock is
        // what both names a write for the secondary and orders it against a rename of its file.
        // The kernel sends fstat, fchmod, fchown and futimens without the handle, and libfuse, which cannot name the
        // node any more, would fail them with ESTALE before calling us (the price of hard_remove fuse.h documents):
        // on a mount we made ourselves (MountDirect) HandleLender gives those requests one of the file's handles.
        // Left: on a mount by fuse_mount (not root), the same calls still get ESTALE.
        //
        // What the secondary gets: nothing when no link to the inode is left. The unlink or rename that took the
        // name was replicated, so the secondary's tree has no such file, and the data dies with the last close on
        // both nodes; the change is applied here only and the caller gets the local result (ALONE, nothing is
        // journaled for it either). When the inode is still linked elsewhere in the tree (a hard link), the change
        // is sent under that other name, found by a walk of the tree once per handle and checked before each use.
        // libfuse holds no lock on that other name, so a rename of it racing such a change can send the change
        // under the old name; the secondary fails it, and ReplicationSource then ends the session before the change
        // returns (the secondary no longer counts as up to date) and distrusts the journal, whose entry has the old
        // name: the resync that follows compares every file changed since the sync point, this one among them.

        /// <summary>
        /// The replicated path of the file an operation changes: libfuse's, or for an open file whose name is gone
        /// (path NULL) another name of its inode in the tree; rel is null when no name reaches it (apply locally only).
        /// 0 or -errno.
        /// </summary>
        private int PathFor(byte* path, FuseFileInfo* fi, out string? rel, bool cached = false)
        {
            if (path != null)
            {
                rel = cached ? CachedPathOf(path) : PathOf(path);
                return rel == null ? -LibC.EILSEQ : 0;
            }
            rel = null;
            if (fi == null)
                return -LibC.ENOENT;
            NativeStat st;
            if (LibC.FStat(Fd(fi), &st) != 0)
                return -LibC.Errno;
            if (st.Nlink == 0 || (st.Mode & LibC.S_IFMT) == LibC.S_IFDIR)
                return 0;
            rel = OtherName(fi->Fh, st.Ino);
            return 0;
        }

        private string? OtherName(ulong fh, ulong inode)
        {
            if (otherNames.TryGetValue(fh, out var known) && (known.Length == 0 || IsInode(known, inode)))
                return known.Length == 0 ? null : known;
            // "" remembers that no name is in the tree (the links are elsewhere on the disk): one walk per handle.
            var found = FindInode(inode);
            otherNames[fh] = found ?? "";
            anyOtherNames = true;
            return found;
        }

        private bool IsInode(string rel, ulong inode) =>
            directory.TryStat(rel, out var st) && st.Inode == inode && st.Type != FileType.Directory;

        /// <summary>A name of <paramref name="inode"/> in the tree (breadth first), or null.</summary>
        private string? FindInode(ulong inode)
        {
            var pending = new System.Collections.Generic.Queue<string>();
            pending.Enqueue("");
            while (pending.Count > 0)
            {
                var dir = pending.Dequeue();
                System.Collections.Generic.List<DirectoryEntry> entries;
                try
                {
                    entries = directory.ReadDirectory(dir);
                }
                catch (IOException)
                {
                    continue; // removed or renamed meanwhile
                }
                foreach (var e in entries)
                {
                    var rel = dir.Length == 0 ? e.Name : dir + "/" + e.Name;
                    if (e.Type == FileType.Directory)
                        pending.Enqueue(rel);
                    else if (e.Inode == inode && IsInode(rel, inode))
                        return rel;
                }
            }
            return null;
        }

        /// <summary>A change to an open file that no name in the tree reaches: applied through its handle, here only.</summary>
        private int ApplyUnnamed(FsMutation m, int fd)
        {
            Interlocked.Increment(ref mutationCount);
            switch (m.Op)
            {
                case FsOp.Chmod:
                    return LibC.FChmod(fd, m.Mode & 0xFFF) < 0 ? -LibC.Errno : 0;
                case FsOp.Chown:
                    return LibC.FChown(fd, (uint)m.Uid, (uint)m.Gid) < 0 ? -LibC.Errno : 0;
                case FsOp.Utimens:
                    {
                        // FsMutation.UtimeOmit is the kernel's UTIME_OMIT.
                        Timespec* t = stackalloc Timespec[2];
                        t[0].Seconds = m.AtimeSeconds;
                        t[0].Nanoseconds = m.AtimeNanoseconds;
                        t[1].Seconds = m.MtimeSeconds;
                        t[1].Nanoseconds = m.MtimeNanoseconds;
                        return LibC.FUtimens(fd, t) < 0 ? -LibC.Errno : 0;
                    }
                case FsOp.Write or FsOp.Truncate or FsOp.Fallocate or FsOp.Fsync:
                    m.LocalHandle = fd; // LinuxDirectory applies these through the handle, never by m.Path
                    return directory.Apply(m);
                default:
                    return -LibC.EINVAL;
            }
        }

        /// <summary>Release: the handle's other name is not needed any more.</summary>
        private void Forget(FuseFileInfo* fi)
        {
            if (anyOtherNames)
                otherNames.TryRemove(fi->Fh, out _);
        }

        // ---------------------------------------------------------------- operations (instance side)

        private int Getattr(byte* path, NativeStat* st, FuseFileInfo* fi)
        {
            if (fi == null && path == null)
                return -LibC.ENOENT;
            int r = fi != null
                ? LibC.FStat(Fd(fi), st)
                : LibC.FStatAt(directory.Descriptor, Relative(path), st, LibC.AT_SYMLINK_NOFOLLOW);
            return r < 0 ? -LibC.Errno : 0;
        }

        private int Readlink(byte* path, byte* buffer, nuint size)
        {
            if (size == 0)
                return -LibC.EINVAL;
            var n = LibC.ReadlinkAt(directory.Descriptor, Relative(path), buffer, size - 1);
            if (n < 0)
                return -LibC.Errno;
            buffer[n] = 0;
            return 0;
        }

        private int Open(byte* path, FuseFileInfo* fi)
        {
            int flags = fi->Flags;
            int access = flags & LibC.O_ACCMODE;
            bool truncate = (flags & LibC.O_TRUNC) != 0;
            bool writable = access != LibC.O_RDONLY;
            if (options.ReadOnly && (writable || truncate))
                return -LibC.EROFS;
            string? rel = null;
            if (truncate && (rel = PathOf(path)) == null)
                return -LibC.EILSEQ;
            // O_APPEND off: the kernel gives the offset, and pwrite on an O_APPEND descriptor would ignore it.
            int open = (flags & LibC.OpenFlagsPassed & ~(LibC.O_TRUNC | LibC.O_APPEND | LibC.O_DIRECT)) | LibC.O_CLOEXEC;
            int fd = directory.OpenBeneath(Relative(path), open, 0);
            if (fd < 0)
                return -LibC.Errno;
            if (truncate)
            {
                int k = KillSetId(fd, path, null);
                if (k < 0)
                {
                    LibC.Close(fd);
                    return k;
                }
                var m = NewMutation(FsOp.Truncate, rel!);
                m.Offset = 0;
                m.LocalHandle = writable ? fd : -1;
                int r = Mutate(m);
                if (r < 0)
                {
                    LibC.Close(fd);
                    return r;
                }
            }
            if ((flags & LibC.O_DIRECT) != 0)
                fi->Bits |= FuseFileInfo.DirectIo;
            fi->Fh = (uint)fd | (writable ? WritableBit | SetIdFlag(fd) : 0);
            return 0;
        }

        /// <summary>SetIdBit when the open file has bits a write by an unprivileged caller must clear.</summary>
        private static ulong SetIdFlag(int fd)
        {
            NativeStat st;
            return LibC.FStat(fd, &st) == 0 && HasSetId(st.Mode) ? SetIdBit : 0;
        }

        private static bool HasSetId(uint mode) =>
            (mode & S_ISUID) != 0 || (mode & (LibC.S_ISGID | S_IXGRP)) == (LibC.S_ISGID | S_IXGRP);

        /// <summary>
        /// With KILLPRIV_V2 the kernel leaves clearing set-ID bits on write/truncate by an unprivileged caller to
        /// us (we write as root, so the disk file system would not). Done as a replicated Chmod.
        /// </summary>
        private int KillSetId(int fd, byte* path, FuseFileInfo* fi)
        {
            if (FuseNative.GetContext()->Uid == 0)
                return 0;
            NativeStat st;
            if ((fd >= 0 ? LibC.FStat(fd, &st) : LibC.FStatAt(directory.Descriptor, Relative(path), &st, LibC.AT_SYMLINK_NOFOLLOW)) != 0)
                return 0;
            if (!HasSetId(st.Mode) || (st.Mode & LibC.S_IFMT) != LibC.S_IFREG)
                return 0;
            uint mode = st.Mode & ~S_ISUID;
            if ((mode & S_IXGRP) != 0)
                mode &= ~LibC.S_ISGID;
            return ByHandle(FsOp.Chmod, path, fi, m => m.Mode = mode & 0xFFF);
        }

        private int Create(byte* path, uint mode, FuseFileInfo* fi)
        {
            if (options.ReadOnly)
                return -LibC.EROFS;
            var rel = PathOf(path);
            if (rel == null)
                return -LibC.EILSEQ;
            var m = NewMutation(FsOp.Create, rel);
            m.Mode = mode;
            m.Flags = (uint)fi->Flags;
            OwnerFor(path, m);
            Interlocked.Increment(ref mutationCount);
            var s = SinkFor(m);
            var ticket = s?.Begin(m) ?? default;
            int fd = -1;
            int r;
            try
            {
                r = directory.Create(m, keepOpen: true, out fd);
            }
            catch
            {
                r = -LibC.EIO; // the sink still gets its Complete
            }
            if (s != null)
                r = s.Complete(ticket, r);
            if (r < 0)
            {
                if (fd >= 0)
                    LibC.Close(fd);
                return r;
            }
            if ((fi->Flags & LibC.O_DIRECT) != 0)
                fi->Bits |= FuseFileInfo.DirectIo;
            fi->Fh = (uint)fd | ((fi->Flags & LibC.O_ACCMODE) != LibC.O_RDONLY ? WritableBit | SetIdFlag(fd) : 0);
            return 0;
        }

        private int Read(byte* buffer, nuint size, long offset, FuseFileInfo* fi)
        {
            int fd = Fd(fi);
            nuint done = 0;
            while (done < size)
            {
                var n = LibC.PRead(fd, buffer + done, size - done, offset + (long)done);
                if (n < 0)
                {
                    int e = LibC.Errno;
                    if (e == 4)
                        continue;
                    if (done > 0)
                        break;
                    return -e;
                }
                if (n == 0)
                    break;
                done += (nuint)n;
            }
            Interlocked.Add(ref bytesRead, (long)done);
            return (int)done;
        }

        private int Write(byte* path, byte* buffer, nuint size, long offset, FuseFileInfo* fi)
        {
            if (options.ReadOnly)
                return -LibC.EROFS;
            int p = PathFor(path, fi, out var rel, cached: true);
            if (p < 0)
                return p;
            if ((fi->Fh & SetIdBit) != 0)
            {
                int k = KillSetId(Fd(fi), path, fi);
                if (k < 0)
                    return k;
            }
            var m = NewMutation(FsOp.Write, rel ?? "");
            m.Offset = offset;
            m.Data = Memory.Wrap(buffer, (int)size);
            m.LocalHandle = Fd(fi);
            int r = rel != null ? Mutate(m) : ApplyUnnamed(m, Fd(fi));
            if (ReferenceEquals(m, threadMutation))
                m.Data = default; // do not keep a pointer into libfuse's buffer around
            if (r < 0)
                return r;
            Interlocked.Add(ref bytesWritten, (long)size);
            return (int)size;
        }

        private int Truncate(byte* path, long size, FuseFileInfo* fi)
        {
            int fd = fi != null && Writable(fi) ? Fd(fi) : -1;
            if (options.ReadOnly)
                return -LibC.EROFS;
            int k = KillSetId(fi != null ? Fd(fi) : -1, path, fi);
            if (k < 0)
                return k;
            return ByHandle(FsOp.Truncate, path, fi, m =>
            {
                m.Offset = size;
                m.LocalHandle = fd;
            });
        }

        private int Fsync(byte* path, int datasync, FuseFileInfo* fi, bool flush)
        {
            if (options.ReadOnly)
                return 0;
            if (flush && (sink == null || !Writable(fi)))
                return 0; // a flush barrier only matters to a sink, and only after writes
            int p = PathFor(path, fi, out var rel);
            if (p < 0)
                return p;
            if (rel == null && flush)
                return 0; // nothing of this file goes to the sink any more
            var m = NewMutation(FsOp.Fsync, rel ?? "");
            m.Flags = (flush ? LinuxDirectory.FsyncFlushOnly : 0) | (datasync != 0 ? LinuxDirectory.FsyncDataOnly : 0);
            m.LocalHandle = Fd(fi);
            return rel != null ? Mutate(m) : ApplyUnnamed(m, Fd(fi));
        }

        private delegate void Fill(FsMutation m);

        /// <summary>
        /// <see cref="Simple"/> for the operations that may come with a file handle (ftruncate, fchmod, fchown,
        /// futimens, fallocate): by handle when libfuse gives no path (an open file whose name is gone).
        /// </summary>
        private int ByHandle(FsOp op, byte* path, FuseFileInfo* fi, Fill fill)
        {
            if (path != null || fi == null)
                return Simple(op, path, fill);
            if (options.ReadOnly)
                return -LibC.EROFS;
            int r = PathFor(path, fi, out var rel);
            if (r < 0)
                return r;
            var m = NewMutation(op, rel ?? "");
            fill(m);
            return rel != null ? Mutate(m) : ApplyUnnamed(m, Fd(fi));
        }

        /// <summary>A mutation by path with a few fields set: the common shape of most operations.</summary>
        private int Simple(FsOp op, byte* path, Fill fill)
        {
            if (options.ReadOnly)
                return -LibC.EROFS;
            if (path == null)
                return -LibC.ENOENT; // libfuse gives no path only with a handle (ByHandle); never "" for it
            var rel = PathOf(path);
            if (rel == null)
                return -LibC.EILSEQ;
            var m = NewMutation(op, rel);
            fill(m);
            return Mutate(m);
        }

        private int TwoPaths(FsOp op, byte* from, byte* to, uint flags)
        {
            if (options.ReadOnly)
                return -LibC.EROFS;
            var a = PathOf(from);
            var b = PathOf(to);
            if (a == null || b == null)
                return -LibC.EILSEQ;
            var m = NewMutation(op, a);
            m.Target = b;
            m.Flags = flags;
            return Mutate(m);
        }

        private int Symlink(byte* content, byte* linkPath)
        {
            if (options.ReadOnly)
                return -LibC.EROFS;
            var rel = PathOf(linkPath);
            var target = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(content);
            if (rel == null || !Utf8.IsValid(target))
                return -LibC.EILSEQ;
            var m = NewMutation(FsOp.Symlink, rel);
            m.Target = Encoding.UTF8.GetString(target);
            OwnerFor(linkPath, m);
            return Mutate(m);
        }

        private int MakeNode(FsOp op, byte* path, uint mode, ulong rdev)
        {
            if (options.ReadOnly)
                return -LibC.EROFS;
            var rel = PathOf(path);
            if (rel == null)
                return -LibC.EILSEQ;
            var m = NewMutation(op, rel);
            m.Mode = op == FsOp.Mkdir ? mode | LibC.S_IFDIR : mode;
            m.Rdev = rdev;
            OwnerFor(path, m);
            return Mutate(m);
        }

        private int Utimens(byte* path, Timespec* tv, FuseFileInfo* fi)
        {
            Timespec a = tv[0], b = tv[1];
            if (a.Nanoseconds == LibC.UTIME_NOW || b.Nanoseconds == LibC.UTIME_NOW)
            {
                // Resolved here so both nodes store the same time.
                var now = LibC.Now();
                if (a.Nanoseconds == LibC.UTIME_NOW)
                    a = now;
                if (b.Nanoseconds == LibC.UTIME_NOW)
                    b = now;
            }
            return ByHandle(FsOp.Utimens, path, fi, m =>
            {
                m.AtimeSeconds = a.Seconds;
                m.AtimeNanoseconds = a.Nanoseconds; // UTIME_OMIT passes through as FsMutation.UtimeOmit
                m.MtimeSeconds = b.Seconds;
                m.MtimeNanoseconds = b.Nanoseconds;
            });
        }

        private int SetXattr(byte* path, byte* name, byte* value, nuint size, int flags)
        {
            if (options.ReadOnly)
                return -LibC.EROFS;
            var rel = PathOf(path);
            var n = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(name);
            if (rel == null || !Utf8.IsValid(n))
                return -LibC.EILSEQ;
            var m = NewMutation(FsOp.SetXattr, rel);
            m.Name = Encoding.UTF8.GetString(n);
            m.Data = Memory.Wrap(value, (int)size);
            m.Flags = (uint)flags;
            int r = Mutate(m);
            if (ReferenceEquals(m, threadMutation))
                m.Data = default;
            return r;
        }

        private int RemoveXattr(byte* path, byte* name)
        {
            var n = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(name);
            if (!Utf8.IsValid(n))
                return -LibC.EILSEQ;
            var s = Encoding.UTF8.GetString(n);
            return Simple(FsOp.RemoveXattr, path, m => m.Name = s);
        }

        /// <summary>"/proc/self/fd/N/" + relative path, NUL-terminated, for the l*xattr calls; false when too long.</summary>
        private bool ProcPathOf(byte* path, byte* b)
        {
            var rel = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(Relative(path));
            if (procPrefix.Length + rel.Length + 1 > LinuxDirectory.PathMax + 64)
                return false;
            procPrefix.CopyTo(new Span<byte>(b, procPrefix.Length));
            rel.CopyTo(new Span<byte>(b + procPrefix.Length, rel.Length));
            b[procPrefix.Length + rel.Length] = 0;
            return true;
        }

        private int GetXattr(byte* path, byte* name, byte* value, nuint size)
        {
            byte* b = stackalloc byte[LinuxDirectory.PathMax + 64];
            if (!ProcPathOf(path, b))
                return -LibC.ENAMETOOLONG;
            var n = LibC.LGetXattr(b, name, value, size);
            return n < 0 ? -LibC.Errno : (int)n;
        }

        private int ListXattr(byte* path, byte* list, nuint size)
        {
            byte* b = stackalloc byte[LinuxDirectory.PathMax + 64];
            if (!ProcPathOf(path, b))
                return -LibC.ENAMETOOLONG;
            var n = LibC.LListXattr(b, list, size);
            return n < 0 ? -LibC.Errno : (int)n;
        }

        private int Opendir(byte* path, FuseFileInfo* fi)
        {
            int fd = directory.OpenBeneath(Relative(path), LibC.O_RDONLY | LibC.O_DIRECTORY | LibC.O_CLOEXEC, 0);
            if (fd < 0)
                return -LibC.Errno;
            fi->Fh = (uint)fd;
            return 0;
        }

        private static int Readdir(void* buffer, delegate* unmanaged[Cdecl]<void*, byte*, NativeStat*, long, int, int> filler, FuseFileInfo* fi)
        {
            int fd = Fd(fi);
            if (LibC.LSeek(fd, 0, 0) < 0)
                return -LibC.Errno;
            const int Size = 32768;
            byte* dents = stackalloc byte[Size];
            NativeStat st = default;
            while (true)
            {
                var n = LibC.GetDents64(fd, dents, Size);
                if (n < 0)
                    return -LibC.Errno;
                if (n == 0)
                    return 0;
                for (long off = 0; off < n;)
                {
                    byte* d = dents + off;
                    st.Ino = *(ulong*)d;
                    st.Mode = (uint)d[18] << 12;
                    if (filler(buffer, d + 19, &st, 0, 0) != 0)
                        return 0;
                    off += *(ushort*)(d + 16);
                }
            }
        }

        private int Statfs(void* buffer) => LibC.FStatVfs(directory.Descriptor, buffer) < 0 ? -LibC.Errno : 0;

        private int Access(byte* path, int mask)
        {
            if (options.ReadOnly && (mask & 2) != 0)
                return -LibC.EROFS;
            NativeStat st;
            return LibC.FStatAt(directory.Descriptor, Relative(path), &st, LibC.AT_SYMLINK_NOFOLLOW) < 0 ? -LibC.Errno : 0;
        }

        private int Fallocate(byte* path, int mode, long offset, long length, FuseFileInfo* fi)
        {
            int fd = fi != null ? Fd(fi) : -1;
            return ByHandle(FsOp.Fallocate, path, fi, m =>
            {
                m.Flags = (uint)mode;
                m.Offset = offset;
                m.Length = length;
                m.LocalHandle = fd;
            });
        }

        private IntPtr Init(FuseConnInfo* conn, byte* config)
        {
            // fuse_config (offsets checked against fuse.h of libfuse 3.14): use_ino @64 and hard_remove @60 are not -o
            // options in libfuse 3; the rest came from the -o options. nullpath_ok @104 stays 0 (see "open files whose
            // name is gone").
            if (config != null)
            {
                *(int*)(config + FuseConfig.UseIno) = 1;
                *(int*)(config + FuseConfig.HardRemove) = 1;
            }
            conn->Want &= ~(FuseConnInfo.CapWritebackCache | FuseConnInfo.CapHandleKillpriv);
            conn->MaxWrite = (uint)Math.Clamp(options.MaxWrite, 4096, 1 << 20);
            return GCHandle.ToIntPtr(self);
        }

        // ---------------------------------------------------------------- native entry points

        private static void FillOperations(IntPtr* ops)
        {
            ops[FuseOp.Getattr] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, NativeStat*, FuseFileInfo*, int>)&OnGetattr;
            ops[FuseOp.Readlink] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, nuint, int>)&OnReadlink;
            ops[FuseOp.Mknod] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, uint, ulong, int>)&OnMknod;
            ops[FuseOp.Mkdir] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, uint, int>)&OnMkdir;
            ops[FuseOp.Unlink] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, int>)&OnUnlink;
            ops[FuseOp.Rmdir] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, int>)&OnRmdir;
            ops[FuseOp.Symlink] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, int>)&OnSymlink;
            ops[FuseOp.Rename] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, uint, int>)&OnRename;
            ops[FuseOp.Link] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, int>)&OnLink;
            ops[FuseOp.Chmod] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, uint, FuseFileInfo*, int>)&OnChmod;
            ops[FuseOp.Chown] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, uint, uint, FuseFileInfo*, int>)&OnChown;
            ops[FuseOp.Truncate] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, long, FuseFileInfo*, int>)&OnTruncate;
            ops[FuseOp.Open] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, FuseFileInfo*, int>)&OnOpen;
            ops[FuseOp.Read] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, nuint, long, FuseFileInfo*, int>)&OnRead;
            ops[FuseOp.Write] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, nuint, long, FuseFileInfo*, int>)&OnWrite;
            ops[FuseOp.Statfs] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, void*, int>)&OnStatfs;
            ops[FuseOp.Flush] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, FuseFileInfo*, int>)&OnFlush;
            ops[FuseOp.Release] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, FuseFileInfo*, int>)&OnRelease;
            ops[FuseOp.Fsync] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, int, FuseFileInfo*, int>)&OnFsync;
            ops[FuseOp.Setxattr] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, byte*, nuint, int, int>)&OnSetxattr;
            ops[FuseOp.Getxattr] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, byte*, nuint, int>)&OnGetxattr;
            ops[FuseOp.Listxattr] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, nuint, int>)&OnListxattr;
            ops[FuseOp.Removexattr] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, byte*, int>)&OnRemovexattr;
            ops[FuseOp.Opendir] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, FuseFileInfo*, int>)&OnOpendir;
            ops[FuseOp.Readdir] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, void*, IntPtr, long, FuseFileInfo*, int, int>)&OnReaddir;
            ops[FuseOp.Releasedir] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, FuseFileInfo*, int>)&OnRelease;
            ops[FuseOp.Fsyncdir] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, int, FuseFileInfo*, int>)&OnFsync;
            ops[FuseOp.Init] = (IntPtr)(delegate* unmanaged[Cdecl]<FuseConnInfo*, void*, IntPtr>)&OnInit;
            ops[FuseOp.Access] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, int, int>)&OnAccess;
            ops[FuseOp.Create] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, uint, FuseFileInfo*, int>)&OnCreate;
            ops[FuseOp.Utimens] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, Timespec*, FuseFileInfo*, int>)&OnUtimens;
            ops[FuseOp.Fallocate] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, int, long, long, FuseFileInfo*, int>)&OnFallocate;
            ops[FuseOp.Lseek] = (IntPtr)(delegate* unmanaged[Cdecl]<byte*, long, int, FuseFileInfo*, long>)&OnLseek;
            // copy_file_range stays NULL: libfuse answers ENOSYS and the kernel copies through read/write.
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnGetattr(byte* path, NativeStat* st, FuseFileInfo* fi)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.Getattr(path, st, fi)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnReadlink(byte* path, byte* buffer, nuint size)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.Readlink(path, buffer, size)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnMknod(byte* path, uint mode, ulong rdev)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.MakeNode(FsOp.Mknod, path, mode, rdev)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnMkdir(byte* path, uint mode)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.MakeNode(FsOp.Mkdir, path, mode, 0)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnUnlink(byte* path)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.Simple(FsOp.Unlink, path, static _ => { })); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnRmdir(byte* path)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.Simple(FsOp.Rmdir, path, static _ => { })); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnSymlink(byte* content, byte* linkPath)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.Symlink(content, linkPath)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnRename(byte* from, byte* to, uint flags)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.TwoPaths(FsOp.Rename, from, to, flags)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnLink(byte* from, byte* to)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.TwoPaths(FsOp.Link, from, to, 0)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnChmod(byte* path, uint mode, FuseFileInfo* fi)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.ByHandle(FsOp.Chmod, path, fi, x => x.Mode = mode)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnChown(byte* path, uint uid, uint gid, FuseFileInfo* fi)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.ByHandle(FsOp.Chown, path, fi, x => { x.Uid = (int)uid; x.Gid = (int)gid; })); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnTruncate(byte* path, long size, FuseFileInfo* fi)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.Truncate(path, size, fi)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnOpen(byte* path, FuseFileInfo* fi)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.Open(path, fi)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnRead(byte* path, byte* buffer, nuint size, long offset, FuseFileInfo* fi)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.Read(buffer, size, offset, fi)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnWrite(byte* path, byte* buffer, nuint size, long offset, FuseFileInfo* fi)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.Write(path, buffer, size, offset, fi)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnStatfs(byte* path, void* buffer)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.Statfs(buffer)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnFlush(byte* path, FuseFileInfo* fi)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.Fsync(path, 0, fi, flush: true)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnRelease(byte* path, FuseFileInfo* fi)
        {
            ReplicatedMount? m = null;
            try
            {
                m = Current();
                m.Forget(fi);
                if (m.lender?.Release(fi->Fh) ?? true)
                    LibC.Close(Fd(fi)); // else closed when the request that borrowed it is answered
                return m.Done(0);
            }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnFsync(byte* path, int datasync, FuseFileInfo* fi)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.Fsync(path, datasync, fi, flush: false)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnSetxattr(byte* path, byte* name, byte* value, nuint size, int flags)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.SetXattr(path, name, value, size, flags)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnGetxattr(byte* path, byte* name, byte* value, nuint size)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.GetXattr(path, name, value, size)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnListxattr(byte* path, byte* list, nuint size)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.ListXattr(path, list, size)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnRemovexattr(byte* path, byte* name)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.RemoveXattr(path, name)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnOpendir(byte* path, FuseFileInfo* fi)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.Opendir(path, fi)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnReaddir(byte* path, void* buffer, IntPtr filler, long offset, FuseFileInfo* fi, int flags)
        {
            ReplicatedMount? m = null;
            try
            {
                m = Current();
                return m.Done(Readdir(buffer, (delegate* unmanaged[Cdecl]<void*, byte*, NativeStat*, long, int, int>)filler, fi));
            }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static IntPtr OnInit(FuseConnInfo* conn, void* config)
        {
            try { return Current().Init(conn, (byte*)config); }
            catch { return FuseNative.GetContext()->PrivateData; }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnAccess(byte* path, int mask)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.Access(path, mask)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnCreate(byte* path, uint mode, FuseFileInfo* fi)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.Create(path, mode, fi)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnUtimens(byte* path, Timespec* tv, FuseFileInfo* fi)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.Utimens(path, tv, fi)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int OnFallocate(byte* path, int mode, long offset, long length, FuseFileInfo* fi)
        {
            ReplicatedMount? m = null;
            try { m = Current(); return m.Done(m.Fallocate(path, mode, offset, length, fi)); }
            catch { return Failed(m); }
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static long OnLseek(byte* path, long offset, int whence, FuseFileInfo* fi)
        {
            ReplicatedMount? m = null;
            try
            {
                m = Current();
                long r = LibC.LSeek(Fd(fi), offset, whence);
                if (r < 0)
                    return m.Done(-LibC.Errno);
                m.Done(0);
                return r;
            }
            catch { return Failed(m); }
        }
    }
}
