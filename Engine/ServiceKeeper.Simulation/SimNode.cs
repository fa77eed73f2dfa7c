// One simulated node: its engine (the real MirrorStateMachine), what survives a crash (disk record, the
// application's data, the "module started" flag), its port to the switch, and its drifting clock.
using System;
using System.Collections.Generic;
using ServiceKeeper.Engine.Mirror;

namespace ServiceKeeper.Simulation
{
    /// <summary>A node's clock: simulated time scaled by a drift rate, plus an offset.</summary>
    public sealed class NodeClock(Func<long> simTicks, double rate, TimeSpan offset) : TimeProvider
    {
        public static readonly DateTimeOffset Epoch = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
        public double Rate { get; } = rate;
        public override DateTimeOffset GetUtcNow() => Epoch + offset + TimeSpan.FromTicks((long)(simTicks() * Rate));
        /// <summary>Simulated ticks that pass while this clock advances by <paramref name="local"/>.</summary>
        public long SimTicks(TimeSpan local) => Math.Max(1, (long)(local.Ticks / Rate));
    }

    /// <summary>
    /// A replication connection (TCP): in order, no loss while it holds; a message that meets a cut port, a restarted
    /// or stalled-out peer, or a peer that is no longer secondary breaks it. The sender notices at its send timeout.
    /// </summary>
    public sealed class ReplicationConnection
    {
        public required int Id;
        public required SimNode From, To;
        public required int FromIncarnation, ToIncarnation;
        public long LastQueued, LastArrival, LastAckArrival;
        public long BrokenAt = -1;
        public string? BrokenWhy;
        public bool Reported;
        public bool Broken => BrokenAt >= 0;
    }

    public sealed class SimNode
    {
        public required string Name;
        public required NodeClock Clock;
        public SimNode Peer = null!;

        // ---- the engine process (gone on a crash)
        public MirrorStateMachine? Machine;
        public bool Up;
        public int Incarnation;
        public PeerView? Published;
        public long SendSequence;
        /// <summary>Writes go to the peer over Connection and wait for it: the source's session (ReplicationSource), which the
        /// machine's StartReplication opens, or the secondary's resync (the session stays once its copy is done).</summary>
        public bool Replicating;
        /// <summary>Between the machine's StartReplication and StopReplication (MirrorHost._replicationStarted).</summary>
        public bool ReplicationStarted;
        /// <summary>FenceWrites: the node gives way, its writes fail (never acknowledged) until it starts the application again.</summary>
        public bool Fenced;
        /// <summary>The replication connection to the peer while replicating (primary side).</summary>
        public ReplicationConnection? Connection;
        public int ProcedureToken;
        /// <summary>Events waiting while the engine is blocked on its stalled disk (handled in order), and when they are next drained.</summary>
        public readonly Queue<(MirrorEvent Event, string? Label)> Inbox = new();
        public long DrainAt = -1;
        public long ResyncPeerIncarnation;
        public long ResyncStartedAt;
        /// <summary>When this node's port was last cut (either way): a copy across it breaks.</summary>
        public long LastPortCut = -1;
        public readonly Dictionary<int, long> PendingWrites = new(); // write id -> issue time
        public bool ForcedSinceServing;
        public int AcknowledgedAtServeDecision;
        public bool PeerInSightAtServeDecision;

        // heartbeat receiver (liveness + replay guard)
        public long PeerIncarnationSeen = -1;
        public long PeerSequenceSeen = -1;
        public DateTimeOffset LastHeard;
        public bool PeerAlive;
        public PeerView? LastDelivered;

        // ---- persistent (survives a crash)
        public MirrorDisk Disk = MirrorDisk.Empty;
        public bool StartedFlag;
        public readonly List<int> Data = new();
        public readonly HashSet<int> DataSet = new();

        // ---- the machine room
        public bool PortIn = true, PortOut = true;
        /// <summary>Packet loss at this node's port, per direction (a bad cable or NIC: it hits every packet, the witness's too).</summary>
        public double LossIn, LossOut;
        public long LossUntil;
        public long StallUntil;
        public bool AppRunning;
        /// <summary>The virtual IP is gone while the application still stops (giving way): clients no longer reach it.</summary>
        public bool VipDown;
        public bool VipWithdrawn; // a witness probe found none while the current StartApplication ran
        public LossProbe? AtLoss;  // the witness probe made when the peer was lost (MirrorHost.ProbeAtLossAsync), not yet used
        public bool IsolatedAtLoss; // ...and it found no witness: the virtual IPs went, the next give-way probe says so

        public sealed class LossProbe
        {
            public bool? Answer;
            public readonly List<Action<bool>> Waiters = new();
        }
        public bool TornCrashPending;
        public long DownSince;

        public bool Reachable => PortIn && PortOut;
        public bool IsServing => Up && Machine!.IsServing;
        public MirrorStateName State => Up ? Machine!.State : MirrorStateName.Stop;

        public void Append(int write)
        {
            if (DataSet.Add(write)) Data.Add(write);
        }

        public void ReplaceData(IEnumerable<int> source)
        {
            Data.Clear();
            DataSet.Clear();
            foreach (var w in source) Append(w);
        }

        public string Describe()
        {
            if (!Up) return "down";
            var m = Machine!;
            return MirrorStateMachine.Name(m.State) + (m.Ready ? "" : "(T)") + (AppRunning ? " app" : "") +
                   " gen " + (m.Disk.Generation ?? "-") + (m.Disk.UpToDate ? " utd" : "") + (m.Disk.Consistent ? "" : " inconsistent") +
                   (m.RunningProcedure is { } p ? " [" + p + "]" : "") + " data " + Data.Count;
        }
    }
}
