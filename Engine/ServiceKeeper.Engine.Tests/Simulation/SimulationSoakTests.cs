// CI's share of the simulation: as many mirror seeds (all faults on) as fit in about two minutes on a
// loaded two-core machine, with no violation. The long soak is build.ps1 -Task Simulate -Seeds 100000.
using ServiceKeeper.Simulation;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Simulation
{
    public class SimulationSoakTests(ITestOutputHelper output)
    {
        /// <summary>Seeds CI runs: about two minutes on 2 loaded cores (130-350 seeds/s measured); SK_SIM_SEEDS overrides.</summary>
        private static int Seeds => SeedSoak.Count("SK_SIM_SEEDS", 16_000);

        [Fact]
        public void MirrorSimulation_AllFaults_ManySeeds_NoViolation()
        {
            var failures = SeedSoak.Run(output, "mirror, all faults", Seeds, s => MirrorSimulation.Run(new SimOptions { Seed = s }));
            SeedSoak.AssertNone(output, failures, $"{failures.Count} seeds violate an invariant", seed => $"build.ps1 -Task Simulate -Seed {seed}");
        }
    }
}
