// The primary's side of replication for one mirror module: every mutation the FUSE file system makes goes
// through SinkFor(tree); it is sent to the secondary on one ordered, authenticated TCP connection and the
// application's call returns once the secondary acknowledged it (mode sync: applied; sync-disk: durable).
// Without a secondary (ALONE) mutations only mark the dirty journal. When the secondary connects (its
// "resync procedure") this side plans and runs the resync on that same connection, interleaved with live
// mutations, then reports "in sync".
//
// How the host uses it (MirrorHost):
//   var source = new ReplicationSource(options, logger, time) { PeerFailed = async reason => { persist ALONE
//       (new data generation); source.GoAlone(); } };
//   source.Start(new IPEndPoint(address, port));  fuse.Sink = source.SinkFor(treeId);
//   ... Status() for Get-SKReplication ... await source.DisposeAsync() (journals closed clean).
//
// States:
//            secondary connects, authenticated              plan done, "in sync" acknowledged
//   ALONE ─────────────────────────────────► RESYNCING ──────────────────────────────────► REPLICATING
//     ▲                                          │ ack timeout / connection lost              │
//     │ GoAlone() (host persisted ALONE)         ▼                                            │
//     └──────────────────────────────────── FAILING ◄──────────────────────────────────────────┘
// In FAILING, Complete() waits: a write neither acknowledged by the secondary nor in the journal is never
// reported done; GoAlone() moves everything unacknowledged into the journal and releases the waiters.
using System;
using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Configuration;

namespace ServiceKeeper.Engine.Replication
{
    public sealed partial class ReplicationSource : IAsyncDisposable
    {
        private enum SourceState { Alone, Resyncing, Replicating, Failing }

        private enum PendingKind : byte { Live, Resync, Control }

        private sealed class TreeState(ReplicatedTree config, int index, DirtyJournal journal)
        {
            public readonly ReplicatedTree Config = config;
            public readonly int Index = index;
            public readonly PathFilter Filter = new(config.NotReplicated);
            public readonly DirtyJournal Journal = journal;
            public readonly AsyncRwLock Namespace = new();
            public long ResyncMark;
            /// <summary>The secondary may differ in namespace or metadata (a result differed, a rename crossed NotReplicated).</summary>
            public volatile string? Divergence;
            /// <summary>A live mutation gave another result on the secondary while a resync pass ran (for example a
            /// write to a file the resync had not created there yet): the pass is not enough, plan again.</summary>
            public volatile bool DivergedThisPass;
        }

        private sealed class Pending
        {
            public long Seq;
            public PendingKind Kind;
            public TreeState? Tree;
            public FsOp Op;
            public string Path = "";
            public string? Target;
            public long Offset, Length;
            public uint Flags;
            public long Bytes;
            public long BeginTimestamp;
            public int RemoteResult;
            public bool Done, Acked, Failed;
            public LockSet Locks;
            public DataItem? Item;
            public long Zone = -1;
            public TaskCompletionSource? Waiter;
            /// <summary>The last part of a write sent in parts: every part, in order.</summary>
            public Pending[]? Parts;
            /// <summary>The connection a live write was queued on: Complete sends what is still queued itself.</summary>
            public FrameConnection? Connection;
            /// <summary>The parts of a large write sent from the application's buffer: Complete returns once none is queued.</summary>
            public TailLease? Lease;
        }

        private readonly record struct LockSet(TreeState Tree, int Namespace, int Stripe1, int Stripe2);

        /// <summary>A mutation only journaled here; <paramref name="fail"/>: the source is fenced, the application gets EIO.</summary>
        private sealed class LocalTicket(LockSet locks, bool fail) { public readonly LockSet Locks = locks; public readonly bool Fail = fail; }

        private sealed class Session
        {
            public FrameConnection? Connection;
            public readonly CancellationTokenSource Cancel = new();
            public readonly Dictionary<uint, TaskCompletionSource<object>> Replies = new();
            public readonly Dictionary<uint, List<TreeEntry>> ScanParts = new();
            public uint NextRequest;
            public readonly List<DataItem>[] Items;
            public ResyncProgressTracker? Progress;
            public Session(int trees) { Items = new List<DataItem>[trees]; for (int i = 0; i < trees; i++) Items[i] = new List<DataItem>(); }
        }

        private readonly ReplicationOptions _options;
        private readonly ILogger _log;
        private readonly TimeProvider _time;
        private readonly TreeState[] _trees;
        private readonly object _gate = new();
        private readonly Queue<Pending> _pending = new();
        private readonly Dictionary<long, Pending> _bySeq = new();
        private readonly StripedLocks _stripes = new(1024);
        private readonly ByteWindow _resyncWindow;
        private readonly CancellationTokenSource _stop = new();
        private SourceState _state = SourceState.Alone;
        private Session? _session;
        private long _seq;
        private long _applied, _durable;
        private long _pendingBytes;
        private TcpListener? _listener;
        private Task? _acceptLoop, _ticker;
        private bool _disposed;
        private long _lastSendTimestamp, _lastProgressTimestamp;

        // Statistics
        private long _bytesReplicated, _opsReplicated, _ackTicksSum, _ackCount;
        private double _rate, _ackMs;
        private long _rateBytesAt, _rateTimestamp;
        private long _forgedFrames, _authFailures;
        private ResyncProgress? _lastResync;
        private string? _lastError;

        public ReplicationSource(ReplicationOptions options, ILogger logger, TimeProvider time)
        {
            _options = options;
            _log = logger;
            _time = time;
            _resyncWindow = new ByteWindow(options.ResyncWindowBytes);
            Directory.CreateDirectory(options.StateDirectory);
            _trees = options.Trees.Select((t, i) =>
                new TreeState(t, i, DirtyJournal.Open(DirtyJournal.FileFor(options.StateDirectory, t.Id), options.ZoneBytes))).ToArray();
            _rateTimestamp = time.GetTimestamp();
        }

        /// <summary>
        /// Raised (once per lost secondary) when the secondary stopped acknowledging within SendTimeout or its
        /// connection broke. The host persists ALONE (a new data generation) and then calls <see cref="GoAlone"/>;
        /// until then every Complete waits. Unset: GoAlone is called directly.
        /// </summary>
        public Func<string, Task>? PeerFailed { get; set; }

        /// <summary>Raised when a resync completed and the secondary is identical and live.</summary>
        public event Action? InSync;

        /// <summary>The address the primary listens on (after Start).</summary>
        public IPEndPoint? LocalEndpoint => _listener?.LocalEndpoint as IPEndPoint;

        /// <summary>Frames that failed authentication or were malformed, connections refused in the handshake.</summary>
        public long ForgedFrames => Interlocked.Read(ref _forgedFrames);
        public long AuthenticationFailures => Interlocked.Read(ref _authFailures);

        /// <summary>True once the secondary is live and identical (REPLICATING).</summary>
        public bool IsInSync { get { lock (_gate) return _state == SourceState.Replicating; } }

        /// <summary>Listens for the secondary. Idempotent.</summary>
        public void Start(IPEndPoint listen)
        {
            lock (_gate)
            {
                if (_listener != null || _disposed) return;
                _listener = new TcpListener(listen);
                _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                _listener.Start();
            }
            _acceptLoop = Task.Run(AcceptLoopAsync);
            _ticker = Task.Run(TickerAsync);
            LogListening(_options.Module, LocalEndpoint!.ToString());
        }

        /// <summary>The sink the FUSE file system of tree <paramref name="treeId"/> reports its mutations to.</summary>
        public IMutationSink SinkFor(string treeId)
        {
            var t = _trees.FirstOrDefault(x => x.Config.Id == treeId) ?? throw new ArgumentException("unknown replicated directory " + treeId, nameof(treeId));
            return new Sink(this, t);
        }

        private sealed class Sink(ReplicationSource owner, TreeState tree) : IMutationSink
        {
            public MutationTicket Begin(FsMutation mutation) => owner.Begin(tree, mutation);
            public int Complete(MutationTicket ticket, int localResult) => owner.Complete(ticket, localResult);
        }

        // ------------------------------------------------------------------ live mutations

        private static bool IsDataOp(FsOp op) => op is FsOp.Write or FsOp.Truncate or FsOp.Fallocate or FsOp.Fsync;

        private LockSet AcquireLocks(TreeState t, FsMutation m)
        {
            int ns = m.Op == FsOp.Rename ? 2 : IsDataOp(m.Op) ? 0 : 1;
            if (ns == 2) t.Namespace.EnterWriteAsync().GetAwaiter().GetResult();
            else if (ns == 1) t.Namespace.EnterReadAsync().GetAwaiter().GetResult();
            int a = _stripes.IndexOf(m.Path), b = m.Op is FsOp.Rename or FsOp.Link && m.Target != null ? _stripes.IndexOf(m.Target) : -1;
            if (b == a) b = -1;
            if (b >= 0 && b < a) (a, b) = (b, a);
            _stripes[a].Wait();
            if (b >= 0) _stripes[b].Wait();
            return new LockSet(t, ns, a, b);
        }

