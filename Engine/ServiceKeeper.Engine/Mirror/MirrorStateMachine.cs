// The mirror module's protocol core: events in, actions out. No sockets, threads, files or clocks
// (time comes from TimeProvider), so the same code runs in the engine, in unit tests and in a simulator.
//
//            start                        peer serving / chosen secondary
//   STOP ───────────► WAIT (starting) ─────────────────────────────────► SECOND (Transient: resync)
//    ▲                  │   │  no peer, data up to date                     │ resync done
//    │ stop             │   └──────────────► ALONE ◄──── peer lost ──────── SECOND (Ready)
//    │                  │ stale / split       │ ▲   (failover on, witness ok: takeover, new generation)
//    │                  ▼ brain / isolated    │ │ peer lost (new generation)
//    └──────────────── WAIT (NotReady) ◄──┐   ▼ │
//                                         └── PRIM  (peer is SECOND Ready; swap: PRIM ⇄ SECOND)
//
// Transition table (state, event) → next state: actions. "serve" = RunProcedure(StartApplication),
// "unserve" = RunProcedure(StopApplication); every generation change is persisted before it is used.
//
//  STOP   start                       → WAIT(T) starting: Prestart, then look for the peer until StartupWait
//  WAIT(T) starting, peer serving     → SECOND(T): resync (full when behind, diverged by the admin's choice, or new)
//                    peer serving older/diverged data → WAIT(NR) split brain (reported, nothing merged)
//          peer also starting         → the node ChoosePrimary picks: ALONE(T) serve; the other SECOND(T)
//          no peer by the deadline    → ALONE(T) serve with a new generation if the data is up to date (witness? only
//                                       where it answers, else WAIT(NR) isolated), else WAIT(NR) "data not up to date" /
//                                       "no data yet" / "inconsistent"; the same generation as a peer that served it
//                                       last is not up to date (the peer may hold writes this copy lacks)
//  ALONE  peer lost, witness          → ProbeWitness: unreachable → unserve → WAIT(NR) isolated
//         replication lost (resync)   → new generation, the secondary resyncs again (forwarded writes may be missing)
//         peer SECOND Ready, same gen → PRIM (only while replicating to it; else new generation: it resyncs again): persist UpToDate=false (either node may now go on alone);
//                                       defaultprim names the peer: swap to it
//         peer serving, diverged      → the loser of ChoosePrimary unserves → WAIT(NR) split brain; winner stays ALONE
//  PRIM   peer lost                   → (witness? ProbeWitness) ALONE: new generation, UpToDate=true
//                                       | witness unreachable: unserve → WAIT(NR) isolated
//         replication lost            → ALONE: new generation (persisted, then StopReplication: the host completes
//                                       the blocked writes into the dirty journal only once it is durable); no probe
//                                       (the peer is not lost); the secondary sees the generation ahead and resyncs
//         (transient) replication lost → same new generation; the flow under way ends ALONE / WAIT / STOP;
//                                       a swap under way is abandoned and the application served again, ALONE
//         peer stops being SECOND     → ALONE: new generation
//         swap                        → unserve → SECOND(T) hand-over → SECOND(R) once the peer serves
//         peer SECOND reports LostPeer → unserve → WAIT(NR) (it no longer hears this node and may take over)
//  ALONE  holding writes (replication lost while the secondary was ready; the new generation is persisted not up to
//         date until they are released): peer leaves SECOND Ready or shows the new generation → persist UpToDate,
//         StopReplication (the writes complete); peer reports LostPeer → unserve → WAIT(NR);
//         peer lost → witness answers: StopReplication | unreachable: unserve → WAIT(NR) isolated
//  giving way (isolated, or the peer reports LostPeer) while replication is lost → FenceWrites (the waiting writes and
//         all later ones fail with EIO, journaled), unserve with GiveWay (VIP removed before stop_prim); a generation
//         started while holding writes carries no acknowledged write: when the peer serves on from its parent, Decide
//         goes back to the parent and resyncs (a failover, not a split brain)
//  serving (T) application started but the peer took over meanwhile → unserve → WAIT(NR), no new generation
//  serving (T) peer lost while start_prim runs, witness → the witness is probed beside it (ProbeWitnessAside); none answers →
//                                       the host removes the VIPs at once, unserve → WAIT(NR) isolated as soon as start_prim ends
//  serving   probing the witness (peer lost): none answers → the host removes the VIPs at once; the node gives way whatever it
//            heard meanwhile. The peer reports LostPeer meanwhile → the probe is dropped, StepDown
//  SECOND(R) peer serving a newer gen → SECOND(T): resync (a peer known to be ahead is never taken over from)
//            primary lost, witness    → SECOND(T) publishing LostPeer while it probes the witness, then waits
//                                       TakeOverDelay (the isolated primary's own probe and give-way); follows a
//                                       primary heard serving meanwhile
//  PRIM(T) swap whose peer never took over (it lost this node, or stopped) → abandoned: serve again, new generation
//            peer lost / peer stopped → failover off: WAIT(NR); witness unreachable: WAIT(NR) isolated;
//                                       else takeover: new generation, ALONE(T) serve
//            peer hands over (swap)   → PRIM(T) serve, same generation
//  SECOND(T) peer lost                → WAIT(NR) "resync interrupted" (data inconsistent)
//  serving   resource down restart    → unserve, serve (counts towards maxloop; beyond it: stopstart)
//            resource down stopstart  → stop here (the peer takes over), start again (comes back SECOND)
//            resource down stop/wait  → stop / unserve → WAIT(NR) until the resource is up
//  any    stop                        → unserve if serving, Poststop → STOP
//  other  replication lost            → ignored (logged)
// Every path that leaves PRIM persists its record before StopReplication.
using System;
using System.Collections.Generic;
using System.Linq;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Configuration;

namespace ServiceKeeper.Engine.Mirror
{
    /// <summary>Module settings the machine needs (from userconfig.xml and the module's install).</summary>
    /// <param name="TakeOverDelay">with a witness: how long a secondary that lost its primary waits, from the loss, before it
    /// starts the application, even though a witness answers it at once. An isolated primary loses the secondary at about the
    /// same moment, but its witness probe only gives up after every ping has timed out; it must be stopping by then (see
    /// TakeOverDelayFor). Zero: take over as soon as a witness answers.</param>
    public sealed record MirrorSettings(
        string Module, string Node, string PeerNode, string InitialPrimary,
        bool Failover, DefaultPrimaryPolicy DefaultPrimary, string? DefaultPrimaryNode,
        int MaxLoop, TimeSpan LoopInterval, bool HasWitness, TimeSpan StartupWait, TimeSpan TakeOverDelay = default)
    {
        /// <summary>One witness ping's timeout: in proportion to the detection time (a witness on the LAN answers in a
        /// millisecond), so that an isolated node gives way soon after it lost its peer.</summary>
        public static TimeSpan WitnessPingTimeout(TimeSpan heartbeatTimeout) =>
            TimeSpan.FromMilliseconds(Math.Clamp(heartbeatTimeout.TotalMilliseconds / 3, 100, 700));

        /// <summary>Pings per witness probe (one after the other).</summary>
        public const int WitnessPings = 2;

        /// <summary>
        /// The isolated primary's give-up time (every ping of its probe timed out) plus half a heartbeat timeout for the
        /// skew between the two nodes' detection of the loss (heartbeat phase, late datagrams, ticks, clock rates).
        /// </summary>
        public static TimeSpan TakeOverDelayFor(TimeSpan heartbeatTimeout) =>
            WitnessPingTimeout(heartbeatTimeout) * WitnessPings + heartbeatTimeout / 2;
    }

    /// <summary>A command that does not fit the current state; nothing was changed.</summary>
    public sealed class MirrorCommandException(string errorId, string message) : Exception(message)
    {
        public string ErrorId { get; } = errorId;
    }

    public sealed class MirrorStateMachine
    {
        private readonly MirrorSettings _s;
        private readonly MirrorSafety _safety;
        private readonly TimeProvider _time;
        private readonly Func<string> _newGeneration;
        private readonly List<MirrorAction> _out = new();
        private readonly List<DateTimeOffset> _loops = new();
        private readonly HashSet<string> _waitingOn = new(StringComparer.Ordinal);
        // Checkers report a flip once: one that arrives while a procedure runs is handled when it ends.
        private readonly List<ResourceChanged> _deferred = new();

        private Procedure? _op;
        private Action<bool, string?>? _then;
        private DateTimeOffset? _startupDeadline;
        private bool _stopRequested;
        private bool _restartAfterStop;
        private bool _pendingPeerLost;
        private bool _discardData;        // second -FullSync / admin chose the peer's data
        private bool _canTakeOver;        // lost an in-sync primary: prim needs no -Force
        private bool _secondRequested;    // start as secondary (Set-SKSecondary on a stopped node)
        private bool _replicating;
        private bool _starting;           // from start until the role is decided, prestart included (F6)
        private bool _freshGeneration;    // no other node holds this generation: ALONE may go on with it
        private bool _primaryConfirmed;   // the peer was PRIM with our generation: we received its writes
        private bool _replicationBroken;  // ReplicationLost since the last StartReplication
        private string? _unusedGeneration; // gave way while holding writes on this fresh generation: no write was acknowledged under it
        private bool _holdingWrites;      // replication lost while the secondary could take over: writes stay blocked
        private bool _steppingDown;       // stopping the application because the peer may serve (isolated, peer lost us)
        private bool _checkingTakeOver;   // SECOND that lost its primary, probing the witness (published as LostPeer)
        private DateTimeOffset? _takeOverAt; // SECOND that lost its primary, a witness answered: starts serving then (TakeOverDelay)
        private DateTimeOffset _peerLostAt;  // when the heartbeat layer last found the peer lost
        private bool _probingAside;        // the peer was lost while the application starts: the witness is probed meanwhile
        private bool _isolatedWhileStarting; // ...and no witness answered: this node gives way as soon as start_prim has ended

