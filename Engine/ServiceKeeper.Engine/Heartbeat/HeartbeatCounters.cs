// Live counters behind HeartbeatStatistics, incremented from the receive and send threads without locks.
// A channel's counters roll up into its service's, so one increment keeps both views right.
using System;
using System.Threading;

namespace ServiceKeeper.Engine.Heartbeat
{
    internal enum HeartbeatCounter
    {
        Sent, Received, Malformed, Forged, WrongCluster, Replayed, UnknownModule, UnknownPeer, Misrouted, SendErrors,
    }

    internal sealed class HeartbeatCounters(HeartbeatCounters? parent = null)
    {
        private readonly long[] _values = new long[Enum.GetValues<HeartbeatCounter>().Length];

        public void Increment(HeartbeatCounter counter)
        {
            Interlocked.Increment(ref _values[(int)counter]);
            parent?.Increment(counter);
        }

        public long this[HeartbeatCounter counter] => Interlocked.Read(ref _values[(int)counter]);

        public HeartbeatStatistics Snapshot() => new(
            this[HeartbeatCounter.Sent], this[HeartbeatCounter.Received], this[HeartbeatCounter.Malformed],
            this[HeartbeatCounter.Forged], this[HeartbeatCounter.WrongCluster], this[HeartbeatCounter.Replayed],
            this[HeartbeatCounter.UnknownModule], this[HeartbeatCounter.UnknownPeer], this[HeartbeatCounter.Misrouted],
            this[HeartbeatCounter.SendErrors]);
    }
}