        private void ReleaseLocks(LockSet l)
        {
            if (l.Stripe2 >= 0) _stripes[l.Stripe2].Release();
            _stripes[l.Stripe1].Release();
            if (l.Namespace == 2) l.Tree.Namespace.ExitWrite();
            else if (l.Namespace == 1) l.Tree.Namespace.ExitRead();
        }

        private MutationTicket Begin(TreeState t, FsMutation m)
        {
            bool excluded = t.Filter.IsExcluded(m.Path);
            bool twoPaths = m.Op is FsOp.Rename or FsOp.Link;
            bool targetExcluded = twoPaths && t.Filter.IsExcluded(m.Target);
            if (excluded && (!twoPaths || targetExcluded)) return new MutationTicket(0, null);
            if (!excluded && !IsDataOp(m.Op) && m.Path.Length == 0 && m.Op is FsOp.Rmdir or FsOp.Unlink or FsOp.Rename) return new MutationTicket(0, null);
            var locks = AcquireLocks(t, m);
            try
            {
                if (twoPaths && excluded != targetExcluded)
                {
                    // Crosses the NotReplicated boundary: the secondary cannot do the same; the next resync fixes the namespace.
                    lock (_gate)
                    {
                        t.Journal.Mark(m);
                        if (!targetExcluded && m.Target != null) t.Journal.MarkAll(m.Target);
                        if (_state != SourceState.Alone) t.Divergence = $"{m} crosses a not-replicated path";
                    }
                    return new MutationTicket(0, new LocalTicket(locks, _fenced));
                }
                if (Volatile.Read(ref _stateInt) == (int)SourceState.Alone)
                {
                    lock (_gate)
                    {
                        if (_state == SourceState.Alone)
                        {
                            t.Journal.Mark(m);
                            if (m.Op == FsOp.Rename) t.Journal.LogRename(m);
                            return new MutationTicket(0, new LocalTicket(locks, _fenced));
                        }
                    }
                }
                if (m.Op == FsOp.Write && m.Data.Length > PartBytes) return BeginParts(t, m, locks);
                FrameConnection? inline = null;
                var f = NewFrame(MsgType.Mutation, MessageCodec.MutationSize(m) + 16);
                f.U16((ushort)t.Index);
                MessageCodec.WriteMutation(f, m);
                var p = new Pending
                {
                    Kind = PendingKind.Live, Tree = t, Op = m.Op, Path = m.Path, Target = m.Target, Offset = m.Offset,
                    Length = m.Op == FsOp.Write ? m.Data.Length : m.Length, Flags = m.Flags, Bytes = m.Data.Length, Locks = locks,
                };
                lock (_gate)
                {
                    if (_state == SourceState.Alone)
                    {
                        f.Release();
                        t.Journal.Mark(m);
                        if (m.Op == FsOp.Rename) t.Journal.LogRename(m);
                        return new MutationTicket(0, new LocalTicket(locks, _fenced));
                    }
                    // Journal entries follow their files even while replicating, so a later resync finds them.
                    if (m.Op is FsOp.Rename or FsOp.Unlink or FsOp.Rmdir) t.Journal.Mark(m);
                    if (_session != null && m.Op is FsOp.Rename or FsOp.Unlink or FsOp.Rmdir) MoveItems(_session, t, m);
                    inline = f.PayloadLength <= InlineBytes ? _session?.Connection : null;
                    EnqueueLocked(f, p, deferred: inline != null);
                    p.Connection = _session?.Connection;
                }
                inline?.Flush();
                return new MutationTicket(p.Seq, p);
            }
            catch
            {
                ReleaseLocks(locks);
                throw;
            }
        }

        /// <summary>
        /// A large write goes as consecutive frames of PartBytes, each its own mutation on the secondary: the writer MACs
        /// and sends one while the next is on its way, and the secondary verifies and applies it while the rest is
        /// arriving (one 1 MiB frame serialises MAC, transfer, MAC check and pwrite). The ticket is the last part;
        /// acknowledgements are cumulative, so when it is done every part is, and Complete checks each part's result.
        /// The parts are not copied: each frame's data is its slice of the application's buffer (libfuse's), MACed and
        /// sent from there, and Complete does not return while a frame still points into it (sent, or dropped with the
        /// connection). Should the secondary be lost between two parts, GoAlone journals the parts already queued and
        /// this write is journaled whole.
        /// </summary>
        private MutationTicket BeginParts(TreeState t, FsMutation m, LockSet locks)
        {
            int n = (m.Data.Length + PartBytes - 1) / PartBytes;
            var parts = new Pending[n];
            for (int i = 0; i < n; i++)
            {
                int at = i * PartBytes, len = Math.Min(PartBytes, m.Data.Length - at);
                parts[i] = new Pending
                {
                    Kind = PendingKind.Live, Tree = t, Op = FsOp.Write, Path = m.Path, Offset = m.Offset + at, Length = len, Flags = m.Flags, Bytes = len,
                };
            }
            var last = parts[n - 1];
            last.Locks = locks;
            last.Parts = parts;
            var lease = last.Lease = new TailLease();
            for (int i = 0; i < n; i++)
            {
                int at = i * PartBytes;
                var part = new FsMutation
                {
                    Op = FsOp.Write, Path = m.Path, Offset = parts[i].Offset, Data = m.Data.Slice(at, (int)parts[i].Length),
                    Length = m.Data.Length - at - parts[i].Length, Flags = m.Flags, Mode = m.Mode, Uid = m.Uid, Gid = m.Gid,
                };
                var f = NewFrame(MsgType.Mutation, MessageCodec.MutationSize(part) - part.Data.Length + 16);
                f.U16((ushort)t.Index);
                MessageCodec.WriteMutationHead(f, part);
                f.SetTail(part.Data, lease);
                bool alone = false;
                lock (_gate)
                {
                    if (_state == SourceState.Alone)
                    {
                        f.Release();
                        t.Journal.Mark(m);
                        alone = true;
                    }
                    else
                    {
                        EnqueueLocked(f, parts[i]);
                        if (i == n - 1) last.Connection = _session?.Connection;
                    }
                }
                if (alone)
                {
                    lease.Wait(); // parts queued before: dropped with the connection GoAlone closed
                    return new MutationTicket(0, new LocalTicket(locks, _fenced));
                }
            }
            return new MutationTicket(last.Seq, last);
        }

        private const int PartBytes = 256 << 10;

        private int Complete(MutationTicket ticket, int localResult)
        {
            switch (ticket.State)
            {
                case null: return localResult;
                case LocalTicket lt: ReleaseLocks(lt.Locks); return lt.Fail ? -Fuse.LibC.EIO : localResult;
            }
            var p = (Pending)ticket.State;
            // The local apply is done and the sequence was taken: whatever comes next on this file is ordered
            // after it on both nodes, so other writers need not wait for this acknowledgement (pipelining).
            ReleaseLocks(p.Locks);
            // A large write was handed to the writer thread to go out while we wrote locally; if that thread has not
            // got a core yet (a loaded machine), this one sends the rest itself rather than wait for it.
            p.Connection?.Flush();
            bool failed;
            Session? diverged = null;
            lock (_gate)
            {
                while (!p.Done) Monitor.Wait(_gate);
                failed = p.Failed; // fenced while it waited
                if (p.Parts != null)
                {
                    foreach (var part in p.Parts)
                    {
                        failed |= part.Failed;
                        if (part.Acked && part.RemoteResult != localResult) { diverged = Diverged(part, localResult, p.Connection); break; }
                    }
                }
                else if (p.Acked && p.RemoteResult != localResult) diverged = Diverged(p, localResult, p.Connection);
            }
            // The application's buffer is its own again once no queued frame points into it (at once after an
            // acknowledgement, soon after a lost connection dropped its queue).
            p.Lease?.Wait();
            if (diverged != null) failed |= !LeaveDivergedSession(diverged, p.Tree!.Divergence ?? $"{p.Op} {p.Path} failed on the secondary");
            return failed ? -Fuse.LibC.EIO : localResult;
        }

