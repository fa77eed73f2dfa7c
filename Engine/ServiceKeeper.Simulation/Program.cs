// servicekeeper-sim: runs the mirror simulation for one seed (with its trace) or for many seeds.
//   servicekeeper-sim --seed 42                 one run, full trace
//   servicekeeper-sim --seeds 10000 [--from 1]  many runs; each failing seed is replayed for its trace
//   --off WitnessCheck,GenerationComparison,WriteAckWait,StaleCheck   switch protections off
//   --witness on|off                            force the configuration (default: chosen by the seed)
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;

namespace ServiceKeeper.Simulation
{
    public static class Program
    {
        public static int Main(string[] args)
        {
            int? seed = null;
            int seeds = 0, from = 1, traceLines = 80;
            var options = new SimOptions();
            for (var i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException(args[i] + " needs a value");
                switch (args[i])
                {
                    case "--seed": seed = int.Parse(Next()); break;
                    case "--seeds": seeds = int.Parse(Next()); break;
                    case "--from": from = int.Parse(Next()); break;
                    case "--trace-lines": traceLines = int.Parse(Next()); break;
                    case "--off": options = options with { Off = Enum.Parse<Protection>(Next(), ignoreCase: true) }; break;
                    case "--witness": options = options with { Witness = Next() == "on" }; break;
                    case "--faults": options = options with { Faults = Enum.Parse<FaultKind>(Next(), ignoreCase: true) }; break;
                    case "--core": options = options.Core(); break;
                    case "--engine-stop-order": options = options with { EngineStopReplicationOrder = true }; break;
                    case "--fault-seconds": options = options with { FaultPhase = TimeSpan.FromSeconds(int.Parse(Next())) }; break;
                    default:
                        Console.Error.WriteLine($"unknown argument {args[i]}; usage: servicekeeper-sim --seed N | --seeds COUNT [--from N] [--off PROTECTION] [--witness on|off]");
                        return 2;
                }
            }
            if (seed is { } one)
            {
                var result = MirrorSimulation.Run(options with { Seed = one, Trace = true });
                foreach (var line in result.Trace) Console.WriteLine(line);
                Console.WriteLine(Summary(result));
                return result.Violation == null ? 0 : 1;
            }
            if (seeds <= 0) seeds = 1000;
            return RunMany(options, from, seeds, traceLines);
        }

        public static string Summary(SimResult r) => r.Violation is { } v
            ? $"seed {r.Seed}: VIOLATION {v.Invariant} at {v.At.TotalSeconds:0.000}s: {v.Message}"
            : $"seed {r.Seed}: ok ({r.Outcome}; {r.Steps} steps, {r.SimulatedTime.TotalSeconds:0} s simulated, witness {(r.Witness ? "on" : "off")})";

        private static int RunMany(SimOptions options, int from, int count, int traceLines)
        {
            var watch = Stopwatch.StartNew();
            var failures = new List<SimResult>();
            var outcomes = new Dictionary<string, int>();
            long steps = 0;
            var simulated = TimeSpan.Zero;
            var lockObject = new object();
            System.Threading.Tasks.Parallel.For(from, from + count, s =>
            {
                var r = MirrorSimulation.Run(options with { Seed = s });
                lock (lockObject)
                {
                    steps += r.Steps;
                    simulated += r.SimulatedTime;
                    if (r.Violation != null) failures.Add(r);
                    var key = r.Violation != null ? "violation " + r.Violation.Invariant : System.Text.RegularExpressions.Regex.Replace(r.Outcome, @"[\d.]+ s", "N s");
                    outcomes[key] = outcomes.GetValueOrDefault(key) + 1;
                }
            });
            watch.Stop();
            foreach (var f in failures.OrderBy(f => f.Seed).Take(3))
            {
                var replay = MirrorSimulation.Run(options with { Seed = f.Seed, Trace = true });
                Console.WriteLine($"---- seed {f.Seed}: {replay.Violation?.Invariant} (last {traceLines} steps; replay: build.ps1 -Task Simulate -Seed {f.Seed})");
                foreach (var line in replay.Trace.Skip(Math.Max(0, replay.Trace.Count - traceLines))) Console.WriteLine(line);
            }
            foreach (var f in failures.OrderBy(f => f.Seed)) Console.WriteLine(Program.Summary(f));
            foreach (var (k, v) in outcomes.OrderByDescending(kv => kv.Value)) Console.WriteLine($"  {v,6}  {k}");
            Console.WriteLine($"{count / watch.Elapsed.TotalSeconds:0} seeds/s, {steps / watch.Elapsed.TotalSeconds / 1e6:0.0} M steps/s, " +
                              $"{simulated.TotalHours:0} simulated hours in {watch.Elapsed.TotalSeconds:0.0} s ({Environment.ProcessorCount} cores)");
            Console.WriteLine($"{count} seeds, {failures.Count} violations");
            return failures.Count == 0 ? 0 : 1;
        }
    }
}
