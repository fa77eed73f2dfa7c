// The numbers behind the default pulse and timeout, and the formula the validator can use to warn about
// settings that would fail over by themselves on a lossy network.
//
// Model: every datagram is lost independently with probability p (nft `numgen random mod 100 < 30 drop`
// does exactly that), and a sender may be late by up to J (scheduling under CPU saturation). The peer is
// falsely lost when the gap between two received packets exceeds the timeout T; as the gap after k losses
// is at most (k + 1)·P + J, that takes a run of at least m = floor((T - J) / P) losses. Such a run starts
// after a received packet with probability p^m, so on one ring, per direction:
//
//     false losses per year ≤ (1 - p) · p^m · (one year / P)
//
//   pulse  timeout   J      m   false PeerLost at p = 0.3      worst detection
//   300ms  1500ms    0ms    5   1.8e5 a year (20 an hour)      1.65 s
//   150ms  1500ms  100ms    9   2.9e3 a year
//   100ms  1000ms  100ms    9   4.3e3 a year  (farm 100ms × 10)
//   100ms  1800ms  100ms   17   0.29 a year
//    75ms  1500ms  100ms   18   0.11 a year
//    50ms  1500ms  100ms   28   1e-6 a year                    1.525 s
//    50ms  1500ms  500ms   20   0.015 a year  (half a second of starvation)
//
// Only the number of packets inside the timeout matters, so the defaults shorten the pulse rather than
// lengthen the timeout: 50 ms keeps detection at ~1.5 s and makes a false failover at 30 % loss a
// once-in-a-million-years event, for 20 datagrams of ~100-300 bytes a second per ring and peer.
using System;

namespace ServiceKeeper.Engine.Heartbeat
{
    public static class HeartbeatDefaults
    {
        public static readonly TimeSpan MirrorPulse = TimeSpan.FromMilliseconds(50);
        public static readonly TimeSpan MirrorTimeout = TimeSpan.FromMilliseconds(1500);
        public static readonly TimeSpan FarmPulse = TimeSpan.FromMilliseconds(50);
        public const int FarmLostCount = 30;

        /// <summary>How late a sender may be under CPU saturation, as budgeted by the table above.</summary>
        public static readonly TimeSpan SchedulingJitter = TimeSpan.FromMilliseconds(100);

        private static readonly TimeSpan Year = TimeSpan.FromDays(365.25);

        /// <summary>Consecutive losses needed for a false PeerLost (m above).</summary>
        public static int LossesForFalseAlarm(TimeSpan pulse, TimeSpan timeout, TimeSpan jitter)
        {
            if (pulse <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(pulse), pulse, "pulse must be positive");
            return Math.Max(0, (int)Math.Floor((timeout - jitter) / pulse));
        }

        /// <summary>Upper bound of false PeerLost events a year on one ring, one direction, at a given loss rate.</summary>
        public static double ExpectedFalseLossesPerYear(TimeSpan pulse, TimeSpan timeout, double lossRate, TimeSpan jitter)
        {
            if (lossRate is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(lossRate), lossRate, "a probability");
            var m = LossesForFalseAlarm(pulse, timeout, jitter);
            return (1 - lossRate) * Math.Pow(lossRate, m) * (Year / pulse);
        }
    }
}