        public MirrorStateMachine(MirrorSettings settings, MirrorDisk disk, TimeProvider time, Func<string> newGeneration, MirrorSafety? safety = null)
        {
            _s = settings;
            _safety = safety ?? MirrorSafety.On;
            _time = time;
            _newGeneration = newGeneration;
            Disk = disk;
            Since = time.GetUtcNow();
        }

        public MirrorStateName State { get; private set; } = MirrorStateName.Stop;
        public bool Ready { get; private set; } = true;
        public string? Reason { get; private set; }
        public DateTimeOffset Since { get; private set; }
        public MirrorDisk Disk { get; private set; }
        public PeerView? Peer { get; private set; }
        public bool CheckersEnabled { get; private set; } = true;
        public bool ErrdEnabled { get; private set; } = true;
        public bool FailoverEnabled { get; private set; } = true;
        /// <summary>This node asks the peer to take over (swap): carried in the heartbeat.</summary>
        public bool HandOver { get; private set; }
        public bool Starting => State == MirrorStateName.Wait && _starting;
        public bool IsServing => State is MirrorStateName.Alone or MirrorStateName.Prim;
        public Procedure? RunningProcedure => _op;

        /// <summary>This node's view as the peer will see it.</summary>
        public PeerView View => new(_s.Node, State, Ready, Disk.Generation, Disk.History, Disk.Consistent, Disk.UpToDate,
                                    Disk.Authoritative, HandOver, Starting,
                                    LostPeer: _checkingTakeOver && State == MirrorStateName.Second && (_op == Procedure.ProbeWitness || _takeOverAt != null),
                                    LastPrimary: Disk.LastPrimary, SecondRequested: _discardData || _secondRequested);

        public IReadOnlyList<MirrorAction> Handle(MirrorEvent e)
        {
            _out.Clear();
            switch (e)
            {
                case StartCommand: OnStart(); break;
                case StopCommand: OnStop(restart: false); break;
                case RestartCommand: OnStop(restart: true); break;
                case SwapCommand: OnSwap(); break;
                case PrimCommand p: OnPrim(p.Force); break;
                case SecondCommand s: OnSecond(s.FullSync); break;
                case MaintenanceCommand m: OnMaintenance(m); break;
                case PeerHeard h: OnPeerHeard(h.Peer); break;
                case PeerLost l: OnPeerLost(l.At ?? _time.GetUtcNow()); break;
                case ResourceChanged r: OnResource(r); break;
                case ProcedureDone d: OnProcedureDone(d); break;
                case Tick: OnTick(); break;
                case ReplicationLost r: OnReplicationLost(r.Reason); break;
                case WitnessProbed w: OnWitnessProbedAside(w.Reachable); break;
            }
            return _out.ToArray();
        }

        // ------------------------------------------------------------------ admin commands

        private void OnStart()
        {
            if (State != MirrorStateName.Stop)
                throw new MirrorCommandException(ErrorIds.InvalidModuleState, $"{_s.Module} is already started on {_s.Node} ({State}).");
            _stopRequested = _restartAfterStop = false;
            // A start is a new admin intent: an earlier "second" on this node does not outlive it (sim seed 482: both
            // nodes waited for each other to serve).
            _discardData = _secondRequested = _fullSync = false;
            _loops.Clear();
            _waitingOn.Clear();
            _starting = true;
            Enter(MirrorStateName.Wait, false, "starting: prestart");
            Run(Procedure.Prestart, (_, _) => Discover());
        }

        private void OnStop(bool restart)
        {
            if (State == MirrorStateName.Stop && _op == null)
            {
                if (restart) OnStart();
                return;
            }
            _restartAfterStop = restart;
            _stopRequested = true;
            if (_op == null) StopFlow();
        }

        private void OnSwap()
        {
            if (State != MirrorStateName.Prim || !Ready || Peer is not { State: MirrorStateName.Second, Ready: true } || _op != null)
                throw new MirrorCommandException(ErrorIds.InvalidModuleState,
                    $"{_s.Module}: a swap needs this node PRIM and {_s.PeerNode} SECOND, both ready; this node is {Describe()}, {_s.PeerNode} is {DescribePeer()}.");
            Log("swap requested: stopping the application here, then handing over to " + _s.PeerNode);
            Emit(new SetPrimaryCheckers(false));
            Enter(MirrorStateName.Prim, false, "swapping: stopping the application");
            Run(Procedure.StopApplication, (_, _) =>
            {
                if (!_replicating || _replicationBroken)
                {
                    // The secondary stopped acknowledging while the application stopped (ReplicationLost): it lacks the
                    // last writes, so it may not take over. Serve again on the new generation. Writes held because it might
                    // take over still are (sim seed 4199: released here, they were acknowledged while the node, cut off, had not
                    // yet probed the witness, and the peer took over without them).
                    if (!_holdingWrites) StopReplicating();
                    Log($"swap abandoned: {_s.PeerNode} stopped acknowledging writes; serving again here");
                    Serve(MirrorStateName.Alone, "swap abandoned: starting the application again");
                    return;
                }
                Disk = Disk with { UpToDate = false, LastPrimary = _s.PeerNode };
                Emit(new PersistAction(Disk));
                StopReplicating();
                _primaryConfirmed = false; // confirmed again only once the peer is a ready PRIM
                HandOver = true;
                Enter(MirrorStateName.Second, false, $"swapping: {_s.PeerNode} takes over");
            });
        }

        private void OnPrim(bool force)
        {
            if (IsServing) return;
            if (State == MirrorStateName.Second && Ready)
                throw new MirrorCommandException(ErrorIds.InvalidModuleState,
                    $"{_s.Module}: {_s.PeerNode} is primary and this node is its up-to-date secondary; use Start-SKSwap.");
            if (_op != null)
                throw new MirrorCommandException(ErrorIds.InvalidModuleState, $"{_s.Module} is busy on {_s.Node} ({Describe()}); try again when it is ready.");
            if (Peer is { IsServing: true })
                throw new MirrorCommandException(ErrorIds.InvalidModuleState, $"{_s.Module}: {_s.PeerNode} is serving ({DescribePeer()}); use Start-SKSwap.");
            // sim seed 1502: this node handed over (swap) and the peer, once it hears that, takes over; a primary here too would be
            // two. -Force is the admin's override.
            if (!force && HandOver)
                throw new MirrorCommandException(ErrorIds.InvalidModuleState,
                    $"{_s.Module}: a swap to {_s.PeerNode} is under way; wait for it to serve, or use Set-SKPrimary -Force.");
            // sim seed 5879: the peer no longer hears this node and takes over once the witness allows it; a primary here too
            // would be two (this node's heartbeats do not reach it). -Force is the admin's override.
            if (!force && Peer is { State: MirrorStateName.Second, LostPeer: true })
                throw new MirrorCommandException(ErrorIds.InvalidModuleState,
                    $"{_s.Module}: {_s.PeerNode} no longer hears this node and is taking over; wait for it to serve, or use Set-SKPrimary -Force.");
            if (!force)
            {
                var stale = StaleReason(Peer);
                if (stale != null)
                    throw new MirrorCommandException(ErrorIds.DataNotUpToDate,
                        $"{_s.Module}: refusing to make {_s.Node} primary: {stale}. Set-SKPrimary -Force makes it primary anyway; the other node's newer changes will then be discarded by a full resynchronisation.");
            }
            if (force)
            {
                Log("prim -Force: this node's data is made authoritative");
                Disk = Disk with { Authoritative = true, Consistent = true };
            }
            _stopRequested = false;
            if (State == MirrorStateName.Stop)
            {
                _starting = true;
                Enter(MirrorStateName.Wait, false, "starting as primary: prestart");
                Run(Procedure.Prestart, (_, _) => BecomePrimary("Set-SKPrimary"));
            }
            else
            {
                BecomePrimary("Set-SKPrimary");
            }
        }

        private void OnSecond(bool fullSync)
        {
            if (IsServing)
                throw new MirrorCommandException(ErrorIds.InvalidModuleState, $"{_s.Module}: {_s.Node} is primary; use Start-SKSwap to make it secondary.");
            if (_op != null && _op != Procedure.Resync)
                throw new MirrorCommandException(ErrorIds.InvalidModuleState, $"{_s.Module} is busy on {_s.Node} ({Describe()}); try again when it is ready.");
            _discardData = true;
            if ((Disk.UpToDate || Disk.Authoritative) && !_safety.IgnoreStaleness)
            {
                // sim seed 11549: the admin gave up this node's data for the peer's; a crash later, the node restarted with its
                // record still "up to date" and, the peer out of view, served the copy it was told to discard (without what the
                // peer acknowledged meanwhile). The record says so at once.
                Disk = Disk with { UpToDate = false, Authoritative = false };
                Emit(new PersistAction(Disk));
            }
            if (fullSync) Log("second -FullSync: this node's data will be replaced by a full copy from " + _s.PeerNode);
            switch (State)
            {
                case MirrorStateName.Stop:
                    _secondRequested = true;
                    _starting = true;
                    Enter(MirrorStateName.Wait, false, "starting as secondary: prestart");
                    Run(Procedure.Prestart, (_, _) => Discover());
                    break;
                case MirrorStateName.Second when !fullSync:
                    break;
                default:
                    BecomeSecond(fullSync: true);
                    break;
            }
        }

