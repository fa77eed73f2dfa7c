// The farm module's protocol core on one node: membership, bucket map, application awareness.
// Events in, actions out. No sockets, threads, files or clocks (time comes from TimeProvider), so the
// same code runs in the engine (FarmHost), in unit tests and in the deterministic simulator.
//
//            start                 start_both ok: filter, VIP, checkers
//   STOP ──────────► WAIT (T) ─────────────────────────────────► UP (T) joining ──► UP (R)
//    ▲    prestart,   │ start_both                                  │   every live peer's view = ours
//    │    start_both  │ failed                                      │   (or PeerTimeout): take buckets
//    │                ▼                                             │
//    │             WAIT (NR) ◄───── resource down (wait) ───────────┤ leave the map first
//    │                │  └───────── resource up again ──► UP (T) ───┤
//    │                │ stop          resource down (restart) ──────┤ leave, stop_both, start_both, rejoin
//    │                ▼                   (maxloop exceeded: stopstart; again: stop)
//    └──── poststop ◄── stop_both, VIP and filter removed ◄─────────┤ stop: leave the map
//                            ▲                                      │ stop -Drain: leave the map,
//                            └──── WAIT (T) draining: 0 connections ┘ keep filter + VIP until open
//                                  open (or DrainTimeout)             connections have finished
//
// Transition table (state, event) → next state: actions. "leave" = out of the map: release every
// bucket at once (ApplyFilter(∅), the table stays so established flows keep being accepted).
//
//  STOP      start                     → WAIT(T): Prestart, then StartApplication
//  WAIT(T)   StartApplication ok       → UP(T) joining: ApplyFilter(∅, install), AddVip, SetCheckers(on)
//            StartApplication failed   → WAIT(NR) "the application did not start"
//  UP(T)     views agree / deadline    → UP(R): ApplyFilter(own buckets)
//  UP        peer heard / lost         → UP: release lost buckets now, take gained ones on agreement
//            resource down, restart    → WAIT(T): leave, SetCheckers(off), StopApplication, StartApplication
//                                        → UP(T) joining (counts towards maxloop; beyond: stopstart)
//            resource down, stopstart  → leave, stop as below, then start again (beyond maxloop: stop)
//            resource down, wait       → WAIT(NR): leave; resource up again → UP(T) joining (only with the
//                                        application running: after a failed start_both it stays WAIT(NR))
//            resource down, stop       → leave, stop
//            resource down, noaction   → (logged only)
//  WAIT/UP   stop                      → leave; SetCheckers(off), StopApplication, RemoveVip, RemoveFilter,
//                                        Poststop → STOP
//            stop -Drain               → WAIT(T) draining: leave; CountConnections until 0 or DrainTimeout,
//                                        then as stop
//  any       filter checked, damaged   → SetFilterResource(down), ApplyFilter(owned, install) (the reapply
//                                        is atomic); next check intact → SetFilterResource(up)
//            restart                   → stop, then start
//
// Membership. Each node gossips its FarmView: state, "in map", and the members of the view it has
// applied. A node's members = itself when it is in the map + every live peer that says it is in the
// map. Every node derives the bucket map from its members with one deterministic function
// (BucketMap.Assign: weighted rendezvous hashing of power), so nodes with the same members have the
// same map without talking, and a change moves only the buckets of the node that came or went.
//
// How a membership change avoids double owners and bounds gaps (new flows):
//   * RELEASE AT ONCE. When the map changes, a node drops the buckets it loses from its filter in the
//     same step, before it gossips its new view (the host applies actions before publishing View).
//   * TAKE ON AGREEMENT. A node adds the buckets it gains only when every live peer gossips the same
//     members (names and epochs) as its own: those peers have computed the same map and, by the rule
//     above, already released what this node takes. Peers out of the map own nothing but must agree
//     too, so two nodes that join at the same moment do not both take everything before they hear each
//     other. So a bucket is never owned by two nodes that see each other (a double owner would answer
//     the same SYN twice, and the losing node's RST would kill the new connection).
//   * A joining node (start, back after a restart or after its link was down) has members = just
//     itself until it hears the others; it takes nothing until it has heard every peer, or a settled
//     peer (UP, joined, connected since) gossips the same members, or PeerTimeout has passed (then it
//     really is alone). A node whose link went down left the map (resource
//     link.<interface>, action wait), so a node that was cut off comes back owning nothing and takes
//     its share only after the others have released it: no double owner on rejoin.
//   * Fallback: if views still disagree PeerTimeout after the last change (a peer hears us but we do
//     not hear it), the node takes its buckets anyway — by then the silent peer has declared us lost
//     or is unreachable. Gaps last from the release to the agreement (about one pulse); a SYN that
//     meets a gap is dropped and retransmitted by the client (first RTO 1 s), it does not fail.
// Established flows are never affected: the filter accepts packets of connections the node already
// tracks (conntrack ESTABLISHED) before the bucket test, and with nf_conntrack_tcp_loose=0 a bucket's
// new owner sees another node's mid-stream packets as INVALID and drops them silently (no RST). So
// conntrack keeps established flows where they are and only new flows follow the new map.
// Known limit: when a partition that did NOT take the carrier away heals, both sides owned the other
// side's buckets and keep them until they hear each other (one pulse): new connections in that
// window may be answered twice. Carrier loss (the usual cut) avoids it through link.<interface>.
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Configuration;

