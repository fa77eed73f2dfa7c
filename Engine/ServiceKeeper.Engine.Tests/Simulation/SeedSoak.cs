// The seed loop of the soak tests: every seed from 1 on, in parallel, the ones that broke an invariant kept, and
// those shown with the command that replays each.
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading.Tasks;
using ServiceKeeper.Simulation;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Simulation
{
    internal static class SeedSoak
    {
        /// <summary>The seed count from an environment variable (a positive number), else <paramref name="fallback"/>.</summary>
        public static int Count(string variable, int fallback) =>
            int.TryParse(Environment.GetEnvironmentVariable(variable), out var n) && n > 0 ? n : fallback;

        /// <summary>Runs seeds 1..<paramref name="seeds"/> in parallel; the results with a violation, by seed.</summary>
        /// <param name="label">What runs, for the line that tells the rate ("farm, all faults").</param>
        public static List<SimResult> Run(ITestOutputHelper output, string label, int seeds, Func<int, SimResult> run)
        {
            var failures = new ConcurrentBag<SimResult>();
            var watch = Stopwatch.StartNew();
            // One worker per core: an unbounded Parallel.For keeps asking the pool for threads and starves the tests that run
            // beside it (a replication test's connect waited 15 s for a pool thread).
            Parallel.For(1, seeds + 1, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, s =>
            {
                var r = run(s);
                if (r.Violation != null) failures.Add(r);
            });
            watch.Stop();
            output.WriteLine($"{label}: {seeds} seeds in {watch.Elapsed.TotalSeconds:0.0} s: {seeds / watch.Elapsed.TotalSeconds:0} seeds/s, {failures.Count} violations");
            return failures.OrderBy(f => f.Seed).ToList();
        }

        /// <summary>Shows the first ten of <paramref name="failing"/> with their replay command; fails when there is any.</summary>
        public static void AssertNone(ITestOutputHelper output, IReadOnlyList<SimResult> failing, string problem, Func<int, string> replay)
        {
            foreach (var f in failing.Take(10))
                output.WriteLine(ServiceKeeper.Simulation.Program.Summary(f) + $" (replay: {replay(f.Seed)})");
            Assert.True(failing.Count == 0, $"{problem}; first: " + (failing.Select(ServiceKeeper.Simulation.Program.Summary).FirstOrDefault() ?? ""));
        }
    }
}
