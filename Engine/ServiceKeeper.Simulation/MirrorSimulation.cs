// Deterministic simulation of one mirror module on two nodes: the real MirrorStateMachine on each node, a
// host modelled on MirrorHost (procedures that take time and may fail, a persisted record, heartbeats that
// carry machine.View every pulse, a liveness detector), a switch with a witness and a client on it, and an
// application whose data is a log of writes replicated synchronously to the secondary over a connection
// (messages and acknowledgements; a write is acknowledged to the application when the secondary's ack arrives,
// or, once the machine has answered ReplicationLost, from the dirty journal). The connection is the primary's
// session as in ReplicationSource: the machine's StartReplication opens it, and so does the secondary's resync
// (the session stays once the copy is done: every write made after the copy goes through it). Everything (fault schedule,
// durations, losses) comes from one seeded Random and one event queue ordered by simulated time, so a seed
// replays exactly. Invariants are checked after every step (see Invariants).
//
// Reachability model (the limit of a ping witness): every fault sits at a node's port to the switch, where the
// witness also is: a cut or a lossy port hits the node's heartbeats, its replication and its witness probes
// alike. Two nodes that both reach the witness but not each other (a fault on a path between the nodes only)
// cannot be told apart from a dead peer by a ping witness; no protocol without fencing keeps them from both
// serving, so that fault is not drawn (documented in DESIGN terms in Invariants.NoDoubleServingWithWitness).
using System;
using System.Collections.Generic;
using System.Linq;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Mirror;

namespace ServiceKeeper.Simulation
{
    public sealed record Violation(string Invariant, string Message, TimeSpan At);

    public sealed record SimResult(int Seed, bool Witness, Violation? Violation, IReadOnlyList<string> Trace, long Steps, TimeSpan SimulatedTime,
        string Outcome);

    public sealed partial class MirrorSimulation
    {
        private static readonly TimeSpan Pulse = TimeSpan.FromMilliseconds(50);
        private static readonly TimeSpan HeartbeatTimeout = TimeSpan.FromMilliseconds(1500);
        private static readonly TimeSpan TickInterval = TimeSpan.FromMilliseconds(100);
        /// <summary>rfs sendtimeout: a write the secondary has not acknowledged by then means replication is lost.</summary>
        private static readonly TimeSpan SendTimeout = TimeSpan.FromMilliseconds(1200);
        private const int TraceKeep = 400;

        private readonly SimOptions _o;
        private readonly Random _rng;
        private readonly PriorityQueue<Scheduled, (long, long)> _queue = new();
        private readonly List<string> _trace = new();
        private readonly SimNode[] _nodes;
        private readonly bool _witness;
        private long _now, _seq, _steps;
        private int _generations, _writes, _connections;
        private Violation? _violation;
        private bool _faultsOver;
        private string _outcome = "";

        // network conditions during the fault phase
        private double _duplicate;
        private long _delayUntil;

        // the application's point of view: writes it was told are done (and when), writes an admin chose to discard
        private readonly Dictionary<int, long> _acknowledged = new();
        private readonly List<int> _ackOrder = new();
        private readonly HashSet<int> _discarded = new();
        // node -> writes acknowledged while that node was down or stopped (it cannot have them)
        private readonly Dictionary<SimNode, HashSet<int>> _missedWhileAbsent = new();

        private readonly record struct Scheduled(string? Label, SimNode? Node, Action Run);

        public MirrorSimulation(SimOptions options)
        {
            _o = options;
            _rng = new Random(options.Seed);
            _witness = options.Witness ?? _rng.Next(2) == 0;
            _nodes = new[] { NewNode("n1"), NewNode("n2") };
            _nodes[0].Peer = _nodes[1];
            _nodes[1].Peer = _nodes[0];
            foreach (var n in _nodes) _missedWhileAbsent[n] = new HashSet<int>();
        }

        private SimNode NewNode(string name)
        {
            var drift = 1 + (_rng.NextDouble() * 2 - 1) * 0.02; // ±2 %
            var offset = TimeSpan.FromMilliseconds(_rng.Next(-10_000, 10_000));
            return new SimNode { Name = name, Clock = new NodeClock(() => _now, drift, offset) };
        }

        public TimeSpan Now => TimeSpan.FromTicks(_now);

        public static SimResult Run(SimOptions options) => new MirrorSimulation(options).Run();

        public SimResult Run()
        {
            Trace(null, $"seed {_o.Seed}: witness {(_witness ? "on" : "off")}, protections off: {_o.Off}, clocks n1 x{_nodes[0].Clock.Rate:0.0000} n2 x{_nodes[1].Clock.Rate:0.0000}");
            foreach (var n in _nodes) Boot(n, start: true);
            ScheduleFaults();
            At(_o.FaultPhase.Ticks, "faults stop: network healed, nodes booted, stopped modules started", null, EndFaults);
            var end = (_o.FaultPhase + _o.ConvergenceBound).Ticks;
            At(end, "convergence bound reached", null, CheckConvergence);
            At(0, "client starts writing", null, ClientWrite);

            while (_violation == null && _queue.TryDequeue(out var item, out var key))
            {
                if (key.Item1 > end) break;
                _now = key.Item1;
                if (item.Node != null && !item.Node.Up && item.Label == null) { /* engine-bound work of a dead node */ }
                item.Run();
                _steps++;
                if (_violation == null) CheckEveryStep();
                if (_outcome.Length > 0) break;
            }
            if (_violation == null && _outcome.Length == 0) _outcome = "ended";
            return new SimResult(_o.Seed, _witness, _violation, _trace.ToArray(), _steps, Now, _outcome);
        }