        private void OnMaintenance(MaintenanceCommand m)
        {
            if (m.Checkers is { } c) CheckersEnabled = c;
            if (m.Errd is { } e) ErrdEnabled = e;
            if (m.Failover is { } f) FailoverEnabled = f;
            Log($"maintenance: checkers {OnOff(CheckersEnabled)}, errd {OnOff(ErrdEnabled)}, failover {OnOff(FailoverEnabled)}");
        }

        // ------------------------------------------------------------------ peer

        private void OnPeerHeard(PeerView peer)
        {
            var before = Peer;
            Peer = peer;
            _pendingPeerLost = false;
            // sim seeds 19458, 54998: the peer finished a copy of this generation while the application started here, and stopped
            // before this node saw it as its secondary; this node then served on with the generation, unreplicated, and the
            // peer's stale copy of it later passed for the same data and served. A generation another node holds is not fresh:
            // ALONE goes on with a new one (F5).
            if (peer.Consistent && peer.Generation != null && peer.Generation == Disk.Generation) _freshGeneration = false;
            // Only a ready PRIM replicates: a PRIM still starting (swap) may run the application before it does (sim seed 112);
            // a PRIM that is stopping (transient) keeps what this node knew of it.
            if (peer.State == MirrorStateName.Prim && peer.Generation == Disk.Generation) { if (peer.Ready) _primaryConfirmed = true; }
            else if (peer.IsServing || Relate(peer) == DataRelation.Behind) _primaryConfirmed = false;
            if (before == null) Log($"{_s.PeerNode} seen: {DescribePeer()}");
            if (State == MirrorStateName.Stop && peer.IsServing && Disk is { Generation: not null, UpToDate: true, Authoritative: false } && !_safety.IgnoreStaleness
                && Relate(peer) is DataRelation.Behind or DataRelation.Diverged)
            {
                // A stopped node that sees the peer serve data this copy lacks is no longer up to date: started later without
                // hearing the peer, it must not serve this copy (sim seed 1423; as the split brain in Decide, sim seed 769).
                Disk = Disk with { UpToDate = false };
                Emit(new PersistAction(Disk));
            }
            if (_op == Procedure.ProbeWitness && !_stopRequested && StepsDownFor(peer))
            {
                // sim seed 54541: the peer reports it lost this node while this node probes the witness (a lossy link: the loss
                // was found here a second later than there). The probe's answer no longer matters: give way now.
                _op = null;
                _then = null;
                _pendingPeerLost = false;
                StepDown();
                return;
            }
            if (_op != null || _stopRequested) return; // decided when the running procedure ends
            React();
        }

        /// <summary>The peer may take over and this node, serving, must not be found serving then (see React).</summary>
        private bool StepsDownFor(PeerView peer) =>
            Ready && peer is { State: MirrorStateName.Second, LostPeer: true }
            && ((State == MirrorStateName.Prim && peer.Generation == Disk.Generation) || (State == MirrorStateName.Alone && _holdingWrites));

        /// <summary>What the current peer view means in the current state (called after every change).</summary>
        private void React()
        {
            var peer = Peer;
            switch (State)
            {
                case MirrorStateName.Wait when Starting:
                    if (_startupDeadline != null && peer != null && (peer.IsServing || peer.Starting || peer.State is MirrorStateName.Stop or MirrorStateName.Wait))
                        Decide();
                    break;

                case MirrorStateName.Wait when Ready == false && _waitingOn.Count == 0 && peer != null:
                    // Stale, isolated or split brain: a peer that serves may let us become its secondary,
                    // and a peer that waits too may decide with us who serves (F7: after a total outage).
                    if (peer.IsServing || (peer.State == MirrorStateName.Wait && !peer.Starting && !peer.Ready)
                        || (peer.State == MirrorStateName.Second && !peer.Ready && !peer.HandOver && !peer.LostPeer)) Decide();
                    break;

                case MirrorStateName.Alone when Ready && peer != null && _holdingWrites:
                    if ((peer.State == MirrorStateName.Second && peer.LostPeer) || TookOverFromHeldParent(peer)) StepDown();
                    else if (peer.IsServing) SplitBrainWhileServing(peer);
                    else if (!(peer.State == MirrorStateName.Second && peer.Ready) || peer.Generation == Disk.Generation)
                    {
                        Log($"{_s.PeerNode} has seen generation {Short(Disk.Generation)} ({DescribePeer()}): the held writes complete into the journal");
                        ReleaseHeldWrites();
                        React();
                    }
                    break;

                case MirrorStateName.Prim when Ready && peer != null && peer.State == MirrorStateName.Second && peer.LostPeer && peer.Generation == Disk.Generation:
                    StepDown();
                    break;

                case MirrorStateName.Alone when Ready && peer != null:
                    if (peer.State == MirrorStateName.Second && !peer.HandOver && peer.Generation == Disk.Generation && peer.Ready && !_replicating)
                    {
                        // The secondary finished its copy while nothing was replicated to it (its resync went unseen here):
                        // writes acknowledged since are not there. A new generation makes it copy again, replicated (sim seed 32).
                        Disk = Disk.NewGeneration(_newGeneration()) with { UpToDate = true, LastPrimary = _s.Node };
                        Emit(new PersistAction(Disk));
                        _freshGeneration = true;
                        _replicating = true;
                        _replicationBroken = false;
                        Emit(new StartReplication());
                        Log($"{_s.PeerNode} became secondary while nothing was replicated to it: new generation {Short(Disk.Generation)}, it resynchronises again");
                    }
                    else if (peer.State == MirrorStateName.Second && !peer.HandOver && peer.Generation == Disk.Generation && peer.Ready)
                    {
                        Disk = Disk with { UpToDate = false, LastPrimary = _s.Node, Authoritative = false };
                        Emit(new PersistAction(Disk));
                        _freshGeneration = false;
                        Enter(MirrorStateName.Prim, true, null);
                        SwapToPreferredPeer();
                    }
                    else if (peer.State == MirrorStateName.Second && !_replicating)
                    {
                        _replicating = true;
                        _replicationBroken = false;
                        Emit(new StartReplication());
                    }
                    else if (peer.IsServing)
                    {
                        SplitBrainWhileServing(peer);
                    }
                    else if (PeerDataWins(peer) is { } text)
                    {
                        // sim seed 5265: the admin made the peer's data authoritative (prim -Force) while this node served out of its
                        // sight; the peer then waited (isolated, then split brain) and this node served on, so the admin's choice
                        // was lost in practice. The admin's choice wins: stop here; the peer serves and this node resyncs from it.
                        Log(text + "; stopping here");
                        Emit(new SetPrimaryCheckers(false));
                        Disk = Disk with { UpToDate = false };
                        Emit(new PersistAction(Disk));
                        Unserve(() => Enter(MirrorStateName.Wait, false, text + ". Nothing was merged: this node's changes are kept until it resynchronises from " + _s.PeerNode + "."), giveWay: true);
                    }
                    break;

                case MirrorStateName.Prim when Ready && peer != null:
                    if (peer.IsServing) SplitBrainWhileServing(peer);
                    else if (peer.State != MirrorStateName.Second)
                        GoAlone($"{_s.PeerNode} is no longer secondary ({DescribePeer()})");
                    else SwapToPreferredPeer();
                    break;

                case MirrorStateName.Second when HandOver && peer != null:
                    if (peer.IsServing)
                    {
                        HandOver = false;
                        Log("swap done: " + _s.PeerNode + " is primary");
                        FollowServingPeer();
                    }
                    else if (peer.State is MirrorStateName.Wait or MirrorStateName.Stop && !peer.Starting)
                    {
                        // sim seed 10265: the peer never saw the hand-over (its incoming heartbeats were cut), lost this node and
                        // went to WAIT (isolated); it will not take over, and this node waited for it for ever. This node stopped
                        // the application last and holds every acknowledged write: the swap is abandoned, it serves again.
                        HandOver = false;
                        _primaryConfirmed = true;
                        Log($"swap abandoned: {_s.PeerNode} did not take over ({DescribePeer()}); serving again here");
                        TakeOver(newGeneration: true, $"swap abandoned: {_s.PeerNode} is {DescribePeer()}");
                    }
                    break;

                case MirrorStateName.Second when Ready && peer != null:
                    if (peer.HandOver && peer.State == MirrorStateName.Second && peer.Generation == Disk.Generation)
                        TakeOver(newGeneration: false, "swap: " + _s.PeerNode + " hands over");
                    else if (peer.IsServing && peer.Generation != Disk.Generation)
                        StartResync(); // the primary went on alone for a while: its changes since must come here first (F2)
                    else if (!peer.IsServing && !peer.HandOver)
                        PrimaryGone($"{_s.PeerNode} stopped serving ({DescribePeer()})");
                    break;

                case MirrorStateName.Second when !Ready && peer != null && _takeOverAt != null:
                    if (peer.IsServing) EndTakeOverWait();
                    break;

                case MirrorStateName.Second when !Ready && peer != null:
                    if (peer.IsServing && _op == null) StartResync();
                    // sim seed 15150: this node chose to wait for the peer to serve, then the admin made the peer secondary
                    // (Set-SKSecondary): it will not serve, and both waited for each other for ever. Decide again without it.
                    else if (_op == null && !_discardData && !_secondRequested && peer is { State: MirrorStateName.Second, Ready: false, HandOver: false, SecondRequested: true })
                        Decide();
                    break;
            }
        }

