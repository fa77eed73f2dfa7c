// The figures of `servicekeeper-bench rfs` and their report: rfs.md (tables, targets, method), rfs.csv (every
// sample) and rfs.png (write throughput per variant).
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;

namespace ServiceKeeper.Bench
{
    public sealed class RfsResults
    {
        public sealed record Write(string Variant, string Test, int Round, long Bytes, double Seconds, double MiBps);

        public sealed record Fsync(string Variant, int Round, IReadOnlyList<double> Micros);

        /// <summary>CPU time of one dd test: dd itself and the processes serving the file system, per GiB written.</summary>
        public sealed record Cpu(string Variant, string Test, int Round, long Bytes, double DdSeconds, double ServerSeconds, double SecondarySeconds, double SecondsPerGiB)
        {
            /// <summary>What the writing machine itself spends per GiB: all but the secondary's engine.</summary>
            public double PrimarySecondsPerGiB => (DdSeconds + ServerSeconds - SecondarySeconds) / (Bytes / 1073741824.0);
        }

        public sealed record ResyncRound(int BlockKiB, int Round, int Blocks, long JournalDirty, double SkSeconds, string Method, long SkBytesSent,
            long SkBytesTotal, double RsyncSeconds, long RsyncSent, long RsyncReceived, long RsyncLiteral, long RsyncMatched, string Load)
        {
            public long RsyncMoved => RsyncSent + RsyncReceived;
        }

        public List<Write> Writes { get; } = new();
        public List<Fsync> Fsyncs { get; } = new();
        public List<Cpu> Cpus { get; } = new();
        /// <summary>Per phase: CPU seconds per second of the passthrough and both engines with nothing written.</summary>
        public Dictionary<string, double> IdleCpu { get; } = new();
        public List<ResyncRound> Resyncs { get; } = new();
        public Dictionary<string, string> PhaseLoads { get; } = new();
        public Dictionary<string, string> Modes { get; } = new();
        public string LoadStart { get; set; } = "";
        public string LoadEnd { get; set; } = "";
        public string FinalCheck { get; set; } = "";
        public bool PassthroughFsyncIsStub { get; set; }
        public List<(string Variant, double AckMs)> Acks { get; } = new();

        public static double Median(IEnumerable<double> values) => Percentile(values, 50);

        /// <summary>Linear interpolation between closest ranks; NaN when empty.</summary>
        public static double Percentile(IEnumerable<double> values, double p)
        {
            var s = values.OrderBy(x => x).ToList();
            if (s.Count == 0) return double.NaN;
            var rank = p / 100 * (s.Count - 1);
            var lo = (int)Math.Floor(rank);
            var hi = (int)Math.Ceiling(rank);
            return s[lo] + (s[hi] - s[lo]) * (rank - lo);
        }

        public double WriteMedian(string variant, string test) => Median(Writes.Where(w => w.Variant == variant && w.Test == test).Select(w => w.MiBps));

        public IEnumerable<double> FsyncAll(string variant) => Fsyncs.Where(f => f.Variant == variant).SelectMany(f => f.Micros);
    }

    public sealed class RfsReport
    {
        public static readonly (string Id, string Label)[] Variants =
        {
            ("raw", "(a) raw directory"),
            ("fuse-c", "(b) libfuse passthrough (C)"),
            ("sk-alone", "(c) ServiceKeeper, no secondary (ALONE)"),
            ("sk-sync", "(d) ServiceKeeper replicated, sync"),
            ("sk-sync-disk", "(e) ServiceKeeper replicated, sync-disk"),
        };

        public static readonly string[] Tests = { "1M", "4K", "1M+fdatasync", "4K+fdatasync" };
        private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
        private readonly RfsResults _r;
        private readonly RfsBenchOptions _o;

        public RfsReport(RfsResults results, RfsBenchOptions options)
        {
            _r = results;
            _o = options;
        }

        private double Ratio(string variant, string test) => _r.WriteMedian(variant, test) / _r.WriteMedian("fuse-c", test);