namespace ServiceKeeper.Engine.Farm
{
    public sealed class FarmMachine
    {
        private static readonly IReadOnlyList<int> None = Array.Empty<int>();
        // Bucket maps by membership (names and powers), with one node's share of each. Assign costs 256 x members
        // logarithms, and a peer that flaps brings the same few maps back; nothing here is ever written after it is
        // cached, so the machines that share an entry cannot change it.
        private sealed record MapShare(IReadOnlyList<string?> Map, int[] Share, bool[] InShare);
        private static readonly ConcurrentDictionary<string, MapShare> MapCache = new(StringComparer.Ordinal);
        private const int MapCacheLimit = 4096;

        private readonly FarmSettings _s;
        private readonly TimeProvider _time;
        private readonly List<FarmAction> _out = new();
        private readonly Dictionary<string, FarmView> _peers = new(StringComparer.Ordinal);
        private readonly List<DateTimeOffset> _loops = new();
        private readonly HashSet<string> _waitingOn = new(StringComparer.Ordinal);
        // Checkers report a flip once: one that arrives while a procedure runs is handled when it ends.
        private readonly List<FarmResourceChanged> _deferred = new();

        private FarmProcedure? _op;
        private Action<bool, string?>? _then;
        private bool _stopRequested, _drainRequested, _restartAfterStop, _keepLoops;
        private bool _draining;
        private DateTimeOffset _drainDeadline, _nextCount;
        private bool _joining;
        private DateTimeOffset _discoveryUntil;
        private DateTimeOffset? _takeDeadline;
        private bool _filterDown;
        private bool _escalated;          // restarts exceeded maxloop and a stopstart was done: next time, stop
        private bool _appRunning;         // start_both succeeded and no stop_both has begun since
        private const string NotStarted = "the application did not start", NotRestarted = "the application did not restart";
        // This node's share of Map (Recompute runs on every heartbeat: the share is computed once per map).
        private IReadOnlyList<int> _share = None;
        private bool[] _inShare = new bool[BucketMap.BucketCount];
        // OwnedBuckets was last found within this target: no bucket to release until either changes.
        private IReadOnlyList<int>? _checkedOwned, _checkedTarget;
        private FarmView? _view;

        public FarmMachine(FarmSettings settings, TimeProvider time)
        {
            ArgumentNullException.ThrowIfNull(settings);
            ArgumentNullException.ThrowIfNull(time);
            if (!settings.Nodes.Contains(settings.Node, StringComparer.Ordinal))
                throw new ArgumentException($"Node '{settings.Node}' is not one of the module's nodes.", nameof(settings));
            _s = settings;
            _time = time;
            Since = time.GetUtcNow();
            Members = Array.Empty<FarmMember>();
            MemberNames = Array.Empty<string>();
            SetMap(Array.Empty<string>());
        }