        /// <summary>The secondary stopped acknowledging writes while this node replicates to it.</summary>
        private void OnReplicationLost(string reason)
        {
            if (!_replicating || _replicationBroken || State is not (MirrorStateName.Prim or MirrorStateName.Alone))
            {
                Log($"{_s.Module}: replication to {_s.PeerNode} lost ({reason}) while {Describe()}: nothing to do");
                return;
            }
            _replicationBroken = true;
            if (_steppingDown)
            {
                // This node is giving way (isolated, or its peer may take over): it will not serve on, so no new generation.
                // The writes in flight stay blocked until the application is stopped and are never acknowledged; the node
                // keeps its generation, and once it sees the peer again it resynchronises from it (its journal names the
                // files those writes touched). A new generation here would turn the peer's takeover into a split brain.
                Log($"{_s.Module}: replication to {_s.PeerNode} lost ({reason}) while stepping down: writes in flight are not acknowledged");
                Emit(new FenceWrites());
                return;
            }
            // The blocked writes complete into the dirty journal when replication stops: they belong to a generation the
            // secondary does not hold, which must be durable before any of them is acknowledged.
            var wasPrim = State == MirrorStateName.Prim;
            var why = $"secondary stopped acknowledging writes: {reason}";
            // A ready secondary of a PRIM may take over (it believes it holds every acknowledged write) until it has seen
            // this new generation: until then the writes stay blocked (sim seed 212). It shows it has seen it by leaving
            // SECOND Ready (it resyncs); if it reports instead that it lost this node, this node steps down. Writes are held
            // too while the peer serves or takes over, or while the application here is stopping (it gives way: its blocked
            // writes fail with it, sim seed 416).
            var holding = (wasPrim && Peer is { State: MirrorStateName.Second, Ready: true }) || Peer is { IsServing: true } || Peer is { LostPeer: true }
                          || _op == Procedure.StopApplication;
            // sim seed 14792: while the writes are held the peer may still take over, so this copy is not yet the only up-to-date
            // one: a crash now, and this node restarted without the peer in view served its copy without what the peer
            // acknowledged since. Up to date once the writes are released (ReleaseHeldWrites).
            Disk = Disk.NewGeneration(_newGeneration()) with { UpToDate = !holding, LastPrimary = _s.Node };
            Emit(new PersistAction(Disk));
            _freshGeneration = true;
            _holdingWrites = holding;
            if (!_holdingWrites) StopReplicating();
            if (State == MirrorStateName.Alone)
                Log($"{_s.Module}: ALONE: {why}; new generation {Short(Disk.Generation)}, {_s.PeerNode} resynchronises again");
            else if (Ready && _op == null)
            {
                Enter(MirrorStateName.Alone, true, why);
                Reason = null;
                Log($"serving alone, changes tracked for resync (generation {Short(Disk.Generation)})" +
                    (_holdingWrites ? $"; writes held until {_s.PeerNode} has seen it" : ""));
                React();
            }
            else
                Log($"{_s.Module}: PRIM (transient): {why}; new generation {Short(Disk.Generation)}, the flow under way goes on without replication");
        }

        /// <summary>The peer can no longer take over: this copy is the only up-to-date one (persisted before the held writes
        /// complete, see OnReplicationLost).</summary>
        private void ReleaseHeldWrites()
        {
            if (!Disk.UpToDate && IsServing)
            {
                Disk = Disk with { UpToDate = true };
                Emit(new PersistAction(Disk));
            }
            StopReplicating();
        }

        private void StopReplicating()
        {
            if (_replicating) Emit(new StopReplication());
            _replicating = false;
            _holdingWrites = false;
        }

        /// <summary>
        /// Giving way while holding writes: the generation this node started when replication was lost carries no
        /// acknowledged write (every write since waited for the peer to see it). Its peer may take over from the generation
        /// both held; when it then serves, this node's generation counts as that parent (Decide), so the takeover is a
        /// failover and not a split brain (seen in the PostgreSQL test: a primary cut off under load lost replication before
        /// its heartbeats and came back diverged). Kept as generation meanwhile: the peer may have seen it.
        /// </summary>
        private void RememberUnusedGeneration()
        {
            if (HeldGenerationAsParent() != null) _unusedGeneration = Disk.Generation;
        }

        /// <summary>This node's record with its held generation given back (null when it does not hold writes on a fresh one).</summary>
        private MirrorDisk? HeldGenerationAsParent() =>
            _holdingWrites && _freshGeneration && !Disk.History.IsEmpty
                ? Disk with { Generation = Disk.History[0], History = Disk.History.RemoveAt(0) }
                : null;

        /// <summary>The peer serves on from the generation this node held writes on top of: it took over.</summary>
        private bool TookOverFromHeldParent(PeerView peer) =>
            peer.IsServing && HeldGenerationAsParent() is { } parent
            && Relate(parent.Generation, parent.History, peer.Generation, peer.History) == DataRelation.Behind;

        /// <summary>This node stops serving because the peer serves or may take over: its copy is no longer the up-to-date one, a
        /// fresh generation it held writes on goes back to its parent (RememberUnusedGeneration), and the writes waiting for a
        /// secondary that no longer answers fail (they were never acknowledged).</summary>
        private void GiveUpServing()
        {
            RememberUnusedGeneration();
            Disk = Disk with { UpToDate = false };
            Emit(new PersistAction(Disk));
            if (_replicationBroken) Emit(new FenceWrites());
        }

        /// <summary>The peer reports that it lost this node and is deciding to take over: it must not find this node serving.</summary>
        private void StepDown()
        {
            Log($"{_s.PeerNode} no longer hears this node and may take over: stopping the application here");
            GiveUpServing();
            Emit(new SetPrimaryCheckers(false));
            _steppingDown = true;
            Unserve(() => Enter(MirrorStateName.Wait, false, $"{_s.PeerNode} lost this node's heartbeats and may take over; waiting for it"), giveWay: true);
        }

        private void OnPeerLost(DateTimeOffset at)
        {
            var had = Peer;
            Peer = null;
            _peerLostAt = at;
            if (had != null) Log($"{_s.PeerNode} lost on every heartbeat network");
            if (_op != null)
            {
                _pendingPeerLost = true;
                // sim seeds 4199, 5240: start_prim may run for seconds; probing only once it has ended, an isolated node served
                // long after its peer, told by the witness, took over. The probe runs beside it instead.
                if (_op == Procedure.StartApplication && !_probingAside) AskWitnessBesideStart();
                return;
            }
            HandlePeerLost();
        }

        private void HandlePeerLost()
        {
            _pendingPeerLost = false;
            switch (State)
            {
                case MirrorStateName.Prim:
                    // giveWay: when no witness answers, the host removes the virtual IPs as the probe ends, before this machine
                    // hears of it (sim seeds 37804, 49710: the machine, stalled on its disk, gave way seconds after the peer took
                    // over). The node then gives way whatever it heard meanwhile.
                    if (HasWitness)
                        Run(Procedure.ProbeWitness, (reachable, _) =>
                        {
                            if (!reachable) { Isolated(serving: true); return; }
                            if (Peer != null) { React(); return; }
                            GoAlone($"{_s.PeerNode} lost, a witness answers");
                        }, giveWay: true);
                    else
                        GoAlone($"{_s.PeerNode} lost");
                    break;

                case MirrorStateName.Alone when HasWitness:
                    // Serving alone already (replication was lost first, or the peer was not secondary): an isolated node
                    // must still give way, the peer may take over where the witness answers (sim seed 20).
                    Run(Procedure.ProbeWitness, (reachable, _) =>
                    {
                        if (Peer != null) { React(); return; }
                        if (!reachable) { Isolated(serving: true); return; }
                        if (_holdingWrites) ReleaseHeldWrites();
                    });
                    break;

                case MirrorStateName.Alone:
                    if (_holdingWrites) ReleaseHeldWrites();
                    break;

                case MirrorStateName.Second when _takeOverAt != null:
                    break; // lost again while waiting for it to give way: the takeover goes on

                case MirrorStateName.Second when HandOver:
                    // The peer vanished during the swap: nobody serves. Our data is the newest (the application
                    // stopped here before the hand-over); serve again, but only where a witness allows it (F5).
                    HandOver = false;
                    _primaryConfirmed = true;
                    PrimaryGone("swap interrupted: " + _s.PeerNode + " lost");
                    break;

                case MirrorStateName.Second when Ready:
                    PrimaryGone($"{_s.PeerNode} lost on every heartbeat network");
                    break;

                case MirrorStateName.Second:
                    if (Disk.Consistent)
                        Enter(MirrorStateName.Wait, false, $"waiting for {_s.PeerNode}: it was lost before it served");
                    else
                        Enter(MirrorStateName.Wait, false, $"data not up to date: the resynchronisation from {_s.PeerNode} was interrupted; start {_s.PeerNode}, or Set-SKPrimary -Force");
                    break;
            }
        }