        public string Markdown()
        {
            var sb = new StringBuilder();
            sb.AppendLine("# Replicated file system (rfs) bench");
            sb.AppendLine();
            var phases = string.Join(", ", _r.PhaseLoads.Select(p => $"{p.Key} {p.Value}"));
            sb.AppendLine(string.Create(Inv, $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, kernel {Environment.OSVersion.Version}. " +
                $"Load average (1/5/15 min) at the start {_r.LoadStart}, at the end {_r.LoadEnd}; per phase: {phases}. " +
                $"The machine is shared with other work: every figure is the median of its rounds, and the (b) baseline was measured again, " +
                $"interleaved round by round, in each phase."));
            sb.AppendLine();
            sb.AppendLine("## Writes and fsync");
            sb.AppendLine();
            sb.AppendLine(string.Create(Inv, $"MiB/s, median of {_o.Rounds} rounds (the (b) row: of {_o.Rounds * 3}); fsync: {_o.FsyncCount} iterations of 4 KiB write + fsync per round, all rounds pooled."));
            sb.AppendLine();
            sb.AppendLine("| variant | 1 MiB writes | 4 KiB writes | 1 MiB + fdatasync | 4 KiB + fdatasync | write+fsync median | write+fsync p99 | 1 MiB vs (b) | CPU s/GiB, 1 MiB writes |");
            sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var (id, label) in Variants)
            {
                var cells = Tests.Select(t => _r.WriteMedian(id, t)).Select(v => double.IsNaN(v) ? "-" : v.ToString("0", Inv));
                var lat = _r.FsyncAll(id).ToList();
                sb.AppendLine(string.Create(Inv,
                    $"| {label} | {string.Join(" | ", cells)} | {Us(RfsResults.Median(lat))} | {Us(RfsResults.Percentile(lat, 99))} | {Ratio(id, "1M") * 100:0}% | {CpuCell(id)} |"));
            }
            sb.AppendLine();
            sb.AppendLine("CPU s/GiB: median over the rounds of (dd's user+system time + that of the processes serving the file system: the C passthrough for (b), " +
                "both engines for (c)-(e)) / GiB written, from /proc (10 ms ticks). Kernel work done outside those processes (page cache writeback threads, " +
                "network softirqs that run in other tasks) is not counted. With throughput limited by CPU, as on this shared 2-core machine, " +
                "(b) CPU / (d) CPU bounds (d) / (b) throughput; on two machines the secondary's engine runs on the other one, and \"writing node\" " +
                "(dd + the primary's engine) is what the writing machine would spend. The servers' idle cost (heartbeats, keepalives), measured (the least of four 1 s samples) " +
                "at the start of each phase, is subtracted for the time of each dd: " +
                string.Join(", ", _r.IdleCpu.Select(p => string.Create(Inv, $"{p.Key} {p.Value * 100:0.0}% of a core"))) + ".");
            sb.AppendLine();
            sb.AppendLine("Every round of every variant (MiB/s, 1 MiB / 4 KiB / 1 MiB+fdatasync / 4 KiB+fdatasync):");
            sb.AppendLine();
            foreach (var (id, label) in Variants)
            {
                var rounds = _r.Writes.Where(w => w.Variant == id).GroupBy(w => w.Round).OrderBy(g => g.Key)
                    .Select(g => string.Join("/", Tests.Select(t => g.FirstOrDefault(w => w.Test == t) is { } w ? w.MiBps.ToString("0", Inv) : "-")));
                sb.AppendLine($"- {label}: {string.Join(", ", rounds)}");
            }
            sb.AppendLine();