        public FarmSettings Settings => _s;
        public FarmStateName State { get; private set; } = FarmStateName.Stop;
        public bool Ready { get; private set; } = true;
        public string? Reason { get; private set; }
        public DateTimeOffset Since { get; private set; }
        public bool CheckersEnabled { get; private set; } = true;
        public bool ErrdEnabled { get; private set; } = true;

        /// <summary>This node is in the bucket map (UP): peers count it as a member.</summary>
        public bool InMap { get; private set; }

        /// <summary>The members of this node's view (UP nodes in the map and their epochs), sorted by node.</summary>
        public IReadOnlyList<FarmMember> Members { get; private set; }

        /// <summary>The node names of <see cref="Members"/>: what the bucket map is computed from.</summary>
        public IReadOnlyList<string> MemberNames { get; private set; }

        /// <summary>The epoch of this node's current stay in the map (0 before the first join).</summary>
        public long Epoch { get; private set; }

        /// <summary>The bucket map of <see cref="Members"/> (index = bucket, value = owner or null): the target.</summary>
        public IReadOnlyList<string?> Map { get; private set; }

        /// <summary>The buckets this node's filter accepts now (ascending): Map's share once taken, less while joining.</summary>
        public IReadOnlyList<int> OwnedBuckets { get; private set; } = None;

        /// <summary>
        /// Every live peer's view equals this node's (nothing left to wait for before taking). All peers, not
        /// only members: two nodes joining at the same moment each see the other out of the map until their
        /// views cross, and must not both take every bucket meanwhile.
        /// </summary>
        public bool Agreed
        {
            get
            {
                foreach (var p in _peers.Values)
                    if (!p.SameMembers(Members)) return false;
                return true;
            }
        }

        /// <summary>Buckets Map gives this node that it has not taken yet (waiting for agreement).</summary>
        public bool TakePending { get; private set; }

        /// <summary>Live peers and their last view.</summary>
        public IReadOnlyDictionary<string, FarmView> Peers => _peers;

        /// <summary>Increases with every ApplyFilter; FarmFilterChecked answers for one version.</summary>
        public int FilterVersion { get; private set; }
        public bool FilterInstalled { get; private set; }
        public bool VipAdded { get; private set; }
        public bool CheckersRunning { get; private set; }
        public bool Draining => _draining;
        public FarmProcedure? RunningProcedure => _op;

        /// <summary>What this node gossips in its heartbeats.</summary>
        public FarmView View
        {
            get
            {
                var v = _view;
                var settled = State == FarmStateName.Up && Ready && InMap;
                if (v == null || v.State != State || v.InMap != InMap || v.Epoch != Epoch || v.Settled != settled || !ReferenceEquals(v.Members, Members))
                    _view = v = new FarmView(_s.Node, State, InMap, Epoch, Members) { Settled = settled };
                return v;
            }
        }

        public IReadOnlyList<FarmAction> Handle(FarmEvent e)
        {
            ArgumentNullException.ThrowIfNull(e);
            _out.Clear();
            switch (e)
            {
                case FarmStartCommand: OnStart(); break;
                case FarmStopCommand s: OnStop(s.Drain, restart: false); break;
                case FarmRestartCommand: OnStop(drain: false, restart: true); break;
                case FarmMaintenanceCommand m: OnMaintenance(m); break;
                case FarmPeerHeard h: OnPeerHeard(h.View); break;
                case FarmPeerLost l: OnPeerLost(l.Node); break;
                case FarmResourceChanged r: OnResource(r); break;
                case FarmProcedureDone d: OnProcedureDone(d); break;
                case FarmFilterChecked f: OnFilterChecked(f); break;
                case FarmConnectionsCounted c: OnConnectionsCounted(c.Open); break;
                case FarmTick: OnTick(); break;
            }
            return _out.ToArray();
        }