        // ------------------------------------------------------------------ scheduling

        private void At(long time, string? label, SimNode? node, Action run)
        {
            _queue.Enqueue(new Scheduled(label, node, () =>
            {
                if (label != null) Trace(node, label);
                run();
            }), (time, _seq++));
        }

        private void After(TimeSpan delay, string? label, SimNode? node, Action run) => At(_now + Math.Max(1, delay.Ticks), label, node, run);

        private void AfterLocal(SimNode node, TimeSpan local, Action run) => At(_now + node.Clock.SimTicks(local), null, node, run);

        private TimeSpan Ms(int min, int max) => TimeSpan.FromMilliseconds(_rng.Next(min, max + 1));

        private bool Chance(double p) => _rng.NextDouble() < p;

        // ------------------------------------------------------------------ nodes: boot, crash, machine input

        private void Boot(SimNode n, bool start)
        {
            n.Up = true;
            n.Incarnation++;
            n.Inbox.Clear();
            n.DrainAt = -1;
            n.PeerIncarnationSeen = n.PeerSequenceSeen = -1;
            n.PeerAlive = false;
            n.LastDelivered = null;
            n.Replicating = n.ReplicationStarted = false;
            n.Connection = null;
            n.PendingWrites.Clear();
            n.SendSequence = 0;
            n.ForcedSinceServing = false;
            n.AtLoss = null;
            n.IsolatedAtLoss = false;
            var disk = n.Disk;
            var safety = new MirrorSafety(
                IgnoreWitness: _o.Off.HasFlag(Protection.WitnessCheck),
                IgnoreGenerations: _o.Off.HasFlag(Protection.GenerationComparison),
                IgnoreStaleness: _o.Off.HasFlag(Protection.StaleCheck));
            n.Machine = new MirrorStateMachine(
                new MirrorSettings("web", n.Name, n.Peer.Name, "n1", Failover: true, DefaultPrimaryPolicy.Alone, null, MaxLoop: 3,
                    LoopInterval: TimeSpan.FromMinutes(10), HasWitness: _witness, StartupWait: HeartbeatTimeout * 2,
                    TakeOverDelay: MirrorSettings.TakeOverDelayFor(HeartbeatTimeout)),
                disk, n.Clock, () => $"g{++_generations}", safety);
            n.Published = n.Machine.View;
            Trace(n, $"engine up (incarnation {n.Incarnation}), disk gen {disk.Generation ?? "-"}{(disk.UpToDate ? " utd" : "")}");
            var inc = n.Incarnation;
            AfterLocal(n, Ms(0, 50), () => PulseLoop(n, inc));
            AfterLocal(n, Ms(0, 100), () => TickLoop(n, inc));
            if (start && n.StartedFlag || start && n.Incarnation == 1)
            {
                n.StartedFlag = true;
                Input(n, new StartCommand(), "start (module was started)");
            }
        }

        private void Crash(SimNode n, string why)
        {
            if (!n.Up) return;
            Trace(n, $"CRASH ({why})");
            n.Up = false;
            n.Inbox.Clear();
            n.DrainAt = -1;
            n.TornCrashPending = false;
            n.AppRunning = false;
            n.VipDown = false;
            n.Replicating = n.ReplicationStarted = false;
            n.Connection = null;
            n.PendingWrites.Clear();
            n.Machine = null;
            n.DownSince = _now;
        }

        /// <summary>Feeds one event to the node's machine (deferred while its disk stalls) and carries out the actions.</summary>
        private void Input(SimNode n, MirrorEvent e, string? label = null)
        {
            if (!n.Up) return;
            // As MirrorHost's inbox: events wait in order while the engine is blocked on its disk, and are handled in that
            // order once it is free (sim seed 2005: a stall cut short when the faults stopped let a heartbeat deferred during
            // it overtake newer ones; an older view of the peer then sent the node into a resync to an old generation).
            if (_now < n.StallUntil || n.Inbox.Count > 0)
            {
                n.Inbox.Enqueue((e, label));
                ScheduleDrain(n);
                return;
            }
            Handle(n, e, label);
        }

        private void ScheduleDrain(SimNode n)
        {
            var at = Math.Max(n.StallUntil, _now);
            if (n.DrainAt >= 0 && n.DrainAt <= at) return;
            n.DrainAt = at;
            var inc = n.Incarnation;
            At(at, null, n, () =>
            {
                if (!n.Up || n.Incarnation != inc || n.DrainAt != at) return;
                n.DrainAt = -1;
                while (n.Up && n.Incarnation == inc && n.Inbox.Count > 0)
                {
                    if (_now < n.StallUntil) { ScheduleDrain(n); return; }
                    var (e, label) = n.Inbox.Dequeue();
                    // As MirrorHost: whatever the event, the machine first gets the newest view heard (sim seeds 27042, 36584).
                    if (MirrorHost.PeerViewFor(e, n.LastDelivered, n.Machine!.Peer) is { } view)
                    {
                        Handle(n, new PeerHeard(view), null);
                        if (!n.Up || n.Incarnation != inc) return;
                    }
                    if (e is PeerHeard) continue;
                    Handle(n, e, label);
                }
            });
        }

