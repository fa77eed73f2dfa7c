// The replicated directories of one mirror module on this node, as the module's roles need them:
//
//   module started, not serving   read-only FUSE view over each directory (applications cannot write;
//                                 attributes never cached, so the view shows what replication writes beneath)
//   serving (ALONE / PRIM)        writable FUSE mount whose mutations go through ReplicationSource: to the
//                                 secondary while it is connected, into the dirty journal while it is not;
//                                 the source outlives an application restart in place (the secondary stays)
//   SECOND                        ReplicationTarget: resync from the primary, then apply its stream in order
//   module stopped                nothing mounted
//
// Each directory is opened (O_PATH) before anything is mounted over it and stays open while the module is
// started: the source, the target and Test-SKReplication reach the real tree through it. MirrorHost calls
// these from its procedures (prestart, start/stop of the application, resync, poststop) and its actions
// (StopReplication: journal from now on); it raises ReplicationLost when the source reports the secondary gone.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Modules;
using ServiceKeeper.Engine.Replication;

namespace ServiceKeeper.Engine.Mirror
{
    internal sealed class MirrorReplication : IAsyncDisposable
    {
        /// <summary>First port of the range a module's replication port is chosen from when &lt;rfs port&gt; is not set.</summary>
        public const int BasePort = 9460;
        public const int PortRange = 500;
        private static readonly TimeSpan ConnectPatience = TimeSpan.FromSeconds(30);

        private readonly ModuleHostContext _ctx;
        private readonly string _module;
        private readonly string _peer;
        private readonly RfsConfig _rfs;
        private readonly string _stateDirectory;
        private readonly Action<string> _log;
        private readonly Func<string, Task> _peerFailed;
        private readonly ILogger _logger;
        private readonly SemaphoreSlim _gate = new(1, 1);
        private readonly Dictionary<string, LinuxDirectory> _directories = new(StringComparer.Ordinal);
        private readonly Dictionary<string, ReplicatedMount> _mounts = new(StringComparer.Ordinal);
        private ReplicationSource? _source;
        private ReplicationTarget? _target;
        private volatile ResyncProgress? _progress;

        public MirrorReplication(ModuleHostContext ctx, string module, string peer, RfsConfig rfs, string stateDirectory,
            Action<string> log, Func<string, Task> peerFailed)
        {
            _ctx = ctx;
            _module = module;
            _peer = peer;
            _rfs = rfs;
            _stateDirectory = Path.Combine(stateDirectory, "rfs");
            _log = log;
            _peerFailed = peerFailed;
            _logger = ctx.LoggerFactory.CreateLogger("Replication");
            Port = PortOf(module, rfs);
        }

        public int Port { get; }

        /// <summary>The resync running here (secondary), for Get-SKState and the progress bars.</summary>
        public ResyncProgress? Progress => _progress;

        /// <summary>&lt;rfs port&gt;, else a port derived from the module's name, identical on both nodes.</summary>
        public static int PortOf(string module, RfsConfig rfs)
        {
            if (rfs.Port is { } port) return port;
            uint hash = 2166136261; // FNV-1a: stable across runs and platforms, unlike string.GetHashCode
            foreach (var b in Encoding.UTF8.GetBytes(module)) hash = (hash ^ b) * 16777619;
            return BasePort + (int)(hash % PortRange);
        }

        /// <summary>Why replication cannot run on this node, or null when it can.</summary>
        public static string? Unsupported()
        {
            if (!OperatingSystem.IsLinux())
                return "replicated directories are not supported on this operating system yet (Linux only; on Windows, WinFsp support is planned). " +
                       "Remove <rfs> from the module's userconfig.xml to run it without replication.";
            return ReplicatedMount.IsSupported(out var reason) ? null : "file replication needs FUSE on this node: " + reason;
        }

        /// <summary>A mount left by an engine that was killed reads "transport endpoint is not connected": detach it.</summary>
        public void CleanupStale()
        {
            foreach (var d in _rfs.Directories) ReplicatedMount.CleanupStale(d.Path);
        }

        // ------------------------------------------------------------------ roles

        /// <summary>Module start (and whenever the module is not serving): read-only views over the directories.</summary>
        public async Task OpenAsync(CancellationToken ct)
        {
            await _gate.WaitAsync(ct);
            try
            {
                OpenDirectories();
                MountAll(readOnly: true);
            }
            finally { _gate.Release(); }
        }