        // ------------------------------------------------------------------ admin commands

        private void OnStart()
        {
            if (State != FarmStateName.Stop || _op != null)
                throw new FarmCommandException(ErrorIds.InvalidModuleState, $"{_s.Module} is already started on {_s.Node} ({Describe()}).");
            _stopRequested = _drainRequested = _restartAfterStop = false;
            if (!_keepLoops)
            {
                _loops.Clear();
                _escalated = false;
            }
            _keepLoops = false;
            _waitingOn.Clear();
            _deferred.Clear();
            Enter(FarmStateName.Wait, false, "starting: prestart");
            Run(FarmProcedure.Prestart, (_, _) =>
            {
                Enter(FarmStateName.Wait, false, "starting: start_both");
                Run(FarmProcedure.StartApplication, (ok, detail) =>
                {
                    if (!ok)
                    {
                        Enter(FarmStateName.Wait, false, NotStarted + (detail == null ? "" : $" ({detail})") + "; see Get-SKLog, then Restart-SKModule");
                        return;
                    }
                    _appRunning = true;
                    // Filter before VIP: with the VIP and no filter the node would answer every connection
                    // and every ARP request with its own MAC (the client would then send everything here).
                    Install();
                    if (!VipAdded)
                    {
                        VipAdded = true;
                        Emit(new AddVip());
                    }
                    SetCheckersRunning(true);
                    Join();
                });
            });
        }

        private void OnStop(bool drain, bool restart)
        {
            if (State == FarmStateName.Stop && _op == null)
            {
                if (restart) OnStart();
                return;
            }
            _restartAfterStop = restart;
            if (_stopRequested)
            {
                // A plain stop during a drain ends the drain now.
                if (!drain && _draining) StopNow();
                return;
            }
            _stopRequested = true;
            _drainRequested = drain;
            if (_op == null) StopFlow();
        }

        private void OnMaintenance(FarmMaintenanceCommand m)
        {
            if (m.Checkers is { } c) CheckersEnabled = c;
            if (m.Errd is { } e) ErrdEnabled = e;
            Log($"maintenance: checkers {OnOff(CheckersEnabled)}, errd {OnOff(ErrdEnabled)}");
        }

        // ------------------------------------------------------------------ membership and buckets

        private void OnPeerHeard(FarmView view)
        {
            if (view.Node == _s.Node || !IsNode(view.Node)) return;
            var known = _peers.TryGetValue(view.Node, out var before);
            _peers[view.Node] = view;
            if (!known) Log($"{view.Node} seen: {Name(view.State)}{(view.InMap ? ", in the map" : "")}");
            else if (before!.InMap != view.InMap) Log($"{view.Node} {(view.InMap ? "joined" : "left")} the map");
            Recompute();
        }

        private void OnPeerLost(string node)
        {
            if (!_peers.Remove(node)) return;
            Log($"{node} lost on every heartbeat network");
            Recompute();
        }

        private void Join()
        {
            if (InMap) return;
            InMap = true;
            _joining = true;
            // Unique across engine restarts too: a peer may still hold a view of an earlier stay.
            Epoch = Math.Max(Epoch + 1, _time.GetUtcNow().ToUnixTimeMilliseconds());
            _discoveryUntil = _time.GetUtcNow() + _s.PeerTimeout;
            Enter(FarmStateName.Up, false, "joining: waiting for the other nodes to release this node's buckets");
            Recompute();
        }

        private void Leave(string reason)
        {
            _joining = false;
            var was = InMap;
            InMap = false;
            Enter(FarmStateName.Wait, false, reason);
            if (was) Recompute();
        }