        /// <summary>The witness probe that ran while the application starts here (the peer was lost meanwhile).</summary>
        private void OnWitnessProbedAside(bool reachable)
        {
            if (!_probingAside) return;
            _probingAside = false;
            if (reachable || _op != Procedure.StartApplication) return; // else decided when start_prim ends
            // The host withdrew the virtual IPs as the probe ended: this node gives way whatever it heard meanwhile.
            _isolatedWhileStarting = true;
            Log("no witness answers while the application starts here: the virtual IPs are withdrawn, the application stops once started");
        }

        /// <summary>The primary went away while this node was its up-to-date secondary.</summary>
        private void PrimaryGone(string why)
        {
            if (!_primaryConfirmed && !_safety.IgnoreStaleness)
            {
                // It never served as PRIM with our data: writes it acknowledged alone may be missing here (F3).
                Disk = Disk with { UpToDate = false };
                Emit(new PersistAction(Disk));
                Enter(MirrorStateName.Wait, false, $"data not up to date: {why}, and it had not yet confirmed this node as its secondary; start {_s.PeerNode}, or Set-SKPrimary -Force");
                return;
            }
            _canTakeOver = true;
            if (!_s.Failover || !FailoverEnabled)
            {
                Enter(MirrorStateName.Wait, false, $"{why}; failover is off: Set-SKPrimary -Name {_s.Module} -Node {_s.Node} takes over");
                return;
            }
            if (HasWitness && Peer == null)
            {
                Enter(MirrorStateName.Second, false, why + ": checking the witness");
                _checkingTakeOver = true;
                var lostAt = _peerLostAt;
                Run(Procedure.ProbeWitness, (reachable, _) =>
                {
                    if (Peer is { IsServing: true }) { _checkingTakeOver = false; FollowServingPeer(); return; }
                    // takeOver: only the first ping counts (sim seed 55913: this node's cut healed between its two pings; the
                    // primary, whose own probe had answered at once, released its held writes and served on without it).
                    if (!reachable) { _checkingTakeOver = false; Isolated(serving: false); return; }
                    if (_s.TakeOverDelay > TimeSpan.Zero && _time.GetUtcNow() > lostAt + _s.TakeOverDelay && !_safety.IgnoreStaleness)
                    {
                        // sim seed 1563: the loss reached this machine late (stalled on its disk) and the witness answered only after
                        // the cut had healed: the primary, whose own probe had answered long before, released the writes it held and
                        // served on without this node. An answer this late says nothing about then: no takeover.
                        _checkingTakeOver = false;
                        Disk = Disk with { UpToDate = false };
                        Emit(new PersistAction(Disk));
                        Enter(MirrorStateName.Wait, false, $"data not up to date: {why} {(_time.GetUtcNow() - lostAt).TotalSeconds:0.0} s before a witness answered here " +
                            $"(this node was stalled), and {_s.PeerNode} may have served alone since; start {_s.PeerNode}, or Set-SKPrimary -Force");
                        return;
                    }
                    // sim seed 12142: the witness answers this node within a millisecond, while an isolated primary's probe
                    // gives up only when its pings time out; it served on meanwhile, and clients reached both once the cut
                    // healed. Wait until it must be stopping (still published as LostPeer: a primary that hears it steps down).
                    if (_s.TakeOverDelay > TimeSpan.Zero && _time.GetUtcNow() < lostAt + _s.TakeOverDelay)
                    {
                        _takeOverAt = lostAt + _s.TakeOverDelay;
                        Enter(MirrorStateName.Second, false, why + $", a witness answers: taking over once {_s.PeerNode} has given way");
                        _takeOverWhy = why + ", a witness answers";
                        return;
                    }
                    _checkingTakeOver = false;
                    TakeOver(newGeneration: true, why + ", a witness answers");
                }, takeOver: true);
                return;
            }
            TakeOver(newGeneration: true, why);
        }

        /// <summary>defaultprim names the other node: once it is an up-to-date secondary again, it gets its role back.</summary>
        private void SwapToPreferredPeer()
        {
            if (State != MirrorStateName.Prim || !Ready || _op != null || Peer is not { State: MirrorStateName.Second, Ready: true }) return;
            if (_s.DefaultPrimary != DefaultPrimaryPolicy.Node || _s.DefaultPrimaryNode != _s.PeerNode) return;
            Log($"defaultprim is {_s.PeerNode}: swapping now that it is an up-to-date secondary");
            OnSwap();
        }

        /// <summary>A peer serves and this node is its secondary: ready only when it holds the same generation (F2).</summary>
        private void FollowServingPeer()
        {
            if (Peer!.Generation == Disk.Generation && Disk.Consistent) Enter(MirrorStateName.Second, true, null);
            else StartResync();
        }

        private void Isolated(bool serving, bool keepRecord = false)
        {
            const string reason = "isolated: the other node and every witness are unreachable; the other node may be serving";
            _canTakeOver = false;
            if (serving) RememberUnusedGeneration();
            if (!keepRecord)
            {
                Disk = Disk with { UpToDate = false };
                Emit(new PersistAction(Disk));
            }
            if (serving)
            {
                if (_replicationBroken) Emit(new FenceWrites());
                _steppingDown = true;
                Unserve(() => Enter(MirrorStateName.Wait, false, reason), giveWay: true);
            }
            else
                Enter(MirrorStateName.Wait, false, reason);
        }

        /// <summary>Why the peer's data wins over this serving node's, which must not serve on (or start again), or null: the peer
        /// serves data that wins the split brain (ChoosePrimary), or waits with diverged data the admin made authoritative (prim
        /// -Force) for this node to give way.</summary>
        private string? PeerDataWins(PeerView peer)
        {
            var relation = Relate(peer);
            if (peer.IsServing && ChoosePrimary(peer, relation) == _s.PeerNode)
                return $"split brain: {_s.PeerNode} serves data that is {RelationText(Invert(relation))} this node's " +
                       $"(generation {Short(peer.Generation)} there, {Short(Disk.Generation)} here) and keeps serving";
            if (peer is { State: MirrorStateName.Wait, Starting: false, Authoritative: true } && !Disk.Authoritative && relation == DataRelation.Diverged)
                return $"split brain: {_s.PeerNode}'s data was made authoritative by Set-SKPrimary -Force (generation {Short(peer.Generation)} there, {Short(Disk.Generation)} here)";
            return null;
        }

        /// <summary>Both nodes serve: a partition healed after both went ALONE. One keeps serving; nothing is merged.</summary>
        private void SplitBrainWhileServing(PeerView peer)
        {
            var relation = Relate(peer);
            var winner = ChoosePrimary(peer, relation);
            var text = $"split brain: {_s.PeerNode} serves too, data {RelationText(relation)} (generation {Short(Disk.Generation)} here, {Short(peer.Generation)} there)";
            if (winner == _s.Node && relation == DataRelation.Ahead && !peer.Ready)
            {
                // Not a split brain: the peer still runs its application on older data while it gives way (it was cut off).
                Log($"{_s.PeerNode} still serves older data while it gives way (generation {Short(peer.Generation)} there, {Short(Disk.Generation)} here); this node keeps serving");
                return;
            }
            if (winner == _s.Node)
            {
                Reason = text + "; this node keeps serving, " + _s.PeerNode + "'s data is kept aside for the admin";
                Log(Reason);
                return;
            }
            Log(text + "; stopping here, " + _s.PeerNode + " keeps serving");
            Emit(new SetPrimaryCheckers(false));
            Unserve(() => Enter(MirrorStateName.Wait, false,
                text + ". Nothing was merged: this node's changes are kept. Set-SKSecondary -FullSync discards them, Set-SKPrimary -Force keeps them instead."),
                giveWay: true);
        }

        // ------------------------------------------------------------------ decisions

        private void Discover()
        {
            if (_stopRequested) { StopFlow(); return; }
            _startupDeadline = _time.GetUtcNow() + _s.StartupWait;
            Enter(MirrorStateName.Wait, false, $"starting: looking for {_s.PeerNode}");
            if (Peer != null) React();
        }

        private string _takeOverWhy = "";

        /// <summary>The wait for an isolated primary to give way is over (or the peer is back): take over, or not.</summary>
        private void EndTakeOverWait()
        {
            _takeOverAt = null;
            _checkingTakeOver = false;
            if (Peer is { IsServing: true }) { FollowServingPeer(); return; }
            // As without the wait: a "second" said to this ready secondary earlier does not keep it from taking over (sim seed
            // 11176: waiting instead, it stopped publishing LostPeer and the primary, heard by it but not hearing it, served on).
            TakeOver(newGeneration: true, _takeOverWhy);
        }

        private void OnTick()
        {
            if (_op != null) return;
            if (_takeOverAt is { } at && State == MirrorStateName.Second && _time.GetUtcNow() >= at) { EndTakeOverWait(); return; }
            if (Starting && _time.GetUtcNow() >= _startupDeadline) Decide();
        }