        /// <summary>
        /// The secondary's result differs from ours: the file goes to the journal (its data) or the tree is marked
        /// diverged (its namespace), for the next resync pass. Returns the session to leave when the secondary was in
        /// sync (see <see cref="LeaveDivergedSession"/>), null during a resync (another pass follows). <paramref name="connection"/>:
        /// the one the change went on (a large write's last part knows it). Caller holds _gate.
        /// </summary>
        private Session? Diverged(Pending p, int localResult, FrameConnection? connection)
        {
            var t = p.Tree!;
            t.DivergedThisPass = true;
            if (p.Op is FsOp.Write or FsOp.Fallocate or FsOp.Truncate)
            {
                t.Journal.MarkAll(p.Path);
                // Sent under a name the file lost since (a hard link's other name, renamed meanwhile): the journal
                // cannot say where the data went.
                if (NativeFs.Stat(TreeScan.Full(t.Config.ReadRoot, p.Path), out _) != 0) t.Journal.Distrust();
            }
            t.Divergence = $"{p.Op} {p.Path}: primary {localResult}, secondary {p.RemoteResult}";
            LogDiverged(_options.Module, p.Op.ToString(), p.Path, localResult, p.RemoteResult);
            return _state == SourceState.Replicating && _session != null && connection != null && _session.Connection == connection ? _session : null;
        }

        /// <summary>
        /// A secondary in sync failed a change we made (its disk is full, it hit an I/O error...): its copy lacks what
        /// the application is about to be told is done, so it must stop counting as up to date first. The session ends
        /// as a lost secondary does (the host persists a new generation and goes ALONE, the journal holds the file),
        /// and this call returns once that is done; the secondary's return resyncs the file. False when the node was
        /// fenced meanwhile (the caller fails the change with EIO).
        /// </summary>
        private bool LeaveDivergedSession(Session s, string reason)
        {
            SessionLost(s, "the secondary's copy differs: " + reason);
            lock (_gate)
            {
                while (_state == SourceState.Failing && !_disposed) Monitor.Wait(_gate);
                return !_fenced;
            }
        }

        private static OutFrame NewFrame(MsgType type, int hint)
        {
            var f = new OutFrame(type, hint + 8);
            f.U64(0); // sequence, set when queued
            return f;
        }

        private int _stateInt;

        private void SetState(SourceState s)
        {
            if (_state != s) LogState(_options.Module, _state.ToString().ToUpperInvariant(), s.ToString().ToUpperInvariant());
            _state = s;
            Volatile.Write(ref _stateInt, (int)s);
        }

        /// <summary>Assigns the next sequence and queues the frame (caller holds _gate; state is not ALONE).</summary>
        private void EnqueueLocked(OutFrame f, Pending p, bool deferred = false)
        {
            p.Seq = ++_seq;
            p.BeginTimestamp = _time.GetTimestamp();
            BinaryPrimitives.WriteInt64LittleEndian(f.Buffer.AsSpan(OutFrame.PayloadAt), p.Seq);
            _pending.Enqueue(p);
            _bySeq[p.Seq] = p;
            _pendingBytes += p.Bytes;
            _lastSendTimestamp = p.BeginTimestamp;
            if (_state == SourceState.Failing || _session?.Connection == null) f.Release();
            else _session.Connection.Send(f, deferred ? FrameConnection.SendMode.Deferred : FrameConnection.SendMode.Writer);
        }

        /// <summary>Small live frames: sent by the application's own thread once _gate is released (no wake-up of the writer).</summary>
        private const int InlineBytes = 64 << 10;

        // ------------------------------------------------------------------ acknowledgements and failure

        private void OnAck(long applied, long durable, List<(long seq, int result)> results)
        {
            var acked = new List<Pending>();
            lock (_gate)
            {
                foreach (var (seq, result) in results)
                    if (_bySeq.TryGetValue(seq, out var p)) p.RemoteResult = result;
                _applied = Math.Max(_applied, applied);
                _durable = Math.Max(_durable, durable);
                long upTo = _options.Mode == RfsAsync.None ? _durable : _applied;
                long now = _time.GetTimestamp();
                bool wake = false;
                while (_pending.Count > 0 && _pending.Peek().Seq <= upTo)
                {
                    var p = _pending.Dequeue();
                    wake |= p.Locks.Tree != null; // an application thread waits for this one in Complete
                    _bySeq.Remove(p.Seq);
                    _pendingBytes -= p.Bytes;
                    p.Done = p.Acked = true;
                    if (p.Kind == PendingKind.Live)
                    {
                        _bytesReplicated += p.Bytes;
                        _opsReplicated++;
                        _ackTicksSum += now - p.BeginTimestamp;
                        _ackCount++;
                        double ms = (now - p.BeginTimestamp) * 1000.0 / Stopwatch.Frequency;
                        _ackMs = _ackMs == 0 ? ms : _ackMs * 0.99 + ms * 0.01;
                    }
                    else if (p.Kind == PendingKind.Resync) acked.Add(p);
                    p.Waiter?.TrySetResult();
                }
                // Only when a waiting write is done: the parts before the last of a large write wake nobody.
                if (wake) Monitor.PulseAll(_gate);
            }
            foreach (var p in acked)
            {
                _resyncWindow.Release(p.Bytes);
                if (p.Zone >= 0 && p.Item?.Path is { } path) p.Tree!.Journal.ClearZone(path, p.Zone, p.Tree.ResyncMark);
            }
        }

        private void SessionLost(Session s, string reason)
        {
            bool raise = false;
            lock (_gate)
            {
                if (_session != s) return;
                if (_state is SourceState.Resyncing or SourceState.Replicating)
                {
                    SetState(SourceState.Failing);
                    _lastError = reason;
                    raise = true;
                }
                Monitor.PulseAll(_gate);
            }
            s.Cancel.Cancel();
            s.Connection?.Close(null);
            _resyncWindow.Reset();
            if (!raise) return;
            LogPeerFailed(_options.Module, reason);
            _ = Task.Run(async () =>
            {
                try
                {
                    if (PeerFailed != null) await PeerFailed(reason).ConfigureAwait(false);
                    else GoAlone();
                }
                catch (Exception e)
                {
                    LogPeerFailedHandler(_options.Module, e);
                }
            });
        }

        /// <summary>
        /// This node gives way (isolated, or its peer takes over) while writes wait for a secondary that no longer answers:
        /// they, and every mutation from now on, fail with EIO after going into the dirty journal (as DRBD's
        /// on-no-quorum io-error). Nothing is acknowledged that the peer may lack, and the application stops at once instead
        /// of hanging in its blocked writes until its stop script times out. Lasts as long as this source.
        /// </summary>
        public void Fence()
        {
            lock (_gate)
            {
                if (_fenced) return;
                _fenced = true;
                foreach (var p in _pending) p.Failed = true;
            }
            LogFenced(_options.Module);
            GoAlone();
        }

        /// <summary>Mutations fail here (see <see cref="Fence"/>).</summary>
        public bool Fenced => Volatile.Read(ref _fenced);

        private bool _fenced;

        /// <summary>
        /// The host has persisted ALONE: everything the secondary did not acknowledge goes into the dirty journal,
        /// waiting writes return, and from now on mutations are only journaled. Also ends a healthy session
        /// (StopReplication). Idempotent.
        /// </summary>
        public void GoAlone()
        {
            Session? s;
            lock (_gate)
            {
                s = _session;
                _session = null;
                foreach (var p in _pending)
                {
                    if (p.Kind == PendingKind.Live) JournalPending(p);
                    if (p.Kind == PendingKind.Live && p.Op is FsOp.Rename or FsOp.Unlink or FsOp.Rmdir or FsOp.Link or FsOp.Create or FsOp.Mkdir or FsOp.Mknod or FsOp.Symlink)
                        p.Tree!.Journal.DiscardRenames();
                    p.Done = true;
                    p.Waiter?.TrySetCanceled();
                }
                _pending.Clear();
                _bySeq.Clear();
                _pendingBytes = 0;
                foreach (var t in _trees) t.Journal.Flush();
                if (_state != SourceState.Alone) SetState(SourceState.Alone);
                Monitor.PulseAll(_gate);
            }
            if (s != null)
            {
                s.Cancel.Cancel();
                s.Connection?.Close(null);
                lock (s.Replies) foreach (var r in s.Replies.Values) r.TrySetCanceled();
            }
            _resyncWindow.Reset();
        }

        private static void JournalPending(Pending p)
        {
            var m = new FsMutation { Op = p.Op, Path = p.Path, Target = p.Target, Offset = p.Offset, Length = p.Length, Flags = p.Flags };
            if (p.Op == FsOp.Write) m.Op = FsOp.Fallocate; // same range, no data kept
            if (p.Op is FsOp.Rename or FsOp.Unlink or FsOp.Rmdir) return; // already followed in the journal at Begin
            p.Tree!.Journal.Mark(m);
        }

        // ------------------------------------------------------------------ connection handling