            foreach (var g in _r.Acks.GroupBy(a => a.Variant))
                sb.AppendLine(string.Create(Inv, $"{g.Key}: mean wait for the secondary's acknowledgement (Get-SKReplication AckMilliseconds) read right after each 4 KiB dd: {string.Join(", ", g.Select(a => a.AckMs.ToString("0.00", Inv)))} ms."));
            sb.AppendLine();
            sb.AppendLine("## Resync of a 1% change vs rsync");
            sb.AppendLine();
            sb.AppendLine(string.Create(Inv, $"Data set: {_o.ResyncFiles} files x {_o.ResyncMiB / _o.ResyncFiles} MiB = {_o.ResyncMiB} MiB of random data; medians of {_o.ResyncRounds} rounds per block size; page cache {(_o.Cold ? "dropped before each tool (cold)" : "not dropped (warm)")}."));
            sb.AppendLine();
            sb.AppendLine("| change | blocks rewritten (bytes) | ServiceKeeper: start to SECOND ready | method | bytes sent | journal dirty | rsync wall time | rsync bytes sent + received | rsync literal data | rsync time / ServiceKeeper time | rsync bytes / ServiceKeeper bytes |");
            sb.AppendLine("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var g in _r.Resyncs.GroupBy(x => x.BlockKiB).OrderBy(g => g.Key))
            {
                var sk = RfsResults.Median(g.Select(x => x.SkSeconds));
                var rs = RfsResults.Median(g.Select(x => x.RsyncSeconds));
                var skBytes = RfsResults.Median(g.Select(x => (double)x.SkBytesSent));
                var rsBytes = RfsResults.Median(g.Select(x => (double)x.RsyncMoved));
                sb.AppendLine(string.Create(Inv,
                    $"| {(g.Key == 0 ? "no change (fixed cost)" : $"1% in {g.Key} KiB blocks")} | {g.First().Blocks} ({Mib(g.First().Blocks * 1024.0 * g.Key)}) | {sk:0.00} s | {string.Join(",", g.Select(x => x.Method).Distinct())} | {Mib(skBytes)} | {Mib(RfsResults.Median(g.Select(x => (double)x.JournalDirty)))} | " +
                    $"{rs:0.00} s | {Mib(rsBytes)} | {Mib(RfsResults.Median(g.Select(x => (double)x.RsyncLiteral)))} | {rs / sk:0.0}x | {(skBytes > 0 ? (rsBytes / skBytes).ToString("0.00", Inv) + "x" : "-")} |"));
            }
            sb.AppendLine();
            sb.AppendLine("Every round: " + string.Join("; ", _r.Resyncs.Select(x => string.Create(Inv,
                $"{x.BlockKiB} KiB #{x.Round}: SK {x.SkSeconds:0.00} s {Mib(x.SkBytesSent)} ({x.Method}), rsync {x.RsyncSeconds:0.00} s {Mib(x.RsyncMoved)} (load {x.Load})"))) + ".");
            sb.AppendLine();
            sb.AppendLine(_r.FinalCheck);
            sb.AppendLine();

            sb.AppendLine("## Targets");
            sb.AppendLine();
            sb.AppendLine("| target | measured | met |");
            sb.AppendLine("|---|---:|---|");
            var d1 = Ratio("sk-sync", "1M");
            sb.AppendLine(string.Create(Inv, $"| (d) sync at least 70% of (b) for 1 MiB writes | {d1 * 100:0}% ({_r.WriteMedian("sk-sync", "1M"):0} vs {_r.WriteMedian("fuse-c", "1M"):0} MiB/s) | {Met(d1 >= 0.7)} |"));
            // (b) measured in the same phase as (d), round for round (rounds Rounds+1..2*Rounds): the paired comparison.
            var pairedB = RfsResults.Median(_r.Writes.Where(w => w.Variant == "fuse-c" && w.Test == "1M" && w.Round > _o.Rounds && w.Round <= 2 * _o.Rounds).Select(w => w.MiBps));
            var paired = _r.WriteMedian("sk-sync", "1M") / pairedB;
            sb.AppendLine(string.Create(Inv, $"| same, against the (b) rounds interleaved with (d) only | {paired * 100:0}% ({_r.WriteMedian("sk-sync", "1M"):0} vs {pairedB:0} MiB/s) | {Met(paired >= 0.7)} |"));
            var cpuB = RfsResults.Median(_r.Cpus.Where(c => c.Variant == "fuse-c" && c.Test == "1M").Select(c => c.SecondsPerGiB));
            var cpuD = _r.Cpus.Where(c => c.Variant == "sk-sync" && c.Test == "1M").ToList();
            if (!double.IsNaN(cpuB) && cpuD.Count > 0)
            {
                var all = RfsResults.Median(cpuD.Select(c => c.SecondsPerGiB));
                var writing = RfsResults.Median(cpuD.Select(c => c.PrimarySecondsPerGiB));
                sb.AppendLine(string.Create(Inv, $"| (informative) (b) CPU / (d) CPU per GiB: the most (d) can reach where CPU limits, as here | {cpuB / all * 100:0}% ({cpuB:0.00} vs {all:0.00} CPU s/GiB); the writing node's share alone: {cpuB / writing * 100:0}% ({writing:0.00}) | - |"));
            }
            var d1s = Ratio("sk-sync", "1M+fdatasync");
            sb.AppendLine(string.Create(Inv, $"| same with conv=fdatasync (informative) | {d1s * 100:0}% ({_r.WriteMedian("sk-sync", "1M+fdatasync"):0} vs {_r.WriteMedian("fuse-c", "1M+fdatasync"):0} MiB/s) | {Met(d1s >= 0.7)} |"));
            foreach (var g in _r.Resyncs.Where(x => x.BlockKiB > 0).GroupBy(x => x.BlockKiB).OrderBy(g => g.Key))
            {
                var speedup = RfsResults.Median(g.Select(x => x.RsyncSeconds)) / RfsResults.Median(g.Select(x => x.SkSeconds));
                sb.AppendLine(string.Create(Inv, $"| resync of a 1% change ({g.Key} KiB blocks) at least 10x faster than rsync (wall time) | {speedup:0.0}x | {Met(speedup >= 10)} |"));
            }
            sb.AppendLine();

            sb.AppendLine("## How each figure was measured");
            sb.AppendLine();
            sb.AppendLine(string.Create(Inv, $"""
                - Everything lives under /tmp (one ext4 file system on the same disk): the raw directory, the directory under the C passthrough, and the two nodes' replicated directories (bind mounts of /tmp/<lab>/n1/root/rs and /tmp/<lab>/n2/root/rs at {RfsBench.SyncDir}, and .../rd at {RfsBench.DiskDir}, in each engine's own mount namespace). Both nodes run on this same machine and disk, so the secondary's writes compete with the primary's for the same cores and disk.
                - Writes: `dd if=<source> of=<dir>/w bs=1M count={_o.BigMiB}` (1 MiB blocks, {_o.BigMiB} MiB) and `bs=4k count={_o.SmallMiB * 256}` (4 KiB blocks, {_o.SmallMiB} MiB); throughput = bytes / the time dd itself reports, then `rm`. The source is a {_o.BigMiB} MiB file of random data already in the page cache (not /dev/zero, not /dev/urandom). Without conv=fdatasync the data of (a) and (b) ends in the page cache: the cost an application's write() sees. "+ fdatasync" = the same with conv=fdatasync (dd's time includes flushing the file to disk).
                - fsync latency: a python3 loop appending 4 KiB with os.write then os.fsync, {_o.FsyncCount} times per round; the time of write+fsync per iteration (perf_counter_ns).
                - (a) raw: the directory itself, from the host. (b) libfuse-3 `passthrough.c` from /usr/share/doc/libfuse3-dev/examples, `gcc -O2 passthrough.c $(pkg-config fuse3 --cflags --libs)`, mounted with `-f -o allow_other,default_permissions` (multi-threaded, default options), written through at <mount>/tmp/<lab>/rawb. (c)-(e): the module's FUSE mount on the primary n1, written with the same commands run through nsenter into the engine's mount namespace (as the module's application would). (c) = module `rs` with n2's module stopped (n1 ALONE, journaling); (d) = module `rs` (`<rfs async="second">`, mode {_r.Modes.GetValueOrDefault("sk-sync", "?")}) with n2 SECOND ready; (e) = module `rd` (`<rfs async="none">`, mode {_r.Modes.GetValueOrDefault("sk-sync-disk", "?")}) with n2 SECOND ready, module `rs` stopped.
                - Resync: the data set is written through n1's mount with n2 SECOND (so both copies are equal), n2's module is stopped (n1 ALONE), 1% of the data set's blocks of the given size, chosen at random, are rewritten through n1's mount with `dd if=/dev/urandom bs=<size> count=1 seek=<block> conv=notrunc`. The ServiceKeeper time runs from the start command for n2, sent to n2's own API, to n1 PRIM and n2 SECOND both ready, as the engines' module logs timestamp those changes (1 ms; the bench polls the API every 25 ms only to know when to look); bytes = LastResync.BytesSent of n2 (Get-SKReplication).
                - rsync: `rsync -a --inplace --no-whole-file --stats <n1's underlying directory>/ rsync://<n2>/dst/data/`, run in n1's network namespace against an rsync daemon in n2's namespace, i.e. over the lab network as the replication itself. The daemon's directory is a copy (cp -a) of the secondary's data set taken before the first change; each round's rsync then carries exactly the change of that round (the same blocks the resync sent). Bytes moved = rsync's "Total bytes sent" + "Total bytes received" (the receiver's block checksums travel too); "literal data" is the changed data itself. The "no change" row stops and restarts the secondary with nothing written in between: ServiceKeeper's fixed cost of a return; rsync there only compares sizes and modification times (its quick check). {(_o.Cold ? "Cold caches (--cold, the default): right before the ServiceKeeper start command and again right before rsync, `sync && echo 3 > /proc/sys/vm/drop_caches` (the whole machine: both nodes' data, the engines' files, rsync's binary), so each tool reads from the disk whatever it needs, as after a real outage: rsync reads every changed file on both sides, ServiceKeeper's journal resync reads what its plan needs." : "Warm caches (--warm): the page cache is not dropped, both sides read data that is likely cached.")}
                """));
            sb.AppendLine();
            if (_r.PassthroughFsyncIsStub)
            {
                sb.AppendLine("Caveat on (b): the xmp_fsync of libfuse's passthrough.c is a stub (\"Just a stub. This method is optional\": it returns 0 " +
                    "without calling fsync), so (b)'s fsync latency and its \"+ fdatasync\" columns do not reach the disk; they are the cost of a FUSE " +
                    "round trip, not of durability. Compare durable figures with (a).");
                sb.AppendLine();
            }
            sb.AppendLine("Raw samples: rfs.csv. Plot: rfs.png.");
            sb.AppendLine();
            sb.AppendLine("Command: `dotnet pwsh ./build.ps1 -Task Bench` (runs failover, farm, then this one), or as root with SK_ENGINE set: " +
                "`dotnet run --project Engine/ServiceKeeper.Bench -c Release -- rfs [--rounds N] [--resync-rounds N] [--resync-mib N] [--resync-files N] [--cold|--warm] [--phases writes,resync,disk] [--out DIR]`.");
            return sb.ToString();

            static string Met(bool ok) => ok ? "yes" : "**no**";
        }