        /// <summary>Chooses this node's role from its data, the peer's view (if any) and the settings.</summary>
        private void Decide()
        {
            _startupDeadline = null;
            _starting = false;
            var peer = Peer;
            var relation = peer == null ? DataRelation.Unknown : Relate(peer);

            if (peer is { IsServing: true } && relation == DataRelation.Diverged && _unusedGeneration == Disk.Generation && !Disk.History.IsEmpty
                && Relate(Disk.History[0], Disk.History.RemoveAt(0), peer.Generation, peer.History) == DataRelation.Behind)
            {
                Log($"{_s.Module}: generation {Short(Disk.Generation)} carries no acknowledged write and {_s.PeerNode} serves on from " +
                    $"{Short(Disk.History[0])}: back to it, the resync from {_s.PeerNode} replaces what this node wrote under it");
                Disk = Disk with { Generation = Disk.History[0], History = Disk.History.RemoveAt(0) };
                Emit(new PersistAction(Disk));
                relation = DataRelation.Behind;
            }

            if (peer is { IsServing: true })
            {
                if (_discardData || Disk.Generation == null || relation is DataRelation.Same or DataRelation.Behind || (relation == DataRelation.Diverged && peer.Authoritative))
                    BecomeSecond(fullSync: _discardData || Disk.Generation == null || relation == DataRelation.Diverged);
                else
                {
                    // The peer serves diverged data: it acknowledges writes this copy lacks. Recorded, so that this node does
                    // not start alone on its own copy once the peer is gone (sim seed 769: it restarted, found no peer and
                    // served its old branch without the peer's acknowledged writes). Set-SKPrimary -Force still may.
                    if (relation == DataRelation.Diverged && Disk.UpToDate && !Disk.Authoritative && !_safety.IgnoreStaleness)
                    {
                        Disk = Disk with { UpToDate = false };
                        Emit(new PersistAction(Disk));
                    }
                    Enter(MirrorStateName.Wait, false, $"split brain: {_s.PeerNode} serves data that is {RelationText(Invert(relation))} this node's " +
                        $"(generation {Short(peer.Generation)} there, {Short(Disk.Generation)} here). Nothing was merged: Set-SKSecondary -FullSync on this node discards its changes.");
                }
                return;
            }
            if (_secondRequested || _discardData)
            {
                Enter(MirrorStateName.Second, false, $"waiting for {_s.PeerNode} to serve");
                return;
            }
            if (peer is { State: MirrorStateName.Second, LostPeer: true })
            {
                // sim seed 983: the peer lost this node (it restarted behind a cut port) and waits to take over; serving here
                // too, this node acknowledged writes the peer then started without. Let it serve, or give up (then decide).
                Enter(MirrorStateName.Second, false, $"waiting for {_s.PeerNode} to serve (it lost this node and may take over)");
                return;
            }
            if (peer is { State: MirrorStateName.Second, Ready: true } && peer.Generation == Disk.Generation && Disk.Generation != null)
            {
                // Our ready secondary takes over from a primary that is not serving (it saw this node restart): serving here
                // too would make two primaries at once (sim seed 91). Become its secondary instead.
                Enter(MirrorStateName.Second, false, $"waiting for {_s.PeerNode} to serve (it takes over)");
                return;
            }
            if (peer is { Starting: true } || peer is { State: MirrorStateName.Wait, Ready: false })
            {
                var winner = ChoosePrimary(peer, relation);
                if (winner == _s.Node) BecomePrimaryIfAllowed(peer);
                else if (winner == _s.PeerNode) Enter(MirrorStateName.Second, false, $"waiting for {_s.PeerNode} to serve");
                else Enter(MirrorStateName.Wait, false, $"split brain: data diverged from {_s.PeerNode} (generation {Short(Disk.Generation)} here, {Short(peer.Generation)} there); nothing was merged. Choose with Set-SKPrimary -Force on the node to keep.");
                return;
            }
            BecomePrimaryIfAllowed(peer);
        }

        private void BecomePrimaryIfAllowed(PeerView? peer)
        {
            if (Disk.Generation == null)
            {
                // Only with the peer in view: a peer never heard may have served since (prim -Force, sim seed 1123).
                if (_s.InitialPrimary == _s.Node && peer != null && peer.Generation == null)
                {
                    Log("first start: this node is the initial primary; its data becomes generation 1");
                    BecomePrimaryUnlessIsolated(peer, "first start");
                }
                else
                {
                    Enter(MirrorStateName.Wait, false, $"no data yet: waiting for {_s.PeerNode} (the initial primary is {_s.InitialPrimary})");
                }
                return;
            }
            var stale = StaleReason(peer);
            if (stale != null)
            {
                Enter(MirrorStateName.Wait, false, stale + $"; start {_s.PeerNode}, or Set-SKPrimary -Force");
                return;
            }
            BecomePrimaryUnlessIsolated(peer, peer == null ? $"{_s.PeerNode} not found" : $"{_s.PeerNode} is {DescribePeer()}");
        }

        /// <summary>Starting without having heard the peer: with a witness, only where the witness answers (sim seed 51).</summary>
        private void BecomePrimaryUnlessIsolated(PeerView? peer, string why)
        {
            if (peer != null || !HasWitness)
            {
                BecomePrimary(why);
                return;
            }
            Enter(MirrorStateName.Wait, false, $"starting: {_s.PeerNode} not found, checking the witness");
            Run(Procedure.ProbeWitness, (reachable, _) =>
            {
                if (Peer != null) Decide();
                else if (reachable) BecomePrimary(why + ", a witness answers");
                // sim seed 12979: finding nobody while starting says nothing new about the data: the record stays. Cleared, it
                // lost "this node served generation g alone last"; the peer, holding an older copy of g, then served it.
                else Isolated(serving: false, keepRecord: true);
            });
        }

        /// <summary>Why this node's data may not serve, or null when it may.</summary>
        private string? StaleReason(PeerView? peer)
        {
            if (_safety.IgnoreStaleness && Disk.Generation != null) return null;
            if (Disk.Generation == null) return "this node has no data yet";
            if (!Disk.Consistent) return "data not up to date: a resynchronisation was interrupted";
            if (peer != null)
            {
                var relation = Relate(peer);
                if (relation == DataRelation.Behind) return $"data not up to date: {_s.PeerNode} has newer data";
                if (relation == DataRelation.Diverged && !Disk.Authoritative) return $"split brain: data diverged from {_s.PeerNode}";
                if (relation == DataRelation.Ahead) return null;
                // The same generation is the same data unless the peer served it alone after this node's copy: then it says
                // it is the up-to-date one (sim seed 93). Connected nodes are both "not up to date" and hold the same data.
                if (relation == DataRelation.Same && peer.UpToDate && !Disk.UpToDate && !Disk.Authoritative)
                    return $"data not up to date: {_s.PeerNode} served this data alone last and holds writes this node lacks";
                if (relation == DataRelation.Same) return null;
            }
            if (Disk.UpToDate || _canTakeOver || Disk.Authoritative) return null;
            return "data not up to date: the other node may have newer data";
        }

        private void BecomePrimary(string why)
        {
            Disk = Disk.NewGeneration(_newGeneration()) with { UpToDate = true, LastPrimary = _s.Node };
            Emit(new PersistAction(Disk));
            _freshGeneration = true;
            _canTakeOver = _discardData = _secondRequested = false;
            Log($"becoming primary ({why}): generation {Short(Disk.Generation)}");
            Serve(MirrorStateName.Alone, "starting the application");
        }

        private void TakeOver(bool newGeneration, string why)
        {
            if (newGeneration) Disk = Disk.NewGeneration(_newGeneration()) with { UpToDate = true, LastPrimary = _s.Node };
            else Disk = Disk with { LastPrimary = _s.Node };
            _freshGeneration = newGeneration;
            Emit(new PersistAction(Disk));
            _canTakeOver = false;
            Log($"taking over ({why}): generation {Short(Disk.Generation)}");
            Serve(newGeneration ? MirrorStateName.Alone : MirrorStateName.Prim, "taking over: starting the application");
        }

        private void GoAlone(string why)
        {
            // Persisted before StopReplication: the host acknowledges the blocked writes as it stops replicating.
            Disk = Disk.NewGeneration(_newGeneration()) with { UpToDate = true, LastPrimary = _s.Node, Authoritative = false };
            Emit(new PersistAction(Disk));
            StopReplicating();
            _freshGeneration = true;
            Log($"{why}: serving alone, changes tracked for resync (generation {Short(Disk.Generation)})");
            Enter(MirrorStateName.Alone, true, null);
        }

        private void BecomeSecond(bool fullSync)
        {
            _secondRequested = false;
            Enter(MirrorStateName.Second, false, fullSync ? $"waiting for {_s.PeerNode} to serve (full resync)" : $"waiting for {_s.PeerNode} to serve");
            _fullSync = fullSync;
            if (Peer is { IsServing: true }) StartResync();
        }

        private bool _fullSync;

        private void StartResync()
        {
            var peer = Peer!;
            var full = _fullSync || _discardData || Relate(peer) is DataRelation.Diverged or DataRelation.Unknown;
            Disk = Disk with { Consistent = false, UpToDate = false };
            Emit(new PersistAction(Disk));
            _primaryConfirmed = false;
            // sim seed 40786: "lost an in-sync primary" was about the copy this resync replaces. Kept, it let prim without -Force
            // serve the new copy later, after the primary had served on without this node (it never confirmed it as secondary).
            _canTakeOver = false;
            Enter(MirrorStateName.Second, false, full ? $"full resynchronisation from {_s.PeerNode}" : $"resynchronising from {_s.PeerNode}");
            var generation = peer.Generation;
            var history = peer.History;
            Run(Procedure.Resync, (ok, detail) =>
            {
                if (!ok)
                {
                    if (Peer == null) { HandlePeerLost(); return; }
                    Enter(MirrorStateName.Wait, false, $"data not up to date: resynchronisation from {_s.PeerNode} failed ({detail}); Set-SKSecondary retries");
                    return;
                }
                Disk = new MirrorDisk(generation, history.ToImmutableListBounded(), true, false, false, _s.PeerNode);
                Emit(new PersistAction(Disk));
                _discardData = _fullSync = false;
                Log($"resynchronised from {_s.PeerNode}: generation {Short(generation)}");
                Enter(MirrorStateName.Second, true, null);
                if (Peer == null) HandlePeerLost();
            }, full);
        }