        private void Handle(SimNode n, MirrorEvent e, string? label)
        {
            IReadOnlyList<MirrorAction> actions;
            var servingBefore = n.Machine!.IsServing;
            try
            {
                actions = n.Machine!.Handle(e);
            }
            catch (MirrorCommandException ex)
            {
                Trace(n, $"{label ?? e.GetType().Name} refused: {ex.ErrorId}: {ex.Message}");
                return;
            }
            var count = actions.Count;
            var torn = n.TornCrashPending && count > 0;
            if (torn) count = _rng.Next(count + 1);
            if (_o.Trace && (label != null || actions.Any(a => a is not LogAction) || e is not (Tick)))
                Trace(n, $"{label ?? Describe(e)} -> {n.Describe()}");
            var wasServing = servingBefore;
            for (var i = 0; i < count; i++) Execute(n, actions[i]);
            if (torn) Crash(n, $"torn: {count} of {actions.Count} actions of this step were carried out");
            if (e is PrimCommand or SecondCommand or StopCommand or StartCommand or RestartCommand) AccountAdminChoice(n, e, wasServing);
            if (torn) return;
            // As MirrorHost: a loss the machine does not answer with StopReplication (it had not started replication: the session was
            // the secondary's resync, or it no longer serves) sends what waits for the secondary to the journal at once.
            if (e is ReplicationLost && (!n.ReplicationStarted || !n.Machine!.IsServing)) GoAlone(n);
            n.Published = n.Machine!.View;
        }

        private void Execute(SimNode n, MirrorAction action)
        {
            switch (action)
            {
                case PersistAction p:
                    n.Disk = p.Disk;
                    break;
                case RunProcedure r:
                    // What a node must hold when its application starts: every write acknowledged up to its decision to serve
                    // (what the other node acknowledges later, while this one starts, is two nodes serving: NoDoubleServing's).
                    if (r.Procedure == Procedure.StartApplication)
                    {
                        n.AcknowledgedAtServeDecision = _ackOrder.Count;
                        n.PeerInSightAtServeDecision = n.Machine!.Peer != null;
                        n.Fenced = false;
                        n.VipWithdrawn = n.IsolatedAtLoss = false;
                    }
                    RunProcedure(n, r);
                    break;
                case StartReplication:
                    n.ReplicationStarted = true;
                    // The secondary's resync may have opened the session already (ResyncCompleted): it goes on.
                    if (n.Replicating) break;
                    n.Replicating = true;
                    OpenConnection(n);
                    break;
                case StopReplication:
                    // As MirrorHost: the writes still waiting for the secondary complete into the dirty journal (the
                    // machine persisted the generation they belong to before this action).
                    n.ReplicationStarted = false;
                    GoAlone(n);
                    break;
                case ProbeWitnessAside:
                    var inc = n.Incarnation;
                    GiveWayProbe(n, () => n.Up && n.Incarnation == inc, answered =>
                        Input(n, new WitnessProbed(answered), $"witness probed beside {n.Machine!.RunningProcedure?.ToString() ?? "nothing"} ({(answered ? "ok" : "no answer")})"));
                    break;
                case FenceWrites:
                    // As MirrorHost: the waiting writes fail, and so does every later one (applied here, never acknowledged).
                    n.Fenced = true;
                    FailPendingWrites(n);
                    break;
                case LogAction l:
                    if (_o.Trace) Trace(n, "  log: " + l.Text);
                    break;
            }
        }

        /// <summary>As ReplicationSource.GoAlone: the session ends; what waits for the secondary completes into the dirty journal.</summary>
        private void GoAlone(SimNode n)
        {
            n.Replicating = false;
            n.Connection = null;
            if (n.AppRunning)
                foreach (var id in n.PendingWrites.Keys.OrderBy(k => k)) Acknowledge(n, id);
            n.PendingWrites.Clear();
        }

        /// <summary>The source's replication session carries every write to this incarnation of the target and still holds.</summary>
        private static bool StreamsTo(SimNode source, SimNode target) =>
            source.Replicating && source.Connection is { Broken: false } c && c.To == target && c.ToIncarnation == target.Incarnation;

        private static string Describe(MirrorEvent e) => e switch
        {
            PeerHeard h => $"heard {h.Peer.Node} {MirrorStateMachine.Name(h.Peer.State)}{(h.Peer.Ready ? "" : "(T)")} gen {h.Peer.Generation ?? "-"}{(h.Peer.HandOver ? " handover" : "")}{(h.Peer.Starting ? " starting" : "")}",
            ProcedureDone d => $"{d.Procedure} done ({(d.Succeeded ? "ok" : "failed: " + d.Detail)})",
            ReplicationLost r => $"replication lost ({r.Reason})",
            PeerLost => "peer lost",
            _ => e.GetType().Name,
        };

        private void TickLoop(SimNode n, int inc)
        {
            if (!n.Up || n.Incarnation != inc) return;
            // Liveness runs on the heartbeat threads: a stalled disk does not stop it.
            if (n.PeerAlive && n.Clock.GetUtcNow() - n.LastHeard > HeartbeatTimeout)
            {
                n.PeerAlive = false;
                n.LastDelivered = null;
                if (_witness && !_o.Off.HasFlag(Protection.WitnessCheck) && n.Machine!.State == MirrorStateName.Prim) ProbeAtLoss(n, inc);
                Input(n, new PeerLost(n.Clock.GetUtcNow()), "peer lost (no heartbeat for the timeout)");
            }
            CheckReplication(n);
            if (!n.Up || n.Incarnation != inc) return;
            Input(n, new Tick());
            AfterLocal(n, TickInterval, () => TickLoop(n, inc));
        }

