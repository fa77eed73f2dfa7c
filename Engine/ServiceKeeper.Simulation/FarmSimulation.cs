// Deterministic simulation of one farm module on 3 to 5 nodes: the real FarmMachine on each node, a host
// modelled on FarmHost (procedures that take time and may fail, the kernel filter as the set of buckets it
// accepts, heartbeats that carry machine.View every pulse with HeartbeatChannel's replay guard, a per-peer liveness
// detector, the link watcher, one FIFO inbox per engine), and a switch.
// Faults: message loss, delay, reordering and duplication; port cuts (a cable pulled, reported as link.eth0
// down); crashes (the kernel filter dies with the power); stalled disks; clock drift; admin start / stop /
// stop -Drain / restart; applications that die. Same seed, same run.
//
// Limit (documented in FarmMachine): a node whose port loses only incoming traffic still gossips, so its peers
// keep it in the map while clients cannot reach it: its share stays orphaned as long as the one-way cut lasts.
// Heartbeats alone cannot tell that apart, so one-way cuts are not drawn here (the mirror simulation draws them).
//
// Invariants (checked after every step, incrementally: the covered and doubly owned sets are rebuilt only in a step
// that changed some node's filter, state or reachability):
//  * FarmNoOrphanBucket: while at least one node is UP and reachable, no bucket stays without a reachable UP
//    owner for longer than the detection time (PeerTimeout, plus the agreement round that follows it), counted from
//    when it lost its owner or from the last fault that struck the node it was being handed to (see HandOverHit).
//  * FarmNoDoubleOwner: no bucket is owned by two reachable UP nodes for longer than the detection time. Two owners that
//    see each other would both answer a SYN. They can only arise where the design allows it: heartbeats lost for
//    PeerTimeout (each side takes the other's share), an engine frozen while its heartbeat still flows (its peers
//    take what it cannot release yet); either ends within the detection time once messages pass. (With crashes and
//    cuts only, none arises at all.)
//  * FarmConvergesAfterFaults: after the faults stop, within a bound, every bucket has exactly one owner among
//    the UP nodes, and every started node is UP.
using System;
using System.Collections.Generic;
using System.Linq;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Farm;

namespace ServiceKeeper.Simulation
{
    /// <summary>Farm protections the simulator can switch off (host side: the farm core offers no knob).</summary>
    [Flags]
    public enum FarmProtection
    {
        None = 0,
        /// <summary>The host never declares a silent peer lost (no FarmPeerLost): a dead node's buckets stay orphaned.</summary>
        PeerLossDetection = 1,
        /// <summary>Heartbeats only on a change of view, never every pulse: a lost or cut-off message is never repaired.</summary>
        PeriodicHeartbeats = 2,
    }

    public sealed record FarmSimOptions
    {
        public int Seed { get; init; }
        public FarmProtection Off { get; init; }
        /// <summary>The kinds of fault drawn (DiskStall, Crash, Partition = cable pulled, PacketLoss, DelayReorderDuplicate,
        /// ApplicationFailure, AdminCommand).</summary>
        public FaultKind Faults { get; init; } = FaultKind.All;
        public bool Trace { get; init; }
        public TimeSpan FaultPhase { get; init; } = TimeSpan.FromSeconds(120);
        public TimeSpan ConvergenceBound { get; init; } = TimeSpan.FromSeconds(30);
        public TimeSpan MeanFaultInterval { get; init; } = TimeSpan.FromSeconds(3);
    }

    public sealed class FarmSimulation
    {
        public const string NoOrphanBucket = "FarmNoOrphanBucket";
        public const string ConvergesAfterFaults = "FarmConvergesAfterFaults";
        public const string NoDoubleOwner = "FarmNoDoubleOwner";