        /// <summary>
        /// The node that should serve when both could: newer data wins; on diverged data an authoritative
        /// node wins, else nobody (null: split brain for the admin); on equal data the preferred node
        /// (defaultprim, else the last primary, else the initial primary). Both nodes compute the same answer.
        /// </summary>
        private string? ChoosePrimary(PeerView peer, DataRelation relation)
        {
            switch (relation)
            {
                case DataRelation.Ahead: return _s.Node;
                case DataRelation.Behind: return _s.PeerNode;
                case DataRelation.Diverged:
                    if (Disk.Authoritative != peer.Authoritative) return Disk.Authoritative ? _s.Node : _s.PeerNode;
                    // Both already serve: one must stop (nothing is discarded). LastPrimary differs on diverged
                    // nodes, so only configuration both share may break the tie.
                    if (IsServing && peer.IsServing) return _s.DefaultPrimaryNode ?? _s.InitialPrimary;
                    return null;
            }
            if (Disk.Consistent != peer.Consistent) return Disk.Consistent ? _s.Node : _s.PeerNode;
            if (Disk.Generation == null && peer.Generation == null) return _s.InitialPrimary;
            if (Disk.UpToDate != peer.UpToDate) return Disk.UpToDate ? _s.Node : _s.PeerNode;
            return Preferred(peer);
        }

        private string Preferred(PeerView peer)
        {
            if (_s.DefaultPrimary == DefaultPrimaryPolicy.Node && _s.DefaultPrimaryNode is { } n) return n;
            // Only a last primary both records name (a crash during a swap leaves them naming each other: sim seed 90).
            if (Disk.LastPrimary is { } last && (last == _s.Node || last == _s.PeerNode) && (peer.LastPrimary == null || peer.LastPrimary == last))
                return last;
            return _s.InitialPrimary;
        }

        public DataRelation Relate(PeerView peer) =>
            _safety.IgnoreGenerations && Disk.Generation != null && peer.Generation != null
                ? DataRelation.Same
                : Relate(Disk.Generation, Disk.History, peer.Generation, peer.History);

        private bool HasWitness => _s.HasWitness && !_safety.IgnoreWitness;

        public static DataRelation Relate(string? mine, IReadOnlyList<string> myHistory, string? theirs, IReadOnlyList<string> theirHistory)
        {
            if (mine == null && theirs == null) return DataRelation.Same;
            if (mine == null) return DataRelation.Behind;
            if (theirs == null) return DataRelation.Ahead;
            if (mine == theirs) return DataRelation.Same;
            if (myHistory.Contains(theirs)) return DataRelation.Ahead;
            if (theirHistory.Contains(mine)) return DataRelation.Behind;
            return DataRelation.Diverged;
        }

        // ------------------------------------------------------------------ resources

        private void OnResource(ResourceChanged r)
        {
            if (r.IsErrd ? !ErrdEnabled : !CheckersEnabled) return;
            if (_op != null && r.Value == ResourceValue.Down)
            {
                _deferred.RemoveAll(d => d.Resource == r.Resource);
                _deferred.Add(r);
                return;
            }
            if (r.Value == ResourceValue.Up) _deferred.RemoveAll(d => d.Resource == r.Resource);
            if (r.Resource.StartsWith("splitbrain.", StringComparison.Ordinal)) return; // consulted when deciding, see ProbeWitness
            if (r.Value == ResourceValue.Up)
            {
                if (_waitingOn.Remove(r.Resource) && _waitingOn.Count == 0 && State == MirrorStateName.Wait && _op == null)
                {
                    Log($"{r.Resource} is up again: starting");
                    Enter(MirrorStateName.Stop, true, null);
                    OnStart();
                }
                return;
            }
            if (r.Value != ResourceValue.Down) return;
            if (r.When == CheckWhen.Prim && !IsServing) return;
            Log($"{r.Resource} is down ({r.Reason}): action {r.Action.ToString().ToLowerInvariant()}");
            switch (r.Action)
            {
                case CheckAction.Restart when IsServing:
                    if (LoopExceeded()) { Log($"more than {_s.MaxLoop} restarts within {_s.LoopInterval}: stopstart instead"); StopStart(); }
                    else { CountLoop(); RestartApplication(); }
                    break;
                case CheckAction.Restart:
                case CheckAction.StopStart:
                    if (LoopExceeded()) { Log($"more than {_s.MaxLoop} restarts within {_s.LoopInterval}: stopping the module here"); OnStop(restart: false); }
                    else { CountLoop(); StopStart(); }
                    break;
                case CheckAction.Stop:
                    OnStop(restart: false);
                    break;
                case CheckAction.Wait:
                    _waitingOn.Add(r.Resource);
                    if (_op != null) return;
                    var reason = $"waiting for {r.Resource} to be up ({r.Reason})";
                    if (IsServing)
                    {
                        Disk = Disk with { UpToDate = Peer is { State: MirrorStateName.Second, Ready: true } ? false : Disk.UpToDate };
                        Emit(new PersistAction(Disk));
                        Unserve(() => Enter(MirrorStateName.Wait, false, reason));
                    }
                    else if (State != MirrorStateName.Stop)
                    {
                        Enter(MirrorStateName.Wait, false, reason);
                    }
                    break;
            }
        }

        private void RestartApplication()
        {
            if (_op != null) return;
            var state = State;
            Emit(new SetPrimaryCheckers(false));
            Enter(state, false, "restarting the application");
            Run(Procedure.StopApplication, (_, _) => RestartStopped(state));
        }

        /// <summary>The application stopped for a restart: start it again, unless what happened meanwhile says otherwise.</summary>
        private void RestartStopped(MirrorStateName state)
        {
            // sim seed 5447: an admin stop that arrived while the application stopped for a restart: stop now; starting it
            // again first served a copy the admin had just told to stop.
            if (_stopRequested) { StopFlow(applicationStopped: true); return; }
            // sim seed 12430: the other node served diverged data that wins the split brain (prim -Force there) while the
            // application stopped here for a restart: starting it again would serve without that node's writes.
            // sim seed 41046: the same when it waits with data the admin made authoritative: this node, serving, would give way to
            // it (sim seed 5265) and must not serve its own data again first; the restart decides as serving does (PeerDataWins).
            if (Peer is { } other && PeerDataWins(other) is { } text)
            {
                Disk = Disk with { UpToDate = false };
                Emit(new PersistAction(Disk));
                StopReplicating();
                Enter(MirrorStateName.Wait, false, text + "; the application is not started again here. " +
                    "Nothing was merged: Set-SKSecondary -FullSync on this node discards its changes.");
                return;
            }
            // sim seed 24912: the peer reported that it lost this node while the application stopped for a restart: it may be
            // taking over, and starting again here served beside it. Wait for it instead (StepDown, the application stopped).
            if (Peer is { State: MirrorStateName.Second, LostPeer: true } lost && (lost.Generation == Disk.Generation || _holdingWrites))
            {
                Log($"{_s.PeerNode} no longer hears this node and may take over: the application is not started again here");
                GiveUpServing();
                StopReplicating();
                Enter(MirrorStateName.Wait, false, $"{_s.PeerNode} lost this node's heartbeats and may take over; waiting for it");
                return;
            }
            // The peer was lost while the application stopped: an isolated node must not start it again (sim seed 516).
            if (Peer == null && HasWitness)
            {
                _pendingPeerLost = false;
                Run(Procedure.ProbeWitness, (reachable, _) =>
                {
                    // sim seed 18004: heard again meanwhile, serving diverged data that wins: decide again with it.
                    if (Peer != null) { RestartStopped(state); return; }
                    if (reachable) { Serve(state, "restarting the application"); return; }
                    StopReplicating();
                    Isolated(serving: false);
                });
                return;
            }
            Serve(state, "restarting the application");
        }

        private void StopStart() => OnStop(restart: true);

        private bool LoopExceeded()
        {
            var now = _time.GetUtcNow();
            _loops.RemoveAll(t => now - t > _s.LoopInterval);
            return _loops.Count >= _s.MaxLoop;
        }

        private void CountLoop() => _loops.Add(_time.GetUtcNow());

        // ------------------------------------------------------------------ procedures and flows

