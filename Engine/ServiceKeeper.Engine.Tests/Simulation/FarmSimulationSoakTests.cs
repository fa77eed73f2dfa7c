// CI's share of the farm simulation: as many farm seeds as fit in about 30-45 s on a loaded two-core machine, with
// every fault kind, and a share with crashes and cable cuts only (the churn that orphaned buckets before). No
// violation is allowed: the farm has no open findings. The long soak is build.ps1 -Task Simulate -Seeds 10000.
using ServiceKeeper.Simulation;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Simulation
{
    public class FarmSimulationSoakTests(ITestOutputHelper output)
    {
        /// <summary>Seeds CI runs per fault mix (80-190 seeds/s measured in Release on 2 cores); SK_SIM_FARM_SEEDS overrides.</summary>
        private static int Seeds => SeedSoak.Count("SK_SIM_FARM_SEEDS", 2000);

        [Fact]
        public void FarmSimulation_AllFaults_ManySeeds_NoViolation() => Soak(new FarmSimOptions(), Seeds, "all faults", "");

        [Fact]
        public void FarmSimulation_CrashesAndCuts_ManySeeds_NoViolation() =>
            Soak(new FarmSimOptions { Faults = FaultKind.Crash | FaultKind.Partition }, Seeds / 2, "crashes and cuts", " --farm-faults Crash,Partition");

        private void Soak(FarmSimOptions profile, int seeds, string what, string replayArgs)
        {
            var failures = SeedSoak.Run(output, $"farm, {what}", seeds, s => FarmSimulation.Run(profile with { Seed = s }));
            SeedSoak.AssertNone(output, failures, $"farm, {what}: {failures.Count} seeds violate an invariant",
                seed => $"servicekeeper-sim --model farm{replayArgs} --seed {seed}");
        }
    }
}