        /// <summary>
        /// Before the application starts here: checks &lt;tocheck&gt;, then writable mounts whose changes go to
        /// the secondary (or the journal without it), and listens for the secondary's connection.
        /// </summary>
        public async Task ServeAsync(CancellationToken ct)
        {
            await _gate.WaitAsync(ct);
            try
            {
                await StopTargetAsync();
                if (_source is { Fenced: true }) await StopSourceAsync(); // it gave way since: a fresh one, writes succeed again
                OpenDirectories();
                foreach (var d in _rfs.Directories)
                    foreach (var check in d.ToCheck)
                        if (!Path.Exists(Path.Combine(_directories[d.Path].ProcPath, check)))
                            throw new InvalidOperationException(
                                $"{Path.Combine(d.Path, check)} does not exist (<tocheck>): the directory is empty or its disk is not mounted; the application is not started on it.");
                if (_source == null)
                {
                    _source = new ReplicationSource(Options(), _logger, _ctx.Time) { PeerFailed = _peerFailed };
                    _source.InSync += () => _log($"replication to {_peer}: in sync, every write is now acknowledged by {_peer} ({ModeName})");
                    _source.Start(new IPEndPoint(_ctx.NodeAddress(_ctx.Options.NodeName), Port));
                    _ctx.Ports.Own($"tcp/{Port}");
                }
                UnmountAll();
                foreach (var d in _rfs.Directories)
                {
                    var mount = Mount(d.Path, readOnly: false);
                    mount.Sink = _source.SinkFor(d.Path);
                }
                _log($"replicated directories writable here ({string.Join(", ", _rfs.Directories.Select(d => d.Path))}); waiting for {_peer} on port {Port}");
            }
            finally { _gate.Release(); }
        }

        /// <summary>
        /// After the application stopped here: read-only views again. The source stays: an application restarted
        /// in place keeps its secondary connected; it goes when this node becomes secondary or the module stops.
        /// </summary>
        public async Task UnserveAsync(CancellationToken ct)
        {
            await _gate.WaitAsync(ct);
            try
            {
                UnmountAll();
                if (_directories.Count > 0) MountAll(readOnly: true);
            }
            finally { _gate.Release(); }
        }

        /// <summary>The machine persisted ALONE (or stopped serving): what the secondary did not acknowledge goes to the journal.</summary>
        public void GoAlone() => _source?.GoAlone();

        /// <summary>This node gives way while writes wait for the secondary: they and all later ones fail (see ReplicationSource.Fence).</summary>
        public void FenceWrites() => _source?.Fence();

        /// <summary>
        /// Secondary: connects to the primary and returns once this node's copy is identical and receives every
        /// change (the primary may take a moment to listen after it announced itself serving).
        /// </summary>
        public async Task ResyncAsync(bool full, CancellationToken ct)
        {
            await _gate.WaitAsync(ct);
            ReplicationTarget target;
            try
            {
                await StopTargetAsync();
                await StopSourceAsync(); // it shares the journal with the target: what it did not send is journaled first
                OpenDirectories();
                if (_mounts.Count == 0) MountAll(readOnly: true);
                _target = target = new ReplicationTarget(Options(), _logger, _ctx.Time);
            }
            finally { _gate.Release(); }

            var primary = new IPEndPoint(_ctx.NodeAddress(_peer), Port);
            var deadline = _ctx.Time.GetUtcNow() + ConnectPatience;
            _progress = new ResyncProgress { Method = full ? "full" : "starting", StartedUtc = _ctx.Time.GetUtcNow().UtcDateTime };
            try
            {
                while (true)
                {
                    try
                    {
                        await target.ConnectAndResyncAsync(primary, full, new SyncProgress(p => _progress = p), ct);
                        break;
                    }
                    catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionRefused && _ctx.Time.GetUtcNow() < deadline)
                    {
                        await Task.Delay(TimeSpan.FromMilliseconds(200), _ctx.Time, ct);
                        await target.DisposeAsync();
                        await _gate.WaitAsync(ct);
                        try { _target = target = new ReplicationTarget(Options(), _logger, _ctx.Time); }
                        finally { _gate.Release(); }
                    }
                }
                var done = target.Status().FirstOrDefault()?.LastResync;
                _log(done == null ? $"resynchronised from {_peer}" :
                    $"resynchronised from {_peer} ({done.Method}): {Mb(done.BytesDone)} checked, {Mb(done.BytesSent)} received in {((done.FinishedUtc ?? DateTime.UtcNow) - done.StartedUtc).TotalSeconds:0.0} s");
                _ = WatchStreamAsync(target);
            }
            finally { _progress = null; }
        }