        private static readonly TimeSpan Pulse = TimeSpan.FromMilliseconds(100);
        private static readonly TimeSpan PeerTimeout = TimeSpan.FromMilliseconds(1500);
        private static readonly TimeSpan TickInterval = TimeSpan.FromMilliseconds(100);
        /// <summary>Detection time, as FarmMachine documents it: a silent peer is lost after PeerTimeout, a joining node
        /// waits up to PeerTimeout for peers it has not heard, and a view that never agrees is applied PeerTimeout after
        /// its last change; on clocks up to 2 % slow, plus the longest delivery delay of the fault phase and a few pulses.</summary>
        public static readonly TimeSpan DetectionTime = PeerTimeout * 3 * 1.03 + TimeSpan.FromMilliseconds(800) + Pulse * 3;

        private readonly FarmSimOptions _o;
        private readonly Random _rng;
        private readonly PriorityQueue<Step, (long, long)> _queue = new();
        private readonly List<string> _trace = new();
        private readonly List<FNode> _nodes = new();
        private long _now, _seq, _steps;
        private Violation? _violation;
        private bool _faultsOver;
        private string _outcome = "";
        private double _loss, _duplicate;
        private long _lossUntil, _delayUntil;
        private readonly long[] _orphanSince = new long[BucketMap.BucketCount];
        private readonly ulong[] _covered = new ulong[BucketMap.BucketCount / 64];
        private long _oldestOrphan = -1;
        private readonly ulong[] _twice = new ulong[BucketMap.BucketCount / 64];
        private readonly long[] _doubleSince = Enumerable.Repeat(-1L, BucketMap.BucketCount).ToArray();
        private long _oldestDouble = -1;
        private static readonly FarmTick Tick = new();

        /// <summary>What a kernel filter accepts: 256 bits, immutable (every ApplyFilter makes a new one, so a reference
        /// comparison tells whether a node's coverage changed since the last step).</summary>
        private sealed class BucketSet
        {
            private readonly ulong[] _bits = new ulong[BucketMap.BucketCount / 64];

            public BucketSet(IReadOnlyList<int> buckets)
            {
                for (var i = 0; i < buckets.Count; i++) _bits[buckets[i] >> 6] |= 1UL << (buckets[i] & 63);
                Count = buckets.Count;
            }

            public int Count { get; }
            public bool Contains(int bucket) => (_bits[bucket >> 6] & (1UL << (bucket & 63))) != 0;

            public void OrInto(ulong[] into)
            {
                for (var i = 0; i < _bits.Length; i++) into[i] |= _bits[i];
            }

            /// <summary>Adds this set to <paramref name="once"/>; buckets already there go to <paramref name="twice"/>.</summary>
            public void CountInto(ulong[] once, ulong[] twice)
            {
                for (var i = 0; i < _bits.Length; i++)
                {
                    twice[i] |= once[i] & _bits[i];
                    once[i] |= _bits[i];
                }
            }
        }

        // One scheduled step. The frequent ones (a heartbeat's delivery, a node's pulse and tick) are plain data rather
        // than closures, so that they allocate nothing.
        private enum StepKind : byte { Run, Deliver, Pulse, Tick }

        private readonly record struct Step(StepKind Kind, Action? Run, FNode? Node, int Incarnation, FarmPeerHeard? Heard, long Sequence = 0);

        private sealed class FNode
        {
            public required string Name;
            public required NodeClock Clock;
            public required FarmSettings Settings;
            public FarmMachine? Machine;
            public bool Up;
            public int Incarnation;
            public bool Started;
            public FarmView? Published;
            public BucketSet? Filter;
            public bool PortIn = true, PortOut = true;
            public long StallUntil;
            /// <summary>Events that arrived while the engine stalled, in arrival order (see Input).</summary>
            public readonly Queue<(FarmEvent Event, string? Label)> Stalled = new();
            public int ResumeToken;
            public int ProcedureToken;
            public readonly Dictionary<string, DateTimeOffset> LastHeard = new();
            public readonly HashSet<string> Alive = new();
            public FarmView? LastSentView;
            /// <summary>The heartbeat event carrying <see cref="Published"/> (one per view, shared by its deliveries).</summary>
            public FarmPeerHeard? PublishedHeard;
            /// <summary>Heartbeat rounds sent by this engine (its incarnation numbers them apart, as HeartbeatChannel does).</summary>
            public long SendSequence;
            /// <summary>The newest (incarnation, sequence) delivered per sender: the receiver's ReplayGuard.</summary>
            public readonly Dictionary<string, (int Incarnation, long Sequence)> Delivered = new();
            public bool Reachable => PortIn && PortOut;
            public bool Serving => Up && Machine!.State == FarmStateName.Up && Filter != null;
            // What CheckOrphans last counted for this node (reachable UP, and its filter then).
            public bool CoverCounts;
            public BucketSet? CoverFilter;
        }