        // ------------------------------------------------------------------ heartbeats

        private void PulseLoop(SimNode n, int inc)
        {
            if (!n.Up || n.Incarnation != inc) return;
            var view = n.Published!;
            var seq = ++n.SendSequence;
            var copies = Chance(_duplicate) ? 2 : 1;
            for (var c = 0; c < copies; c++)
            {
                Send(n, n.Peer, () => HeartbeatArrives(n.Peer, inc, seq, view));
            }
            AfterLocal(n, Pulse, () => PulseLoop(n, inc));
        }

        /// <summary>Sends a datagram over the switch: lost if either port is down or drops it, delayed (and so reordered) at random.</summary>
        private void Send(SimNode from, SimNode to, Action arrive)
        {
            if (!PassesOut(from)) return;
            var delay = _now < _delayUntil && Chance(0.3) ? Ms(1, 800) : TimeSpan.FromTicks(_rng.Next(1_000, 20_000));
            After(delay, null, to, () => { if (to.Up && PassesIn(to)) arrive(); });
        }

        private bool PassesOut(SimNode n) => n.PortOut && !(_now < n.LossUntil && Chance(n.LossOut));
        private bool PassesIn(SimNode n) => n.PortIn && !(_now < n.LossUntil && Chance(n.LossIn));

        private void HeartbeatArrives(SimNode n, int senderIncarnation, long seq, PeerView view)
        {
            // Replay guard: only the newest sequence of the newest incarnation delivers its payload.
            bool fresh;
            if (senderIncarnation > n.PeerIncarnationSeen) { n.PeerIncarnationSeen = senderIncarnation; n.PeerSequenceSeen = seq; fresh = true; }
            else if (senderIncarnation == n.PeerIncarnationSeen && seq > n.PeerSequenceSeen) { n.PeerSequenceSeen = seq; fresh = true; }
            else if (senderIncarnation == n.PeerIncarnationSeen) { n.LastHeard = n.Clock.GetUtcNow(); return; } // late: liveness only
            else return;
            if (!fresh) return;
            n.LastHeard = n.Clock.GetUtcNow();
            if (!n.PeerAlive) n.AtLoss = null; // heard again: an answer from the loss says nothing about what follows
            n.PeerAlive = true;
            if (n.LastDelivered != null && SameView(n.LastDelivered, view)) return;
            n.LastDelivered = view;
            Input(n, new PeerHeard(view));
        }

        private static bool SameView(PeerView a, PeerView b) => a with { History = b.History } == b && a.History.SequenceEqual(b.History);

        private bool Connected(SimNode a, SimNode b) => a.Up && b.Up && a.Reachable && b.Reachable;

        // ------------------------------------------------------------------ procedures

        private void RunProcedure(SimNode n, RunProcedure r)
        {
            var token = ++n.ProcedureToken;
            var inc = n.Incarnation;
            TimeSpan duration;
            switch (r.Procedure)
            {
                case Procedure.StartApplication: duration = Ms(100, 3000); break;
                case Procedure.StopApplication:
                    duration = Ms(100, 3000);
                    if (r.GiveWay) n.VipDown = true; // as MirrorHost: the virtual IP goes first when giving way
                    break;
                case Procedure.Resync:
                    duration = Ms(300, 5000);
                    n.ResyncPeerIncarnation = n.Peer.Incarnation;
                    n.ResyncStartedAt = Connected(n, n.Peer) ? _now : long.MinValue;
                    GoAlone(n); // as MirrorReplication.ResyncAsync: a source this node still had stops first
                    // As ReplicationSource.Serve: the secondary's new connection ends a session the source still keeps to it (to an
                    // earlier incarnation, or broken and not yet noticed); the source reports it lost (ReplicationLost).
                    if (n.Peer is { Replicating: true, Connection: { } old } && !StreamsTo(n.Peer, n) && Connected(n, n.Peer))
                        Break(old, "the secondary connected again");
                    break;
                case Procedure.ProbeWitness: duration = Ms(20, 1000); break;
                default: duration = Ms(10, 300); break;
            }
            if (r.Procedure == Procedure.ProbeWitness)
            {
                Func<bool> current = () => n.Up && n.Incarnation == inc && n.ProcedureToken == token;
                Action<bool> tell = answered => Input(n, new ProcedureDone(Procedure.ProbeWitness, answered), $"ProbeWitness done ({(answered ? "ok" : "failed: ")})");
                if (r.GiveWay) GiveWayProbe(n, current, tell);
                else ProbeWitness(n, current, tell, pings: r.TakeOver ? 1 : MirrorSettings.WitnessPings);
                return;
            }
            After(duration, null, n, () =>
            {
                if (!n.Up || n.Incarnation != inc || n.ProcedureToken != token) return;
                var ok = true;
                string? detail = null;
                switch (r.Procedure)
                {
                    case Procedure.StartApplication:
                        ok = _faultsOver || !Chance(0.08);
                        if (ok) ApplicationStarted(n);
                        else detail = "start_prim exited with 1";
                        break;
                    case Procedure.StopApplication:
                        ApplicationStopped(n);
                        break;
                    case Procedure.Poststop:
                        GoAlone(n); // as MirrorReplication.CloseAsync: the source stops with the module
                        break;
                    case Procedure.Resync:
                        var peer = n.Peer;
                        // The copy is a connection for the whole resync: a port cut at either end meanwhile breaks it (sim seed 4610:
                        // judged only at its end, a copy "made" while the source's port was cut completed before the source had even
                        // heard of the secondary, and what the source acknowledged meanwhile was never replicated to it).
                        ok = Connected(n, peer) && peer.Incarnation == n.ResyncPeerIncarnation && peer.IsServing && !_o.Off.HasFlag(Protection.Resync)
                             && n.ResyncStartedAt != long.MinValue && n.LastPortCut < n.ResyncStartedAt && peer.LastPortCut < n.ResyncStartedAt;
                        // sim seed 28235: as ReplicationSource.Serve: the copy is a session on the source's replication port, accepted
                        // only once the source has ended a session that failed (ALONE: the writes it held went to the journal; it waits
                        // for that up to its handshake timeout, then refuses; here the copy fails and the secondary tries again). The
                        // copy had completed while the source held writes; one made after it was released from the journal, never
                        // sent here, and the source went PRIM on this copy.
                        if (ok && peer.Replicating && !StreamsTo(peer, n)) { ok = false; detail = peer.Name + " still fails its previous replication session"; }
                        else if (ok) ResyncCompleted(n, peer);
                        else detail = "connection to " + peer.Name + " lost";
                        break;
                }
                Input(n, new ProcedureDone(r.Procedure, ok, detail), $"{r.Procedure} done ({(ok ? "ok" : "failed: " + detail)})");
            });
        }

