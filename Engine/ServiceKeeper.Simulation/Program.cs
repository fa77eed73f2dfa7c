// servicekeeper-sim: runs the mirror and farm simulations for one seed (with their traces) or for many seeds.
//   servicekeeper-sim --seed 42                 one seed, full traces (mirror, then farm)
//   servicekeeper-sim --seeds 10000 [--from 1]  many seeds; each failing seed is replayed for its trace
//   --model mirror|farm|both                    which protocol (default both: a seed runs one mirror and one farm schedule)
//   --farm-faults Crash,Partition,...           the farm's fault kinds (default all)
//   --off WitnessCheck,GenerationComparison,WriteAckWait,StaleCheck,Resync   switch mirror protections off
//   --farm-off PeerLossDetection,PeriodicHeartbeats                           switch farm protections off
//   --witness on|off                            force the mirror configuration (default: chosen by the seed)
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
            var farm = new FarmSimOptions();
            var model = "both";
            for (var i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException(args[i] + " needs a value");
                switch (args[i])
                {
                    case "--seed": seed = int.Parse(Next()); break;
                    case "--seeds": seeds = int.Parse(Next()); break;
                    case "--from": from = int.Parse(Next()); break;
                    case "--trace-lines": traceLines = int.Parse(Next()); break;
                    case "--model": model = Next(); break;
                    case "--off": options = options with { Off = Enum.Parse<Protection>(Next(), ignoreCase: true) }; break;
                    case "--farm-faults": farm = farm with { Faults = Enum.Parse<FaultKind>(Next(), ignoreCase: true) }; break;
                    case "--farm-off": farm = farm with { Off = Enum.Parse<FarmProtection>(Next(), ignoreCase: true) }; break;
                    case "--witness": options = options with { Witness = Next() == "on" }; break;
                    case "--faults": options = options with { Faults = Enum.Parse<FaultKind>(Next(), ignoreCase: true) }; break;
                    case "--core": options = options.Core(); break;
                    case "--fault-seconds":
                        var phase = TimeSpan.FromSeconds(int.Parse(Next()));
                        options = options with { FaultPhase = phase };
                        farm = farm with { FaultPhase = phase };
                        break;
                    default:
                        Console.Error.WriteLine($"unknown argument {args[i]}; usage: servicekeeper-sim --seed N | --seeds COUNT [--from N] [--model mirror|farm|both (default both)] [--off PROTECTION] [--farm-off PROTECTION] [--farm-faults KINDS] [--witness on|off]");
                        return 2;
                }
            }
            if (model is not ("mirror" or "farm" or "both"))
            {
                Console.Error.WriteLine("--model takes mirror, farm or both");
                return 2;
            }
            var runs = new List<Func<int, bool, SimResult>>();
            if (model is "mirror" or "both") runs.Add((s, trace) => MirrorSimulation.Run(options with { Seed = s, Trace = trace }));
            if (model is "farm" or "both") runs.Add((s, trace) => FarmSimulation.Run(farm with { Seed = s, Trace = trace }));
            if (seed is { } one)
            {
                var failed = false;
                foreach (var run in runs)
                {
                    var result = run(one, true);
                    foreach (var line in result.Trace) Console.WriteLine(line);
                    Console.WriteLine(Summary(result));
                    failed |= result.Violation != null;
                }
                return failed ? 1 : 0;
            }
            if (seeds <= 0) seeds = 1000;
            return RunMany(runs, from, seeds, traceLines);
        }

        public static string Summary(SimResult r) => r.Violation is { } v
            ? $"seed {r.Seed}: VIOLATION {v.Invariant} at {v.At.TotalSeconds:0.000}s: {v.Message}"
            : $"seed {r.Seed}: ok ({r.Outcome}; {r.Steps} steps, {r.SimulatedTime.TotalSeconds:0} s simulated)";

        /// <summary>Runs the seeds on every core; returns the failures and prints what a CI log needs.</summary>
        public static int RunMany(IReadOnlyList<Func<int, bool, SimResult>> runs, int from, int count, int traceLines)
        {
            var watch = Stopwatch.StartNew();
            var failures = new List<(int Run, SimResult Result)>();
            var outcomes = new Dictionary<string, int>();
            long steps = 0;
            var simulated = TimeSpan.Zero;
            var lockObject = new object();
            System.Threading.Tasks.Parallel.For(from, from + count, s =>
            {
                for (var k = 0; k < runs.Count; k++)
                {
                    var r = runs[k](s, false);
                    lock (lockObject)
                    {
                        steps += r.Steps;
                        simulated += r.SimulatedTime;
                        if (r.Violation != null) failures.Add((k, r));
                        var key = r.Violation != null ? "violation " + r.Violation.Invariant : System.Text.RegularExpressions.Regex.Replace(r.Outcome, @"[\d.]+ s", "N s");
                        outcomes[key] = outcomes.GetValueOrDefault(key) + 1;
                    }
                }
            });
            watch.Stop();
            foreach (var (k, f) in failures.OrderBy(f => f.Result.Seed).Take(3))
            {
                var replay = runs[k](f.Seed, true);
                Console.WriteLine($"---- seed {f.Seed}: {replay.Violation?.Invariant} (last {traceLines} steps; replay: build.ps1 -Task Simulate -Seed {f.Seed})");
                foreach (var line in replay.Trace.Skip(Math.Max(0, replay.Trace.Count - traceLines))) Console.WriteLine(line);
            }
            foreach (var (_, f) in failures.OrderBy(f => f.Result.Seed)) Console.WriteLine(Summary(f));
            foreach (var (k, v) in outcomes.OrderByDescending(kv => kv.Value)) Console.WriteLine($"  {v,6}  {k}");
            Console.WriteLine($"{count / watch.Elapsed.TotalSeconds:0.0} seeds/s, {steps / watch.Elapsed.TotalSeconds / 1e6:0.0} M steps/s, " +
                              $"{simulated.TotalHours:0} simulated hours in {watch.Elapsed.TotalSeconds:0.0} s ({Environment.ProcessorCount} cores)");
            Console.WriteLine($"{count} seeds, {failures.Count} violations");
            return failures.Count == 0 ? 0 : 1;
        }
    }
}