        private void Serve(MirrorStateName state, string reason)
        {
            Enter(state, false, reason);
            // Serving makes this node's data worth keeping: an earlier "second" (discard my data) no longer applies
            // (sim seed 775: a node that took over later resynced over its own acknowledged writes).
            _discardData = _secondRequested = _fullSync = false;
            if (!_replicating && Peer is { State: MirrorStateName.Second, Ready: true, HandOver: false } ready && ready.Generation == Disk.Generation
                && Disk.Generation != null)
            {
                // sim seed 10004: the peer finished its copy while the application here was stopping for a restart, unreplicated;
                // a write acknowledged meanwhile was missing there, and replication resumed on the same generation (PRIM). A new
                // generation makes it copy again (as sim seed 32 for a serving node).
                Disk = Disk.NewGeneration(_newGeneration()) with { UpToDate = true, LastPrimary = _s.Node };
                Emit(new PersistAction(Disk));
                _freshGeneration = true;
                Log($"{_s.PeerNode} became secondary while nothing was replicated to it: new generation {Short(Disk.Generation)}, it resynchronises again");
            }
            // A secondary with our generation receives every write from the application's first one on: replication starts
            // before the application does (sim seed 112: writes made while start_prim ran were never replicated).
            if (!_replicating && Peer is { State: MirrorStateName.Second } p && (p.Ready || p.HandOver) && p.Generation == Disk.Generation)
            {
                _replicating = true;
                _replicationBroken = false;
                Emit(new StartReplication());
            }
            _unusedGeneration = null; // serving on it now: writes will be acknowledged under this generation
            _probingAside = _isolatedWhileStarting = false;
            Run(Procedure.StartApplication, (ok, detail) =>
            {
                var isolated = _isolatedWhileStarting;
                _probingAside = _isolatedWhileStarting = false;
                if (isolated && ok)
                {
                    _pendingPeerLost = false;
                    Isolated(serving: true);
                    return;
                }
                if (!ok)
                {
                    Log($"start_prim failed ({detail})");
                    Unserve(() => Enter(MirrorStateName.Wait, false, $"the application did not start ({detail}); see Get-SKLog, then Restart-SKModule"));
                    return;
                }
                // The peer took over (or is deciding to) while the application started here (a restart, heartbeats lost one
                // way): serving on would be two primaries, and a new generation here would hide that it is ahead (sim seed 1278).
                // sim seed 15161: it took over from the generation this node holds writes on (its own fresh one, started when
                // replication was lost, carries no acknowledged write): not a split brain this node may win, a failover.
                if (Peer is { } taking && ((taking.IsServing && (Relate(taking) == DataRelation.Behind || TookOverFromHeldParent(taking)))
                                           || (taking.State == MirrorStateName.Second && taking.LostPeer)))
                {
                    Log($"{_s.PeerNode} took over while the application started here: giving way");
                    GiveUpServing();
                    Unserve(() => Enter(MirrorStateName.Wait, false, $"{_s.PeerNode} took over while the application started here; waiting for it"), giveWay: true);
                    return;
                }
                Emit(new SetPrimaryCheckers(true));
                // During a swap the old primary is still SECOND (transient, handing over) with our generation.
                var peerIsSecond = Peer is { State: MirrorStateName.Second } && (Peer.Ready || Peer.HandOver) && Peer.Generation == Disk.Generation;
                if (peerIsSecond && !_replicating) { _replicating = true; _replicationBroken = false; Emit(new StartReplication()); }
                if (peerIsSecond)
                {
                    Disk = Disk with { UpToDate = false };
                    Emit(new PersistAction(Disk));
                    _freshGeneration = false;
                }
                else if (!_freshGeneration)
                {
                    // ALONE always runs on a generation nobody else holds, or its changes could not be told apart (F5).
                    Disk = Disk.NewGeneration(_newGeneration()) with { UpToDate = true, LastPrimary = _s.Node };
                    Emit(new PersistAction(Disk));
                    _freshGeneration = true;
                    Log($"serving alone: generation {Short(Disk.Generation)}");
                }
                Enter(peerIsSecond ? MirrorStateName.Prim : MirrorStateName.Alone, true, null);
                React();
            });
            // sim seed 34423: the peer was lost before the application began to start (the swap it abandons was stopping it):
            // the witness is asked now, beside start_prim, as for a loss during it.
            if (_pendingPeerLost) AskWitnessBesideStart();
        }

        /// <summary>The peer is lost while the application starts here: the witness is asked beside start_prim (WitnessProbed).</summary>
        private void AskWitnessBesideStart()
        {
            if (!HasWitness) return;
            _probingAside = true;
            Emit(new ProbeWitnessAside());
        }

        /// <param name="giveWay">the other node serves or may take over: clients must leave this node before stop_prim runs
        /// (sim seeds 5820, 9005: the node giving way acknowledged writes while stop_prim ran, and the serving node lacked them).</param>
        private void Unserve(Action then, bool giveWay = false)
        {
            Emit(new SetPrimaryCheckers(false));
            Enter(State, false, "stopping the application");
            // Replication goes on until the application has stopped: what it writes while stopping
            // (a database's shutdown checkpoint) must reach the secondary too (F1).
            Run(Procedure.StopApplication, (_, _) =>
            {
                _steppingDown = false;
                StopReplicating();
                then();
            }, giveWay: giveWay);
        }

        private void StopFlow(bool applicationStopped = false)
        {
            _startupDeadline = null;
            HandOver = false;
            // "Lost an in-sync primary" holds only until this node stops: the primary may have gone on alone since (sim seed 344).
            _canTakeOver = false;
            // A node that stops while its peer can go on no longer holds the newest data. Only a PRIM's secondary can: an
            // ALONE node's secondary (even ready, just resynchronised) has not received what it acknowledged since (sim seed 93).
            if (Peer is { } p && (p.IsServing || (State == MirrorStateName.Prim && p.State == MirrorStateName.Second && p.Ready)))
            {
                Disk = Disk with { UpToDate = false };
                Emit(new PersistAction(Disk));
            }
            if (IsServing && !applicationStopped)
            {
                Unserve(AfterUnserve);
                return;
            }
            if (applicationStopped) StopReplicating();
            AfterUnserve();

            void AfterUnserve()
            {
                Enter(State == MirrorStateName.Stop ? MirrorStateName.Stop : State, false, "stopping: poststop");
                Run(Procedure.Poststop, (_, _) =>
                {
                    _stopRequested = false;
                    _waitingOn.Clear();
                    _deferred.Clear();
                    Enter(MirrorStateName.Stop, true, null);
                    if (_restartAfterStop)
                    {
                        _restartAfterStop = false;
                        OnStart();
                    }
                });
            }
        }

        private void Run(Procedure procedure, Action<bool, string?> then, bool fullSync = false, bool giveWay = false, bool takeOver = false)
        {
            _op = procedure;
            _then = then;
            Emit(new RunProcedure(procedure, fullSync, giveWay, takeOver));
        }

        private void OnProcedureDone(ProcedureDone done)
        {
            if (_op != done.Procedure) return; // a late answer to something abandoned
            var then = _then!;
            _op = null;
            _then = null;
            if (_stopRequested && done.Procedure is not (Procedure.StopApplication or Procedure.Poststop))
            {
                // An admin stop arrived during the procedure: undo what it did, then stop.
                if (done.Procedure == Procedure.StartApplication && done.Succeeded)
                    Enter(State, true, null);
                StopFlow();
                return;
            }
            then(done.Succeeded, done.Detail);
            // An admin stop that arrived while stop_prim ran for another reason (isolated, split brain, give way): the flow
            // that asked for stop_prim has ended, now the stop (sim seed 125: it was lost and the module ignored its peer).
            if (_op == null && _stopRequested) { StopFlow(); return; }
            if (_op == null && _pendingPeerLost) HandlePeerLost();
            else if (_op == null && !_stopRequested && Peer != null) React();
            while (_op == null && !_stopRequested && _deferred.Count > 0)
            {
                var deferred = _deferred[0];
                _deferred.RemoveAt(0);
                OnResource(deferred);
            }
        }

        // ------------------------------------------------------------------ helpers

        private void Enter(MirrorStateName state, bool ready, string? reason)
        {
            if (state != State || ready != Ready)
            {
                Log($"{_s.Module}: {Name(State)}{(Ready ? "" : " (transient)")} -> {Name(state)}{(ready ? "" : " (transient)")}{(reason == null ? "" : " (" + reason + ")")}");
                Since = _time.GetUtcNow();
            }
            State = state;
            Ready = ready;
            Reason = reason;
            // Starting ends with the role: "prim" on a stopped node went on from prestart straight to serving, and a node
            // that still believed it was starting never decided again once back in WAIT (sim seed 72).
            if (state != MirrorStateName.Wait) _starting = false;
            if (state != MirrorStateName.Second || ready) { _takeOverAt = null; if (_op != Procedure.ProbeWitness) _checkingTakeOver = false; }
        }

        private void Emit(MirrorAction action) => _out.Add(action);
        private void Log(string text) => _out.Add(new LogAction(text));

        private string Describe() => Name(State) + (Ready ? "" : " (transient)");
        private string DescribePeer() => Peer == null ? "unknown" : Name(Peer.State) + (Peer.Ready ? "" : " (transient)");
        public static string Name(MirrorStateName state) => state.ToString().ToUpperInvariant();
        private static string OnOff(bool on) => on ? "on" : "off";
        private static string Short(string? generation) => generation == null ? "none" : generation.Length > 8 ? generation[..8] : generation;

        private static DataRelation Invert(DataRelation r) => r switch
        {
            DataRelation.Ahead => DataRelation.Behind,
            DataRelation.Behind => DataRelation.Ahead,
            _ => r,
        };

        private static string RelationText(DataRelation r) => r switch
        {
            DataRelation.Ahead => "newer than",
            DataRelation.Behind => "older than",
            DataRelation.Same => "the same as",
            _ => "diverged from",
        };
    }

    internal static class GenerationHistory
    {
        public static System.Collections.Immutable.ImmutableList<string> ToImmutableListBounded(this IReadOnlyList<string> history) =>
            System.Collections.Immutable.ImmutableList.CreateRange(history.Take(MirrorDisk.HistoryLength));
    }
}