        private string CpuCell(string variant)
        {
            var cpu = _r.Cpus.Where(c => c.Variant == variant && c.Test == "1M").ToList();
            if (cpu.Count == 0) return "-";
            var all = RfsResults.Median(cpu.Select(c => c.SecondsPerGiB));
            var primary = RfsResults.Median(cpu.Select(c => c.PrimarySecondsPerGiB));
            var dd = RfsResults.Median(cpu.Select(c => c.DdSeconds / (c.Bytes / 1073741824.0)));
            return variant == "sk-sync" || variant == "sk-sync-disk"
                ? string.Create(Inv, $"{all:0.00} (dd {dd:0.00}, writing node {primary:0.00})")
                : string.Create(Inv, $"{all:0.00} (dd {dd:0.00})");
        }

        private static string Us(double us) => double.IsNaN(us) ? "-" : us >= 10000 ? (us / 1000).ToString("0", Inv) + " ms" : us >= 1000 ? (us / 1000).ToString("0.0", Inv) + " ms" : us.ToString("0", Inv) + " µs";

        private static string Mib(double bytes) => bytes < 0 ? "?" : (bytes / 1048576.0).ToString("0.00", Inv) + " MiB";

        public string Csv()
        {
            var sb = new StringBuilder("kind,variant,test,round,value,unit,detail\n");
            foreach (var w in _r.Writes)
                sb.AppendLine(string.Create(Inv, $"write,{w.Variant},{w.Test},{w.Round},{w.MiBps:0.0},MiB/s,{w.Bytes} bytes in {w.Seconds:0.000} s"));
            foreach (var c in _r.Cpus)
                sb.AppendLine(string.Create(Inv, $"cpu,{c.Variant},{c.Test},{c.Round},{c.SecondsPerGiB:0.000},CPU s/GiB,dd {c.DdSeconds:0.00} s + servers {c.ServerSeconds:0.00} s (secondary {c.SecondarySeconds:0.00} s) for {c.Bytes} bytes"));
            foreach (var f in _r.Fsyncs)
                sb.AppendLine(string.Create(Inv, $"fsync,{f.Variant},write4k+fsync,{f.Round},{RfsResults.Median(f.Micros):0.0},us median,p99 {RfsResults.Percentile(f.Micros, 99):0.0} us of {f.Micros.Count}"));
            foreach (var x in _r.Resyncs)
            {
                sb.AppendLine(string.Create(Inv, $"resync,servicekeeper,{x.BlockKiB}k,{x.Round},{x.SkSeconds:0.000},s,{x.Method} sent {x.SkBytesSent} total {x.SkBytesTotal} dirty {x.JournalDirty} blocks {x.Blocks}"));
                sb.AppendLine(string.Create(Inv, $"resync,rsync,{x.BlockKiB}k,{x.Round},{x.RsyncSeconds:0.000},s,sent {x.RsyncSent} received {x.RsyncReceived} literal {x.RsyncLiteral} matched {x.RsyncMatched}"));
            }
            return sb.ToString();
        }

