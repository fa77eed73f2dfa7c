// servicekeeper-bench: benchmarks that need real engines in network namespaces (root only).
//   servicekeeper-bench failover [--trials N] [--out DIR] [--scenarios a,b] [--keep-files]
//   servicekeeper-bench farm [--seconds N] [--connections N] [--threads N] [--rounds N] [--out DIR] [--keep-files]
//   servicekeeper-bench rfs [--rounds N] [--resync-rounds N] [--resync-mib N] [--out DIR] [--keep-files]
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading;
using ServiceKeeper.Testing;

namespace ServiceKeeper.Bench;

public static class Program
{
    private const string Usage = """
        Usage: servicekeeper-bench failover [--trials N] [--out DIR] [--scenarios LIST] [--keep-files]
               servicekeeper-bench farm [--seconds N] [--connections N] [--threads N] [--rounds N] [--out DIR] [--keep-files]
               servicekeeper-bench rfs [--rounds N] [--big-mib N] [--small-mib N] [--fsyncs N] [--resync-mib N]
                                       [--resync-files N] [--resync-rounds N] [--cold|--warm]
                                       [--phases writes,resync,disk] [--out DIR] [--keep-files]

          failover     RTO as a client sees it: a client namespace polls an HTTP application through
                       the VIP, the primary's cable is cut, RTO = last answer from the old primary to
                       first answer from the new one. ServiceKeeper (default and tuned heartbeats) and
                       keepalived (advert_int 1 and 0.1) on the same namespace topology.
          --trials N   trials per scenario (default 20)
          --out DIR    where failover.md, failover.csv and failover.png go (default out/bench)
          --scenarios  comma-separated subset of: {0}
          --keep-files leave /tmp/<lab prefix> (engine and keepalived logs) on disk

          farm         a farm module on 3 nginx nodes driven by wrk from the client namespace: requests/s through
                       the VIP with 1, 2, 3 nodes vs one node directly, imbalance at 3 nodes, failed requests
                       while a node is cut and when it returns (farm.md, farm.csv). Defaults: 6 s per point,
                       16 connections, 2 threads, 3 rounds.

          rfs          replicated directories on two engines, all under /tmp: dd 1 MiB and 4 KiB sequential writes
                       (with and without conv=fdatasync) and 4 KiB write+fsync latency on the raw directory,
                       libfuse's C passthrough example, ServiceKeeper ALONE, replicated sync and sync-disk; then
                       the resync of a 1% change (4 KiB and 64 KiB blocks) vs rsync --inplace --no-whole-file
                       over the lab network (rfs.md, rfs.csv, rfs.png). Defaults: 5 rounds, 256 MiB (1 MiB
                       blocks), 64 MiB (4 KiB blocks), 200 fsyncs, 1024 MiB in 64 files, 3 resync rounds,
                       page cache dropped before each resync and each rsync (--warm: not dropped).

        Needs root, iproute2, nftables, python3, keepalived (failover), nginx and wrk (farm), gcc, pkg-config,
        libfuse3-dev and rsync (rfs) and the engine
        (SK_ENGINE or out/engine/servicekeeper).
        """;

    public static int Main(string[] args)
    {
        var usage = string.Format(CultureInfo.InvariantCulture, Usage, string.Join(", ", FailoverBench.ScenarioIds));
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            Console.WriteLine(usage);
            return args.Length == 0 ? 2 : 0;
        }
        if (args[0] == "farm") return RunFarm(args.Skip(1).ToArray(), usage);
        if (args[0] == "rfs") return RunRfs(args.Skip(1).ToArray(), usage);
        if (args[0] != "failover")
        {
            Console.Error.WriteLine($"Unknown benchmark '{args[0]}'.\n\n{usage}");
            return 2;
        }