        public FarmSimulation(FarmSimOptions options)
        {
            _o = options;
            _rng = new Random(options.Seed ^ 0x5f4d);
            var count = 3 + _rng.Next(3);
            var names = Enumerable.Range(1, count).Select(i => "n" + i).ToList();
            var powers = names.ToDictionary(n => n, _ => 1 + _rng.Next(2));
            foreach (var name in names)
            {
                var drift = 1 + (_rng.NextDouble() * 2 - 1) * 0.02;
                _nodes.Add(new FNode
                {
                    Name = name,
                    Clock = new NodeClock(() => _now, drift, TimeSpan.FromMilliseconds(_rng.Next(-10_000, 10_000))),
                    Settings = new FarmSettings("www", name, names, powers, PeerTimeout, 3, TimeSpan.FromMinutes(10), TimeSpan.FromSeconds(5)),
                });
            }
            Array.Fill(_orphanSince, -1);
        }

        public static SimResult Run(FarmSimOptions options) => new FarmSimulation(options).Run();

        private TimeSpan Now => TimeSpan.FromTicks(_now);

        public SimResult Run()
        {
            Trace(null, $"farm seed {_o.Seed}: {_nodes.Count} nodes (powers {string.Join(", ", _nodes.Select(n => n.Name + "=" + n.Settings.PowerOf(n.Name)))}), protections off: {_o.Off}");
            foreach (var n in _nodes) Boot(n, start: true);
            var t = 0L;
            while (true)
            {
                t += (long)(-Math.Log(1 - _rng.NextDouble()) * _o.MeanFaultInterval.Ticks);
                if (t >= _o.FaultPhase.Ticks) break;
                At(t, RandomFault);
            }
            At(_o.FaultPhase.Ticks, EndFaults);
            var end = (_o.FaultPhase + _o.ConvergenceBound).Ticks;
            At(end, CheckConvergence);
            while (_violation == null && _outcome.Length == 0 && _queue.TryDequeue(out var step, out var key))
            {
                if (key.Item1 > end) break;
                _now = key.Item1;
                switch (step.Kind)
                {
                    case StepKind.Run: step.Run!(); break;
                    case StepKind.Deliver: Deliver(step.Node!, step.Heard!, step.Incarnation, step.Sequence); break;
                    case StepKind.Pulse: PulseLoop(step.Node!, step.Incarnation); break;
                    case StepKind.Tick: TickLoop(step.Node!, step.Incarnation); break;
                }
                _steps++;
                if (_violation == null) CheckOrphans();
            }
            if (_violation == null && _outcome.Length == 0) _outcome = "ended";
            return new SimResult(_o.Seed, false, _violation, _trace.ToArray(), _steps, Now, _outcome);
        }

        private void At(long time, Action run) => _queue.Enqueue(new Step(StepKind.Run, run, null, 0, null), (time, _seq++));
        private void After(TimeSpan delay, Action run) => At(_now + Math.Max(1, delay.Ticks), run);
        private void AfterLocal(FNode n, TimeSpan local, StepKind kind, int incarnation) =>
            _queue.Enqueue(new Step(kind, null, n, incarnation, null), (_now + n.Clock.SimTicks(local), _seq++));
        private TimeSpan Ms(int min, int max) => TimeSpan.FromMilliseconds(_rng.Next(min, max + 1));
        private bool Chance(double p) => _rng.NextDouble() < p;

