// CI's share of the simulation: as many mirror seeds (all faults on) as fit in about two minutes on a
// loaded two-core machine, zero violations required. The long soak is build.ps1 -Task Simulate -Seeds 100000.
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
        /// <summary>Seeds CI runs (tuned to about two minutes on 2 loaded cores; SK_SIM_SEEDS overrides).</summary>
        private static int Seeds => int.TryParse(Environment.GetEnvironmentVariable("SK_SIM_SEEDS"), out var n) && n > 0 ? n : 12_000;

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
            foreach (var f in failures.OrderBy(f => f.Seed).Take(10)) output.WriteLine(ServiceKeeper.Simulation.Program.Summary(f) + $" (replay: build.ps1 -Task Simulate -Seed {f.Seed})");
            Assert.True(failures.IsEmpty, $"{failures.Count} of {Seeds} seeds violate an invariant; first: " +
                                          (failures.OrderBy(f => f.Seed).Select(ServiceKeeper.Simulation.Program.Summary).FirstOrDefault() ?? ""));
        }
    }
}