        /// <summary>Median MiB/s per variant, one bar per write test.</summary>
        public void Plot(string path)
        {
            var plot = new ScottPlot.Plot();
            var palette = new ScottPlot.Palettes.Category10();
            var ticks = new List<ScottPlot.Tick>();
            var width = 0.8 / Tests.Length;
            for (int v = 0; v < Variants.Length; v++)
            {
                ticks.Add(new ScottPlot.Tick(v, Variants[v].Label.Split(' ')[0] + " " + Variants[v].Id));
                for (int t = 0; t < Tests.Length; t++)
                {
                    var value = _r.WriteMedian(Variants[v].Id, Tests[t]);
                    if (double.IsNaN(value)) continue;
                    plot.Add.Bar(new ScottPlot.Bar
                    {
                        Position = v - 0.4 + width * (t + 0.5),
                        Value = value,
                        Size = width * 0.9,
                        FillColor = palette.GetColor(t),
                    });
                }
            }
            for (int t = 0; t < Tests.Length; t++)
                plot.Legend.ManualItems.Add(new ScottPlot.LegendItem { LabelText = Tests[t], FillColor = palette.GetColor(t) });
            plot.ShowLegend();
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.ToArray());
            plot.Axes.Margins(bottom: 0);
            plot.Title($"Sequential writes (dd), median of {_o.Rounds} rounds");
            plot.YLabel("MiB/s");
            plot.SavePng(path, 1000, 520);
        }
    }
}