        // ------------------------------------------------------------------ nodes

        private void Boot(FNode n, bool start)
        {
            n.Up = true;
            n.Incarnation++;
            n.Machine = new FarmMachine(n.Settings, n.Clock);
            n.Filter = null;
            n.LastHeard.Clear();
            n.Alive.Clear();
            n.Delivered.Clear();
            n.LastSentView = null;
            n.Published = n.Machine.View;
            Trace(n, $"engine up (incarnation {n.Incarnation})");
            var inc = n.Incarnation;
            AfterLocal(n, Ms(0, 100), StepKind.Pulse, inc);
            AfterLocal(n, Ms(0, 100), StepKind.Tick, inc);
            if (start && (n.Started || n.Incarnation == 1))
            {
                n.Started = true;
                Input(n, new FarmStartCommand(), "start");
            }
        }

        private void Crash(FNode n, string why)
        {
            if (!n.Up) return;
            Trace(n, "CRASH (" + why + "): its filter and VIP are gone with it");
            n.Up = false;
            n.Machine = null;
            n.Filter = null;
            n.Stalled.Clear();
        }

        private void Input(FNode n, FarmEvent e, string? label = null)
        {
            if (!n.Up) return;
            // A stalled engine handles what arrived meanwhile when it resumes, in arrival order: FarmHost's inbox is one
            // FIFO channel. (Each event used to be put back on its own at the stall's end, and a stall extended meanwhile
            // put the early ones behind the later ones: sim seed 790 saw "n2 lost" before an older "heard n2" and kept
            // a peer that was gone in its view for good; no engine can reorder its inbox so.)
            if (_now < n.StallUntil || n.Stalled.Count > 0)
            {
                n.Stalled.Enqueue((e, label));
                if (n.Stalled.Count == 1) ResumeAfterStall(n);
                return;
            }
            Handle(n, e, label);
        }

        private void ResumeAfterStall(FNode n)
        {
            var token = ++n.ResumeToken;
            var inc = n.Incarnation;
            At(Math.Max(n.StallUntil, _now), () =>
            {
                if (!n.Up || n.Incarnation != inc || n.ResumeToken != token) return;
                if (_now < n.StallUntil)
                {
                    ResumeAfterStall(n);
                    return;
                }
                while (n.Up && n.Incarnation == inc && n.Stalled.TryDequeue(out var next)) Handle(n, next.Event, next.Label);
            });
        }

        private void Handle(FNode n, FarmEvent e, string? label)
        {
            IReadOnlyList<FarmAction> actions;
            try { actions = n.Machine!.Handle(e); }
            catch (FarmCommandException ex)
            {
                Trace(n, $"{label ?? e.GetType().Name} refused: {ex.Message}");
                return;
            }
            foreach (var a in actions) Execute(n, a);
            n.Published = n.Machine!.View;
            if (_o.Trace && (label != null || actions.Any(a => a is not FarmLog)))
                Trace(n, $"{label ?? Describe(e)} -> {Describe(n)}");
            if (_o.Off.HasFlag(FarmProtection.PeriodicHeartbeats) && !SameView(n.LastSentView, n.Published)) SendViews(n);
        }

        private void Execute(FNode n, FarmAction a)
        {
            switch (a)
            {
                case ApplyFilter f: n.Filter = new BucketSet(f.Owned); break;
                case RemoveFilter: n.Filter = null; break;
                case CountConnections:
                    var inc = n.Incarnation;
                    After(Ms(1, 50), () => { if (n.Up && n.Incarnation == inc) Input(n, new FarmConnectionsCounted(Chance(0.5) ? 0 : _rng.Next(1, 5))); });
                    break;
                case RunFarmProcedure p: RunProcedure(n, p.Procedure); break;
                case FarmLog l: if (_o.Trace) Trace(n, "  log: " + l.Text); break;
            }
        }

