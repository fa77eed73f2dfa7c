// The deterministic simulator itself: a seed replays exactly, and switching off each protection the
// invariants rely on (MirrorSafety in the core, write acknowledgement and resync in the host model, loss
// detection and periodic heartbeats in the farm host model) makes the simulator report that invariant within a
// bounded number of seeds, on a fault mix where the same seeds with the protection on do not report it.
using System;
using System.Linq;
using ServiceKeeper.Simulation;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Simulation
{
    public class MirrorSimulationTests(ITestOutputHelper output)
    {
        [Fact]
        public void SameSeed_ReplaysTheSameTrace()
        {
            var options = new SimOptions { Seed = 7, Trace = true };

            var first = MirrorSimulation.Run(options);
            var second = MirrorSimulation.Run(options);

            Assert.True(first.Trace.Count > 50, "the trace is too short to mean anything");
            Assert.Equal(first.Trace, second.Trace);
            Assert.Equal(first.Steps, second.Steps);
        }

        [Fact]
        public void DifferentSeeds_DrawDifferentSchedules()
        {
            var a = MirrorSimulation.Run(new SimOptions { Seed = 1, Trace = true });
            var b = MirrorSimulation.Run(new SimOptions { Seed = 2, Trace = true });

            Assert.NotEqual(a.Trace, b.Trace);
        }

        [Fact]
        public void FailingRun_NamesTheInvariant_AndItsTraceShowsTheStepsLeadingToIt()
        {
            var options = WitnessProfile with { Off = Protection.WitnessCheck };
            var seed = FirstViolation(options, Invariants.NoDoubleServingWithWitness, 50);

            var run = MirrorSimulation.Run(options with { Seed = seed, Trace = true });

            Assert.Equal(Invariants.NoDoubleServingWithWitness, run.Violation!.Invariant);
            Assert.Contains(run.Trace, l => l.Contains("VIOLATION " + Invariants.NoDoubleServingWithWitness, StringComparison.Ordinal));
            Assert.Contains(run.Trace, l => l.Contains("fault: port cut", StringComparison.Ordinal));
            Assert.Contains(run.Trace, l => l.Contains("taking over", StringComparison.Ordinal));
            Assert.Matches(@"^\s+\d+\.\d{3}s n[12] ", run.Trace.First(l => l.Contains("fault: port cut", StringComparison.Ordinal)));
            Assert.Contains(run.Trace, l => l.StartsWith("state: ", StringComparison.Ordinal) || l.Contains("--  state: ", StringComparison.Ordinal));
        }

        // Witness: partitions only, the witness on the heartbeat switch. An isolated node that believes the witness
        // answers keeps serving while its peer takes over.
        private static readonly SimOptions WitnessProfile = new SimOptions { Witness = true, Faults = FaultKind.Partition }.Core();

        // Write acknowledgement: crashes only. A write acknowledged before the secondary applied it is gone when the
        // primary dies and the secondary takes over.
        private static readonly SimOptions AckProfile = new SimOptions { Witness = true, Faults = FaultKind.Crash }.Core();

        // Generations: crashes and partitions without a witness, so both nodes serve alone and their data diverges.
        private static readonly SimOptions GenerationProfile = new SimOptions { Witness = false, Faults = FaultKind.Crash | FaultKind.Partition }.Core();

        // Staleness: crashes only; a node that was down while the other served restarts alone.
        private static readonly SimOptions StaleProfile = new SimOptions { Witness = true, Faults = FaultKind.Crash }.Core();

        // Farm: crashes only (a dead node's share must move within the detection time), or message loss only (lost
        // heartbeats must be repaired by the next pulse, or the views never agree again and two nodes keep a share).
        private static readonly FarmSimOptions FarmCrashProfile = new() { Faults = FaultKind.Crash, FaultPhase = TimeSpan.FromSeconds(60) };
        private static readonly FarmSimOptions FarmLossProfile = new() { Faults = FaultKind.PacketLoss | FaultKind.Crash, FaultPhase = TimeSpan.FromSeconds(60) };

        [Fact]
        public void WitnessCheckOff_NoDoubleServingWithWitness_IsReported() =>
            AssertCaught(WitnessProfile, Protection.WitnessCheck, Invariants.NoDoubleServingWithWitness, maxSeeds: 20);

        [Fact]
        public void WriteAckWaitOff_NoLostAcknowledgedWrite_IsReported() =>
            AssertCaught(AckProfile, Protection.WriteAckWait, Invariants.NoLostAcknowledgedWrite, maxSeeds: 60);

        [Fact]
        public void GenerationComparisonOff_DivergenceDetected_IsReported() =>
            AssertCaught(GenerationProfile, Protection.GenerationComparison, Invariants.DivergenceDetected, maxSeeds: 20);

        [Fact]
        public void StaleCheckOff_StaleNodeNeverServes_IsReported() =>
            AssertCaught(StaleProfile, Protection.StaleCheck, Invariants.StaleNodeNeverServes, maxSeeds: 40);

        [Fact]
        public void ResyncOff_ConvergesAfterFaults_IsReported() =>
            AssertCaught(StaleProfile, Protection.Resync, Invariants.ConvergesAfterFaults, maxSeeds: 10);

        [Fact]
        public void FarmPeerLossDetectionOff_FarmNoOrphanBucket_IsReported() =>
            AssertFarmCaught(FarmCrashProfile, FarmProtection.PeerLossDetection, FarmSimulation.NoOrphanBucket, maxSeeds: 10);

        [Fact]
        public void FarmPeriodicHeartbeatsOff_FarmNoDoubleOwner_IsReported() =>
            AssertFarmCaught(FarmLossProfile, FarmProtection.PeriodicHeartbeats, FarmSimulation.NoDoubleOwner, maxSeeds: 40);

        private void AssertFarmCaught(FarmSimOptions profile, FarmProtection off, string invariant, int maxSeeds)
        {
            var seed = -1;
            for (var s = 1; s <= maxSeeds && seed < 0; s++)
                if (FarmSimulation.Run(profile with { Seed = s, Off = off }).Violation?.Invariant == invariant) seed = s;
            output.WriteLine($"farm {off} off: {invariant} reported at seed {seed} (bound {maxSeeds})");
            Assert.True(seed > 0, $"farm {off} off: {invariant} not reported within {maxSeeds} seeds");
            for (var s = 1; s <= seed; s++)
            {
                var on = FarmSimulation.Run(profile with { Seed = s });
                Assert.True(on.Violation == null, $"farm seed {s} with {off} on: {on.Violation?.Invariant}: {on.Violation?.Message}");
            }
        }

        /// <summary>
        /// With the protection off the invariant is reported within maxSeeds seeds; with it on, the seeds up to that one
        /// do not report it (so the report is the protection's doing, not noise).
        /// </summary>
        private void AssertCaught(SimOptions profile, Protection off, string invariant, int maxSeeds)
        {
            var seed = FirstViolation(profile with { Off = off }, invariant, maxSeeds);
            output.WriteLine($"{off} off: {invariant} reported at seed {seed} (bound {maxSeeds})");
            Assert.True(seed > 0, $"{off} off: {invariant} not reported within {maxSeeds} seeds");
            for (var s = 1; s <= seed; s++)
            {
                var on = MirrorSimulation.Run(profile with { Seed = s });
                Assert.True(on.Violation == null, $"seed {s} with {off} on reports {on.Violation?.Invariant}: {on.Violation?.Message}");
            }
        }

        private static int FirstViolation(SimOptions options, string invariant, int maxSeeds)
        {
            for (var s = 1; s <= maxSeeds; s++)
                if (MirrorSimulation.Run(options with { Seed = s }).Violation?.Invariant == invariant) return s;
            return -1;
        }
    }
}