        /// <summary>Module stop: nothing mounted, nothing connected.</summary>
        public async Task CloseAsync()
        {
            await _gate.WaitAsync();
            try
            {
                UnmountAll();
                await StopSourceAsync();
                await StopTargetAsync();
                foreach (var d in _directories.Values) d.Dispose();
                _directories.Clear();
            }
            finally { _gate.Release(); }
        }

        public async ValueTask DisposeAsync()
        {
            await CloseAsync();
            _gate.Dispose();
        }

        // ------------------------------------------------------------------ views

        public IReadOnlyList<ReplicationStatus> Status()
        {
            var status = _source?.Status() ?? _target?.Status();
            if (status != null) return status;
            return _rfs.Directories.Select(d => new ReplicationStatus
            {
                Module = _module, Node = _ctx.Options.NodeName, PeerNode = _peer, Directory = d.Path, Mode = ModeName,
                State = _directories.Count == 0 ? "stopped" : "stale",
            }).ToList();
        }

        /// <summary>Test-SKReplication: this node's copy (all of it, or only the paths asked for), read beneath the mounts.</summary>
        public async Task<ReplicationManifest> ManifestAsync(ManifestRequest? only, CancellationToken ct)
        {
            var manifest = new ReplicationManifest { Node = _ctx.Options.NodeName };
            foreach (var d in _rfs.Directories)
            {
                HashSet<string>? paths = null;
                if (only != null)
                {
                    var asked = only.Directories.FirstOrDefault(a => a.Directory == d.Path);
                    if (asked == null) continue;
                    paths = asked.Paths.ToHashSet(StringComparer.Ordinal);
                }
                var root = _directories.TryGetValue(d.Path, out var open) ? open.ProcPath : d.Path;
                manifest.Directories.Add(await Task.Run(() => TreeManifest.Build(d.Path, root, d.NotReplicated, paths, ct), ct));
            }
            return manifest;
        }

        // ------------------------------------------------------------------ pieces

        private string ModeName => _rfs.Async == RfsAsync.None ? "sync-disk" : "sync";

        private ReplicationOptions Options() => new(
            _module, _ctx.Options.NodeName, _peer, _ctx.ClusterKey, _rfs.Async, _rfs.SendTimeout,
            _rfs.Directories.Select(d => new ReplicatedTree(d.Path, _directories[d.Path].ProcPath, _directories[d.Path], d.NotReplicated)).ToList(),
            _stateDirectory);

        private void OpenDirectories()
        {
            foreach (var d in _rfs.Directories)
            {
                if (_directories.ContainsKey(d.Path)) continue;
                ReplicatedMount.CleanupStale(d.Path);
                Directory.CreateDirectory(d.Path);
                _directories[d.Path] = LinuxDirectory.Open(d.Path);
            }
        }

        private void MountAll(bool readOnly)
        {
            foreach (var d in _rfs.Directories)
                if (!_mounts.ContainsKey(d.Path)) Mount(d.Path, readOnly);
        }

        private ReplicatedMount Mount(string path, bool readOnly)
        {
            var options = new ReplicatedMountOptions { ReadOnly = readOnly, FsName = "servicekeeper:" + _module };
            if (readOnly) options.AttrTimeout = options.EntryTimeout = options.NegativeTimeout = 0;
            var mount = ReplicatedMount.Mount(_directories[path], options);
            _mounts[path] = mount;
            return mount;
        }

        private void UnmountAll()
        {
            foreach (var mount in _mounts.Values) mount.Dispose();
            _mounts.Clear();
        }

        private async Task StopSourceAsync()
        {
            if (_source == null) return;
            var source = _source;
            _source = null;
            source.GoAlone();
            await source.DisposeAsync();
            _ctx.Ports.Release($"tcp/{Port}");
        }

        private async Task StopTargetAsync()
        {
            if (_target == null) return;
            var target = _target;
            _target = null;
            await target.DisposeAsync();
        }

        private async Task WatchStreamAsync(ReplicationTarget target)
        {
            try { await target.Completion; }
            catch (Exception ex) when (ex is not OperationCanceledException) { }
            if (_target == target)
                _log($"replication stream from {_peer} ended: {target.Status().FirstOrDefault()?.Error ?? "connection closed"}");
        }

        private static string Mb(long bytes) => $"{bytes / 1048576.0:0.0} MiB";

        /// <summary>IProgress that reports on the caller's thread (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
        private sealed class SyncProgress(Action<ResyncProgress> report) : IProgress<ResyncProgress>
        {
            public void Report(ResyncProgress value) => report(value);
        }
    }
}