        private void RunProcedure(FNode n, FarmProcedure p)
        {
            var token = ++n.ProcedureToken;
            var inc = n.Incarnation;
            After(p is FarmProcedure.StartApplication or FarmProcedure.StopApplication ? Ms(100, 2000) : Ms(10, 200), () =>
            {
                if (!n.Up || n.Incarnation != inc || n.ProcedureToken != token) return;
                var ok = p != FarmProcedure.StartApplication || _faultsOver || !Chance(0.08);
                Input(n, new FarmProcedureDone(p, ok, ok ? null : "start_both exited with 1"), $"{p} done ({(ok ? "ok" : "failed")})");
            });
        }

        private void TickLoop(FNode n, int inc)
        {
            if (!n.Up || n.Incarnation != inc) return;
            if (!_o.Off.HasFlag(FarmProtection.PeerLossDetection))
            {
                List<string>? lost = null;
                var local = n.Clock.GetUtcNow();
                foreach (var peer in n.Alive)
                    if (local - n.LastHeard[peer] > PeerTimeout) (lost ??= new()).Add(peer);
                if (lost != null)
                    foreach (var peer in lost)
                    {
                        n.Alive.Remove(peer);
                        Input(n, new FarmPeerLost(peer), _o.Trace ? $"{peer} lost (no heartbeat for the timeout)" : "");
                    }
            }
            Input(n, Tick);
            // FarmHost.WatchLink, after each tick: a node in the map without a carrier is told its link is down (it
            // started or rejoined while its cable was out). Without it an engine booted behind a pulled cable joined
            // alone, took every bucket, and met its peers with all of them when the cable came back (found by the
            // double-owner check, --farm-faults Crash,Partition seed 1).
            if (!n.Reachable && n.Machine!.InMap)
                Input(n, new FarmResourceChanged("link.eth0", ResourceValue.Down, CheckAction.Wait, false, "no carrier"), "link.eth0 down (the link watcher)");
            AfterLocal(n, TickInterval, StepKind.Tick, inc);
        }

        private void PulseLoop(FNode n, int inc)
        {
            if (!n.Up || n.Incarnation != inc) return;
            if (!_o.Off.HasFlag(FarmProtection.PeriodicHeartbeats)) SendViews(n);
            AfterLocal(n, Pulse, StepKind.Pulse, inc);
        }

        private void SendViews(FNode from)
        {
            var view = from.Published!;
            from.LastSentView = view;
            if (from.PublishedHeard?.View != (object)view) from.PublishedHeard = new FarmPeerHeard(view);
            var heard = from.PublishedHeard;
            var sequence = ++from.SendSequence;
            foreach (var to in _nodes)
            {
                if (to == from) continue;
                var copies = Chance(_duplicate) ? 2 : 1;
                for (var c = 0; c < copies; c++)
                {
                    if (!from.PortOut || Chance(_now < _lossUntil ? _loss : 0)) continue;
                    var delay = _now < _delayUntil && Chance(0.3) ? Ms(1, 800) : TimeSpan.FromTicks(_rng.Next(1_000, 20_000));
                    _queue.Enqueue(new Step(StepKind.Deliver, null, to, from.Incarnation, heard, sequence), (_now + Math.Max(1, delay.Ticks), _seq++));
                }
            }
        }

        // As HeartbeatChannel with its ReplayGuard: a copy already delivered (a duplicate) or from an older engine is
        // dropped; one older than a view already delivered (reordered) proves the sender alive but its view is not
        // handed to the machine, which would roll the peer's state back. (Handing every copy over let a late view undo
        // a newer one: an engine cannot see that.)
        private void Deliver(FNode target, FarmPeerHeard heard, int incarnation, long sequence)
        {
            if (!target.Up || !target.PortIn) return;
            var sender = heard.View.Node;
            var fresh = true;
            if (target.Delivered.TryGetValue(sender, out var last))
            {
                if (incarnation < last.Incarnation || (incarnation == last.Incarnation && sequence == last.Sequence)) return;
                fresh = incarnation > last.Incarnation || sequence > last.Sequence;
            }
            target.LastHeard[sender] = target.Clock.GetUtcNow();
            target.Alive.Add(sender);
            if (!fresh) return;
            target.Delivered[sender] = (incarnation, sequence);
            Input(target, heard);
        }

