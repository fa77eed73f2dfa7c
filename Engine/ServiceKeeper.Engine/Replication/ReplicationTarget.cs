// The secondary's side of replication for one mirror module: connects to the primary (its "resync
// procedure"), says what it has (sync point, journal trust, an interrupted resync), answers the primary's
// listing and block-hash questions, and applies every mutation in sequence order through the tree's
// IMutationApplier (LinuxDirectory). It acknowledges cumulatively: applied-through, and (sync-disk)
// durable-through after one fsync per touched file covering all writes since the last acknowledgement.
//
// How the host uses it (MirrorHost, on the secondary):
//   var target = new ReplicationTarget(options, logger, time);
//   await target.ConnectAndResyncAsync(primaryEndpoint, full, progress, ct);   // identical and live now
//   await target.Completion;   // the stream ended (primary gone or Disconnect); Status() says why
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Configuration;

namespace ServiceKeeper.Engine.Replication
{
    public sealed partial class ReplicationTarget : IAsyncDisposable
    {
        private sealed class TreeState(ReplicatedTree config, DirtyJournal journal)
        {
            public readonly ReplicatedTree Config = config;
            public readonly PathFilter Filter = new(config.NotReplicated);
            public readonly DirtyJournal Journal = journal;
        }

        private enum TargetState { Stale, Resyncing, Receiving }

        private readonly ReplicationOptions _options;
        private readonly ILogger _log;
        private readonly TimeProvider _time;
        private readonly TreeState[] _trees;
        private readonly object _gate = new();
        private TargetState _state = TargetState.Stale;
        private FrameConnection? _connection;
        private TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private TaskCompletionSource? _inSync;
        private IProgress<ResyncProgress>? _progress;
        private ResyncProgress? _lastProgress, _lastResync;
        private string? _lastError;
        private long _applied, _durable, _bytesApplied, _opsApplied;
        private long _forgedFrames;
        private bool _disposed;

        public ReplicationTarget(ReplicationOptions options, ILogger logger, TimeProvider time)
        {
            _options = options;
            _log = logger;
            _time = time;
            Directory.CreateDirectory(options.StateDirectory);
            _trees = options.Trees.Select(t => new TreeState(t, DirtyJournal.Open(DirtyJournal.FileFor(options.StateDirectory, t.Id), options.ZoneBytes))).ToArray();
            _completion.SetResult();
        }

        /// <summary>Ends when the replication stream ends (the primary went away, a bad frame, Disconnect).</summary>
        public Task Completion { get { lock (_gate) return _completion.Task; } }

        /// <summary>True while the copy is identical and live.</summary>
        public bool IsInSync { get { lock (_gate) return _state == TargetState.Receiving; } }

        public long ForgedFrames => Interlocked.Read(ref _forgedFrames);

        /// <summary>
        /// Connects to the primary, resynchronises every replicated directory and returns once they are identical
        /// and live (replication then goes on until <see cref="Completion"/>). Throws when the connection or
        /// authentication fails or the stream ends before the resync completed (a later call resumes it).
        /// </summary>
        public async Task ConnectAndResyncAsync(EndPoint primary, bool full, IProgress<ResyncProgress>? progress, CancellationToken ct)
        {
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_connection != null) throw new InvalidOperationException("already connected");
                _progress = progress;
            }
            // The previous connection's syncfs and journal update come before this one's BeginResync.
            await Durability.ConfigureAwait(false);
            var socket = new Socket(primary.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            FrameConnection conn;
            try
            {
                await ConnectBlockingAsync(socket, primary, _options.HandshakeTimeout, ct).ConfigureAwait(false);
                var keys = await Task.Run(() => Handshake.Connect(socket, _options.ClusterKey, _options.Module, _options.HandshakeTimeout), ct).ConfigureAwait(false);
                var inSync = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                var completion = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                conn = new FrameConnection(socket, keys, _options.Module, e => { });
                // The primary sends at least a keepalive every second: silence this long means it is gone.
                socket.ReceiveTimeout = (int)Math.Max(5000, _options.SendTimeout.TotalMilliseconds * 2);
                lock (_gate)
                {
                    _connection = conn;
                    _inSync = inSync;
                    _completion = completion;
                    _applied = _durable = 0;
                    _lastError = null;
                    _state = TargetState.Resyncing;
                }
                SendRequest(conn, full);
                var reader = new Thread(() => Receive(conn, inSync, completion)) { IsBackground = true, Name = "rfs-apply " + _options.Module };
                reader.Start();
                using (ct.Register(() => conn.Close(null)))
                    await inSync.Task.ConfigureAwait(false);
            }
            catch (Exception) when (ct.IsCancellationRequested)
            {
                socket.Close();
                throw new OperationCanceledException(ct);
            }
            catch
            {
                socket.Close();
                throw;
            }
        }