        BenchOptions options;
        try
        {
            options = BenchOptions.Parse(args.Skip(1).ToArray());
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"{e.Message}\n\n{usage}");
            return 2;
        }
        if (!NetLab.IsSupported(out var reason))
        {
            Console.Error.WriteLine($"The failover bench runs engines and keepalived in network namespaces: {reason}.");
            return 1;
        }

        // First SIGINT/SIGTERM: stop after the current step and clean up; a second one ends at once.
        using var cancel = new CancellationTokenSource();
        void OnSignal(PosixSignalContext context)
        {
            if (cancel.IsCancellationRequested) return;
            context.Cancel = true;
            Console.Error.WriteLine("Stopping: removing the labs...");
            cancel.Cancel();
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

        try
        {
            var bench = new FailoverBench(options, Console.Out, cancel.Token);
            return bench.Run() ? 0 : 1;
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            Console.Error.WriteLine("Cancelled.");
            return 130;
        }
    }

    private static int RunRfs(string[] args, string usage)
    {
        RfsBenchOptions options;
        try
        {
            options = RfsBenchOptions.Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"{e.Message}\n\n{usage}");
            return 2;
        }
        if (!NetLab.IsSupported(out var reason))
        {
            Console.Error.WriteLine($"The rfs bench runs engines in network namespaces: {reason}.");
            return 1;
        }
        using var cancel = new CancellationTokenSource();
        void OnSignal(PosixSignalContext context)
        {
            if (cancel.IsCancellationRequested) return;
            context.Cancel = true;
            Console.Error.WriteLine("Stopping: unmounting and removing the lab...");
            cancel.Cancel();
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        try
        {
            return new RfsBench(options, Console.Out, cancel.Token).Run() ? 0 : 1;
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            Console.Error.WriteLine("Cancelled.");
            return 130;
        }
    }

    private static int RunFarm(string[] args, string usage)
    {
        FarmBenchOptions options;
        try
        {
            options = FarmBenchOptions.Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"{e.Message}\n\n{usage}");
            return 2;
        }
        if (!NetLab.IsSupported(out var reason))
        {
            Console.Error.WriteLine($"The farm bench runs engines in network namespaces: {reason}.");
            return 1;
        }
        using var cancel = new CancellationTokenSource();
        void OnSignal(PosixSignalContext context)
        {
            if (cancel.IsCancellationRequested) return;
            context.Cancel = true;
            Console.Error.WriteLine("Stopping: removing the lab...");
            cancel.Cancel();
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        try
        {
            return new FarmBench(options, Console.Out, cancel.Token).Run() ? 0 : 1;
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            Console.Error.WriteLine("Cancelled.");
            return 130;
        }
    }
}

/// <summary>Command-line settings of <c>servicekeeper-bench failover</c>.</summary>
public sealed class BenchOptions
{
    public int Trials { get; private set; } = 20;

    public string OutDirectory { get; private set; } = Path.Combine("out", "bench");

    public IReadOnlyList<string> Scenarios { get; private set; } = FailoverBench.ScenarioIds;

    public bool KeepFiles { get; private set; }

    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => BenchArgs.Value(args, ref i);
            switch (args[i])
            {
                case "--trials":
                    var text = Value();
                    if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n is < 1 or > 1000)
                        throw new ArgumentException($"--trials '{text}' is not a number of trials (1..1000).");
                    o.Trials = n;
                    break;
                case "--out":
                    o.OutDirectory = Value();
                    break;
                case "--scenarios":
                    var list = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    var unknown = list.Where(s => !FailoverBench.ScenarioIds.Contains(s)).ToList();
                    if (list.Length == 0 || unknown.Count > 0)
                        throw new ArgumentException($"Unknown scenario(s): {string.Join(", ", unknown)}.");
                    o.Scenarios = FailoverBench.ScenarioIds.Where(list.Contains).ToList();
                    break;
                case "--keep-files":
                    o.KeepFiles = true;
                    break;
                default:
                    throw new ArgumentException($"Unknown option '{args[i]}'.");
            }
        }
        return o;
    }
}