        /// <summary>New members → new map: release lost buckets now, take gained ones when the views agree.</summary>
        /// <remarks>Runs on every heartbeat: the usual case (same members, nothing to release) allocates nothing.</remarks>
        private void Recompute()
        {
            var changed = !MembersAreCurrent();
            if (changed)
            {
                var sorted = new List<FarmMember>(_peers.Count + 1);
                foreach (var p in _peers.Values)
                    if (p.InMap) sorted.Add(new FarmMember(p.Node, p.Epoch));
                if (InMap) sorted.Add(new FarmMember(_s.Node, Epoch));
                sorted.Sort((a, b) => StringComparer.Ordinal.Compare(a.Node, b.Node)); // names are unique
                var names = sorted.Select(m => m.Node).ToList();
                var namesChanged = !names.SequenceEqual(MemberNames, StringComparer.Ordinal);
                Members = sorted;
                MemberNames = names;
                if (namesChanged)
                {
                    SetMap(names);
                    Log($"view: {(names.Count == 0 ? "nobody" : string.Join(", ", names))}; this node's share: {Target().Count} of {BucketMap.BucketCount} buckets");
                }
            }
            if (!FilterInstalled) return;
            var target = Target();
            if (!ReferenceEquals(_checkedOwned, OwnedBuckets) || !ReferenceEquals(_checkedTarget, target))
            {
                var kept = 0;
                for (var i = 0; i < OwnedBuckets.Count; i++)
                    if (InTarget(OwnedBuckets[i])) kept++;
                if (kept != OwnedBuckets.Count)
                {
                    var keep = new List<int>(kept);
                    for (var i = 0; i < OwnedBuckets.Count; i++)
                        if (InTarget(OwnedBuckets[i])) keep.Add(OwnedBuckets[i]);
                    Log($"released {OwnedBuckets.Count - kept} bucket(s)");
                    SetOwned(keep, install: false);
                }
                _checkedOwned = OwnedBuckets;
                _checkedTarget = target;
            }
            TakePending = OwnedBuckets.Count != target.Count; // owned is within the target here
            if (!TakePending) _takeDeadline = null;
            else if (changed || _takeDeadline == null) _takeDeadline = _time.GetUtcNow() + _s.PeerTimeout;
            TryTake();
        }

        private void TryTake()
        {
            if (TakePending)
            {
                var now = _time.GetUtcNow();
                var agreed = Agreed && (!_joining || _s.Nodes.All(n => n == _s.Node || _peers.ContainsKey(n)) || now >= _discoveryUntil || SettledPeerAgrees());
                if (agreed || now >= _takeDeadline)
                {
                    var target = Target();
                    if (!agreed) Log($"the views of {string.Join(", ", _peers.Values.Where(p => !p.SameMembers(Members)).Select(p => p.Node).DefaultIfEmpty("the silent peers"))} still differ after {_s.PeerTimeout.TotalSeconds:0.#} s: taking this node's share anyway");
                    Log($"took {target.Count - OwnedBuckets.Count} bucket(s): this node owns {target.Count} of {BucketMap.BucketCount}");
                    SetOwned(target, install: false);
                    TakePending = false;
                    _takeDeadline = null;
                }
            }
            if (!TakePending && _joining && InMap)
            {
                _joining = false;
                Enter(FarmStateName.Up, true, null);
            }
        }

        private IReadOnlyList<int> Target() => InMap ? _share : None;

        // sim seeds 412, 919 (a crash, then the cables of the nodes the orphaned share went to pulled in turn): a node that
        // joins waits PeerTimeout for the peers it has not heard, and here they were down: each rejoin of the share's
        // next owner added PeerTimeout to the orphan. A settled peer (joined, connected since) that gossips the same
        // members as this node vouches for the silent ones: a peer it leaves out is lost to it or out of the map, so this
        // node's share is released by everyone who could hold it, as much as after waiting (an unheard peer that owns
        // buckets would be in the settled peer's members, and the views would differ).
        private bool SettledPeerAgrees()
        {
            foreach (var p in _peers.Values)
                if (p.Settled && p.InMap && p.SameMembers(Members)) return true;
            return false;
        }

        private bool InTarget(int bucket) => InMap && _inShare[bucket];

