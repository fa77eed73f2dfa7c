// Runs one mirror module on this node: the actor loop around MirrorStateMachine. Heartbeats, checkers,
// admin commands and finished procedures all become events on one channel; the loop feeds them to the
// machine one at a time and carries out its actions. Slow work (scripts, resync) runs outside the loop
// and reports back as events, so the loop never blocks on it.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.NetworkInformation;
using System.Text.Json;
using System.Threading;
using System.Threading.Channels;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Heartbeat;
using ServiceKeeper.Engine.Hosting;
using ServiceKeeper.Engine.Modules;
using ServiceKeeper.Engine.Scripts;

namespace ServiceKeeper.Engine.Mirror
{
    public sealed partial class MirrorHost : IModuleHost
    {
        private static readonly TimeSpan TickInterval = TimeSpan.FromMilliseconds(100);
        private const int AnnounceCount = 5;
        private static readonly TimeSpan AnnounceInterval = TimeSpan.FromMilliseconds(200);

        private readonly ModuleHostContext _ctx;
        private readonly ModuleInfo _info;
        private readonly UserConfig _config;
        private readonly string _peer;
        private readonly string _stateDirectory;
        private readonly Channel<object> _inbox = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });
        private readonly CancellationTokenSource _life = new();
        private readonly MirrorStateMachine _machine;
        private readonly ILogger _log;
        private readonly ModuleParts _parts;
        private readonly MirrorReplication? _replication;
        private bool _replicationStarted;   // between the machine's StartReplication and StopReplication
        private bool _vipsWithdrawn;        // an isolated witness probe removed them since the last StartApplication began
        private readonly bool _witnessConfigured;
        private bool _isPrimary;            // the machine's state is PRIM, for the heartbeat threads
        private readonly object _lossGate = new();
        private Task<bool>? _lossProbe;     // the witness probe made when the peer was lost, until the machine uses it
        private bool _isolatedAtLoss;       // ...it found no witness and removed the virtual IPs: the machine gives way
        private CancellationTokenSource? _bothCheckers, _primCheckers;
        private byte[]? _lastPeerPayload;
        private PeerView? _newestPeerView;  // the last view the heartbeats delivered, null once the peer is lost
        private Task? _loop, _ticker;
        private volatile ModuleState _snapshot;

        private sealed record Command(ModuleCommandRequest Request, TaskCompletionSource<ModuleState> Done);
        private sealed record Maintenance(MaintenanceRequest Request, TaskCompletionSource<ModuleState> Done);

        public MirrorHost(ModuleHostContext ctx, ModuleInfo info, UserConfig config)
        {
            _ctx = ctx;
            _info = info;
            _config = config;
            _peer = info.Nodes.Single(n => n != ctx.Options.NodeName);
            _stateDirectory = Path.Combine(ctx.Home.ModuleDirectory(info.Name), "state");
            _log = ctx.LoggerFactory.CreateLogger("Mirror");
            var witness = config.Checks.OfType<SplitBrainCheckConfig>().FirstOrDefault();
            _witnessConfigured = witness != null;
            var heart = config.Heart!;
            _machine = new MirrorStateMachine(
                new MirrorSettings(info.Name, ctx.Options.NodeName, _peer, info.InitialPrimary ?? info.Nodes[0],
                    config.Failover, config.DefaultPrimary, config.DefaultPrimaryNode, config.MaxLoop, config.LoopInterval,
                    witness != null, StartupWait: heart.Timeout * 2, TakeOverDelay: MirrorSettings.TakeOverDelayFor(heart.Timeout)),
                LoadDisk(), ctx.Time, () => "g" + Convert.ToHexString(Guid.NewGuid().ToByteArray()[..6]).ToLowerInvariant());
            _parts = new ModuleParts(ctx, info, config, new Dictionary<string, string> { ["SK_PEER"] = _peer });
            if (config.Rfs is { Directories.Count: > 0 } rfs)
                _replication = new MirrorReplication(ctx, info.Name, _peer, rfs, _stateDirectory, text => ModuleLog("rfs", text),
                    reason => { _inbox.Writer.TryWrite(new ReplicationLost(reason)); return Task.CompletedTask; });
            _snapshot = BuildSnapshot();
        }

        public string Name => _info.Name;
        public ModuleState State => _snapshot;

        public IReadOnlyList<ModuleResource> Resources => _parts.Resources;

        /// <summary>Get-SKReplication: each replicated directory here.</summary>
        public IReadOnlyList<ReplicationStatus> ReplicationStatus() => _replication?.Status() ?? [];

        /// <summary>Test-SKReplication: what this node holds in the replicated directories (or in the paths asked for), by content hash.</summary>
        public Task<ReplicationManifest> BuildManifestAsync(ManifestRequest? only, CancellationToken ct) =>
            _replication?.ManifestAsync(only, ct)
                ?? throw new SKApiException(ErrorIds.InvalidModuleState, $"Module '{Name}' has no replicated directories (<rfs>).", Name);

        /// <summary>Opens the heartbeats, releases what a dead engine may have left, and resumes if the module was started.</summary>
        public async Task StartAsync()
        {
            await ReconcileAsync();
            var heart = _config.Heart!;
            _parts.OpenHeartbeats([_peer], heart.Heartbeats, heart.Pulse, heart.Timeout, OnHeartbeat);
            Publish();
            _loop = Task.Run(LoopAsync);
            _ticker = Task.Run(TickAsync);
            if (_parts.ResumesAtEngineStart()) _inbox.Writer.TryWrite(new StartCommand());
        }

        public Task<ModuleState> CommandAsync(ModuleCommandRequest request) => _inbox.Writer.AskAsync(Name, done => new Command(request, done));

        public Task<ModuleState> SetMaintenanceAsync(MaintenanceRequest request) => _inbox.Writer.AskAsync(Name, done => new Maintenance(request, done));

        /// <summary>Stops the module here (the engine is stopping or the module is being removed) and waits for STOP.</summary>
        public async Task StopAsync(TimeSpan timeout, bool keepStartedFlag)
        {
            await _inbox.Writer.StopAndWaitAsync(done => new Command(new ModuleCommandRequest { Command = ModuleCommands.Stop }, done),
                () => _machine.State == MirrorStateName.Stop && _machine.RunningProcedure == null, _ctx.Time, timeout);
            if (keepStartedFlag) _parts.Started = true;
        }

        public async ValueTask DisposeAsync()
        {
            _inbox.Writer.TryComplete();
            _life.Cancel();
            StopCheckers(ref _primCheckers);
            StopCheckers(ref _bothCheckers);
            _parts.CloseHeartbeats();
            foreach (var task in new[] { _loop, _ticker })
                if (task != null) try { await task; } catch (OperationCanceledException) { }
            if (_replication != null) await _replication.DisposeAsync();
            _life.Dispose();
        }

        // ------------------------------------------------------------------ the loop

        private async Task LoopAsync()
        {
            await foreach (var item in _inbox.Reader.ReadAllAsync(_life.Token))
            {
                try
                {
                    if (PeerViewFor(item, Volatile.Read(ref _newestPeerView), _machine.Peer) is { } view)
                        Apply(_machine.Handle(new PeerHeard(view)));
                    switch (item)
                    {
                        case Command c: HandleCommand(c); break;
                        case Maintenance m:
                            Apply(_machine.Handle(new MaintenanceCommand(m.Request.Checkers, m.Request.Errd, m.Request.Failover)));
                            m.Done.SetResult(BuildSnapshot());
                            break;
                        case ReplicationLost lost:
                            Apply(_machine.Handle(lost));
                            // Lost during a resync (the peer was not SECOND Ready yet, so it cannot take over) or while
                            // not serving: nothing to persist, the changes go to the journal at once. Serving with a ready
                            // secondary, the machine persists a new generation first and then says StopReplication.
                            if (!_replicationStarted || !_machine.IsServing) _replication?.GoAlone();
                            break;
                        case PeerHeard: break; // delivered above
                        case MirrorEvent e: Apply(_machine.Handle(e)); break;
                    }
                }
                catch (Exception ex)
                {
                    LogLoopFailed(ex, Name);
                    ModuleLog("module", "internal error: " + ex.Message);
                }
                _snapshot = BuildSnapshot();
                Volatile.Write(ref _isPrimary, _machine.State == MirrorStateName.Prim);
                Publish();
            }
        }

        /// <summary>
        /// The peer view the machine is given as it takes <paramref name="item"/> from the inbox (before the item itself), or null
        /// when it holds it already. Whatever the item, the machine decides on the newest view the heartbeats delivered, not on
        /// the one it had when the item was queued: a machine that was blocked (its disk stalls) must not act on heartbeats that
        /// newer ones have overtaken (sim seed 27042: a stale view of a waiting peer made it serve after the peer had taken over).
        /// A queued heartbeat is its view when the peer was lost since (the PeerLost queued behind follows); a PeerLost comes
        /// before any view newer than it (heard after the loss, its PeerHeard follows).
        /// </summary>
        /// <param name="newest">the last view the heartbeats delivered; null once the peer is lost.</param>
        /// <param name="known">the view the machine holds (MirrorStateMachine.Peer).</param>
        public static PeerView? PeerViewFor(object item, PeerView? newest, PeerView? known)
        {
            // sim seed 36584: the end of a prestart, queued while the disk stalled, was handled with the view from before the
            // stall (the peer stopped): the node served beside the peer, which served data made authoritative meanwhile.
            var view = item switch { PeerHeard h => newest ?? h.Peer, PeerLost => null, _ => newest };
            return view == known ? null : view;
        }

        private void HandleCommand(Command c)
        {
            MirrorEvent e = c.Request.Command switch
            {
                ModuleCommands.Start => new StartCommand(),
                ModuleCommands.Stop => new StopCommand(),
                ModuleCommands.Restart => new RestartCommand(),
                ModuleCommands.Swap => new SwapCommand(),
                ModuleCommands.Prim => new PrimCommand(c.Request.Force),
                ModuleCommands.Second => new SecondCommand(c.Request.FullSync),
                _ => throw new SKApiException(ErrorIds.InvalidArgument, $"Unknown module command '{c.Request.Command}'."),
            };
            try
            {
                if (e is StartCommand or PrimCommand or SecondCommand && _replication != null && MirrorReplication.Unsupported() is { } why)
                    throw new SKApiException(ErrorIds.NotSupported, $"{Name}: {why}", Name);
                if (e is StartCommand or PrimCommand or SecondCommand) _parts.Started = true;
                if (e is StopCommand) _parts.Started = false;
                Apply(_machine.Handle(e));
                c.Done.SetResult(BuildSnapshot());
            }
            catch (MirrorCommandException ex)
            {
                c.Done.SetException(new SKApiException(ex.ErrorId, ex.Message, Name));
            }
            catch (SKApiException ex)
            {
                c.Done.SetException(ex);
            }
        }

        private void Apply(IReadOnlyList<MirrorAction> actions)
        {
            foreach (var action in actions)
            {
                switch (action)
                {
                    case PersistAction p: SaveDisk(p.Disk); break;
                    case RunProcedure r:
                        if (r.Procedure == Procedure.StartApplication)
                        {
                            Volatile.Write(ref _vipsWithdrawn, false);
                            lock (_lossGate) _isolatedAtLoss = false;
                        }
                        StartProcedure(r);
                        break;
                    case ProbeWitnessAside:
                        RunAside("witness probe", async ct =>
                        {
                            var reachable = await ProbeWitnessAsync(giveWay: true, ct);
                            _inbox.Writer.TryWrite(new WitnessProbed(reachable));
                        });
                        break;
                    case SetPrimaryCheckers s:
                        if (s.Running) StartCheckers(ref _primCheckers, CheckWhen.Prim);
                        else StopCheckers(ref _primCheckers);
                        break;
                    case StartReplication:
                        _replicationStarted = true;
                        ModuleLog("module", _replication == null ? $"{_peer} is secondary (no replicated directories)" : $"replicating to {_peer}");
                        break;
                    case StopReplication:
                        _replicationStarted = false;
                        // The new generation is persisted (an earlier action): unacknowledged changes may now go to the journal.
                        _replication?.GoAlone();
                        ModuleLog("module", _replication == null ? $"{_peer} is no longer secondary" : $"replication to {_peer} off: changes are journaled for its resync");
                        break;
                    case FenceWrites:
                        _replication?.FenceWrites();
                        if (_replication != null) ModuleLog("module", "writes fail here until this node serves again: it gives way, and what it wrote since its secondary last answered is not acknowledged");
                        break;
                    case LogAction l:
                        ModuleLog("module", l.Text);
                        LogTransition(l.Text.StartsWith(Name + ":", StringComparison.Ordinal) ? l.Text : Name + ": " + l.Text);
                        break;
                }
            }
            // Checkers of class "both" run whenever the module is started here.
            if (_machine.State == MirrorStateName.Stop && _machine.RunningProcedure == null) StopCheckers(ref _bothCheckers);
            else if (_bothCheckers == null && _machine.State != MirrorStateName.Stop) StartCheckers(ref _bothCheckers, CheckWhen.Both);
        }

        private async Task TickAsync()
        {
            try
            {
                while (!_life.IsCancellationRequested)
                {
                    await Task.Delay(TickInterval, _ctx.Time, _life.Token);
                    _inbox.Writer.TryWrite(new Tick());
                }
            }
            catch (OperationCanceledException) { }
        }

        // ------------------------------------------------------------------ heartbeats

        /// <summary>On the heartbeat service's threads: hand over at once, never block.</summary>
        private void OnHeartbeat(HeartbeatEvent e)
        {
            switch (e)
            {
                case PeerMessage m:
                    var last = Volatile.Read(ref _lastPeerPayload);
                    if (last != null && last.AsSpan().SequenceEqual(m.Payload)) return;
                    if (last == null) lock (_lossGate) _lossProbe = null; // heard again: an answer from the loss says nothing now
                    Volatile.Write(ref _lastPeerPayload, m.Payload);
                    if (MirrorPayload.Decode(m.Node, m.Payload) is { } view)
                    {
                        Volatile.Write(ref _newestPeerView, view);
                        _inbox.Writer.TryWrite(new PeerHeard(view));
                    }
                    break;
                case Heartbeat.PeerLost:
                    Volatile.Write(ref _lastPeerPayload, null);
                    Volatile.Write(ref _newestPeerView, null);
                    if (_witnessConfigured && Volatile.Read(ref _isPrimary))
                        lock (_lossGate) _lossProbe = Task.Run(ProbeAtLossAsync);
                    _inbox.Writer.TryWrite(new PeerLost(_ctx.Time.GetUtcNow()));
                    break;
            }
        }

        private void Publish() => _parts.Publish(MirrorPayload.Encode(_machine.View));

        // ------------------------------------------------------------------ procedures

        private void StartProcedure(RunProcedure r)
        {
            var state = _machine.State;
            _ = Task.Run(async () =>
            {
                bool ok;
                string? detail = null;
                try
                {
                    (ok, detail) = await RunProcedureAsync(r.Procedure, r.FullSync, state, _life.Token, r.GiveWay, r.TakeOver);
                }
                catch (OperationCanceledException) when (_life.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception ex)
                {
                    (ok, detail) = (false, ex.Message);
                    ModuleLog("module", $"{r.Procedure} failed: {ex.Message}");
                }
                _inbox.Writer.TryWrite(new ProcedureDone(r.Procedure, ok, detail));
            });
        }

        /// <summary>Work the machine asked for beside its running procedure.</summary>
        private void RunAside(string what, Func<CancellationToken, Task> work) => _ = Task.Run(async () =>
        {
            try { await work(_life.Token); }
            catch (OperationCanceledException) when (_life.IsCancellationRequested) { }
            catch (Exception ex) { ModuleLog("module", $"{what} failed: {ex.Message}"); }
        });

        private async Task<(bool, string?)> RunProcedureAsync(Procedure procedure, bool fullSync, MirrorStateName state, CancellationToken ct, bool giveWay, bool takeOver)
        {
            var name = MirrorStateMachine.Name(state);
            switch (procedure)
            {
                case Procedure.Prestart:
                    if (_replication != null) await _replication.OpenAsync(ct);
                    await _parts.RunScriptAsync("prestart", [name, "WAIT", "start"], _config.User.ForceStopTimeout, ct);
                    return (true, null);

                case Procedure.StartApplication:
                    if (_replication != null) await _replication.ServeAsync(ct);
                    foreach (var (address, prefix, iface) in VirtualAddresses())
                    {
                        await _ctx.VirtualIps.AddAsync(address, prefix, iface, ct);
                        ModuleLog("module", $"virtual IP {address}/{prefix} added on {iface}");
                        _ = AnnounceAsync(address, iface);
                    }
                    // The machine withdrew them meanwhile (isolated while starting): the withdrawal may have run before an add.
                    if (Volatile.Read(ref _vipsWithdrawn)) await RemoveVirtualIpsAsync(ct);
                    var start = await _parts.RunScriptAsync("start_prim", [name, "PRIM", "start"], _config.User.ForceStopTimeout, ct);
                    return start.Succeeded || start.Missing ? (true, null) : (false, Describe("start_prim", start));

                case Procedure.StopApplication:
                    // Giving way to the other node (it serves or may take over): clients leave this node first.
                    if (giveWay) await RemoveVirtualIpsAsync(ct);
                    var stop = await _parts.RunScriptAsync("stop_prim", [name, "STOP", "stop"], _config.User.NiceStopTimeout, ct);
                    if (!stop.Succeeded && !stop.Missing)
                    {
                        ModuleLog("module", Describe("stop_prim", stop) + ": stopping with force");
                        await _parts.RunScriptAsync("stop_prim", [name, "STOP", "force"], _config.User.ForceStopTimeout, ct);
                    }
                    if (!giveWay) await RemoveVirtualIpsAsync(ct);
                    if (_replication != null) await _replication.UnserveAsync(ct);
                    return (true, null);

                case Procedure.Poststop:
                    await _parts.RunScriptAsync("poststop", [name, "STOP", "stop"], _config.User.ForceStopTimeout, ct);
                    if (_replication != null) await _replication.CloseAsync();
                    return (true, null);

                case Procedure.Resync:
                    if (_replication == null)
                    {
                        ModuleLog("module", $"resynchronisation from {_peer}{(fullSync ? " (full)" : "")}: no replicated directories, nothing to copy");
                        return (true, null);
                    }
                    ModuleLog("module", $"resynchronisation from {_peer}{(fullSync ? " (full copy asked)" : "")}");
                    await _replication.ResyncAsync(fullSync, ct);
                    return (true, null);

                case Procedure.ProbeWitness:
                    return (await ProbeWitnessAsync(giveWay, ct, pings: takeOver ? 1 : MirrorSettings.WitnessPings), null);
            }
            return (false, "unknown procedure " + procedure);
        }

        private async Task AnnounceAsync(IPAddress address, string iface)
        {
            try { await _ctx.VirtualIps.AnnounceAsync(address, iface, AnnounceCount, AnnounceInterval, _life.Token); }
            catch (Exception ex) when (ex is not OperationCanceledException) { ModuleLog("module", $"gratuitous ARP for {address} failed: {ex.Message}"); }
        }

        private async Task RemoveVirtualIpsAsync(CancellationToken ct)
        {
            foreach (var (address, prefix, iface) in VirtualAddresses())
            {
                await _ctx.VirtualIps.RemoveAsync(address, prefix, iface, ct);
                ModuleLog("module", $"virtual IP {address}/{prefix} removed from {iface}");
            }
        }

        /// <summary>
        /// A primary probes the witness on the heartbeat thread the moment the peer is lost, not when its machine gets to it: a
        /// machine stalled on its disk would probe seconds later, after the peer took over (sim seed 19678). No answer removes
        /// the virtual IPs at once; the machine's own give-way probe then answers "no witness" and the node gives way.
        /// </summary>
        private async Task<bool> ProbeAtLossAsync()
        {
            try
            {
                var reachable = await ProbeWitnessesAsync(MirrorSettings.WitnessPings, _life.Token);
                if (reachable) return true;
                ModuleLog("module", $"{_peer} lost and no witness answers: virtual IPs removed now, the module gives way");
                Volatile.Write(ref _vipsWithdrawn, true);
                lock (_lossGate) _isolatedAtLoss = true;
                await RemoveVirtualIpsAsync(_life.Token);
            }
            catch (OperationCanceledException) { }
            catch (Exception ex)
            {
                ModuleLog("module", "witness probe at the loss failed: " + ex.Message);
            }
            return false;
        }

        /// <param name="giveWay">this node serves: when no witness answers, the virtual IPs go at once, before the machine (which
        /// may be stalled on its disk) hears of it; it gives way then.</param>
        private async Task<bool> ProbeWitnessAsync(bool giveWay, CancellationToken ct, int pings = MirrorSettings.WitnessPings)
        {
            var reachable = giveWay && TakeLossProbe() is { } atLoss ? await atLoss : await ProbeWitnessesAsync(pings, ct);
            ModuleLog("module", reachable ? "a witness answers" : "no witness answers");
            if (!reachable && giveWay)
            {
                // Again when the probe at the loss did it already: a StartApplication since may have added them back.
                Volatile.Write(ref _vipsWithdrawn, true);
                await RemoveVirtualIpsAsync(ct);
            }
            return reachable;
        }

        /// <summary>The answer of the probe made when the peer was lost, if it is still to be used (it is used once).</summary>
        private Task<bool>? TakeLossProbe()
        {
            lock (_lossGate)
            {
                var early = _lossProbe;
                _lossProbe = null;
                if (early is not { IsCompleted: false } && _isolatedAtLoss)
                {
                    _isolatedAtLoss = false;
                    return Task.FromResult(false); // the virtual IPs went when the peer was lost: this node gives way
                }
                if (early == null) return null;
                return early.ContinueWith(t =>
                {
                    if (!t.Result) lock (_lossGate) _isolatedAtLoss = false;
                    return t.Result;
                }, TaskScheduler.Default);
            }
        }

        private async Task<bool> ProbeWitnessesAsync(int pings, CancellationToken ct)
        {
            var witnesses = _config.Checks.OfType<SplitBrainCheckConfig>().SelectMany(s => s.Witnesses).ToList();
            // The isolated side holds the VIP until its probes give up: keep them in proportion to the
            // detection time (a witness on the LAN answers in a millisecond).
            var timeout = MirrorSettings.WitnessPingTimeout(_config.Heart!.Timeout);
            var probes = witnesses.Select(async w =>
            {
                for (int attempt = 0; attempt < pings; attempt++)
                {
                    using var ping = new Ping();
                    try
                    {
                        if ((await ping.SendPingAsync(w, timeout, null, null, ct)).Status == IPStatus.Success) return true;
                    }
                    catch (PingException) { }
                }
                return false;
            }).ToList();
            return (await Task.WhenAll(probes)).Any(ok => ok);
        }

        private static string Describe(string script, ScriptResult r) =>
            r.TimedOut ? $"{script} timed out after {r.Duration.TotalSeconds:0} s" : $"{script} exited with code {r.ExitCode}";

        private IEnumerable<(IPAddress Address, int Prefix, string Interface)> VirtualAddresses()
        {
            foreach (var iface in _config.Vip.Interfaces)
                foreach (var vip in iface.Addresses)
                    yield return (vip.Address, vip.PrefixLength ?? (vip.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128),
                                  iface.Name ?? _ctx.VirtualIps.ResolveInterface(vip.Address));
        }

        // ------------------------------------------------------------------ checkers

        private void StartCheckers(ref CancellationTokenSource? cts, CheckWhen when) =>
            _parts.StartCheckers(ref cts, _life.Token, c => c.When == when, OnResource);

        private void StopCheckers(ref CancellationTokenSource? cts) =>
            _parts.StopCheckers(ref cts, c => _machine.State == MirrorStateName.Stop || c.When == CheckWhen.Prim && !_machine.IsServing);

        /// <summary>On the checker's task, after ModuleParts recorded and logged the flip.</summary>
        private void OnResource(IChecker checker, ResourceChange change) =>
            _inbox.Writer.TryWrite(new ResourceChanged(change.Resource, change.Value, change.Action, checker.When,
                change.Resource.StartsWith("errd.", StringComparison.Ordinal), change.Reason));

        // ------------------------------------------------------------------ persistence and reconciliation

        /// <summary>
        /// An engine that died may have left the VIP and the application behind. A node whose engine was
        /// killed must not serve next to a new primary: release the VIP and stop the application before
        /// anything else; the module comes back through the normal start (as secondary when the peer serves).
        /// </summary>
        private async Task ReconcileAsync()
        {
            _replication?.CleanupStale();
            var leftover = VirtualAddresses().Where(v => _ctx.VirtualIps.IsPresent(v.Address, v.Interface)).ToList();
            if (leftover.Count == 0 && !_parts.Started) return;
            ModuleLog("module", "engine restarted: releasing what the previous engine may have left (virtual IP, application)");
            var stop = await _parts.RunScriptAsync("stop_prim", ["STOP", "STOP", "force"], _config.User.ForceStopTimeout, _life.Token);
            if (!stop.Missing) ModuleLog("module", $"stop_prim force: {(stop.Succeeded ? "done" : Describe("stop_prim", stop))}");
            foreach (var (address, prefix, iface) in leftover)
            {
                await _ctx.VirtualIps.RemoveAsync(address, prefix, iface, _life.Token);
                ModuleLog("module", $"virtual IP {address}/{prefix} released from {iface}");
            }
        }

        private string DiskFile => Path.Combine(_stateDirectory, "mirror.json");

        private MirrorDisk LoadDisk()
        {
            if (!File.Exists(DiskFile)) return MirrorDisk.Empty;
            var stored = JsonSerializer.Deserialize<StoredDisk>(File.ReadAllText(DiskFile))
                ?? throw new InvalidDataException(DiskFile + " is empty");
            return new MirrorDisk(stored.Generation, System.Collections.Immutable.ImmutableList.CreateRange(stored.History ?? []),
                stored.Consistent, stored.UpToDate, stored.Authoritative, stored.LastPrimary);
        }

        private sealed record StoredDisk(string? Generation, List<string>? History, bool Consistent, bool UpToDate, bool Authoritative, string? LastPrimary);

        private void SaveDisk(MirrorDisk disk)
        {
            Directory.CreateDirectory(_stateDirectory);
            EngineHome.WriteAtomic(DiskFile, JsonSerializer.Serialize(new StoredDisk(disk.Generation, disk.History.ToList(),
                disk.Consistent, disk.UpToDate, disk.Authoritative, disk.LastPrimary)));
        }

        // ------------------------------------------------------------------ views

        private ModuleState BuildSnapshot()
        {
            var m = _machine;
            return new ModuleState
            {
                Module = Name,
                Node = _ctx.Options.NodeName,
                Kind = "mirror",
                State = MirrorStateMachine.Name(m.State),
                Ready = m.Ready,
                Reason = m.Reason,
                SinceUtc = m.Since.UtcDateTime,
                DataGeneration = m.Disk.Generation,
                UpToDate = m.Disk.Consistent && (m.Disk.UpToDate || m.IsServing || m.State == MirrorStateName.Second && m.Ready),
                PeerState = m.Peer == null ? null : MirrorStateMachine.Name(m.Peer.State) + (m.Peer.Ready ? "" : " (transient)"),
                CheckersEnabled = m.CheckersEnabled,
                ErrdEnabled = m.ErrdEnabled,
                FailoverEnabled = m.FailoverEnabled && _config.Failover,
                ResyncBytesDone = _replication?.Progress?.BytesDone,
                ResyncBytesTotal = _replication?.Progress?.BytesTotal,
                ResyncBytesPerSecond = _replication?.Progress?.BytesPerSecond,
                ResyncEtaSeconds = _replication?.Progress?.EtaSeconds,
            };
        }


        private void ModuleLog(string source, string text) => _ctx.ModuleLog.Write(Name, source, text);

        [LoggerMessage(Level = LogLevel.Information, Message = "{Text}")]
        private partial void LogTransition(string text);

        [LoggerMessage(Level = LogLevel.Error, Message = "{Module}: the module loop failed")]
        private partial void LogLoopFailed(Exception ex, string module);
    }
}