        private static bool SameView(FarmView? a, FarmView? b) =>
            a != null && b != null && a.State == b.State && a.InMap == b.InMap && a.Epoch == b.Epoch && a.Settled == b.Settled && a.SameMembers(b.Members);

        // ------------------------------------------------------------------ faults

        private void RandomFault()
        {
            var n = _nodes[_rng.Next(_nodes.Count)];
            var roll = _rng.Next(100);
            var kind = roll < 12 ? FaultKind.Crash : roll < 30 ? FaultKind.Partition : roll < 40 ? FaultKind.PacketLoss
                : roll < 50 ? FaultKind.DelayReorderDuplicate : roll < 58 ? FaultKind.DiskStall : roll < 72 ? FaultKind.ApplicationFailure : FaultKind.AdminCommand;
            if (!_o.Faults.HasFlag(kind)) return;
            if (roll < 12)
            {
                HandOverHit(n);
                Crash(n, "power loss");
                After(Ms(500, 15_000), () => { if (!n.Up && !_faultsOver) Boot(n, start: true); });
            }
            else if (roll < 30)
            {
                const int way = 0;
                HandOverHit(n);
                n.PortIn = n.PortOut = false;
                Trace(n, "fault: port cut (cable pulled)");
                if (way == 0) Input(n, new FarmResourceChanged("link.eth0", ResourceValue.Down, CheckAction.Wait, false, "no carrier"), "link.eth0 down");
                After(Ms(300, 15_000), () =>
                {
                    n.PortIn = n.PortOut = true;
                    Trace(n, "port healed");
                    if (way == 0) Input(n, new FarmResourceChanged("link.eth0", ResourceValue.Up, CheckAction.Wait, false, "carrier"), "link.eth0 up");
                });
            }
            else if (roll < 40)
            {
                _loss = 0.2 + _rng.NextDouble() * 0.6;
                _lossUntil = _now + Ms(1000, 10_000).Ticks;
                Trace(null, $"fault: message loss {_loss:P0}");
            }
            else if (roll < 50)
            {
                _delayUntil = _now + Ms(1000, 10_000).Ticks;
                _duplicate = _rng.NextDouble() * 0.3;
                Trace(null, "fault: delays up to 800 ms (reordering), duplicates");
            }
            else if (roll < 58)
            {
                if (!n.Up) return;
                HandOverHit(n);
                n.StallUntil = Math.Max(n.StallUntil, _now + Ms(200, 3000).Ticks);
                Trace(n, "fault: disk stalls");
            }
            else if (roll < 72)
            {
                if (!n.Up || n.Machine!.State != FarmStateName.Up) return;
                HandOverHit(n);
                Input(n, new FarmResourceChanged("errd.app", ResourceValue.Down, CheckAction.Restart, true, "process died"), "fault: the application dies");
            }
            else
            {
                if (!n.Up) return;
                var r = _rng.Next(100);
                FarmEvent e = r < 40 ? new FarmStartCommand() : r < 65 ? new FarmStopCommand(Drain: Chance(0.5)) : new FarmRestartCommand();
                if (e is FarmStartCommand or FarmRestartCommand) n.Started = true;
                if (e is FarmStopCommand) n.Started = false;
                if (e is not FarmStartCommand) HandOverHit(n);
                Input(n, e, "admin: " + e);
            }
        }