        [System.Diagnostics.CodeAnalysis.MemberNotNull(nameof(Map))]
        private void SetMap(IReadOnlyList<string> names)
        {
            var key = _s.Node + ":" + string.Join(",", names.Select(n => n + "=" + _s.PowerOf(n)));
            if (!MapCache.TryGetValue(key, out var entry))
            {
                var map = Array.AsReadOnly(BucketMap.Assign(names.ToDictionary(n => n, _s.PowerOf, StringComparer.Ordinal)));
                var share = BucketMap.BucketsOf(map, _s.Node).ToArray();
                var inShare = new bool[BucketMap.BucketCount];
                foreach (var b in share) inShare[b] = true;
                entry = new MapShare(map, share, inShare);
                if (MapCache.Count >= MapCacheLimit) MapCache.Clear();
                MapCache.TryAdd(key, entry);
            }
            Map = entry.Map;
            _share = entry.Share;
            _inShare = entry.InShare;
        }

        /// <summary>Members already names exactly this node (when in the map) and the in-map peers, with their epochs.</summary>
        private bool MembersAreCurrent()
        {
            var count = 0;
            if (InMap)
            {
                if (!HasMember(_s.Node, Epoch)) return false;
                count++;
            }
            foreach (var p in _peers.Values)
            {
                if (!p.InMap) continue;
                if (!HasMember(p.Node, p.Epoch)) return false;
                count++;
            }
            return count == Members.Count; // names are unique in both, so equal counts make equal sets
        }

        private bool HasMember(string node, long epoch)
        {
            for (var i = 0; i < Members.Count; i++)
                if (Members[i].Epoch == epoch && string.Equals(Members[i].Node, node, StringComparison.Ordinal)) return true;
            return false;
        }

        private bool IsNode(string node)
        {
            for (var i = 0; i < _s.Nodes.Count; i++)
                if (string.Equals(_s.Nodes[i], node, StringComparison.Ordinal)) return true;
            return false;
        }

        private void Install()
        {
            FilterInstalled = true;
            _filterDown = false;
            SetOwned(None, install: true);
        }

        private void SetOwned(IReadOnlyList<int> owned, bool install)
        {
            var sorted = new int[owned.Count];
            for (var i = 0; i < sorted.Length; i++) sorted[i] = owned[i];
            Array.Sort(sorted);
            OwnedBuckets = sorted;
            Emit(new ApplyFilter(OwnedBuckets, install, ++FilterVersion));
        }

        // ------------------------------------------------------------------ the kernel filter check

        private void OnFilterChecked(FarmFilterChecked check)
        {
            if (!FilterInstalled || check.Version != FilterVersion) return; // a check of something already replaced
            if (check.Problems.Count == 0 && !check.VipMissing)
            {
                if (_filterDown)
                {
                    _filterDown = false;
                    Log($"nft.{_s.Module} up: the filter is intact again");
                    Emit(new SetFilterResource(ResourceValue.Up, "the filter is intact"));
                }
                return;
            }
            var problems = check.Problems.ToList();
            if (check.VipMissing) problems.Add("the virtual IP is missing");
            var reason = string.Join("; ", problems);
            Log($"nft.{_s.Module} down: {reason}: reapplying the filter");
            _filterDown = true;
            Emit(new SetFilterResource(ResourceValue.Down, reason));
            SetOwned(OwnedBuckets, install: true);
            if (check.VipMissing && VipAdded) Emit(new AddVip());
        }

        // ------------------------------------------------------------------ resources