        /// <summary>As MirrorHost.ProbeAtLossAsync: a PRIM probes the witness on its heartbeat thread the moment it finds
        /// the peer lost (a machine stalled on its disk would probe only later); no answer removes the virtual IPs at once.</summary>
        private void ProbeAtLoss(SimNode n, int inc)
        {
            var probe = new SimNode.LossProbe();
            n.AtLoss = probe;
            ProbeWitness(n, () => n.Up && n.Incarnation == inc, answered =>
            {
                if (!answered) { Withdraw(n); n.IsolatedAtLoss = true; }
                probe.Answer = answered;
                foreach (var waiter in probe.Waiters) waiter(answered);
                probe.Waiters.Clear();
            });
        }

        /// <summary>As MirrorHost.ProbeWitnessAsync(giveWay): the probe made at the loss answers when there is one, else a probe;
        /// no answer removes the virtual IPs at once, on the host's side; the start under way does not add them back.</summary>
        private void GiveWayProbe(SimNode n, Func<bool> current, Action<bool> tell)
        {
            // The virtual IPs went when no witness answered at the loss: this node gives way, whatever it heard since.
            if (n.IsolatedAtLoss && n.AtLoss is not { Answer: null })
            {
                n.IsolatedAtLoss = false;
                n.AtLoss = null;
                AfterLocal(n, Ms(1, 5), () => { if (!current()) return; Withdraw(n); tell(false); });
                return;
            }
            if (n.AtLoss is { } early)
            {
                n.AtLoss = null;
                if (early.Answer is { } known) AfterLocal(n, Ms(1, 5), () => { if (!current()) return; if (!known) Withdraw(n); tell(known); });
                else early.Waiters.Add(answered => { n.IsolatedAtLoss = false; if (current()) tell(answered); });
                return;
            }
            ProbeWitness(n, current, answered =>
            {
                if (!answered) Withdraw(n);
                tell(answered);
            });
        }

        private void Withdraw(SimNode n)
        {
            n.VipWithdrawn = n.VipDown = true;
            Trace(n, "no witness answers: virtual IP removed");
        }

        /// <summary>
        /// As MirrorHost.ProbeWitnessesAsync: up to two pings, one after the other, each given a third of the heartbeat timeout
        /// (MirrorSettings.WitnessPingTimeout); a witness on the switch answers within milliseconds. A ping needs the request out of this
        /// node's port and the answer back in at the time it is sent (sim seed 12142: the probe used to be judged by the port at
        /// its end, so a probe sent through a cut port succeeded if the port healed before the probe's drawn duration ended).
        /// </summary>
        private void ProbeWitness(SimNode n, Func<bool> current, Action<bool> done, int attempt = 0, int pings = MirrorSettings.WitnessPings)
        {
            var answered = PassesOut(n) && PassesIn(n);
            if (answered || attempt == pings - 1)
            {
                var after = answered ? Ms(1, 5) : WitnessPingTimeout;
                AfterLocal(n, after, () => { if (current()) done(answered); });
                return;
            }
            AfterLocal(n, WitnessPingTimeout, () => { if (current()) ProbeWitness(n, current, done, attempt + 1, pings); });
        }

        private static readonly TimeSpan WitnessPingTimeout = MirrorSettings.WitnessPingTimeout(HeartbeatTimeout);

        private void ApplicationStarted(SimNode n)
        {
            n.AppRunning = true;
            n.VipDown = n.VipWithdrawn;
            Trace(n, "application running");
            // Serving ends an earlier Set-SKSecondary on this node (the engine keeps its data from now on).
            _adminChoseSecondary.Remove(n);
            CheckApplicationStart(n);
            n.ForcedSinceServing = false;
        }

        private void ApplicationStopped(SimNode n)
        {
            n.AppRunning = false;
            n.VipDown = false;
            Trace(n, "application stopped");
            FailPendingWrites(n);
        }

