// Who is alive, per peer and per ring, from the times packets were heard. Pure and clock-free: every call
// takes `now` (elapsed time on the caller's TimeProvider), so the same code runs in the service, in unit
// tests and in the simulator. Not thread-safe: the channel calls it under its lock.
//
//   per ring:  Unknown --heard--> Up --silent > timeout--> Down --heard--> Up
//              Unknown --silent > timeout since start--> Down
//   per peer:  Unknown/Lost --heard on any ring--> Alive           (PeerFound)
//              Unknown/Alive --every ring silent > timeout--> Lost  (PeerLost)
//
// The peer rule looks at the last packet on ANY ring, so losing one ring of two never loses the peer, and
// on a lossy single ring every packet that gets through restarts the whole timeout.
using System;
using System.Collections.Generic;
using System.Linq;

namespace ServiceKeeper.Engine.Heartbeat
{
    public enum PeerStatus { Unknown, Alive, Lost }

    public enum RingStatus { Unknown, Up, Down }

    public sealed class PeerLiveness
    {
        private static readonly HeartbeatEvent[] None = [];

        private readonly Dictionary<string, PeerEntry> _peers = new(StringComparer.Ordinal);

        public PeerLiveness(IEnumerable<(string Node, IReadOnlyCollection<int> Rings)> peers, TimeSpan timeout, TimeSpan start)
        {
            if (timeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "timeout must be positive");
            Timeout = timeout;
            foreach (var (node, rings) in peers)
            {
                if (rings.Count == 0) throw new ArgumentException($"Peer '{node}' has no ring.", nameof(peers));
                var entry = new PeerEntry(rings.Distinct().Order().Select(r => new RingEntry(r, start)).ToArray());
                if (!_peers.TryAdd(node, entry)) throw new ArgumentException($"Peer '{node}' is listed twice.", nameof(peers));
            }
        }

        public TimeSpan Timeout { get; }

        public PeerStatus StatusOf(string node) => _peers.TryGetValue(node, out var p) ? p.Status : PeerStatus.Unknown;

        public RingStatus StatusOf(string node, int ring) =>
            _peers.TryGetValue(node, out var p) && p.Find(ring) is { } r ? r.Status : RingStatus.Unknown;

        /// <summary>Last time anything was heard from the peer on any ring; null if never.</summary>
        public TimeSpan? LastHeard(string node) => _peers.TryGetValue(node, out var p) ? p.LastHeard : null;

        public bool Knows(string node, int ring) => _peers.TryGetValue(node, out var p) && p.Find(ring) != null;

        /// <summary>An authenticated, non-replayed packet arrived. Returns PeerFound and/or RingUp when they flip;
        /// a packet from a peer or ring not configured changes nothing.</summary>
        public IReadOnlyList<HeartbeatEvent> Heard(string node, int ring, TimeSpan now)
        {
            if (!_peers.TryGetValue(node, out var peer) || peer.Find(ring) is not { } entry) return None;
            List<HeartbeatEvent>? events = null;
            // A late-processed packet must not move the clock backwards.
            if (now > entry.Last) entry.Last = now;
            if (peer.LastHeard is not { } last || now > last) peer.LastHeard = now;
            if (peer.Status != PeerStatus.Alive)
            {
                peer.Status = PeerStatus.Alive;
                (events ??= []).Add(new PeerFound(node));
            }
            if (entry.Status != RingStatus.Up)
            {
                entry.Status = RingStatus.Up;
                (events ??= []).Add(new RingUp(node, ring));
            }
            return events ?? (IReadOnlyList<HeartbeatEvent>)None;
        }

        /// <summary>Rings and peers silent for longer than <see cref="Timeout"/> go down / lost. Call it often
        /// (every pulse/2): detection happens at the first call after the deadline.</summary>
        public IReadOnlyList<HeartbeatEvent> Evaluate(TimeSpan now)
        {
            List<HeartbeatEvent>? events = null;
            foreach (var (node, peer) in _peers)
            {
                var anyRingAlive = false;
                foreach (var ring in peer.Rings)
                {
                    var silent = now - ring.Last > Timeout;
                    if (!silent) anyRingAlive = true;
                    else if (ring.Status != RingStatus.Down)
                    {
                        ring.Status = RingStatus.Down;
                        (events ??= []).Add(new RingDown(node, ring.Index));
                    }
                }
                if (!anyRingAlive && peer.Status != PeerStatus.Lost)
                {
                    peer.Status = PeerStatus.Lost;
                    (events ??= []).Add(new PeerLost(node));
                }
            }
            return events ?? (IReadOnlyList<HeartbeatEvent>)None;
        }

        private sealed class PeerEntry(RingEntry[] rings)
        {
            public RingEntry[] Rings { get; } = rings;
            public PeerStatus Status { get; set; }
            public TimeSpan? LastHeard { get; set; }

            public RingEntry? Find(int ring)
            {
                foreach (var r in Rings) if (r.Index == ring) return r;
                return null;
            }
        }

        // Last starts at the channel's start time, so a ring never heard goes down one timeout after start.
        private sealed class RingEntry(int index, TimeSpan start)
        {
            public int Index { get; } = index;
            public TimeSpan Last { get; set; } = start;
            public RingStatus Status { get; set; }
        }
    }
}