        private void OnResource(FarmResourceChanged r)
        {
            if (r.IsErrd ? !ErrdEnabled : !CheckersEnabled) return;
            if (r.Value == ResourceValue.Up)
            {
                _deferred.RemoveAll(d => d.Resource == r.Resource);
                if (_waitingOn.Remove(r.Resource) && _waitingOn.Count == 0 && State == FarmStateName.Wait && _op == null && !_stopRequested)
                {
                    // sim seed 11: a node whose start_both had failed went WAIT for link.eth0 (cable pulled) and joined the
                    // map when the link came back, with no application, filter or VIP: the others released its share to a
                    // node that never took it, orphaned until the admin restarted it. Only a running application rejoins.
                    if (_appRunning)
                    {
                        Log($"{r.Resource} is up again: back into the map");
                        Join();
                    }
                    else
                    {
                        Log($"{r.Resource} is up again, but the application is not running: staying out of the map");
                        Enter(FarmStateName.Wait, false, (FilterInstalled ? NotRestarted : NotStarted) + "; see Get-SKLog, then Restart-SKModule");
                    }
                }
                return;
            }
            if (r.Value != ResourceValue.Down || State == FarmStateName.Stop || _stopRequested) return;
            if (_op != null)
            {
                _deferred.RemoveAll(d => d.Resource == r.Resource);
                _deferred.Add(r);
                return;
            }
            Log($"{r.Resource} is down ({r.Reason}): action {r.Action.ToString().ToLowerInvariant()}");
            switch (r.Action)
            {
                case CheckAction.NoAction:
                    return;
                case CheckAction.Wait:
                    _waitingOn.Add(r.Resource);
                    Leave($"waiting for {r.Resource} to be up ({r.Reason})");
                    return;
                case CheckAction.Stop:
                    // The node leaves the map before anything else: its buckets go to the others at once.
                    Leave($"{r.Resource} is down: out of the map");
                    OnStop(drain: false, restart: false);
                    return;
                case CheckAction.Restart when !_escalated:
                    Leave($"{r.Resource} is down: out of the map");
                    if (LoopExceeded())
                    {
                        _escalated = true;
                        Log($"more than {_s.MaxLoop} restarts within {_s.LoopInterval}: stopstart instead");
                        StopStart();
                    }
                    else
                    {
                        CountLoop();
                        RestartApplication();
                    }
                    return;
                default: // StopStart, or Restart once restarts have already escalated to a stopstart
                    Leave($"{r.Resource} is down: out of the map");
                    if (LoopExceeded())
                    {
                        Log($"more than {_s.MaxLoop} restarts within {_s.LoopInterval}: stopping the module here");
                        OnStop(drain: false, restart: false);
                    }
                    else
                    {
                        CountLoop();
                        StopStart();
                    }
                    return;
            }
        }

        private bool LoopExceeded()
        {
            var now = _time.GetUtcNow();
            _loops.RemoveAll(t => now - t > _s.LoopInterval);
            if (_loops.Count < _s.MaxLoop) _escalated = false;
            return _loops.Count >= _s.MaxLoop;
        }

        private void CountLoop() => _loops.Add(_time.GetUtcNow());

        private void RestartApplication()
        {
            _appRunning = false;
            SetCheckersRunning(false);
            _waitingOn.Clear();
            Enter(FarmStateName.Wait, false, "restarting the application: stop_both");
            Run(FarmProcedure.StopApplication, (_, _) =>
            {
                Enter(FarmStateName.Wait, false, "restarting the application: start_both");
                Run(FarmProcedure.StartApplication, (ok, detail) =>
                {
                    if (!ok)
                    {
                        Enter(FarmStateName.Wait, false, NotRestarted + (detail == null ? "" : $" ({detail})") + "; see Get-SKLog");
                        return;
                    }
                    _appRunning = true;
                    SetCheckersRunning(true);
                    Join();
                });
            });
        }

        private void StopStart()
        {
            Log("stopstart: stopping the module here, then starting it again");
            _keepLoops = true;
            OnStop(drain: false, restart: true);
        }

        // ------------------------------------------------------------------ stopping and draining

        private void StopFlow()
        {
            if (InMap) Leave(_drainRequested ? "draining: new connections go to the other nodes" : "stopping");
            if (_drainRequested && FilterInstalled && VipAdded)
            {
                _draining = true;
                _drainDeadline = _time.GetUtcNow() + _s.DrainTimeout;
                _nextCount = _time.GetUtcNow() + _s.DrainPoll;
                Enter(FarmStateName.Wait, false, "draining: new connections go to the other nodes");
                Emit(new CountConnections());
                return;
            }
            StopNow();
        }