        /// <summary>
        /// Connects with a blocking connect() on a thread of its own (a busy thread pool would hold it past the timeout). Not ConnectAsync: on Linux a socket that made one
        /// asynchronous call stays non-blocking, and .NET then emulates every later blocking Receive and Send through
        /// its epoll thread and the thread pool; on the apply thread that was two extra wake-ups per read and spinning
        /// pool threads, on the cores the writes need. A timeout or <paramref name="ct"/> closes the socket, which
        /// aborts the connect; the timeout ends in an OperationCanceledException, as ConnectAsync's did.
        /// </summary>
        private static async Task ConnectBlockingAsync(Socket socket, EndPoint primary, TimeSpan timeout, CancellationToken ct)
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
            limit.CancelAfter(timeout);
            try
            {
                using (limit.Token.Register(socket.Dispose))
                    await Task.Factory.StartNew(() => socket.Connect(primary), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)
                        .ConfigureAwait(false);
            }
            catch (Exception e) when (limit.IsCancellationRequested && e is SocketException or ObjectDisposedException)
            {
                throw new OperationCanceledException(limit.Token);
            }
            limit.Token.ThrowIfCancellationRequested();
        }

        private void SendRequest(FrameConnection conn, bool full)
        {
            var f = new OutFrame(MsgType.Request, 256);
            f.U8(full ? (byte)1 : (byte)0);
            f.U16((ushort)_trees.Length);
            foreach (var t in _trees)
            {
                f.Str(t.Config.Id);
                f.I64(t.Journal.SyncPoint?.Ticks ?? 0);
                f.U8((byte)((t.Journal.Trusted ? 1 : 0) | (t.Journal.ResyncInterrupted ? 2 : 0) | (t.Journal.InterruptedResyncWasFull ? 4 : 0)));
                var dirty = t.Journal.DirtyPaths();
                f.U32((uint)dirty.Count);
                foreach (var p in dirty) f.Str(p);
            }
            // Sent first, so that the journal's fsyncs below overlap the primary's scan: nothing is applied before
            // they are done (the apply thread starts after this returns), which is all "interrupted" must precede.
            conn.Send(f);
            foreach (var t in _trees) t.Journal.BeginResync(full || t.Journal.SyncPoint == null);
        }

        private void Receive(FrameConnection conn, TaskCompletionSource inSync, TaskCompletionSource completion)
        {
            string reason = "the primary closed the connection";
            try
            {
                ApplyLoop(conn, inSync);
            }
            catch (ProtocolException e)
            {
                Interlocked.Increment(ref _forgedFrames);
                reason = "rejected frame: " + e.Message;
                LogForged(_options.Module, e.Message);
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or EndOfStreamException)
            {
                reason = "connection lost: " + e.Message;
            }
            catch (Exception e)
            {
                reason = "replication failed: " + e.Message;
                LogApplyFailed(_options.Module, e);
            }
            conn.Close(null);
            lock (_gate)
            {
                _connection = null;
                _lastError = reason;
                _state = TargetState.Stale;
            }
            foreach (var t in _trees) t.Journal.Flush();
            LogDisconnected(_options.Module, reason);
            inSync.TrySetException(new IOException($"{_options.Module}: the replication stream ended before the resync completed ({reason})"));
            completion.TrySetResult();
        }

        private const int AckEveryOps = 256;
        private const long AckEveryBytes = 8 << 20;

        private void ApplyLoop(FrameConnection conn, TaskCompletionSource inSync)
        {
            long expected = 1;
            var results = new List<(long, int)>();
            var touched = new Dictionary<(int, string), bool>();
            int unackedOps = 0;
            long unackedBytes = 0;
            long lastSyncPoint = _time.GetTimestamp();
            bool durableMode = _options.Mode == RfsAsync.None;
            var hash = new byte[32];
            while (true)
            {
                var type = conn.Read(out var payload);
                bool moreParts = false;
                var r = new PayloadReader(payload);
                long seq = r.I64();
                if (seq != expected) throw new ProtocolException($"sequence {seq}, expected {expected}");
                expected++;
                switch (type)
                {
                    case MsgType.Mutation:
                        {
                            int ti = r.U16();
                            if (ti >= _trees.Length) throw new ProtocolException("unknown tree");
                            var t = _trees[ti];
                            var m = MessageCodec.ReadMutation(ref r, payload.AsMemory());
                            int result = t.Filter.IsExcluded(m.Path) ? -13 : t.Config.Applier.Apply(m);
                            moreParts = m.Op == FsOp.Write && m.Length > 0;
                            if (result != 0) results.Add((seq, result));
                            if (durableMode) Touch(touched, ti, m);
                            unackedBytes += m.Data.Length;
                            Interlocked.Add(ref _bytesApplied, m.Data.Length);
                            Interlocked.Increment(ref _opsApplied);
                            break;
                        }
                    case MsgType.ScanRequest:
                        {
                            int ti = r.U16();
                            uint id = r.U32();
                            if (ti >= _trees.Length) throw new ProtocolException("unknown tree");
                            var entries = TreeScan.Scan(_trees[ti].Config.ReadRoot, _trees[ti].Filter, xattrs: true);
                            for (int at = 0; ; at += 20000)
                            {
                                var part = entries.Skip(at).Take(20000).ToList();
                                var f = new OutFrame(MsgType.ScanReply, 64 + part.Count * 96);
                                bool last = at + 20000 >= entries.Count;
                                f.U32(id); f.U8(last ? (byte)1 : (byte)0); f.U32((uint)part.Count);
                                foreach (var e in part) MessageCodec.WriteEntry(f, e);
                                conn.Send(f);
                                if (last) break;
                            }
                            break;
                        }
                    case MsgType.HashRequest:
                        {
                            int ti = r.U16();
                            uint id = r.U32();
                            var path = r.Path();
                            long start = r.I64();
                            int block = r.I32(), count = r.I32();
                            if (ti >= _trees.Length || block <= 0 || block > (16 << 20) || count <= 0 || count > (1 << 20) || start < 0) throw new ProtocolException("bad hash request");
                            SendHashes(conn, _trees[ti], id, path, start, block, count, hash);
                            break;
                        }
                    case MsgType.ZoneHashRequest:
                        {
                            int ti = r.U16();
                            uint id = r.U32();
                            var path = r.Path();
                            int block = r.I32();
                            uint n = r.U32();
                            if (ti >= _trees.Length || block <= 0 || block > (16 << 20) || n > 65536) throw new ProtocolException("bad zone hash request");
                            var ranges = new (long Start, int Count)[n];
                            long blocks = 0;
                            for (int i = 0; i < n; i++)
                            {
                                ranges[i] = (r.I64(), r.I32());
                                blocks += ranges[i].Count;
                                if (ranges[i].Start < 0 || ranges[i].Count <= 0 || blocks > (1 << 20)) throw new ProtocolException("bad zone hash request");
                            }
                            SendZoneHashes(conn, _trees[ti], id, path, block, ranges, (int)blocks, hash);
                            break;
                        }
                    case MsgType.InSync:
                        {
                            r.I64(); // the primary's sync point: ours is taken below, after our own flush
                            var final = ReadProgress(ref r);
                            var now = _time.GetUtcNow().UtcDateTime;
                            if (durableMode)
                            {
                                // sync-disk: the resync's data is durable before "in sync" is acknowledged.
                                foreach (var t in _trees)
                                {
                                    NativeFs.SyncFileSystem(t.Config.ReadRoot);
                                    t.Journal.MarkResynced(t.Journal.MarkCounter, now - _options.SyncPointMargin);
                                }
                            }
                            else
                            {
                                // sync: "in sync" means applied, as every acknowledgement in this mode; the journal says
                                // so only once a syncfs made it durable (until then a crash here finds the resync interrupted).
                                var marks = _trees.Select(t => t.Journal.MarkCounter).ToArray();
                                MakeDurableInBackground(() =>
                                {
                                    for (int i = 0; i < _trees.Length; i++)
                                        if (NativeFs.SyncFileSystem(_trees[i].Config.ReadRoot) == 0)
                                            _trees[i].Journal.MarkResynced(marks[i], now - _options.SyncPointMargin);
                                });
                            }
                            lastSyncPoint = _time.GetTimestamp();
                            lock (_gate)
                            {
                                _state = TargetState.Receiving;
                                if (durableMode) _durable = seq;
                                _lastResync = final ?? _lastProgress;
                                if (_lastResync != null) _lastResync.FinishedUtc = now;
                            }
                            LogInSync(_options.Module);
                            if (final != null) _progress?.Report(final);
                            break;
                        }
                    case MsgType.Progress:
                        {
                            var p = ReadProgress(ref r);
                            if (p != null && !IsInSync)
                            {
                                lock (_gate) _lastProgress = p;
                                if (p.Method.Contains("full", StringComparison.Ordinal)) foreach (var t in _trees) if (!t.Journal.InterruptedResyncWasFull) t.Journal.BeginResync(true);
                                _progress?.Report(p);
                            }
                            break;
                        }
                    default:
                        throw new ProtocolException("unexpected message " + type);
                }
                if (!r.End) throw new ProtocolException("trailing bytes in " + type);
                unackedOps++;
                bool inSyncNow = type == MsgType.InSync;
                bool periodic = _time.GetElapsedTime(lastSyncPoint) >= _options.SyncPointInterval && IsInSync;
                if (periodic && durableMode)
                {
                    // Everything applied so far becomes durable; the sync point may move up to now (less the margin).
                    var now = _time.GetUtcNow().UtcDateTime;
                    foreach (var t in _trees)
                    {
                        NativeFs.SyncFileSystem(t.Config.ReadRoot);
                        t.Journal.SetSyncPoint(now - _options.SyncPointMargin);
                        t.Journal.Flush();
                    }
                    touched.Clear();
                    lock (_gate) _durable = seq;
                    lastSyncPoint = _time.GetTimestamp();
                }
                else if (periodic)
                {
                    // sync: the same off the apply thread, so a syncfs (which waits for every dirty page of the file
                    // system, other programs' too) never holds back live writes; the sync point moves once it is done.
                    lastSyncPoint = _time.GetTimestamp();
                    var now = _time.GetUtcNow().UtcDateTime;
                    MakeDurableInBackground(() =>
                    {
                        foreach (var t in _trees)
                        {
                            if (NativeFs.SyncFileSystem(t.Config.ReadRoot) != 0) continue;
                            t.Journal.SetSyncPoint(now - _options.SyncPointMargin);
                            t.Journal.Flush();
                        }
                    }, optional: true);
                }
                // A part of a large write with more of it to come is not acknowledged on its own: the primary waits for the
                // last one (one acknowledgement and, in sync-disk, one fdatasync per write instead of one per part).
                if (inSyncNow || (!conn.HasInput && !moreParts) || unackedOps >= AckEveryOps || unackedBytes >= AckEveryBytes)
                {
                    if (durableMode)
                    {
                        foreach (var ((ti, path), metadata) in touched)
                        {
                            // fdatasync covers data and size; the rest (mode, owner, names in a directory) needs fsync.
                            int rc = _trees[ti].Config.Applier.Apply(new FsMutation { Op = FsOp.Fsync, Path = path, Flags = metadata ? 0u : 1u });
                            if (rc != 0 && rc != -2) LogFsyncFailed(_options.Module, path, rc);
                        }
                        touched.Clear();
                        lock (_gate) _durable = seq;
                    }
                    var ack = new OutFrame(MsgType.Ack, 24 + results.Count * 12);
                    long durable;
                    lock (_gate) { _applied = seq; durable = _durable; }
                    ack.I64(seq); ack.I64(durable); ack.U32((uint)results.Count);
                    foreach (var (s, rc) in results) { ack.I64(s); ack.I32(rc); }
                    conn.Send(ack, inline: true); // from this thread: no hand-off to the writer on the round trip
                    results.Clear();
                    unackedOps = 0;
                    unackedBytes = 0;
                }
                if (inSyncNow) inSync.TrySetResult();
            }
        }

        private Task _durability = Task.CompletedTask;

        /// <summary>
        /// Sync mode: runs a syncfs and the journal update that depends on it on the thread pool, one at a time (a
        /// periodic one is skipped while the previous still runs). A new connection and Dispose wait for it first.
        /// </summary>
        private void MakeDurableInBackground(Action work, bool optional = false)
        {
            lock (_gate)
            {
                if (optional && !_durability.IsCompleted) return;
                if (!_durability.IsCompleted) _durability = _durability.ContinueWith(_ => Run(), TaskScheduler.Default);
                else _durability = Task.Run(Run);
            }

            void Run()
            {
                try { work(); }
                catch (Exception e) { LogDurabilityFailed(_options.Module, e); }
            }
        }

        private Task Durability { get { lock (_gate) return _durability; } }

        private static string Parent(string path)
        {
            int i = path.LastIndexOf('/');
            return i < 0 ? "" : path[..i];
        }

        /// <summary>What an fsync must cover for this mutation to be durable (sync-disk).</summary>
        private static void Touch(Dictionary<(int, string), bool> touched, int tree, FsMutation m)
        {
            void Add(string path, bool metadata) => touched[(tree, path)] = metadata || touched.GetValueOrDefault((tree, path));
            switch (m.Op)
            {
                case FsOp.Write or FsOp.Truncate or FsOp.Fallocate:
                    Add(m.Path, false);
                    break;
                case FsOp.SetXattr or FsOp.RemoveXattr or FsOp.Chmod or FsOp.Chown or FsOp.Utimens:
                    Add(m.Path, true);
                    break;
                case FsOp.Create:
                    Add(m.Path, true);
                    Add(Parent(m.Path), true);
                    break;
                case FsOp.Rename:
                    Add(Parent(m.Path), true);
                    if (m.Target != null) Add(Parent(m.Target), true);
                    break;
                case FsOp.Link:
                    if (m.Target != null) Add(Parent(m.Target), true);
                    break;
                case FsOp.Fsync:
                    break; // applied: it is an fsync
                default:
                    Add(Parent(m.Path), true);
                    break;
            }
        }

        /// <summary>The regular, replicated file a hash request names; otherwise the refusal (-2) is sent on the reply frame.</summary>
        private static bool ReplicatedFile(FrameConnection conn, OutFrame f, TreeState t, string path, out string full, out FsStat st)
        {
            full = TreeScan.Full(t.Config.ReadRoot, path);
            if (!t.Filter.IsExcluded(path) && NativeFs.Stat(full, out st) == 0 && st.Type == FsEntryType.File) return true;
            st = default;
            f.I32(-2); f.I64(0); f.U32(0);
            conn.Send(f);
            return false;
        }

        /// <summary>Reads until <paramref name="buffer"/> is full or the file ends; returns the bytes read.</summary>
        private static int ReadFully(Microsoft.Win32.SafeHandles.SafeFileHandle h, Span<byte> buffer, long offset)
        {
            int n = 0;
            while (n < buffer.Length)
            {
                int got = RandomAccess.Read(h, buffer[n..], offset + n);
                if (got <= 0) break;
                n += got;
            }
            return n;
        }

        private static void SendHashes(FrameConnection conn, TreeState t, uint id, string path, long start, int block, int count, byte[] hash)
        {
            var f = new OutFrame(MsgType.HashReply, 32 + count * ReplicationSource.HashBytes);
            f.U32(id);
            if (!ReplicatedFile(conn, f, t, path, out var full, out var st)) return;
            var hashes = new List<byte[]>();
            var buffer = new byte[block];
            try
            {
                using var h = File.OpenHandle(full, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                for (int k = 0; k < count; k++)
                {
                    long off = start + (long)k * block;
                    int n = ReadFully(h, buffer, off);
                    if (n == 0) break;
                    SHA256.HashData(buffer.AsSpan(0, n), hash);
                    hashes.Add(hash[..ReplicationSource.HashBytes]);
                    if (n < block) break;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                hashes.Clear();
            }
            f.I32(0); f.I64(st.Size); f.U32((uint)hashes.Count);
            foreach (var x in hashes) f.Raw(x);
            conn.Send(f);
        }

        /// <summary>
        /// One hash per requested block, in request order; a block at or past the end of the file gets 16 zero bytes
        /// (the primary knows the size from the reply and sends such blocks anyway).
        /// </summary>
        private static void SendZoneHashes(FrameConnection conn, TreeState t, uint id, string path, int block, (long Start, int Count)[] ranges, int blocks, byte[] hash)
        {
            var f = new OutFrame(MsgType.HashReply, 32 + blocks * ReplicationSource.HashBytes);
            f.U32(id);
            if (!ReplicatedFile(conn, f, t, path, out var full, out var st)) return;
            var hashes = new byte[blocks * ReplicationSource.HashBytes];
            int result = 0;
            long size = st.Size;
            try
            {
                using var h = File.OpenHandle(full, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                size = RandomAccess.GetLength(h);
                NativeFs.WillNeed(h, ranges.Select(x => (x.Start, (long)x.Count * block)));
                int longest = ranges.Max(x => x.Count);
                var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent((int)Math.Min((long)longest * block, 16 << 20));
                try
                {
                    int at = 0;
                    foreach (var (start, count) in ranges)
                    {
                        // One read per range (a journal zone), then hash its blocks.
                        long want = Math.Clamp(size - start, 0, Math.Min((long)count * block, buffer.Length));
                        int n = ReadFully(h, buffer.AsSpan(0, (int)want), start);
                        for (int k = 0; k < count; k++, at++)
                        {
                            int off = k * block;
                            if (off >= n) continue;
                            SHA256.HashData(buffer.AsSpan(off, Math.Min(block, n - off)), hash);
                            hash.AsSpan(0, ReplicationSource.HashBytes).CopyTo(hashes.AsSpan(at * ReplicationSource.HashBytes));
                        }
                    }
                }
                finally
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                result = -5;
            }
            f.I32(result); f.I64(size); f.U32(result == 0 ? (uint)blocks : 0);
            if (result == 0) f.Raw(hashes);
            conn.Send(f);
        }

        private static ResyncProgress? ReadProgress(ref PayloadReader r)
        {
            if (r.U8() == 0) return null;
            var p = new ResyncProgress
            {
                Method = r.Str() ?? "", BytesDone = r.I64(), BytesTotal = r.I64(), FilesDone = r.I64(), FilesTotal = r.I64(), BytesSent = r.I64(),
                BytesPerSecond = BitConverter.Int64BitsToDouble(r.I64()),
            };
            var eta = BitConverter.Int64BitsToDouble(r.I64());
            p.EtaSeconds = eta < 0 ? null : eta;
            p.StartedUtc = new DateTime(r.I64(), DateTimeKind.Utc);
            return p;
        }

        /// <summary>Ends the stream (the primary sees the secondary gone). Completion ends.</summary>
        public void Disconnect()
        {
            FrameConnection? c;
            lock (_gate) c = _connection;
            c?.Close(null);
        }

        /// <summary>Get-SKReplication on the secondary.</summary>
        public IReadOnlyList<ReplicationStatus> Status()
        {
            lock (_gate)
            {
                return _trees.Select(t => new ReplicationStatus
                {
                    Module = _options.Module,
                    Node = _options.LocalNode,
                    PeerNode = _options.PeerNode,
                    Directory = t.Config.Id,
                    Mode = _options.ModeName,
                    State = _state switch { TargetState.Receiving => "receiving", TargetState.Resyncing => "resyncing", _ => "stale" },
                    BytesReplicated = Interlocked.Read(ref _bytesApplied),
                    OperationsReplicated = Interlocked.Read(ref _opsApplied),
                    LastSyncPointUtc = t.Journal.SyncPoint,
                    Resync = _state == TargetState.Resyncing ? _lastProgress : null,
                    LastResync = _lastResync,
                    Reachable = _connection != null,
                    Error = _connection == null ? _lastError : null,
                }).ToList();
            }
        }

        public async ValueTask DisposeAsync()
        {
            Task completion;
            lock (_gate)
            {
                if (_disposed) return;
                _disposed = true;
                completion = _completion.Task;
            }
            Disconnect();
            await completion.ConfigureAwait(false);
            await Durability.ConfigureAwait(false);
            foreach (var t in _trees) t.Journal.Close();
        }

        [LoggerMessage(Level = LogLevel.Warning, Message = "{Module}: replication frame rejected: {Reason}")]
        private partial void LogForged(string module, string reason);

        [LoggerMessage(Level = LogLevel.Error, Message = "{Module}: applying replicated changes failed")]
        private partial void LogApplyFailed(string module, Exception e);

        [LoggerMessage(Level = LogLevel.Information, Message = "{Module}: replication from the primary ended: {Reason}")]
        private partial void LogDisconnected(string module, string reason);

        [LoggerMessage(Level = LogLevel.Information, Message = "{Module}: in sync with the primary")]
        private partial void LogInSync(string module);

        [LoggerMessage(Level = LogLevel.Error, Message = "{Module}: making the copy durable (syncfs, sync point) failed")]
        private partial void LogDurabilityFailed(string module, Exception e);

        [LoggerMessage(Level = LogLevel.Error, Message = "{Module}: fsync of {Path} failed ({Result})")]
        private partial void LogFsyncFailed(string module, string path, int result);
    }
}