        private void EndFaults()
        {
            _faultsOver = true;
            _loss = _duplicate = 0;
            _lossUntil = _delayUntil = 0;
            Trace(null, "faults stop: network healed, nodes booted, stopped modules started");
            foreach (var n in _nodes)
            {
                var cut = !n.Reachable;
                n.PortIn = n.PortOut = true;
                n.StallUntil = Math.Min(n.StallUntil, _now);
                if (n.Stalled.Count > 0) ResumeAfterStall(n);
                if (!n.Up) Boot(n, start: false);
                else if (cut) Input(n, new FarmResourceChanged("link.eth0", ResourceValue.Up, CheckAction.Wait, false, "carrier"), "link.eth0 up");
                var node = n;
                foreach (var at in new[] { 1, 11 })
                    After(TimeSpan.FromSeconds(at), () =>
                    {
                        if (!node.Up || node.Machine!.RunningProcedure != null || node.Machine.State == FarmStateName.Up) return;
                        node.Started = true;
                        Input(node, node.Machine.State == FarmStateName.Stop ? new FarmStartCommand() : new FarmRestartCommand(), "admin: start (after the faults)");
                    });
            }
            After(TimeSpan.FromSeconds(1), WatchConvergence);
        }

        // ------------------------------------------------------------------ invariants

        // After every step. Incremental: the covered set is rebuilt only in a step that changed some node's coverage
        // (reachable UP or not, its filter), which is rare; otherwise only the oldest orphan's age is compared.
        private void CheckOrphans()
        {
            if (CoverageChanged())
            {
                var possible = false;
                var bits = _covered;
                Array.Clear(bits);
                Array.Clear(_twice);
                foreach (var n in _nodes)
                {
                    if (!n.CoverCounts) continue;
                    possible |= n.Settings.PowerOf(n.Name) > 0;
                    n.CoverFilter?.CountInto(bits, _twice);
                }
                _oldestDouble = -1;
                for (var b = 0; b < BucketMap.BucketCount; b++)
                {
                    if ((_twice[b >> 6] & (1UL << (b & 63))) == 0) { _doubleSince[b] = -1; continue; }
                    if (_doubleSince[b] < 0) _doubleSince[b] = _now;
                    if (_oldestDouble < 0 || _doubleSince[b] < _oldestDouble) _oldestDouble = _doubleSince[b];
                }
                _oldestOrphan = -1;
                for (var b = 0; b < BucketMap.BucketCount; b++)
                {
                    if (!possible || (bits[b >> 6] & (1UL << (b & 63))) != 0) { _orphanSince[b] = -1; continue; }
                    if (_orphanSince[b] < 0) _orphanSince[b] = _now;
                    if (_oldestOrphan < 0 || _orphanSince[b] < _oldestOrphan) _oldestOrphan = _orphanSince[b];
                }
            }
            if (_oldestDouble >= 0 && _now - _oldestDouble > DetectionTime.Ticks)
            {
                for (var b = 0; b < BucketMap.BucketCount; b++)
                    if (_doubleSince[b] >= 0 && _now - _doubleSince[b] > DetectionTime.Ticks)
                    {
                        Fail(NoDoubleOwner, $"bucket {b} has had two reachable UP owners for {TimeSpan.FromTicks(_now - _doubleSince[b]).TotalSeconds:0.000} s " +
                            $"(detection time {DetectionTime.TotalSeconds:0.000} s); {Describe()}");
                        return;
                    }
            }
            if (_oldestOrphan < 0 || _now - _oldestOrphan <= DetectionTime.Ticks) return;
            for (var b = 0; b < BucketMap.BucketCount; b++)
            {
                if (_orphanSince[b] >= 0 && _now - _orphanSince[b] > DetectionTime.Ticks)
                {
                    Fail(NoOrphanBucket, $"bucket {b} has had no reachable UP owner for {TimeSpan.FromTicks(_now - _orphanSince[b]).TotalSeconds:0.000} s " +
                        $"(detection time {DetectionTime.TotalSeconds:0.000} s); {Describe()}");
                    return;
                }
            }
        }

