// CI's share of the simulation: as many mirror seeds (all faults on) as fit in about two minutes on a
// loaded two-core machine, with no violation. The long soak is build.ps1 -Task Simulate -Seeds 100000.
using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Linq;
using System.Threading.Tasks;
using ServiceKeeper.Simulation;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Simulation
{
    public class SimulationSoakTests(ITestOutputHelper output)
    {
        /// <summary>Seeds CI runs: about two minutes on 2 loaded cores (130-350 seeds/s measured); SK_SIM_SEEDS overrides.</summary>
        private static int Seeds => int.TryParse(Environment.GetEnvironmentVariable("SK_SIM_SEEDS"), out var n) && n > 0 ? n : 16_000;

        [Fact]
        public void MirrorSimulation_AllFaults_ManySeeds_NoViolation()
        {
            var failures = new ConcurrentBag<SimResult>();
            var watch = Stopwatch.StartNew();
            Parallel.For(1, Seeds + 1, s =>
            {
                var r = MirrorSimulation.Run(new SimOptions { Seed = s });
                if (r.Violation != null) failures.Add(r);
            });
            watch.Stop();
            output.WriteLine($"{Seeds} seeds in {watch.Elapsed.TotalSeconds:0.0} s: {Seeds / watch.Elapsed.TotalSeconds:0} seeds/s, {failures.Count} violations");
            var ordered = failures.OrderBy(f => f.Seed).ToList();
            foreach (var f in ordered.Take(10))
                output.WriteLine(ServiceKeeper.Simulation.Program.Summary(f) + $" (replay: build.ps1 -Task Simulate -Seed {f.Seed})");
            Assert.True(ordered.Count == 0, $"{ordered.Count} seeds violate an invariant; first: " +
                                            (ordered.Select(ServiceKeeper.Simulation.Program.Summary).FirstOrDefault() ?? ""));
        }
    }
}