        private void ResyncCompleted(SimNode n, SimNode source)
        {
            CheckResync(n, source);
            n.ReplaceData(source.Data);
            Trace(n, $"resync copied {source.Name}'s data ({source.Data.Count} writes)");
            // sim seed 28235: as ReplicationSource: the resync's session stays, and every write the source makes from now on goes
            // through it and waits for this node, whatever the source's machine says (it starts replication only once it sees
            // this node as its secondary, and may be busy with a procedure until then).
            if (!source.Replicating)
            {
                source.Replicating = true;
                OpenConnection(source);
            }
        }

        // ------------------------------------------------------------------ the application and replication

        private void ClientWrite()
        {
            if (!_faultsOver || _now < (_o.FaultPhase + _o.ConvergenceBound).Ticks)
                After(Ms(50, 300), null, null, ClientWrite);
            var candidates = _nodes.Where(n => n.Up && n.AppRunning && n.Reachable && !n.VipDown).ToArray();
            if (candidates.Length == 0) return;
            var node = candidates[_rng.Next(candidates.Length)];
            if (_now < node.StallUntil) return; // the write blocks on the stalled disk; the client times out
            var id = ++_writes;
            node.Append(id);
            if (node.Fenced) return; // EIO to the client
            if (!node.Replicating)
            {
                Acknowledge(node, id);
                return;
            }
            // Replicating (PRIM, or ALONE while its secondary resyncs): the write returns when the secondary has applied it.
            SendReplica(node.Connection!, id);
            if (_o.Off.HasFlag(Protection.WriteAckWait)) Acknowledge(node, id);
            else node.PendingWrites[id] = _now;
        }

        private void OpenConnection(SimNode n)
        {
            var peer = n.Peer;
            var c = new ReplicationConnection
            {
                Id = ++_connections, From = n, To = peer, FromIncarnation = n.Incarnation, ToIncarnation = peer.Incarnation,
            };
            n.Connection = c;
            if (!Connected(n, peer)) Break(c, "connect failed");
        }

        private void Break(ReplicationConnection c, string why)
        {
            if (c.Broken) return;
            c.BrokenAt = _now;
            c.BrokenWhy = why;
            if (_o.Trace) Trace(c.From, $"replication connection {c.Id} to {c.To.Name} broken ({why})");
        }

        /// <summary>TCP over the ports: a packet the port drops is sent again after a retransmission timeout, in order.</summary>
        private long Transit(SimNode from, SimNode to, long notBefore, out string? cut)
        {
            cut = null;
            var t = _now + _rng.Next(2_000, 100_000);
            if (_now < _delayUntil && Chance(0.3)) t += Ms(1, 500).Ticks;
            for (var attempt = 0; ; attempt++)
            {
                if (!from.PortOut) { cut = from.Name + "'s port is cut"; return 0; }
                if (PassesOut(from) && (_now >= to.LossUntil || !Chance(to.LossIn))) break;
                if (attempt >= 6) { cut = "retransmissions exhausted"; return 0; }
                t += TimeSpan.FromMilliseconds(200 << attempt).Ticks;
            }
            return Math.Max(t, notBefore + 1);
        }

        private void SendReplica(ReplicationConnection c, int id)
        {
            // The write first waits in the sender's queue (it dies with the sender), then crosses the network in order.
            c.LastQueued = Math.Max(c.LastQueued + 1, _now + _rng.Next(1_000, 500_000));
            At(c.LastQueued, null, c.From, () =>
            {
                if (c.Broken || !c.From.Up || c.From.Incarnation != c.FromIncarnation) return;
                var arrival = Transit(c.From, c.To, c.LastArrival, out var cut);
                if (cut != null) { Break(c, cut); return; }
                c.LastArrival = arrival;
                At(arrival, null, c.To, () => ReplicaArrives(c, id));
            });
        }

        private void ReplicaArrives(ReplicationConnection c, int id)
        {
            if (c.Broken) return;
            var peer = c.To;
            if (!peer.Up || peer.Incarnation != c.ToIncarnation) { Break(c, peer.Name + " restarted"); return; }
            if (!peer.PortIn) { Break(c, peer.Name + "'s port is cut"); return; }
            if (peer.Machine!.State != MirrorStateName.Second) { Break(c, peer.Name + " is no longer secondary"); return; }
            if (_now < peer.StallUntil)
            {
                // The secondary's disk stalls: the write waits in its socket (order kept: later ones queue behind it).
                At(peer.StallUntil, null, peer, () => ReplicaArrives(c, id));
                return;
            }
            peer.Append(id);
            var arrival = Transit(peer, c.From, c.LastAckArrival, out var cut);
            if (cut != null) { Break(c, cut); return; }
            c.LastAckArrival = arrival;
            At(arrival, null, c.From, () =>
            {
                var node = c.From;
                if (c.Broken || !node.Up || node.Incarnation != c.FromIncarnation || node.Connection != c) return;
                if (!node.PortIn) { Break(c, node.Name + "'s port is cut"); return; }
                if (node.PendingWrites.Remove(id)) Acknowledge(node, id);
            });
        }