        private void OnConnectionsCounted(int? open)
        {
            if (!_draining) return;
            var now = _time.GetUtcNow();
            if (open is null)
            {
                Log("draining: the open connections cannot be counted here; stopping now");
                StopNow();
            }
            else if (open == 0)
            {
                Log("drained: no connection left open");
                StopNow();
            }
            else if (now >= _drainDeadline)
            {
                Log($"drain timeout ({_s.DrainTimeout}) with {open} connection(s) still open: stopping now");
                StopNow();
            }
            else
            {
                Enter(FarmStateName.Wait, false, $"draining: {open} connection(s) still open");
            }
        }

        private void StopNow()
        {
            _draining = false;
            _appRunning = false;
            SetCheckersRunning(false);
            Enter(State, false, "stopping: stop_both");
            Run(FarmProcedure.StopApplication, (_, _) =>
            {
                // VIP before filter: never a moment with the address and no filter.
                if (VipAdded)
                {
                    VipAdded = false;
                    Emit(new RemoveVip());
                }
                if (FilterInstalled)
                {
                    FilterInstalled = false;
                    OwnedBuckets = None;
                    TakePending = false;
                    Emit(new RemoveFilter());
                }
                if (_filterDown)
                {
                    _filterDown = false;
                    Emit(new SetFilterResource(ResourceValue.Init, "the module is stopped"));
                }
                Enter(State, false, "stopping: poststop");
                Run(FarmProcedure.Poststop, (_, _) =>
                {
                    _stopRequested = _drainRequested = false;
                    _waitingOn.Clear();
                    _deferred.Clear();
                    Enter(FarmStateName.Stop, true, null);
                    if (_restartAfterStop)
                    {
                        _restartAfterStop = false;
                        OnStart();
                    }
                });
            });
        }

        // ------------------------------------------------------------------ procedures and time

        private void Run(FarmProcedure procedure, Action<bool, string?> then)
        {
            _op = procedure;
            _then = then;
            Emit(new RunFarmProcedure(procedure));
        }

        private void OnProcedureDone(FarmProcedureDone done)
        {
            if (_op != done.Procedure) return; // a late answer to something abandoned
            var then = _then!;
            _op = null;
            _then = null;
            if (_stopRequested && !_draining && done.Procedure is FarmProcedure.Prestart or FarmProcedure.StartApplication)
            {
                // An admin stop arrived while starting: the application may be half up; stop it all.
                if (done.Procedure == FarmProcedure.StartApplication) Log("stop requested while starting: stopping again");
                StopFlow();
                return;
            }
            then(done.Succeeded, done.Detail);
            while (_op == null && !_stopRequested && _deferred.Count > 0)
            {
                var deferred = _deferred[0];
                _deferred.RemoveAt(0);
                OnResource(deferred);
            }
        }

        private void OnTick()
        {
            TryTake();
            if (_draining && _time.GetUtcNow() >= _nextCount)
            {
                _nextCount = _time.GetUtcNow() + _s.DrainPoll;
                Emit(new CountConnections());
            }
        }

        // ------------------------------------------------------------------ helpers

        private void SetCheckersRunning(bool running)
        {
            if (CheckersRunning == running) return;
            CheckersRunning = running;
            Emit(new SetCheckers(running));
        }

        private void Enter(FarmStateName state, bool ready, string? reason)
        {
            if (state != State || ready != Ready)
            {
                Log($"{_s.Module}: {Describe()} -> {Name(state)}{(ready ? "" : " (transient)")}{(reason == null ? "" : " (" + reason + ")")}");
                Since = _time.GetUtcNow();
            }
            State = state;
            Ready = ready;
            Reason = reason;
        }

        private void Emit(FarmAction action) => _out.Add(action);
        private void Log(string text) => _out.Add(new FarmLog(text));

        private string Describe() => Name(State) + (Ready ? "" : " (transient)");
        public static string Name(FarmStateName state) => state.ToString().ToUpperInvariant();
        private static string OnOff(bool on) => on ? "on" : "off";
    }
}