        private async Task AcceptLoopAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket socket;
                try { socket = await _listener!.AcceptSocketAsync(_stop.Token).ConfigureAwait(false); }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { if (_stop.IsCancellationRequested) return; continue; }
                var thread = new Thread(() => Serve(socket)) { IsBackground = true, Name = "rfs-recv " + _options.Module };
                thread.Start();
            }
        }

        private void Serve(Socket socket)
        {
            (byte[], byte[]) keys;
            try
            {
                keys = Handshake.Accept(socket, _options.ClusterKey, _options.Module, _options.HandshakeTimeout);
            }
            catch (Exception e) when (e is ProtocolException or SocketException or IOException or ObjectDisposedException)
            {
                if (e is ProtocolException) Interlocked.Increment(ref _authFailures);
                LogRefused(_options.Module, socket.RemoteEndPoint?.ToString() ?? "?", e.Message);
                socket.Close();
                return;
            }
            var session = new Session(_trees.Length);
            lock (_gate)
            {
                if (_disposed) { socket.Close(); return; }
                if (_session != null && _session.Connection != null)
                {
                    var old = _session;
                    Monitor.Exit(_gate);
                    try { SessionLost(old, "the secondary connected again"); } finally { Monitor.Enter(_gate); }
                }
                var deadline = _time.GetTimestamp() + (long)(_options.HandshakeTimeout.TotalSeconds * Stopwatch.Frequency);
                while (_state != SourceState.Alone && _time.GetTimestamp() < deadline) Monitor.Wait(_gate, 100);
                if (_state != SourceState.Alone)
                {
                    LogRefused(_options.Module, socket.RemoteEndPoint?.ToString() ?? "?", "the previous secondary is still being failed");
                    socket.Close();
                    return;
                }
                _session = session;
            }
            session.Connection = new FrameConnection(socket, keys, _options.Module, e => SessionLost(session, e == null ? "connection closed" : e.Message));
            try
            {
                ReadLoop(session);
            }
            catch (ProtocolException e)
            {
                Interlocked.Increment(ref _forgedFrames);
                LogForged(_options.Module, e.Message);
                SessionLost(session, "rejected frame: " + e.Message);
                lock (_gate) if (_session == session && _state == SourceState.Alone) _session = null;
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or EndOfStreamException)
            {
                SessionLost(session, "connection lost: " + e.Message);
                lock (_gate) if (_session == session && _state == SourceState.Alone) _session = null;
            }
        }

        private void ReadLoop(Session s)
        {
            var conn = s.Connection!;
            bool started = false;
            var results = new List<(long, int)>();
            while (true)
            {
                var type = conn.Read(out var payload);
                var r = new PayloadReader(payload);
                switch (type)
                {
                    case MsgType.Request when !started:
                        {
                            started = true;
                            var (full, trees) = ReadRequest(ref r);
                            lock (_gate)
                            {
                                if (_session != s) return;
                                s.Progress = new ResyncProgressTracker(_time);
                                _seq = _applied = _durable = 0; // sequences count per connection
                                SetState(SourceState.Resyncing);
                            }
                            LogConnected(_options.Module, full);
                            _ = Task.Run(() => RunResyncAsync(s, full, trees));
                            break;
                        }
                    case MsgType.Ack when started:
                        {
                            long applied = r.I64(), durable = r.I64();
                            uint n = r.U32();
                            if (n > 1_000_000) throw new ProtocolException("too many results");
                            results.Clear();
                            for (int i = 0; i < n; i++) results.Add((r.I64(), r.I32()));
                            if (applied > Interlocked.Read(ref _seq) || durable > applied) throw new ProtocolException("acknowledges what was not sent");
                            OnAck(applied, durable, results);
                            break;
                        }
                    case MsgType.ScanReply when started:
                        {
                            uint id = r.U32();
                            bool last = r.U8() == 1;
                            uint n = r.U32();
                            List<TreeEntry> parts;
                            lock (s.Replies)
                            {
                                if (!s.ScanParts.TryGetValue(id, out parts!)) s.ScanParts[id] = parts = new List<TreeEntry>();
                            }
                            for (int i = 0; i < n; i++) parts.Add(MessageCodec.ReadEntry(ref r));
                            if (last) Reply(s, id, parts);
                            break;
                        }
                    case MsgType.HashReply when started:
                        {
                            uint id = r.U32();
                            int result = r.I32();
                            long size = r.I64();
                            uint n = r.U32();
                            var hashes = r.Raw(checked((int)n * HashBytes)).ToArray();
                            Reply(s, id, new HashAnswer(result, size, hashes));
                            break;
                        }
                    case MsgType.Failure:
                        throw new IOException("the secondary gave up: " + r.Str());
                    default:
                        throw new ProtocolException("unexpected message " + type);
                }
                if (!r.End) throw new ProtocolException("trailing bytes in " + type);
            }
        }

        private static void Reply(Session s, uint id, object value)
        {
            TaskCompletionSource<object>? t;
            lock (s.Replies)
            {
                if (s.Replies.Remove(id, out t)) s.ScanParts.Remove(id);
                else throw new ProtocolException("reply to nothing asked");
            }
            t.TrySetResult(value);
        }

        private (bool full, SecondaryTreeState[] trees) ReadRequest(ref PayloadReader r)
        {
            bool full = r.U8() == 1;
            int n = r.U16();
            var result = new SecondaryTreeState[_trees.Length];
            for (int i = 0; i < n; i++)
            {
                var id = r.Str() ?? "";
                long sp = r.I64();
                byte flags = r.U8();
                uint dirty = r.U32();
                if (dirty > 10_000_000) throw new ProtocolException("too many dirty paths");
                var paths = new List<string>();
                for (int k = 0; k < dirty; k++) paths.Add(r.Path());
                var t = _trees.FirstOrDefault(x => x.Config.Id == id) ?? throw new ProtocolException("the secondary replicates an unknown directory " + id);
                result[t.Index] = new SecondaryTreeState(id, sp == 0 ? null : new DateTime(sp, DateTimeKind.Utc), (flags & 1) != 0, (flags & 2) != 0, (flags & 4) != 0, paths);
            }
            if (result.Any(x => x == null)) throw new ProtocolException("the secondary does not replicate every directory");
            return (full, result);
        }

        internal const int HashBytes = 16;

        internal sealed record HashAnswer(int Result, long Size, byte[] Hashes);

        /// <summary>Queues a control frame and returns a task for the reply with the given id.</summary>
        private Task<object> Ask(Session s, OutFrame f, uint id, TreeState t)
        {
            var tcs = new TaskCompletionSource<object>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (s.Replies) s.Replies[id] = tcs;
            lock (_gate)
            {
                if (_session != s || _state is SourceState.Alone or SourceState.Failing) { f.Release(); tcs.TrySetCanceled(); return tcs.Task; }
                EnqueueLocked(f, new Pending { Kind = PendingKind.Control, Tree = t });
            }
            s.Cancel.Token.Register(() => tcs.TrySetCanceled());
            return tcs.Task;
        }

        /// <summary>Queues a resync mutation; false when the session is gone.</summary>
        private bool SendResync(Session s, TreeState t, FsMutation m, DataItem? item, long zone, Task? waitFor = null)
        {
            var f = NewFrame(MsgType.Mutation, MessageCodec.MutationSize(m) + 16);
            f.U16((ushort)t.Index);
            MessageCodec.WriteMutation(f, m);
            lock (_gate)
            {
                if (_session != s || _state != SourceState.Resyncing) { f.Release(); return false; }
                EnqueueLocked(f, new Pending { Kind = PendingKind.Resync, Tree = t, Op = m.Op, Path = m.Path, Bytes = m.Data.Length, Item = item, Zone = zone });
            }
            if (m.Op == FsOp.Write) s.Progress?.Sent(m.Data.Length);
            return true;
        }

        // ------------------------------------------------------------------ resync

        private async Task RunResyncAsync(Session s, bool full, SecondaryTreeState[] peer)
        {
            var ct = s.Cancel.Token;
            var progress = s.Progress!;
            try
            {
                const int MaxPasses = 5;
                for (int pass = 1; ; pass++)
                {
                    foreach (var t in _trees) { t.DivergedThisPass = false; t.Divergence = null; }
                    var plans = new ResyncPlan[_trees.Length];
                    foreach (var t in _trees)
                    {
                        plans[t.Index] = await PlanTreeAsync(s, t, peer[t.Index], full && pass == 1, ct).ConfigureAwait(false);
                        lock (s.Items[t.Index]) s.Items[t.Index].AddRange(plans[t.Index].Data);
                    }
                    if (pass == 1) progress.Begin(string.Join("+", plans.Select(p => p.Method).Distinct()), plans.Sum(p => p.BytesTotal), plans.Sum(p => p.Data.Count));
                    LogPlan(_options.Module, progress.Snapshot().Method, plans.Sum(p => p.Namespace.Count), plans.Sum(p => p.Data.Count), plans.Sum(p => p.BytesTotal));
                    var work = new Queue<(TreeState, DataItem)>(_trees.SelectMany(t => plans[t.Index].Data.Select(d => (t, d))));
                    var workers = Enumerable.Range(0, Math.Max(1, _options.ResyncParallelism)).Select(_ => Task.Run(async () =>
                    {
                        while (true)
                        {
                            (TreeState, DataItem) next;
                            lock (work) { if (work.Count == 0) return; next = work.Dequeue(); }
                            ReadAhead(next.Item1, next.Item2);
                            await SyncItemAsync(s, next.Item1, next.Item2, ct).ConfigureAwait(false);
                            progress.FileDone();
                        }
                    })).ToArray();
                    await Task.WhenAll(workers).ConfigureAwait(false);
                    // Never "in sync" over a file a live mutation could not reach on the secondary during this pass.
                    if (!_trees.Any(t => t.DivergedThisPass || t.Divergence != null)) break;
                    if (pass == MaxPasses)
                        throw new IOException($"the secondary still diverged after {MaxPasses} resync passes: " +
                            string.Join("; ", _trees.Select(t => t.Divergence).Where(d => d != null)));
                    lock (s.Items) foreach (var l in s.Items) lock (l) l.Clear();
                }

                // "In sync": ordered after every resync write; once acknowledged, the journals are done with.
                var f = NewFrame(MsgType.InSync, 16);
                var done = new Pending { Kind = PendingKind.Control, Waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
                f.I64(NewSyncPoint().Ticks);
                var final = progress.Finish();
                WriteProgress(f, final);
                lock (_gate)
                {
                    if (_session != s || _state != SourceState.Resyncing) { f.Release(); return; }
                    EnqueueLocked(f, done);
                }
                using (ct.Register(() => done.Waiter.TrySetCanceled())) await done.Waiter.Task.ConfigureAwait(false);
                lock (_gate)
                {
                    if (_session != s || _state != SourceState.Resyncing) return;
                    var sp = NewSyncPoint();
                    // Written to disk below, outside _gate: until then a crash only leaves entries the next resync sends again.
                    foreach (var t in _trees) { t.Journal.MarkResynced(t.ResyncMark, sp, flush: false); t.Divergence = null; }
                    _lastResync = final;
                    SetState(SourceState.Replicating);
                    lock (s.Items) foreach (var l in s.Items) lock (l) l.Clear();
                }
                foreach (var t in _trees) t.Journal.Flush();
                LogInSync(_options.Module, _lastResync.BytesSent, _lastResync.BytesTotal);
                InSync?.Invoke();
            }
            catch (OperationCanceledException) { }
            catch (Exception e)
            {
                LogResyncFailed(_options.Module, e);
                SessionLost(s, "resync failed: " + e.Message);
            }
        }

        /// <summary>Lists both trees at the same point of the stream and queues the namespace fixes.</summary>
        private async Task<ResyncPlan> PlanTreeAsync(Session s, TreeState t, SecondaryTreeState peer, bool full, CancellationToken ct)
        {
            await t.Namespace.EnterWriteAsync().ConfigureAwait(false);
            try
            {
                // Renames made while ALONE first, so renamed files keep their content on the secondary.
                var renames = full ? new() : t.Journal.Renames();
                if (renames.Count > 0)
                {
                    foreach (var (from, to, flags) in renames)
                        if (!SendResync(s, t, new FsMutation { Op = FsOp.Rename, Path = from, Target = to, Flags = flags }, null, -1)) throw new OperationCanceledException();
                    await BarrierAsync(s, t, ct).ConfigureAwait(false);
                    t.Journal.RenamesReplayed(renames.Count);
                }
                uint id = Interlocked.Increment(ref s.NextRequest);
                var f = NewFrame(MsgType.ScanRequest, 16);
                f.U16((ushort)t.Index);
                f.U32(id);
                var reply = Ask(s, f, id, t);
                var mine = await Task.Run(() => TreeScan.Scan(t.Config.ReadRoot, t.Filter, xattrs: true), ct).ConfigureAwait(false);
                Dictionary<string, DirtyJournal.Entry> journal;
                lock (_gate)
                {
                    journal = t.Journal.Snapshot();
                    t.ResyncMark = t.Journal.MarkCounter;
                }
                var theirs = (List<TreeEntry>)await reply.WaitAsync(ct).ConfigureAwait(false);
                var plan = ResyncPlanner.Plan(mine, theirs, journal, t.Journal.Trusted, t.Journal.SyncPoint, peer, full, _options.ZoneBytes);
                if (_log.IsEnabled(LogLevel.Debug))
                {
                    LogTreePlan(_options.Module, t.Config.Id, t.Journal.Trusted, peer.Trusted, peer.Interrupted, t.Journal.SyncPoint, peer.SyncPoint);
                    foreach (var d in plan.Data) LogItem(_options.Module, d.Method.ToString(), d.Path, d.PlannedBytes);
                }
                foreach (var m in plan.Namespace)
                    if (!SendResync(s, t, m, null, -1)) throw new OperationCanceledException();
                // Extended attributes of entries whose set differs, or that were just created.
                var theirsByPath = theirs.ToDictionary(e => e.Path, StringComparer.Ordinal);
                foreach (var e in mine)
                {
                    theirsByPath.TryGetValue(e.Path, out var o);
                    if (e.XattrDigest == null && o?.XattrDigest == null) continue;
                    if (e.XattrDigest != null && o?.XattrDigest != null && o.XattrDigest.AsSpan().SequenceEqual(e.XattrDigest)) continue;
                    var values = NativeFs.Xattrs(TreeScan.Full(t.Config.ReadRoot, e.Path));
                    foreach (var name in o?.XattrNames ?? Array.Empty<string>())
                        if (!values.ContainsKey(name)) SendResync(s, t, new FsMutation { Op = FsOp.RemoveXattr, Path = e.Path, Name = name }, null, -1);
                    foreach (var (name, value) in values)
                        SendResync(s, t, new FsMutation { Op = FsOp.SetXattr, Path = e.Path, Name = name, Data = value }, null, -1);
                }
                return plan;
            }
            finally
            {
                t.Namespace.ExitWrite();
            }
        }

        /// <summary>Waits until the secondary acknowledged everything queued so far.</summary>
        private async Task BarrierAsync(Session s, TreeState t, CancellationToken ct)
        {
            var f = NewFrame(MsgType.Progress, 8);
            WriteProgress(f, null);
            var p = new Pending { Kind = PendingKind.Control, Tree = t, Waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
            lock (_gate)
            {
                if (_session != s || _state != SourceState.Resyncing) { f.Release(); throw new OperationCanceledException(); }
                EnqueueLocked(f, p);
            }
            using (ct.Register(() => p.Waiter.TrySetCanceled())) await p.Waiter.Task.ConfigureAwait(false);
        }

        /// <summary>Runs one piece of a resync item under the ordering locks; the path is current (renames move items).</summary>
        private async Task<bool> UnderFileLockAsync(TreeState t, DataItem item, Func<string, bool> action)
        {
            await t.Namespace.EnterReadAsync().ConfigureAwait(false);
            try
            {
                var path = item.Path;
                if (path.Length == 0) return false; // removed meanwhile
                var stripe = _stripes[_stripes.IndexOf(path)];
                await stripe.WaitAsync().ConfigureAwait(false);
                try { return action(path); }
                finally { stripe.Release(); }
            }
            finally
            {
                t.Namespace.ExitRead();
            }
        }

        private void MoveItems(Session s, TreeState t, FsMutation m)
        {
            var items = s.Items[t.Index];
            lock (items)
            {
                foreach (var item in items)
                {
                    var p = item.Path;
                    if (p.Length == 0) continue;
                    bool under(string d) => p == d || (p.Length > d.Length && p[d.Length] == '/' && p.StartsWith(d, StringComparison.Ordinal));
                    if (m.Op is FsOp.Unlink or FsOp.Rmdir) { if (under(m.Path)) item.Path = ""; }
                    else if (m.Target != null)
                    {
                        if (under(m.Path)) item.Path = m.Target + p[m.Path.Length..];
                        else if ((m.Flags & 2) != 0 && under(m.Target)) item.Path = m.Path + p[m.Target.Length..];
                        else if (under(m.Target)) item.Path = ""; // replaced by the rename
                    }
                }
            }
        }

        private const int Chunk = 1 << 20;

        private async Task SyncItemAsync(Session s, TreeState t, DataItem item, CancellationToken ct)
        {
            var progress = s.Progress!;
            var buffer = ArrayPool<byte>.Shared.Rent(Chunk);
            try
            {
                switch (item.Method)
                {
                    case DataMethod.All:
                        for (long off = 0; ; off += Chunk)
                        {
                            ct.ThrowIfCancellationRequested();
                            await _resyncWindow.TakeAsync(Chunk, ct).ConfigureAwait(false);
                            int n = 0;
                            bool more = await UnderFileLockAsync(t, item, path =>
                            {
                                n = ReadAt(t, path, buffer, off, Chunk);
                                if (n <= 0) return false;
                                return SendResync(s, t, new FsMutation { Op = FsOp.Write, Path = path, Offset = off, Data = buffer.AsMemory(0, n) }, item, -1);
                            }).ConfigureAwait(false);
                            if (n < Chunk) _resyncWindow.Release(Chunk - Math.Max(n, 0));
                            if (n > 0) progress.Done(n);
                            if (!more || n < Chunk) break;
                        }
                        break;
                    case DataMethod.Zones:
                        {
                            int zone = _options.ZoneBytes;
                            var ranges = item.Zones.Select(z => (off: z * zone, len: (long)zone, z)).ToList();
                            await UnderFileLockAsync(t, item, path => { item.PlannedBytes = SizeOf(t, path); return true; }).ConfigureAwait(false);
                            int compare = _options.ZoneCompareBlockBytes;
                            if (item.Fine != null && Chunk % zone == 0)
                            {
                                // The journal knows the written 4 KiB blocks: only those travel, nothing is compared.
                                await FineSyncAsync(s, t, item, buffer, ct).ConfigureAwait(false);
                                ranges.Clear();
                            }
                            else if (compare > 0 && compare < zone && zone % compare == 0 && Chunk % zone == 0)
                            {
                                // Dirty zones compared block by block with the secondary's copy: only differing blocks travel.
                                await ZoneHashSyncAsync(s, t, item, buffer, ct).ConfigureAwait(false);
                                ranges.Clear();
                            }
                            if (item.TruncatedFrom < item.PlannedBytes)
                                for (long o = item.TruncatedFrom; o < item.PlannedBytes; o += Chunk) ranges.Add((o, Math.Min(Chunk, item.PlannedBytes - o), -1));
                            foreach (var (off0, len, z) in ranges)
                            {
                                for (long off = off0; off < off0 + len; off += Chunk)
                                {
                                    ct.ThrowIfCancellationRequested();
                                    int want = (int)Math.Min(Chunk, off0 + len - off);
                                    await _resyncWindow.TakeAsync(want, ct).ConfigureAwait(false);
                                    int n = 0;
                                    await UnderFileLockAsync(t, item, path =>
                                    {
                                        n = ReadAt(t, path, buffer, off, want);
                                        return n > 0 && SendResync(s, t, new FsMutation { Op = FsOp.Write, Path = path, Offset = off, Data = buffer.AsMemory(0, n) }, item,
                                            zone == want && off == off0 ? z : -1);
                                    }).ConfigureAwait(false);
                                    if (n < want) _resyncWindow.Release(want - Math.Max(n, 0));
                                    progress.Done(Math.Max(n, 0));
                                    if (n < want) break;
                                }
                            }
                            break;
                        }
                    case DataMethod.Hash:
                        await HashSyncAsync(s, t, item, buffer, ct).ConfigureAwait(false);
                        break;
                }
                // Size last: a resync write never shortens, and the file may have grown or shrunk meanwhile.
                await UnderFileLockAsync(t, item, path =>
                {
                    if (NativeFs.Stat(TreeScan.Full(t.Config.ReadRoot, path), out var st) != 0 || st.Type != FsEntryType.File) return false;
                    SendResync(s, t, new FsMutation { Op = FsOp.Truncate, Path = path, Offset = st.Size }, null, -1);
                    SendResync(s, t, new FsMutation
                    {
                        Op = FsOp.Utimens, Path = path, AtimeNanoseconds = FsMutation.UtimeOmit,
                        MtimeSeconds = st.MtimeNs / 1_000_000_000, MtimeNanoseconds = st.MtimeNs % 1_000_000_000,
                    }, null, -1);
                    return true;
                }).ConfigureAwait(false);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        /// <summary>
        /// Queues the reads of every journal zone (or written 4 KiB block) of one item at once (POSIX_FADV_WILLNEED), when
        /// a worker takes it: the disk works on them together while the worker reads them in order. With the workers
        /// each on its own file, that keeps hundreds of reads in flight; one pass over all items before the workers
        /// started cost as long as the reads themselves (each advice call maps its range synchronously). Best effort.
        /// </summary>
        private void ReadAhead(TreeState t, DataItem item)
        {
            if (item.Method != DataMethod.Zones || item.Zones.Count == 0) return;
            int zone = _options.ZoneBytes, per = zone / DirtyJournal.FineBlockBytes;
            try
            {
                using var h = File.OpenHandle(TreeScan.Full(t.Config.ReadRoot, item.Path), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                var fine = item.Fine;
                NativeFs.WillNeed(h, item.Zones.SelectMany(z => fine == null
                    ? [(z * zone, (long)zone)]
                    : Enumerable.Range(0, per).Where(k => fine.IsFine(z * per + k)).Select(k => ((z * per + k) * (long)DirtyJournal.FineBlockBytes, (long)DirtyJournal.FineBlockBytes))));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }

        /// <summary>
        /// Journal resync of one file's dirty zones from the journal's in-memory 4 KiB block map: the written blocks
        /// of each zone (runs of them), read here under the file lock as the zone path does. A zone is cleared in the
        /// journal once the last run of it is acknowledged, when every run of it was read in full.
        /// </summary>
        private async Task FineSyncAsync(Session s, TreeState t, DataItem item, byte[] buffer, CancellationToken ct)
        {
            var progress = s.Progress!;
            int zone = _options.ZoneBytes, block = DirtyJournal.FineBlockBytes, per = zone / block;
            var fine = item.Fine!;
            var runs = new List<(long Offset, int Length, long Zone, bool Last)>();
            foreach (var z in item.Zones.OrderBy(z => z))
            {
                int first = runs.Count;
                int start = -1;
                for (int k = 0; k <= per; k++)
                {
                    bool set = k < per && fine.IsFine(z * per + k);
                    if (set && start < 0) start = k;
                    if (!set && start >= 0) { runs.Add((z * zone + (long)start * block, (k - start) * block, z, false)); start = -1; }
                }
                if (runs.Count == first) runs.Add((z * zone, zone, z, false)); // a zone without its blocks: whole
                runs[^1] = runs[^1] with { Last = true };
            }
            // (ReadAhead has queued the reads of these runs when this worker took the item.)
            // Runs go in batches of up to Chunk bytes: one lock, one open and one window reservation per batch
            // (a 1% change in 4 KiB blocks is thousands of runs).
            bool zoneWhole = true;
            for (int i = 0; i < runs.Count;)
            {
                ct.ThrowIfCancellationRequested();
                int j = i, bytes = 0;
                while (j < runs.Count && (j == i || bytes + runs[j].Length <= Chunk)) bytes += runs[j++].Length;
                await _resyncWindow.TakeAsync(bytes, ct).ConfigureAwait(false);
                int sent = 0, read = 0, from = i, to = j;
                await UnderFileLockAsync(t, item, path =>
                {
                    try
                    {
                        using var h = File.OpenHandle(TreeScan.Full(t.Config.ReadRoot, path), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                        int at = 0;
                        for (int k = from; k < to; k++)
                        {
                            var (off, len, z, last) = runs[k];
                            int n = 0;
                            while (n < len)
                            {
                                int got = RandomAccess.Read(h, buffer.AsSpan(at + n, len - n), off + n);
                                if (got <= 0) break;
                                n += got;
                            }
                            read += n;
                            bool whole = zoneWhole && n == len;
                            if (n > 0 && !SendResync(s, t, new FsMutation { Op = FsOp.Write, Path = path, Offset = off, Data = buffer.AsMemory(at, n) }, item,
                                last && whole ? z : -1)) return false;
                            if (n > 0) sent += n;
                            at += len;
                            zoneWhole = last || whole; // the next run starts a new zone, or goes on with this one
                        }
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
                    return true;
                }).ConfigureAwait(false);
                _resyncWindow.Release(bytes - sent);
                progress.Done(read);
                i = j;
            }
        }

        /// <summary>
        /// Journal resync of one file's dirty zones by comparison: one ZoneHashRequest per group of zones (ordered in
        /// the stream like any mutation, so the hashes are the secondary's state at that point), then each zone is read
        /// here under the file lock and only the blocks whose hash differs are sent. A live write between the request
        /// and the read makes its block differ (sent again, ordered after it) or is replicated itself: either way the
        /// copies end equal. A zone is cleared in the journal once its last write is acknowledged, or at once when
        /// nothing in it differed.
        /// </summary>
        private async Task ZoneHashSyncAsync(Session s, TreeState t, DataItem item, byte[] buffer, CancellationToken ct)
        {
            var progress = s.Progress!;
            int zone = _options.ZoneBytes, block = _options.ZoneCompareBlockBytes, perZone = zone / block;
            const int ZonesPerRequest = 256;
            var mine = new byte[32];
            var zones = item.Zones.OrderBy(z => z).ToList();
            var runs = new List<(int Start, int End)>();
            for (int g = 0; g < zones.Count; g += ZonesPerRequest)
            {
                ct.ThrowIfCancellationRequested();
                var group = zones.GetRange(g, Math.Min(ZonesPerRequest, zones.Count - g));
                uint id = Interlocked.Increment(ref s.NextRequest);
                Task<object>? reply = null;
                await UnderFileLockAsync(t, item, path =>
                {
                    var f = NewFrame(MsgType.ZoneHashRequest, 64 + path.Length * 3 + group.Count * 12);
                    f.U16((ushort)t.Index); f.U32(id); f.Str(path); f.I32(block); f.U32((uint)group.Count);
                    foreach (var z in group) { f.I64(z * zone); f.I32(perZone); }
                    reply = Ask(s, f, id, t);
                    // Our reads of these zones start now, while the secondary reads and hashes its copy.
                    try
                    {
                        using var h = File.OpenHandle(TreeScan.Full(t.Config.ReadRoot, path), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                        NativeFs.WillNeed(h, group.Select(z => (z * zone, (long)zone)));
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
                    return true;
                }).ConfigureAwait(false);
                if (reply == null) return;
                var answer = (HashAnswer)await reply.WaitAsync(ct).ConfigureAwait(false);
                bool usable = answer.Result == 0 && answer.Hashes.Length == group.Count * perZone * HashBytes;
                for (int gi = 0; gi < group.Count; gi++)
                {
                    long z = group[gi], off = z * zone;
                    await _resyncWindow.TakeAsync(zone, ct).ConfigureAwait(false);
                    int sent = 0, n = 0;
                    await UnderFileLockAsync(t, item, path =>
                    {
                        n = ReadAt(t, path, buffer, off, zone);
                        if (n <= 0) return false;
                        runs.Clear();
                        int runStart = -1;
                        for (int k = 0; k <= perZone; k++)
                        {
                            int at = k * block;
                            bool differs = false;
                            if (k < perZone && at < n)
                            {
                                int len = Math.Min(block, n - at);
                                differs = !usable || off + at + len > answer.Size;
                                if (!differs)
                                {
                                    SHA256.HashData(buffer.AsSpan(at, len), mine);
                                    differs = !mine.AsSpan(0, HashBytes).SequenceEqual(answer.Hashes.AsSpan((gi * perZone + k) * HashBytes, HashBytes));
                                }
                            }
                            if (differs && runStart < 0) runStart = at;
                            if (!differs && runStart >= 0)
                            {
                                runs.Add((runStart, Math.Min(at, n)));
                                runStart = -1;
                            }
                        }
                        bool whole = n == zone;
                        for (int i = 0; i < runs.Count; i++)
                        {
                            var (a, b) = runs[i];
                            if (!SendResync(s, t, new FsMutation { Op = FsOp.Write, Path = path, Offset = off + a, Data = buffer.AsMemory(a, b - a) }, item,
                                whole && i == runs.Count - 1 ? z : -1)) return false;
                            sent += b - a;
                        }
                        if (runs.Count == 0 && whole) t.Journal.ClearZone(path, z, t.ResyncMark);
                        return true;
                    }).ConfigureAwait(false);
                    _resyncWindow.Release(zone - sent);
                    progress.Done(Math.Max(n, 0));
                }
            }
        }

        private async Task HashSyncAsync(Session s, TreeState t, DataItem item, byte[] buffer, CancellationToken ct)
        {
            var progress = s.Progress!;
            int block = _options.HashBlockBytes;
            // The secondary hashes in its apply thread (ordered with live writes): keep each request short (256 MiB).
            int perRequest = Math.Max(1, (256 << 20) / block);
            int blocksPerChunk = Math.Max(1, Chunk / block);
            var mine = new byte[32];
            for (long start = 0; ; start += (long)perRequest * block)
            {
                ct.ThrowIfCancellationRequested();
                uint id = Interlocked.Increment(ref s.NextRequest);
                Task<object>? reply = null;
                long size = 0;
                await UnderFileLockAsync(t, item, path =>
                {
                    size = SizeOf(t, path);
                    var f = NewFrame(MsgType.HashRequest, 64 + path.Length * 3);
                    f.U16((ushort)t.Index); f.U32(id); f.Str(path); f.I64(start); f.I32(block); f.I32(perRequest);
                    reply = Ask(s, f, id, t);
                    return true;
                }).ConfigureAwait(false);
                if (reply == null || start >= size && start > 0) return;
                var answer = (HashAnswer)await reply.WaitAsync(ct).ConfigureAwait(false);
                int theirs = answer.Result == 0 ? answer.Hashes.Length / HashBytes : 0;
                for (int b0 = 0; b0 < perRequest; b0 += blocksPerChunk)
                {
                    long off = start + (long)b0 * block;
                    if (off >= size) break;
                    int want = (int)Math.Min((long)blocksPerChunk * block, size - off);
                    await _resyncWindow.TakeAsync(want, ct).ConfigureAwait(false);
                    int sent = 0, n = 0;
                    await UnderFileLockAsync(t, item, path =>
                    {
                        n = ReadAt(t, path, buffer, off, want);
                        if (n <= 0) return false;
                        // Send runs of differing blocks as single writes.
                        int runStart = -1;
                        for (int k = 0; ; k++)
                        {
                            int at = k * block;
                            bool differs = false;
                            if (at < n)
                            {
                                int idx = b0 + k;
                                int len = Math.Min(block, n - at);
                                SHA256.HashData(buffer.AsSpan(at, len), mine);
                                differs = idx >= theirs || !mine.AsSpan(0, HashBytes).SequenceEqual(answer.Hashes.AsSpan(idx * HashBytes, HashBytes));
                            }
                            if (differs && runStart < 0) runStart = at;
                            if (!differs && runStart >= 0)
                            {
                                int end = Math.Min(at, n);
                                SendResync(s, t, new FsMutation { Op = FsOp.Write, Path = path, Offset = off + runStart, Data = buffer.AsMemory(runStart, end - runStart) }, item, -1);
                                sent += end - runStart;
                                runStart = -1;
                            }
                            if (at >= n) break;
                        }
                        return true;
                    }).ConfigureAwait(false);
                    _resyncWindow.Release(want - sent);
                    progress.Done(Math.Max(n, 0));
                    if (n < want) return;
                }
                if (start + (long)perRequest * block >= size) return;
            }
        }

        private static int ReadAt(TreeState t, string path, byte[] buffer, long offset, int count)
        {
            try
            {
                using var h = File.OpenHandle(TreeScan.Full(t.Config.ReadRoot, path), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                int total = 0;
                while (total < count)
                {
                    int n = RandomAccess.Read(h, buffer.AsSpan(total, count - total), offset + total);
                    if (n <= 0) break;
                    total += n;
                }
                return total;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return -1; }
        }

        private static long SizeOf(TreeState t, string path) =>
            NativeFs.Stat(TreeScan.Full(t.Config.ReadRoot, path), out var st) == 0 ? st.Size : 0;

        // ------------------------------------------------------------------ housekeeping

        /// <summary>A moment before which both copies are known equal: the oldest unacknowledged change, less a margin for clock skew.</summary>
        private DateTime NewSyncPoint()
        {
            var now = _time.GetUtcNow().UtcDateTime;
            lock (_gate)
            {
                if (_pending.Count > 0)
                {
                    var age = _time.GetElapsedTime(_pending.Peek().BeginTimestamp);
                    now -= age;
                }
            }
            return now - _options.SyncPointMargin;
        }

        private async Task TickerAsync()
        {
            var tick = TimeSpan.FromMilliseconds(Math.Clamp(_options.SendTimeout.TotalMilliseconds / 10, 20, 250));
            long lastFlush = _time.GetTimestamp();
            while (!_stop.IsCancellationRequested)
            {
                try { await Task.Delay(tick, _time, _stop.Token).ConfigureAwait(false); }
                catch (OperationCanceledException) { return; }
                try { Tick(ref lastFlush); }
                catch (Exception e) { LogTickFailed(_options.Module, e); }
            }
        }

        private void Tick(ref long lastFlush)
        {
            Session? lost = null;
            string? reason = null;
            long now = _time.GetTimestamp();
            lock (_gate)
            {
                if (_state is SourceState.Resyncing or SourceState.Replicating && _session != null)
                {
                    if (_pending.Count > 0 && _time.GetElapsedTime(_pending.Peek().BeginTimestamp) > _options.SendTimeout)
                    {
                        lost = _session;
                        reason = $"no acknowledgement from {_options.PeerNode} within {_options.SendTimeout.TotalSeconds:0.###} s";
                    }
                    else if (_time.GetElapsedTime(_lastSendTimestamp) > TimeSpan.FromSeconds(1)
                        || (_state == SourceState.Resyncing && _time.GetElapsedTime(_lastProgressTimestamp) > TimeSpan.FromMilliseconds(500)))
                    {
                        _lastProgressTimestamp = now;
                        // Keepalive (a quiet but dead secondary is found within SendTimeout) that also carries resync progress.
                        var f = NewFrame(MsgType.Progress, 64);
                        WriteProgress(f, _state == SourceState.Resyncing ? _session.Progress?.Snapshot() : null);
                        EnqueueLocked(f, new Pending { Kind = PendingKind.Control });
                    }
                }
                double seconds = _time.GetElapsedTime(_rateTimestamp).TotalSeconds;
                if (seconds >= 1)
                {
                    _rate = (_bytesReplicated - _rateBytesAt) / seconds;
                    _ackTicksSum = _ackCount = 0;
                    _rateBytesAt = _bytesReplicated;
                    _rateTimestamp = now;
                }
            }
            if (lost != null) SessionLost(lost, reason!);
            if (_time.GetElapsedTime(lastFlush) >= _options.FlushInterval)
            {
                lastFlush = now;
                bool inSync;
                lock (_gate) inSync = _state == SourceState.Replicating;
                var sp = inSync ? NewSyncPoint() : default;
                foreach (var t in _trees)
                {
                    if (inSync && t.Divergence == null) t.Journal.SetSyncPoint(sp);
                    t.Journal.Flush();
                }
            }
        }

        internal static void WriteProgress(OutFrame f, ResyncProgress? p)
        {
            f.U8(p == null ? (byte)0 : (byte)1);
            if (p == null) return;
            f.Str(p.Method); f.I64(p.BytesDone); f.I64(p.BytesTotal); f.I64(p.FilesDone); f.I64(p.FilesTotal); f.I64(p.BytesSent);
            f.I64(BitConverter.DoubleToInt64Bits(p.BytesPerSecond)); f.I64(BitConverter.DoubleToInt64Bits(p.EtaSeconds ?? -1)); f.I64(p.StartedUtc.Ticks);
        }

        /// <summary>Get-SKReplication: one line per replicated directory.</summary>
        public IReadOnlyList<ReplicationStatus> Status()
        {
            lock (_gate)
            {
                var resync = _state == SourceState.Resyncing ? _session?.Progress?.Snapshot() : null;
                return _trees.Select(t => new ReplicationStatus
                {
                    Module = _options.Module,
                    Node = _options.LocalNode,
                    PeerNode = _options.PeerNode,
                    Directory = t.Config.Id,
                    Mode = _options.ModeName,
                    State = _state switch
                    {
                        SourceState.Replicating => "replicating",
                        SourceState.Resyncing => "resyncing",
                        SourceState.Failing => "alone",
                        _ => "alone",
                    },
                    OperationsPending = _pending.Count,
                    BytesPending = _pendingBytes,
                    BytesDirty = t.Journal.BytesDirty,
                    FilesDirty = t.Journal.FilesDirty,
                    BytesReplicated = _bytesReplicated,
                    OperationsReplicated = _opsReplicated,
                    WriteBytesPerSecond = _rate,
                    AckMilliseconds = _ackMs,
                    LastSyncPointUtc = t.Journal.SyncPoint,
                    Resync = resync,
                    LastResync = _lastResync,
                    Reachable = _state is SourceState.Replicating or SourceState.Resyncing,
                    Error = t.Divergence ?? (_state is SourceState.Alone or SourceState.Failing ? _lastError : null),
                }).ToList();
            }
        }

        /// <summary>Stops listening, ends the session (unacknowledged changes go to the journal) and closes the journals clean.</summary>
        public async ValueTask DisposeAsync()
        {
            lock (_gate)
            {
                if (_disposed) return;
                _disposed = true;
            }
            _stop.Cancel();
            try { _listener?.Stop(); } catch (SocketException) { }
            GoAlone();
            try { if (_acceptLoop != null) await _acceptLoop.ConfigureAwait(false); } catch (Exception) { }
            try { if (_ticker != null) await _ticker.ConfigureAwait(false); } catch (Exception) { }
            foreach (var t in _trees) t.Journal.Close();
        }

        [LoggerMessage(Level = LogLevel.Information, Message = "{Module}: replication listening on {Endpoint}")]
        private partial void LogListening(string module, string endpoint);

        [LoggerMessage(Level = LogLevel.Information, Message = "{Module}: replication {From} -> {To}")]
        private partial void LogState(string module, string from, string to);

        [LoggerMessage(Level = LogLevel.Warning, Message = "{Module}: writes fenced: this node gives way, its writes fail with EIO and go to the dirty journal")]
        private partial void LogFenced(string module);

        [LoggerMessage(Level = LogLevel.Warning, Message = "{Module}: secondary lost: {Reason}")]
        private partial void LogPeerFailed(string module, string reason);

        [LoggerMessage(Level = LogLevel.Error, Message = "{Module}: the peer-failed handler failed; writes wait until GoAlone")]
        private partial void LogPeerFailedHandler(string module, Exception e);

        [LoggerMessage(Level = LogLevel.Warning, Message = "{Module}: replication connection from {Remote} refused: {Reason}")]
        private partial void LogRefused(string module, string remote, string reason);

        [LoggerMessage(Level = LogLevel.Warning, Message = "{Module}: replication frame rejected: {Reason}")]
        private partial void LogForged(string module, string reason);

        [LoggerMessage(Level = LogLevel.Information, Message = "{Module}: secondary connected (full resync requested: {Full})")]
        private partial void LogConnected(string module, bool full);

        [LoggerMessage(Level = LogLevel.Information, Message = "{Module}: resync plan: {Method}, {Namespace} namespace operations, {Files} files, {Bytes} bytes")]
        private partial void LogPlan(string module, string method, int @namespace, int files, long bytes);

        [LoggerMessage(Level = LogLevel.Information, Message = "{Module}: secondary in sync ({Sent} bytes sent for {Total} bytes to check)")]
        private partial void LogInSync(string module, long sent, long total);

        [LoggerMessage(Level = LogLevel.Error, Message = "{Module}: resync failed")]
        private partial void LogResyncFailed(string module, Exception e);

        [LoggerMessage(Level = LogLevel.Warning, Message = "{Module}: {Op} {Path} gave {Local} here and {Remote} on the secondary; marked for resync")]
        private partial void LogDiverged(string module, string op, string path, int local, int remote);

        [LoggerMessage(Level = LogLevel.Debug, Message = "{Module}: resync of {Tree}: primary journal trusted {Trusted}, secondary trusted {PeerTrusted} interrupted {Interrupted}, sync points {Mine} / {Theirs}")]
        private partial void LogTreePlan(string module, string tree, bool trusted, bool peerTrusted, bool interrupted, DateTime? mine, DateTime? theirs);

        [LoggerMessage(Level = LogLevel.Debug, Message = "{Module}: resync {Method} {Path} ({Bytes} bytes)")]
        private partial void LogItem(string module, string method, string path, long bytes);

        [LoggerMessage(Level = LogLevel.Error, Message = "{Module}: replication housekeeping failed")]
        private partial void LogTickFailed(string module, Exception e);
    }

    /// <summary>Counts a running resync for ResyncProgress (thread-safe).</summary>
    internal sealed class ResyncProgressTracker(TimeProvider time)
    {
        private readonly object _gate = new();
        private readonly ResyncProgress _p = new() { StartedUtc = time.GetUtcNow().UtcDateTime };
        private readonly long _start = time.GetTimestamp();

        public void Begin(string method, long bytes, long files)
        {
            lock (_gate) { _p.Method = method; _p.BytesTotal = bytes; _p.FilesTotal = files; }
        }

        public void Done(long bytes) { lock (_gate) _p.BytesDone += bytes; }
        public void Sent(long bytes) { lock (_gate) _p.BytesSent += bytes; }
        public void FileDone() { lock (_gate) _p.FilesDone++; }

        public ResyncProgress Snapshot()
        {
            lock (_gate)
            {
                var secs = Math.Max(0.001, time.GetElapsedTime(_start).TotalSeconds);
                var rate = _p.BytesDone / secs;
                return new ResyncProgress
                {
                    Method = _p.Method, BytesDone = _p.BytesDone, BytesTotal = Math.Max(_p.BytesTotal, _p.BytesDone), FilesDone = _p.FilesDone,
                    FilesTotal = _p.FilesTotal, BytesSent = _p.BytesSent, BytesPerSecond = rate,
                    EtaSeconds = rate > 0 ? Math.Max(0, _p.BytesTotal - _p.BytesDone) / rate : null, StartedUtc = _p.StartedUtc, FinishedUtc = _p.FinishedUtc,
                };
            }
        }

        public ResyncProgress Finish()
        {
            lock (_gate) { _p.FinishedUtc = time.GetUtcNow().UtcDateTime; _p.BytesDone = Math.Max(_p.BytesDone, _p.BytesTotal); _p.FilesDone = _p.FilesTotal; }
            var s = Snapshot();
            s.EtaSeconds = 0;
            return s;
        }
    }
}