        /// <summary>The host's send timeout: a broken connection, or a write unacknowledged for too long, is reported once.</summary>
        private void CheckReplication(SimNode n)
        {
            if (!n.Replicating || n.Connection is not { Reported: false } c) return;
            var timeout = n.Clock.SimTicks(SendTimeout);
            string? why = null;
            if (c.Broken && _now - c.BrokenAt >= timeout) why = $"connection {c.Id} broken: {c.BrokenWhy}";
            else if (n.PendingWrites.Count > 0 && _now - n.PendingWrites.Values.Min() >= timeout) why = $"send timeout on connection {c.Id}";
            if (why == null) return;
            c.Reported = true;
            Input(n, new ReplicationLost(why), $"replication lost ({why})");
        }

        private void Acknowledge(SimNode node, int id)
        {
            if (!node.PortOut || _acknowledged.ContainsKey(id)) return; // the client never hears the answer
            _acknowledged[id] = _now;
            _ackOrder.Add(id);
            // The admin made the other node's data authoritative (prim -Force) while this one still served: what this one
            // acknowledges until it gives way is discarded by that choice too. The choice counts from the moment the engine
            // carried the command out, as in AccountAdminChoice (sim seed 481: prim -Force on a stopped node persists the flag
            // only after prestart; a write acknowledged on the other node meanwhile was counted as lost).
            if (AdminForced(node.Peer) && !node.Peer.DataSet.Contains(id) && _discarded.Add(id))
                Trace(node, $"write {id} acknowledged here after prim -Force on {node.Peer.Name}: discarded by the admin's choice");
            foreach (var n in _nodes)
                if (!n.Up || n.Machine!.State == MirrorStateName.Stop) _missedWhileAbsent[n].Add(id);
        }

        private static void FailPendingWrites(SimNode n) => n.PendingWrites.Clear();

        // ------------------------------------------------------------------ faults

        private void ScheduleFaults()
        {
            var t = 0L;
            var end = _o.FaultPhase.Ticks;
            while (true)
            {
                t += (long)(-Math.Log(1 - _rng.NextDouble()) * _o.MeanFaultInterval.Ticks);
                if (t >= end) break;
                var time = t;
                At(time, null, null, RandomFault);
            }
        }

        private void RandomFault()
        {
            var n = _nodes[_rng.Next(2)];
            var kinds = FaultWeights.Where(w => _o.Faults.HasFlag(w.Kind)).ToArray();
            if (kinds.Length == 0) return;
            var pick = _rng.Next(kinds.Sum(k => k.Weight));
            var kind = kinds.First(k => (pick -= k.Weight) < 0).Kind;
            if (kind == FaultKind.Crash)
            {
                if (!n.Up) return;
                if (_o.TornCrashes && Chance(0.5))
                {
                    Trace(n, "fault: crash during its next step (torn)");
                    n.TornCrashPending = true;
                }
                else Crash(n, "power loss");
                var down = Ms(500, 15_000);
                After(down + Ms(0, 500), null, n, () => { if (!n.Up && !_faultsOver) Boot(n, start: true); });
            }
            else if (kind == FaultKind.Partition)
            {
                var way = _o.OneWayCuts ? _rng.Next(3) : 0;
                if (way != 1) n.PortIn = false;
                if (way != 2) n.PortOut = false;
                n.LastPortCut = _now;
                Trace(n, $"fault: port cut ({(way == 0 ? "both ways" : way == 1 ? "outgoing" : "incoming")})");
                After(Ms(300, 20_000), $"port healed", n, () => n.PortIn = n.PortOut = true);
            }
            else if (kind == FaultKind.PacketLoss)
            {
                var loss = 0.2 + _rng.NextDouble() * 0.75;
                var way = _o.OneWayCuts ? _rng.Next(3) : 0;
                n.LossIn = way != 1 ? loss : 0;
                n.LossOut = way != 2 ? loss : 0;
                n.LossUntil = _now + Ms(1000, 15_000).Ticks;
                Trace(n, $"fault: packet loss {loss:P0} at its port ({(way == 0 ? "both ways" : way == 1 ? "outgoing" : "incoming")}) for {TimeSpan.FromTicks(n.LossUntil - _now).TotalSeconds:0.0} s");
            }
            else if (kind == FaultKind.DelayReorderDuplicate)
            {
                _delayUntil = _now + Ms(1000, 15_000).Ticks;
                _duplicate = _rng.NextDouble() * 0.3;
                Trace(null, $"fault: delays up to 800 ms (reordering), duplicates {_duplicate:P0}, for {TimeSpan.FromTicks(_delayUntil - _now).TotalSeconds:0.0} s");
            }
            else if (kind == FaultKind.DiskStall)
            {
                if (!n.Up) return;
                var stall = Ms(200, 5000);
                n.StallUntil = Math.Max(n.StallUntil, _now + stall.Ticks);
                Trace(n, $"fault: disk stalls for {stall.TotalSeconds:0.0} s");
            }
            else if (kind == FaultKind.ApplicationFailure)
            {
                if (!n.Up || !n.AppRunning) return;
                n.AppRunning = false;
                Trace(n, "fault: the application dies");
                FailPendingWrites(n);
                Input(n, new ResourceChanged("errd.app", ResourceValue.Down, CheckAction.Restart, CheckWhen.Prim, IsErrd: true, "process died"),
                    "errd: application down, action restart");
            }
            else
            {
                AdminCommand(n);
            }
        }

        private static readonly (FaultKind Kind, int Weight)[] FaultWeights =
        [
            (FaultKind.Crash, 12), (FaultKind.Partition, 18), (FaultKind.PacketLoss, 10), (FaultKind.DelayReorderDuplicate, 8),
            (FaultKind.DiskStall, 8), (FaultKind.ApplicationFailure, 10), (FaultKind.AdminCommand, 34),
        ];