        // A fault that strikes the node an orphaned bucket is being handed to (the map of a node in the map gives it the
        // bucket; it has not taken it) starts that bucket's detection time again. Its peers cannot tell that it froze, lost its cable or its
        // application before the detection time, and the hand-over waits for it by design (only it takes its share), so
        // no run of the protocol could serve the bucket sooner: the second fault has its own detection time (sim seeds
        // 7365, 7633: the share's next owner stalled; 8743: cut, healed, cut again). Only that node's buckets, only at the
        // fault; faults elsewhere, loss and delays never move the clock, and a bucket still orphaned the detection time
        // after the last such fault is reported.
        private void HandOverHit(FNode n)
        {
            if (!n.Up || !n.Machine!.InMap) return;
            var moved = false;
            foreach (var m in _nodes)
            {
                if (!m.Up || !m.Machine!.InMap) continue;
                var map = m.Machine.Map;
                for (var b = 0; b < BucketMap.BucketCount; b++)
                    if (_orphanSince[b] >= 0 && _orphanSince[b] != _now && string.Equals(map[b], n.Name, StringComparison.Ordinal))
                    {
                        _orphanSince[b] = _now;
                        moved = true;
                    }
            }
            if (!moved) return;
            _oldestOrphan = -1;
            foreach (var since in _orphanSince)
                if (since >= 0 && (_oldestOrphan < 0 || since < _oldestOrphan)) _oldestOrphan = since;
        }

        private bool CoverageChanged()
        {
            var changed = false;
            foreach (var n in _nodes)
            {
                var counts = n.Up && n.Reachable && n.Machine!.State == FarmStateName.Up;
                var filter = counts ? n.Filter : null;
                if (counts == n.CoverCounts && ReferenceEquals(filter, n.CoverFilter)) continue;
                n.CoverCounts = counts;
                n.CoverFilter = filter;
                changed = true;
            }
            return changed;
        }

        private bool Converged(out string why)
        {
            foreach (var n in _nodes.Where(n => n.Started && (!n.Up || n.Machine!.State != FarmStateName.Up || !n.Machine.Ready)))
            {
                why = n.Name + " is started but not UP (ready): " + (n.Up ? n.Machine!.Reason : "down");
                return false;
            }
            var up = _nodes.Where(n => n.Serving).ToList();
            for (var b = 0; b < BucketMap.BucketCount; b++)
            {
                var count = up.Count(n => n.Filter!.Contains(b));
                if (up.Count > 0 && count != 1)
                {
                    why = $"bucket {b} has {count} owners";
                    return false;
                }
            }
            why = "";
            return true;
        }

        private void WatchConvergence()
        {
            if (Converged(out _))
            {
                _outcome = $"converged {TimeSpan.FromTicks(_now - _o.FaultPhase.Ticks).TotalSeconds:0.0} s after the faults stopped";
                Trace(null, _outcome);
                return;
            }
            After(TimeSpan.FromMilliseconds(250), WatchConvergence);
        }

        private void CheckConvergence()
        {
            if (_outcome.Length > 0 || _violation != null) return;
            Converged(out var why);
            Fail(ConvergesAfterFaults, $"{_o.ConvergenceBound.TotalSeconds:0} s after the faults stopped: {why}; {Describe()}");
        }

        private void Fail(string invariant, string message)
        {
            if (_violation != null) return;
            _violation = new Violation(invariant, message, Now);
            Trace(null, $"VIOLATION {invariant}: {message}");
        }

        // ------------------------------------------------------------------ trace

        private string Describe() => string.Join("; ", _nodes.Select(Describe));

        private static string Describe(FNode n) => !n.Up
            ? n.Name + " down"
            : $"{n.Name} {FarmMachine.Name(n.Machine!.State)}{(n.Machine.Ready ? "" : "(T)")} owns {n.Filter?.Count ?? 0}{(n.Reachable ? "" : " cut")}" +
              $"{(n.Machine.RunningProcedure is { } p ? " [" + p + "]" : "")} [{string.Join(",", n.Machine.Members)}]";

        private static string Describe(FarmEvent e) => e switch
        {
            FarmPeerHeard h => "heard " + h.View,
            FarmProcedureDone d => $"{d.Procedure} done",
            _ => e.GetType().Name,
        };

        private void Trace(FNode? n, string text)
        {
            if (!_o.Trace) return;
            _trace.Add($"{Now.TotalSeconds,9:0.000}s {(n == null ? "--" : n.Name)}  {text}");
        }
    }
}
