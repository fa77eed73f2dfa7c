// Replay protection for the authenticated heartbeats of one (module, sender) stream. Pure, not thread-safe:
// the channel calls it under its lock.
//
// The sender numbers each send round once and sends that round on every ring, so one sequence legitimately
// arrives once per ring. The guard remembers, for the last 128 sequences, on which rings each was seen:
// the first copy is news, a copy on another ring proves that ring alive, a second copy on the same ring is
// a replay. A recorded packet can therefore refresh each ring at most once, which keeps an attacker from
// holding a dead peer "alive" by replaying its last heartbeats.
// Limit: the guard lives as long as this engine. After it restarts, a recorded stream of a peer that is
// down by then would be accepted again (send times are not trusted: clocks may differ); a live peer's
// newer incarnation supersedes such a stream at once.
using System;

namespace ServiceKeeper.Engine.Heartbeat
{
    public enum ReplayVerdict
    {
        /// <summary>The newest sequence of the newest incarnation: deliver the payload, refresh the ring.</summary>
        Fresh,

        /// <summary>Never seen, but older than one already delivered (reordered): refresh the ring only, since
        /// delivering its payload would roll the peer's state back.</summary>
        Late,

        /// <summary>Already seen on another ring: refresh this ring only, do not deliver twice.</summary>
        Duplicate,

        /// <summary>Seen on this ring already, older than the window, or from an older incarnation: drop.</summary>
        Replayed,
    }

    public sealed class ReplayGuard
    {
        public const int WindowSize = 128;

        // Ring mask per sequence, slot = sequence % WindowSize, valid for sequences in (_highest - 128, _highest].
        private readonly byte[] _seenOnRings = new byte[WindowSize];
        private bool _started;
        private ulong _incarnation;
        private ulong _highest;

        public ulong? Incarnation => _started ? _incarnation : null;

        public ReplayVerdict Check(ulong incarnation, ulong sequence, int ring)
        {
            if ((uint)ring >= HeartbeatPacket.MaxRings)
                throw new ArgumentOutOfRangeException(nameof(ring), ring, $"ring index must be 0..{HeartbeatPacket.MaxRings - 1}");
            var bit = (byte)(1 << ring);

            if (!_started || incarnation > _incarnation)
            {
                // A restarted sender numbers from scratch; its old window means nothing any more.
                Array.Clear(_seenOnRings);
                _started = true;
                _incarnation = incarnation;
                _highest = sequence;
                _seenOnRings[Slot(sequence)] = bit;
                return ReplayVerdict.Fresh;
            }
            if (incarnation < _incarnation) return ReplayVerdict.Replayed;

            if (sequence > _highest)
            {
                var advance = sequence - _highest;
                if (advance >= WindowSize) Array.Clear(_seenOnRings);
                else for (ulong s = _highest + 1; s != sequence; s++) _seenOnRings[Slot(s)] = 0;
                _highest = sequence;
                _seenOnRings[Slot(sequence)] = bit;
                return ReplayVerdict.Fresh;
            }

            if (_highest - sequence >= WindowSize) return ReplayVerdict.Replayed;
            ref var mask = ref _seenOnRings[Slot(sequence)];
            if ((mask & bit) != 0) return ReplayVerdict.Replayed;
            var seenElsewhere = mask != 0;
            mask |= bit;
            return seenElsewhere ? ReplayVerdict.Duplicate : ReplayVerdict.Late;
        }

        private static int Slot(ulong sequence) => (int)(sequence % WindowSize);
    }
}