        private void AdminCommand(SimNode n)
        {
            if (!n.Up) return;
            var roll = _rng.Next(100);
            MirrorEvent e = roll switch
            {
                < 25 => new StartCommand(),
                < 40 => new StopCommand(),
                < 50 => new RestartCommand(),
                < 72 => new SwapCommand(),
                < 85 => new PrimCommand(false),
                < 90 => new PrimCommand(true),
                < 96 => new SecondCommand(false),
                _ => new SecondCommand(true),
            };
            var label = e switch
            {
                PrimCommand p => p.Force ? "admin: prim -Force" : "admin: prim",
                SecondCommand s => s.FullSync ? "admin: second -FullSync" : "admin: second",
                _ => "admin: " + e.GetType().Name.Replace("Command", "").ToLowerInvariant(),
            };
            if (e is StartCommand or PrimCommand or SecondCommand) n.StartedFlag = true;
            if (e is StopCommand) n.StartedFlag = false;
            Input(n, e, label);
        }

        /// <summary>
        /// An explicit admin choice of one node's data discards what only the other holds: not a protocol failure. Counted
        /// where the engine carries the command out (a stalled disk defers it) and only as far as it was persisted.
        /// </summary>
        private void AccountAdminChoice(SimNode n, MirrorEvent e, bool wasServing)
        {
            if (e is PrimCommand { Force: true } && !wasServing && AdminForced(n))
                DiscardAllBut(n, "prim -Force on " + n.Name);
            if (!n.Up) return;
            if (e is SecondCommand && n.Machine!.State is MirrorStateName.Second or MirrorStateName.Wait)
            {
                _adminChoseSecondary.Add(n);
                DiscardOnly(n, "second on " + n.Name);
            }
            // Only a prim ends it: start and stop keep the record "second" wrote (not up to date), so the choice stands (sim seed 15375).
            if (e is PrimCommand) _adminChoseSecondary.Remove(n);
        }

        /// <summary>The admin made this node's data authoritative (prim -Force), as the engine holds it: persisted or, while the
        /// engine runs, carried out and not yet persisted (a stopped node persists it after prestart).</summary>
        private static bool AdminForced(SimNode n) => n.Up ? n.Machine!.Disk.Authoritative : n.Disk.Authoritative;

        private void DiscardAllBut(SimNode keeper, string why)
        {
            var gone = _ackOrder.Where(id => !keeper.DataSet.Contains(id) && _discarded.Add(id)).ToList();
            keeper.ForcedSinceServing = true;
            if (gone.Count > 0) Trace(keeper, $"{why}: {gone.Count} acknowledged writes not on {keeper.Name} are discarded by the admin's choice");
        }

        private void DiscardOnly(SimNode loser, string why)
        {
            var gone = _ackOrder.Where(id => loser.DataSet.Contains(id) && !loser.Peer.DataSet.Contains(id) && _discarded.Add(id)).ToList();
            if (gone.Count > 0) Trace(loser, $"{why}: {gone.Count} acknowledged writes only on {loser.Name} are discarded by the admin's choice");
        }

        private void EndFaults()
        {
            _faultsOver = true;
            _duplicate = 0;
            _delayUntil = 0;
            foreach (var n in _nodes)
            {
                n.PortIn = n.PortOut = true;
                n.LossIn = n.LossOut = 0;
                n.LossUntil = 0;
                n.StallUntil = Math.Min(n.StallUntil, _now);
                if (n.Inbox.Count > 0) ScheduleDrain(n);
                n.TornCrashPending = false;
                if (!n.Up) Boot(n, start: false);
                var node = n;
                // The operator's playbook, as the messages tell it: start what is stopped, restart an application that did
                // not start, Set-SKSecondary after a failed resync. Split brain and stale data stay for the admin to decide.
                foreach (var at in new[] { 1, 11, 21 })
                After(TimeSpan.FromSeconds(at), null, n, () =>
                {
                    if (!node.Up || node.Machine!.RunningProcedure != null) return;
                    var m = node.Machine;
                    if (m.State == MirrorStateName.Stop)
                    {
                        node.StartedFlag = true;
                        Input(node, new StartCommand(), "admin: start (after the faults)");
                    }
                    else if (m.State == MirrorStateName.Wait && m.Reason?.Contains("Restart-SKModule", StringComparison.Ordinal) == true)
                        Input(node, new RestartCommand(), "admin: restart (after the faults: the application did not start)");
                    else if (m.State == MirrorStateName.Wait && m.Reason?.Contains("Set-SKSecondary retries", StringComparison.Ordinal) == true)
                        Input(node, new SecondCommand(false), "admin: second (after the faults: the resync failed)");
                });
            }
            After(TimeSpan.FromSeconds(1), null, null, WatchConvergence);
        }

        private void Trace(SimNode? node, string text)
        {
            if (!_o.Trace) return;
            var line = $"{Now.TotalSeconds,9:0.000}s {(node == null ? "--" : node.Name)}  {text}";
            if (node != null && !text.StartsWith("  log:", StringComparison.Ordinal) && node.Up && !text.Contains(" -> ", StringComparison.Ordinal))
                line += "   [" + node.Describe() + "]";
            _trace.Add(line);
        }
    }
}
