// The heartbeat rules against random packet loss, in simulated time: the defaults must never lose a live
// peer at 30 % loss on its only ring, and the simulation must agree with the formula in HeartbeatDefaults
// that the defaults were chosen with.
using System;
using ServiceKeeper.Engine.Heartbeat;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Heartbeat
{
    public class HeartbeatLossTests
    {
        private const double LossRate = 0.3;

        /// <summary>One peer on one ring sending every pulse, each packet lost with <paramref name="lossRate"/>
        /// and late by a random 0..<paramref name="jitter"/> (plus a rare 300 ms stall when
        /// <paramref name="stalls"/>); liveness evaluated every pulse/2. Returns the number of PeerLost.</summary>
        private static int FalseLosses(
            TimeSpan pulse, TimeSpan timeout, TimeSpan duration, double lossRate, TimeSpan jitter, bool stalls, int seed)
        {
            var random = new Random(seed);
            var liveness = new PeerLiveness([("n2", [0])], timeout, TimeSpan.Zero);
            liveness.Heard("n2", 0, TimeSpan.Zero);
            var evaluateEvery = pulse / 2;
            var nextEvaluation = evaluateEvery;
            var lost = 0;
            for (var sendAt = pulse; sendAt < duration; sendAt += pulse)
            {
                var delay = jitter * random.NextDouble();
                if (stalls && random.Next(10_000) == 0) delay += TimeSpan.FromMilliseconds(300);
                var arrival = sendAt + delay;
                for (; nextEvaluation < arrival; nextEvaluation += evaluateEvery)
                    foreach (var e in liveness.Evaluate(nextEvaluation)) if (e is PeerLost) lost++;
                if (random.NextDouble() >= lossRate) liveness.Heard("n2", 0, arrival);
            }
            return lost;
        }

        [Fact]
        public void Defaults_ThirtyPercentLossOnTheOnlyRing_SimulatedDay_NoFalsePeerLost()
        {
            // Formula: about 1e-6 false losses a year with 100 ms of jitter. A day with jitter and 300 ms stalls
            // (~one every 8 minutes) must show none.
            var lost = FalseLosses(HeartbeatDefaults.MirrorPulse, HeartbeatDefaults.MirrorTimeout, TimeSpan.FromHours(24),
                LossRate, HeartbeatDefaults.SchedulingJitter, stalls: true, seed: 1);

            Assert.Equal(0, lost);
        }

        [Fact]
        public void FarmDefaults_ThirtyPercentLoss_SimulatedDay_NoFalsePeerLost()
        {
            var lost = FalseLosses(HeartbeatDefaults.FarmPulse, HeartbeatDefaults.FarmPulse * HeartbeatDefaults.FarmLostCount,
                TimeSpan.FromHours(24), LossRate, HeartbeatDefaults.SchedulingJitter, stalls: true, seed: 2);

            Assert.Equal(0, lost);
        }

        [Fact]
        public void FormerDefaults300ms1500ms_ThirtyPercentLoss_LoseALivePeerSeveralTimesAnHour()
        {
            // Why the defaults changed: 5 pulses per timeout, 0.7 * 0.3^5 * 12000 packets = ~20 an hour.
            var lost = FalseLosses(TimeSpan.FromMilliseconds(300), TimeSpan.FromMilliseconds(1500), TimeSpan.FromHours(1),
                LossRate, TimeSpan.Zero, stalls: false, seed: 3);

            Assert.InRange(lost, 5, 60);
        }

        [Theory]
        [InlineData(300, 1500, 0.3)] // m = 5: 0.7 * 0.3^5 * 12000 = ~20 an hour
        [InlineData(100, 600, 0.3)]  // m = 6: ~18 an hour
        [InlineData(200, 1000, 0.5)] // m = 5: 0.5 * 0.5^5 * 18000 = ~280 an hour
        public void Simulation_AgreesWithTheFormula(int pulseMs, int timeoutMs, double lossRate)
        {
            var pulse = TimeSpan.FromMilliseconds(pulseMs);
            var timeout = TimeSpan.FromMilliseconds(timeoutMs);
            var duration = TimeSpan.FromHours(40);
            var expected = HeartbeatDefaults.ExpectedFalseLossesPerYear(pulse, timeout, lossRate, TimeSpan.Zero)
                * (duration / TimeSpan.FromDays(365.25));

            var observed = FalseLosses(pulse, timeout, duration, lossRate, TimeSpan.Zero, stalls: false, seed: 4);

            Assert.InRange(observed, expected * 0.85, expected * 1.15);
        }

        [Fact]
        public void RecommendedDefaults_MeetTheTargets()
        {
            var mirror = HeartbeatDefaults.ExpectedFalseLossesPerYear(
                HeartbeatDefaults.MirrorPulse, HeartbeatDefaults.MirrorTimeout, LossRate, HeartbeatDefaults.SchedulingJitter);
            var farm = HeartbeatDefaults.ExpectedFalseLossesPerYear(
                HeartbeatDefaults.FarmPulse, HeartbeatDefaults.FarmPulse * HeartbeatDefaults.FarmLostCount, LossRate,
                HeartbeatDefaults.SchedulingJitter);

            Assert.True(mirror < 1e-3, $"mirror: {mirror} false losses a year");
            Assert.True(farm < 1e-3, $"farm: {farm} false losses a year per pair");
            // Detection: the timeout plus one evaluation period (pulse / 2).
            Assert.True(HeartbeatDefaults.MirrorTimeout + HeartbeatDefaults.MirrorPulse / 2 <= TimeSpan.FromSeconds(2));
            Assert.True(HeartbeatDefaults.FarmPulse * (HeartbeatDefaults.FarmLostCount + 0.5) <= TimeSpan.FromSeconds(2));
            // And the former defaults miss by five orders of magnitude.
            Assert.True(HeartbeatDefaults.ExpectedFalseLossesPerYear(
                TimeSpan.FromMilliseconds(300), TimeSpan.FromMilliseconds(1500), LossRate, TimeSpan.Zero) > 1e5);
        }

        [Theory]
        [InlineData(300, 1500, 0, 5)]
        [InlineData(300, 1500, 100, 4)]
        [InlineData(50, 1500, 100, 28)]
        [InlineData(100, 1800, 100, 17)]
        public void LossesForFalseAlarm_IsFloorOfTimeoutMinusJitterOverPulse(int pulse, int timeout, int jitter, int m)
        {
            Assert.Equal(m, HeartbeatDefaults.LossesForFalseAlarm(
                TimeSpan.FromMilliseconds(pulse), TimeSpan.FromMilliseconds(timeout), TimeSpan.FromMilliseconds(jitter)));
        }
    }
}
