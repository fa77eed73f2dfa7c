// servicekeeper-bench rfs: file replication on two engines in network namespaces, all on the same disk (/tmp).
// Sequential 1 MiB and 4 KiB writes (dd) and 4 KiB write+fsync latency on (a) the raw directory, (b) libfuse's
// C passthrough example, (c) a ServiceKeeper replicated directory with its secondary stopped (ALONE, journaling),
// (d) replicated mode sync, (e) replicated mode sync-disk; then the resync of a data set after 1% of its blocks
// changed on the ALONE primary against rsync of the same change over the lab network. Writes rfs.md, rfs.csv, rfs.png.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;
using ServiceKeeper.Contracts;
using ServiceKeeper.Testing;

namespace ServiceKeeper.Bench
{
    public sealed class RfsBench
    {
        public const string SyncModule = "rs";
        public const string DiskModule = "rd";
        public const string SyncDir = "/srv/skbench-rs";
        public const string DiskDir = "/srv/skbench-rd";
        private const int Subnet = 72;
        private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

        // 4 KiB appended and fsynced N times (a log's pattern); one latency per iteration in µs.
        private const string FsyncScript = """
            import os, sys, time
            path, n = sys.argv[1], int(sys.argv[2])
            buf = os.urandom(4096)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            out = []
            for i in range(n):
                t0 = time.perf_counter_ns()
                os.write(fd, buf)
                os.fsync(fd)
                out.append((time.perf_counter_ns() - t0) / 1000.0)
            os.close(fd)
            os.unlink(path)
            print(" ".join("%.1f" % x for x in out))
            """;

        private readonly RfsBenchOptions _o;
        private readonly TextWriter _out;
        private readonly CancellationToken _ct;
        private readonly RfsResults _results = new();
        private NetLab? _lab;
        private Process? _passthrough;
        private Process? _rsyncd;
        private string? _fuseMount;

        public RfsBench(RfsBenchOptions options, TextWriter output, CancellationToken ct)
        {
            _o = options;
            _out = output;
            _ct = ct;
        }

        private NetLab Lab => _lab!;
        private LabNode N1 => Lab.Nodes[0];
        private LabNode N2 => Lab.Nodes[1];
        private string LabFile(string name) => Path.Combine(Lab.LabDirectory, name);
        private string SourceFile => LabFile("source.bin");

        public bool Run()
        {
            var missing = new[] { "gcc", "pkg-config", "fusermount3", "rsync", "dd", "nsenter" }.Where(t => Tools.Find(t) is null).ToList();
            if (missing.Count > 0 || !File.Exists("/usr/share/doc/libfuse3-dev/examples/passthrough.c"))
            {
                _out.WriteLine($"The rfs bench needs gcc, pkg-config, libfuse3-dev (fuse3), rsync, coreutils and util-linux; missing: {string.Join(", ", missing.DefaultIfEmpty("libfuse3-dev examples"))}.");
                return false;
            }
            var pid = Environment.ProcessId % (36 * 36 * 36);
            var prefix = "skb" + Convert.ToString(pid, 8).PadLeft(3, '0')[^3..] + "r";
            try
            {
                _results.LoadStart = LoadAverage();
                _lab = NetLab.Create(prefix, 2, new NetLabOptions { Subnet = Subnet, KeepFiles = _o.KeepFiles }
                    .AddBindMount("rs", SyncDir).AddBindMount("rd", DiskDir));
                _out.WriteLine($"Rfs bench: lab {prefix} in {Lab.LabDirectory} ({FileSystemOf(Lab.LabDirectory)}), {_o.Rounds} rounds per point, load {_results.LoadStart}.");
                SetUp();
                if (_o.Phases.Contains("writes")) Throughput();
                else
                {
                    StartModule(SyncModule, null);
                    WaitRoles(SyncModule, "PRIM", "SECOND");
                }
                if (_o.Phases.Contains("resync")) Resync();
                if (_o.Phases.Contains("disk")) RunDiskPhase();
                _results.LoadEnd = LoadAverage();

                var report = new RfsReport(_results, _o);
                BenchReport.Write(_out, _o.OutDirectory, "rfs", report.Markdown(), report.Csv(), report.Plot);
                return true;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _out.WriteLine("Rfs bench failed: " + e);
                if (_lab != null) _out.WriteLine(_lab.DumpLogs());
                return false;
            }
            finally
            {
                CleanUp();
            }
        }

        // ------------------------------------------------------------------ set-up and clean-up

        private void SetUp()
        {
            foreach (var node in Lab.Nodes) Lab.StartEngine(node, EngineLab.AdminKey);
            foreach (var node in Lab.Nodes) Lab.WaitForEngine(node, TimeSpan.FromSeconds(60));
            _enginePids = FindEnginePids();
            if (_enginePids.Length != Lab.Nodes.Count) _out.WriteLine($"  (found {_enginePids.Length} engine processes of {Lab.Nodes.Count}: the CPU figures of (c)-(e) miss the others)");
            var api = Api(N1);
            api.CreateClusterAsync(new CreateClusterRequest { Name = "bench", Nodes = Lab.Nodes.Select(n => n.Address).ToList() }, _ct).GetAwaiter().GetResult();
            foreach (var (module, dir, mode, vip) in new[] { (SyncModule, SyncDir, "second", 80), (DiskModule, DiskDir, "none", 81) })
            {
                api.AddMirrorModuleAsync(new AddMirrorModuleRequest
                {
                    Name = module, Nodes = ["n1", "n2"], VirtualIP = $"198.18.{Subnet}.{vip}/24", Witnesses = [Lab.Client!.Address],
                    UserConfigXml = $"""<service mode="mirror"><rfs async="{mode}"><replicated dir="{dir}"/></rfs></service>""",
                }, _ct).GetAwaiter().GetResult();
            }

            // The source of every dd: random data read from the page cache, so that neither /dev/zero (zero
            // blocks a file system may treat specially) nor /dev/urandom (CPU-bound) shapes the figures.
            Sh(null, $"dd if=/dev/urandom of={SourceFile} bs=1M count={_o.BigMiB} status=none && cat {SourceFile} > /dev/null");
            File.WriteAllText(LabFile("fsync.py"), FsyncScript);

            // libfuse's own passthrough example, built as its README says, mounted over / at <lab>/fusec.
            var build = LabFile("passthrough-build");
            Directory.CreateDirectory(build);
            foreach (var f in new[] { "passthrough.c", "passthrough_helpers.h" })
                File.Copy(Path.Combine("/usr/share/doc/libfuse3-dev/examples", f), Path.Combine(build, f), true);
            _results.PassthroughFsyncIsStub = Regex.IsMatch(File.ReadAllText(Path.Combine(build, "passthrough.c")), @"xmp_fsync\([^)]*\)\s*\{\s*/\*\s*Just a stub");
            Sh(null, $"cd {build} && gcc -Wall -O2 passthrough.c $(pkg-config fuse3 --cflags --libs) -o passthrough");
            _fuseMount = LabFile("fusec");
            Directory.CreateDirectory(_fuseMount);
            Directory.CreateDirectory(LabFile("raw"));
            Directory.CreateDirectory(LabFile("rawb"));
            var psi = new ProcessStartInfo(Path.Combine(build, "passthrough"))
            {
                UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
            };
            foreach (var a in new[] { "-f", "-o", "allow_other,default_permissions", _fuseMount }) psi.ArgumentList.Add(a);
            _passthrough = Process.Start(psi) ?? throw new InvalidOperationException("could not start passthrough");
            _passthrough.OutputDataReceived += (_, _) => { };
            _passthrough.ErrorDataReceived += (_, e) => { if (e.Data != null) _out.WriteLine("  passthrough: " + e.Data); };
            _passthrough.BeginOutputReadLine();
            _passthrough.BeginErrorReadLine();
            Tools.WaitFor(() => IsMounted(_fuseMount) || _passthrough.HasExited, "the passthrough mount", TimeSpan.FromSeconds(20), _ct);
            if (!IsMounted(_fuseMount)) throw new InvalidOperationException("passthrough exited without mounting");
        }

        private void CleanUp()
        {
            if (_fuseMount != null && IsMounted(_fuseMount))
            {
                var r = Run("fusermount3", TimeSpan.FromSeconds(30), "-u", _fuseMount);
                if (!r.Ok)
                {
                    _out.WriteLine($"fusermount3 -u {_fuseMount}: {r.Output.Trim()}; lazy unmount");
                    Run("fusermount3", TimeSpan.FromSeconds(30), "-u", "-z", _fuseMount);
                }
            }
            foreach (var p in new[] { _passthrough, _rsyncd })
            {
                if (p == null) continue;
                try
                {
                    if (!p.WaitForExit(TimeSpan.FromSeconds(5))) p.Kill(entireProcessTree: true);
                    p.WaitForExit(TimeSpan.FromSeconds(5));
                }
                catch (InvalidOperationException)
                {
                    // Never started or already reaped.
                }
                p.Dispose();
            }
            _lab?.Dispose();
        }

        private static bool IsMounted(string path) =>
            File.ReadAllLines("/proc/self/mountinfo").Any(l => l.Split(' ').ElementAtOrDefault(4) == path);

        // ------------------------------------------------------------------ throughput and fsync

        private void Throughput()
        {
            StartModule(SyncModule, null);
            WaitRoles(SyncModule, "PRIM", "SECOND");
            StopModule(SyncModule, N2);
            WaitState(SyncModule, N1, "ALONE");
            var load = LoadAverage();
            _out.WriteLine($"(a) raw, (b) libfuse passthrough, (c) ServiceKeeper ALONE, interleaved; load {load}");
            _results.PhaseLoads["a-b-c"] = load;
            MeasureIdle("a-b-c");
            for (var round = 1; round <= _o.Rounds; round++)
            {
                Point("raw", round, null, LabFile("raw"));
                Point("fuse-c", round, null, _fuseMount! + LabFile("rawb"));
                Point("sk-alone", round, N1, SyncDir + "/bench");
            }
            StartModule(SyncModule, N2);
            WaitRoles(SyncModule, "PRIM", "SECOND");
            load = LoadAverage();
            _results.Modes["sk-sync"] = Replication(SyncModule, N1).Mode;
            _out.WriteLine($"(d) ServiceKeeper {_results.Modes["sk-sync"]}, interleaved with (b) again; load {load}");
            _results.PhaseLoads["d"] = load;
            MeasureIdle("d");
            for (var round = 1; round <= _o.Rounds; round++)
            {
                Point("fuse-c", _o.Rounds + round, null, _fuseMount! + LabFile("rawb"));
                Point("sk-sync", round, N1, SyncDir + "/bench", SyncModule);
            }
        }

        private void RunDiskPhase()
        {
            StopModule(SyncModule, null);
            StartModule(DiskModule, null);
            WaitRoles(DiskModule, "PRIM", "SECOND");
            var load = LoadAverage();
            _out.WriteLine($"(e) ServiceKeeper sync-disk, interleaved with (b) again; load {load}");
            _results.PhaseLoads["e"] = load;
            MeasureIdle("e");
            for (var round = 1; round <= _o.Rounds; round++)
            {
                Point("fuse-c", 2 * _o.Rounds + round, null, _fuseMount! + LabFile("rawb"));
                Point("sk-sync-disk", round, N1, DiskDir + "/bench", DiskModule);
            }
            _results.Modes["sk-sync-disk"] = Replication(DiskModule, N1).Mode;
            StopModule(DiskModule, null);
        }

        /// <summary>One round of every write test on one variant; <paramref name="node"/> null runs on the host.</summary>
        private void Point(string variant, int round, LabNode? node, string dir, string? module = null)
        {
            _ct.ThrowIfCancellationRequested();
            Sh(node, $"mkdir -p {dir}");
            var big = _o.BigMiB;
            var small = _o.SmallMiB * 256;
            // The 1 MiB test also prints dd's own CPU time (the shell's cutime/cstime once dd was reaped); its rm runs
            // apart, so that the servers' CPU time covers the writes only.
            var tests = new (string Test, string Script, string? Cleanup)[]
            {
                ("1M", $"dd if={SourceFile} of={dir}/w bs=1M count={big} 2>&1; echo \"cpu-ticks $(cut -d' ' -f16,17 /proc/$$/stat)\"", $"rm -f {dir}/w"),
                ("4K", $"dd if={SourceFile} of={dir}/w bs=4k count={small} 2>&1; rm -f {dir}/w", null),
                ("1M+fdatasync", $"dd if={SourceFile} of={dir}/w bs=1M count={big} conv=fdatasync 2>&1; rm -f {dir}/w", null),
                ("4K+fdatasync", $"dd if={SourceFile} of={dir}/w bs=4k count={small} conv=fdatasync 2>&1; rm -f {dir}/w", null),
            };
            var line = new StringBuilder($"  {variant,-13} round {round}:");
            foreach (var (test, script, cleanup) in tests)
            {
                var servers = ServerPids(variant);
                var before = servers.Select(ProcessTicks).ToArray();
                var clock = Stopwatch.StartNew();
                var text = Sh(node, script);
                // Less what the servers spend anyway over that time (heartbeats, keepalives: measured idle in this phase).
                var elapsed = clock.Elapsed.TotalSeconds;
                var used = servers.Select((pid, i) =>
                    Math.Max(0, ProcessTicks(pid) - before[i] - (long)Math.Round(elapsed * _idleTicksPerSecond.GetValueOrDefault(pid)))).ToArray();
                var serverTicks = used.Sum();
                if (cleanup != null) Sh(node, cleanup);
                var m = Regex.Match(text, @"(\d+) bytes .* copied, ([\d.e+-]+) s");
                if (!m.Success) throw new InvalidOperationException($"{variant} {test}: no dd result in: {text}");
                var bytes = long.Parse(m.Groups[1].Value, Inv);
                var seconds = double.Parse(m.Groups[2].Value, Inv);
                var mibs = bytes / 1048576.0 / seconds;
                _results.Writes.Add(new RfsResults.Write(variant, test, round, bytes, seconds, mibs));
                line.Append(string.Create(Inv, $" {test} {mibs:0} MiB/s;"));
                if (Regex.Match(text, @"cpu-ticks (\d+) (\d+)") is { Success: true } cpu)
                {
                    var ddTicks = long.Parse(cpu.Groups[1].Value, Inv) + long.Parse(cpu.Groups[2].Value, Inv);
                    var perGiB = (ddTicks + serverTicks) / (double)TicksPerSecond / (bytes / 1073741824.0);
                    // The secondary's engine (n2, the last server of a ServiceKeeper variant) would run on the other machine.
                    var secondaryTicks = variant.StartsWith("sk-", StringComparison.Ordinal) && used.Length == 2 ? used[1] : 0;
                    _results.Cpus.Add(new RfsResults.Cpu(variant, test, round, bytes, ddTicks / (double)TicksPerSecond, serverTicks / (double)TicksPerSecond,
                        secondaryTicks / (double)TicksPerSecond, perGiB));
                    line.Append(string.Create(Inv, $" ({perGiB:0.00} CPU s/GiB, {(ddTicks + serverTicks - secondaryTicks) / (double)TicksPerSecond / (bytes / 1073741824.0):0.00} without the secondary);"));
                }
                if (module != null && test == "4K")
                {
                    // The engine's own mean wait for the secondary's acknowledgement over the last seconds: the 4 KiB writes.
                    var ack = Replication(module, N1).AckMilliseconds;
                    _results.Acks.Add((variant, ack));
                    line.Append(string.Create(Inv, $" (ack {ack:0.00} ms);"));
                }
            }
            var lat = Sh(node, $"{Tools.Python} {LabFile("fsync.py")} {dir}/fs {_o.FsyncCount}")
                .Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => double.Parse(s, Inv)).ToList();
            _results.Fsyncs.Add(new RfsResults.Fsync(variant, round, lat));
            line.Append(string.Create(Inv, $" fsync median {RfsResults.Percentile(lat, 50):0} µs p99 {RfsResults.Percentile(lat, 99):0} µs"));
            _out.WriteLine(line.ToString());
        }

        // ------------------------------------------------------------------ CPU time

        // USER_HZ: the unit of utime/stime in /proc/<pid>/stat (100 on Linux x86-64).
        private const int TicksPerSecond = 100;
        private int[] _enginePids = [];

        /// <summary>The processes that serve a variant's writes besides dd: the C passthrough, or both engines (primary and secondary).</summary>
        private int[] ServerPids(string variant) => variant switch
        {
            "raw" => [],
            "fuse-c" => [_passthrough!.Id],
            _ => _enginePids,
        };

        private readonly Dictionary<int, double> _idleTicksPerSecond = new();

        /// <summary>
        /// Each server's CPU time per second with nothing written, in this phase's state (the passthrough and both engines
        /// as they run in it), subtracted from each dd's figure: the least of four one-second samples, so that the work
        /// right after a module start or stop (resync, journal, JIT) does not count as idle. Ticks are 10 ms.
        /// </summary>
        private void MeasureIdle(string phase)
        {
            var pids = (_passthrough != null ? new[] { _passthrough.Id } : []).Concat(_enginePids).ToArray();
            var best = new double[pids.Length];
            Array.Fill(best, double.MaxValue);
            var samples = new List<double>();
            for (int k = 0; k < 4; k++)
            {
                var before = pids.Select(ProcessTicks).ToArray();
                var clock = Stopwatch.StartNew();
                _ct.WaitHandle.WaitOne(TimeSpan.FromSeconds(1));
                _ct.ThrowIfCancellationRequested();
                var seconds = clock.Elapsed.TotalSeconds;
                double sum = 0;
                for (int i = 0; i < pids.Length; i++)
                {
                    var rate = (ProcessTicks(pids[i]) - before[i]) / seconds;
                    best[i] = Math.Min(best[i], rate);
                    sum += rate;
                }
                samples.Add(sum / TicksPerSecond);
            }
            for (int i = 0; i < pids.Length; i++) _idleTicksPerSecond[pids[i]] = best[i];
            var total = best.Sum() / TicksPerSecond;
            _results.IdleCpu[phase] = total;
            _out.WriteLine(string.Create(Inv, $"  idle CPU of the passthrough and both engines in phase {phase}: {total * 100:0.0}% of a core (least of {string.Join(", ", samples.Select(x => (x * 100).ToString("0", Inv) + "%"))})"));
        }

        /// <summary>Both engines' pids, found by their --home (the lab may start them through wrappers).</summary>
        private int[] FindEnginePids() => Lab.Nodes.Select(n =>
            Directory.EnumerateDirectories("/proc").Select(d => int.TryParse(Path.GetFileName(d), out var pid) ? pid : 0).Where(pid => pid > 0)
                .FirstOrDefault(pid =>
                {
                    try
                    {
                        var args = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
                        return args.Contains("run") && args.SkipWhile(a => a != "--home").Skip(1).FirstOrDefault() == n.Home && !args[0].EndsWith("unshare", StringComparison.Ordinal)
                            && File.ReadAllText($"/proc/{pid}/comm").Trim() == "servicekeeper";
                    }
                    catch (IOException) { return false; }
                    catch (UnauthorizedAccessException) { return false; }
                })).Where(pid => pid > 0).ToArray();

        /// <summary>utime + stime of every thread of a process so far, in ticks; 0 once it is gone.</summary>
        private static long ProcessTicks(int pid)
        {
            try
            {
                var stat = File.ReadAllText($"/proc/{pid}/stat");
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' '); // fields[0] is field 3 (state)
                return long.Parse(fields[11], Inv) + long.Parse(fields[12], Inv);
            }
            catch (IOException)
            {
                return 0;
            }
        }

        // ------------------------------------------------------------------ resync vs rsync

        private void Resync()
        {
            // The data set, written through the primary's mount while the secondary is ready: both copies equal.
            var files = _o.ResyncFiles;
            var fileMiB = _o.ResyncMiB / files;
            var data = SyncDir + "/data";
            _out.WriteLine($"Resync: data set of {files} files x {fileMiB} MiB through the primary's mount");
            Sh(N1, $"mkdir -p {data} && for i in $(seq 1 {files}); do dd if=/dev/urandom of={data}/f$i bs=1M count={fileMiB} status=none || exit 1; done");
            var differences = Api(N1).TestReplicationAsync(SyncModule, _ct).GetAwaiter().GetResult();
            if (differences.Count > 0) throw new InvalidOperationException($"the copies differ after writing the data set: {differences.Count} difference(s)");

            // rsync's destination: a copy of the secondary's directory (equal to the primary's before each change),
            // served by an rsync daemon in n2's namespace; the client runs in n1's namespace on the primary's
            // underlying directory. After each round the destination holds the changed data, as the secondary does.
            var dst = LabFile("rsync-dst");
            Directory.CreateDirectory(dst);
            Sh(null, $"cp -a {N2.RootPath("rs/data")} {dst}/");
            File.WriteAllText(LabFile("rsyncd.conf"), $"""
                pid file = {LabFile("rsyncd.pid")}
                log file = {LabFile("rsyncd.log")}
                address = {N2.Address}
                [dst]
                path = {dst}
                read only = no
                uid = root
                gid = root
                use chroot = no

                """);
            _rsyncd = Lab.StartInNode(N2, Tools.Find("rsync")!, "--daemon", "--no-detach", "--config=" + LabFile("rsyncd.conf"));
            _rsyncd.OutputDataReceived += (_, _) => { };
            _rsyncd.ErrorDataReceived += (_, _) => { };
            _rsyncd.BeginOutputReadLine();
            _rsyncd.BeginErrorReadLine();
            Tools.WaitFor(() => Lab.Exec(TimeSpan.FromSeconds(10), N1.Namespace, "rsync", $"rsync://{N2.Address}/").Succeeded,
                "the rsync daemon on n2", TimeSpan.FromSeconds(20), _ct);

            var totalBlocks4K = (long)_o.ResyncMiB * 256;
            var random = new Random(20261125);
            // Block size 0: no change at all, the fixed cost of a secondary's return (module start, handshake, comparison).
            foreach (var blockKiB in new[] { 0, 4, 64 })
            {
                for (var round = 1; round <= _o.ResyncRounds; round++)
                {
                    _ct.ThrowIfCancellationRequested();
                    StopModule(SyncModule, N2);
                    WaitState(SyncModule, N1, "ALONE");

                    // 1% of the data set's blocks of this size, at random (distinct) places, rewritten in place.
                    var blocksPerFile = blockKiB == 0 ? 0 : fileMiB * 1024 / blockKiB;
                    var count = blockKiB == 0 ? 0 : (int)Math.Round(totalBlocks4K * 4 / blockKiB * 0.01);
                    var picks = new HashSet<(int File, int Block)>();
                    while (picks.Count < count) picks.Add((random.Next(1, files + 1), random.Next(0, blocksPerFile)));
                    var script = new StringBuilder("set -e\n");
                    foreach (var (file, block) in picks.OrderBy(p => p.File).ThenBy(p => p.Block))
                        script.Append(Inv, $"dd if=/dev/urandom of={data}/f{file} bs={blockKiB}k count=1 seek={block} conv=notrunc status=none\n");
                    File.WriteAllText(LabFile("change.sh"), script.ToString());
                    if (count > 0) Sh(N1, "sh " + LabFile("change.sh"));
                    var dirty = Replication(SyncModule, N1);
                    var load = LoadAverage();

                    DropCaches();
                    var sent = DateTime.UtcNow;
                    // The command goes to the returning node itself (as an operator on it, or its boot, would start it):
                    // the time is the node's return, not a command's trip through another node's API.
                    Api(N2).SendCommandAsync(SyncModule, new ModuleCommandRequest { Command = ModuleCommands.Start, Node = "n2" }, _ct).GetAwaiter().GetResult();
                    WaitRoles(SyncModule, "PRIM", "SECOND", pollMs: 25);
                    var ready = new[] { ReadyAt(N1, "PRIM", sent), ReadyAt(N2, "SECOND", sent) }.Max();
                    var skSeconds = (ready - sent).TotalSeconds;
                    var last = Replication(SyncModule, N2).LastResync
                        ?? throw new InvalidOperationException("no LastResync on n2 after the resync");

                    // The same change with rsync: delta algorithm forced, files updated in place.
                    DropCaches();
                    var clock = Stopwatch.StartNew();
                    var r = Lab.Exec(TimeSpan.FromMinutes(10), N1.Namespace, "rsync", "-a", "--inplace", "--no-whole-file", "--stats",
                        N1.RootPath("rs/data") + "/", $"rsync://{N2.Address}/dst/data/");
                    var rsyncSeconds = clock.Elapsed.TotalSeconds;
                    if (!r.Succeeded) throw new InvalidOperationException($"rsync failed: {r.StdErr} {r.StdOut}");
                    long Stat(string name) => Regex.Match(r.StdOut, name + @":\s+([\d,.]+)") is { Success: true } m
                        ? long.Parse(m.Groups[1].Value.Replace(",", "", StringComparison.Ordinal).Replace(".", "", StringComparison.Ordinal), Inv) : -1;
                    var result = new RfsResults.ResyncRound(blockKiB, round, count, dirty.BytesDirty, skSeconds, last.Method, last.BytesSent,
                        last.BytesTotal, rsyncSeconds, Stat("Total bytes sent"), Stat("Total bytes received"), Stat("Literal data"), Stat("Matched data"), load);
                    _results.Resyncs.Add(result);
                    _out.WriteLine(string.Create(Inv,
                        $"  {blockKiB,2} KiB x {count} round {round}: ServiceKeeper {skSeconds:0.00} s, {last.Method}, {last.BytesSent / 1048576.0:0.00} MiB sent (journal {dirty.BytesDirty / 1048576.0:0.00} MiB dirty); " +
                        $"rsync {rsyncSeconds:0.00} s, sent {result.RsyncSent / 1048576.0:0.00} MiB, received {result.RsyncReceived / 1048576.0:0.00} MiB, literal {result.RsyncLiteral / 1048576.0:0.00} MiB; load {load}"));
                }
            }
            // Byte for byte, on the underlying directories (Test-SKReplication hashes 1 GiB per node through the API,
            // which can outlast the engine's 5 s call to its peer on a loaded machine).
            string Same(string other) => Sh(null, $"diff -rq {N1.RootPath("rs/data")} {other} >/dev/null && echo same || echo differ").Trim();
            _results.FinalCheck = $"After the resyncs (diff -r of the underlying directories): secondary vs primary: {Same(N2.RootPath("rs/data"))}; rsync destination vs primary: {Same(dst + "/data")}.";
            _out.WriteLine("  " + _results.FinalCheck);
            Sh(N1, $"rm -rf {data}");
        }

        /// <summary>
        /// When <paramref name="node"/>'s module log says it became <paramref name="state"/> (ready, not transient) after
        /// <paramref name="since"/>: the engines log each change with its millisecond, on this machine's clock, so the
        /// time does not depend on how often the bench polls the API (25 ms, to leave the cores to the resync).
        /// </summary>
        private DateTime ReadyAt(LabNode node, string state, DateTime since)
        {
            var pattern = new Regex($@"^(\S+) \d+ module: {SyncModule}: .* -> {state}(?! \(transient\))( \(.*\))?$");
            foreach (var line in File.ReadLines(Path.Combine(node.Home, "log", SyncModule + ".log")))
            {
                var m = pattern.Match(line);
                if (m.Success && DateTime.Parse(m.Groups[1].Value, Inv, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal) is var at && at >= since)
                    return at;
            }
            throw new InvalidOperationException($"{node.Name}: no '-> {state}' in its {SyncModule} log since {since:HH:mm:ss.fff}");
        }

        /// <summary>
        /// Cold start for each tool (--cold, the default): dirty pages written out, then the page cache dropped for the
        /// whole machine (both nodes share it), so each tool reads from the disk what it needs, as after a real outage.
        /// </summary>
        private void DropCaches()
        {
            if (!_o.Cold) return;
            Sh(null, "sync && echo 3 > /proc/sys/vm/drop_caches");
        }

        // ------------------------------------------------------------------ module control

        private void StartModule(string module, LabNode? node) =>
            Api(N1).SendCommandAsync(module, new ModuleCommandRequest { Command = ModuleCommands.Start, Node = node?.Name }, _ct).GetAwaiter().GetResult();

        private void StopModule(string module, LabNode? node)
        {
            Api(N1).SendCommandAsync(module, new ModuleCommandRequest { Command = ModuleCommands.Stop, Node = node?.Name }, _ct).GetAwaiter().GetResult();
            foreach (var n in node == null ? Lab.Nodes : new[] { node })
                Tools.WaitFor(() => StateOf(module, n) is { State: "STOP" }, $"{module} {n.Name} STOP", TimeSpan.FromSeconds(120), _ct, () => Describe(module));
        }

        private void WaitRoles(string module, string n1State, string n2State, int pollMs = 100) =>
            Tools.WaitFor(() => Is(module, N1, n1State) && Is(module, N2, n2State), $"{module}: n1 {n1State}, n2 {n2State}",
                TimeSpan.FromSeconds(_o.ResyncTimeoutSeconds), _ct, () => Describe(module), pollMs);

        private void WaitState(string module, LabNode node, string state) =>
            Tools.WaitFor(() => Is(module, node, state), $"{module} {node.Name} {state}", TimeSpan.FromSeconds(120), _ct, () => Describe(module));

        private bool Is(string module, LabNode node, string state) => StateOf(module, node) is { Ready: true } s && s.State == state;

        private ModuleState? StateOf(string module, LabNode node)
        {
            try
            {
                using var api = Api(node);
                return api.GetLocalStateAsync(_ct).GetAwaiter().GetResult().FirstOrDefault(s => s.Module == module);
            }
            catch (Exception) when (!_ct.IsCancellationRequested)
            {
                return null;
            }
        }

        private string Describe(string module) =>
            string.Join("; ", Lab.Nodes.Select(n => StateOf(module, n) is { } s ? $"{n.Name} {s.State}{(s.Ready ? "" : "(T)")} {s.Reason}" : $"{n.Name} ?"));

        private ReplicationStatus Replication(string module, LabNode node)
        {
            using var api = Api(N1);
            return api.GetReplicationAsync(module, node.Name, _ct).GetAwaiter().GetResult().Single();
        }

        private static SKApiClient Api(LabNode node)
        {
            var endpoint = SKEndpoint.Local(node.ApiSocketPath);
            endpoint.Timeout = TimeSpan.FromSeconds(10);
            return new SKApiClient(endpoint);
        }

        // ------------------------------------------------------------------ commands

        /// <summary>sh -c on the host (node null) or in the node's engine namespaces (its FUSE mounts); throws on failure.</summary>
        private string Sh(LabNode? node, string script)
        {
            _ct.ThrowIfCancellationRequested();
            var timeout = TimeSpan.FromMinutes(10);
            var r = node == null ? Lab.Exec(timeout, null, "sh", "-c", script) : Lab.ExecInEngineMounts(node, timeout, "sh", "-c", script);
            if (!r.Succeeded) throw new InvalidOperationException($"{(node == null ? "host" : node.Name)}: `{script}` failed ({r.ExitCode}{(r.TimedOut ? ", timed out" : "")}): {r.StdErr}{r.StdOut}");
            return r.StdOut + r.StdErr;
        }

        private static (bool Ok, string Output) Run(string tool, TimeSpan timeout, params string[] args)
        {
            var psi = new ProcessStartInfo(Tools.Find(tool) ?? tool) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(timeout))
            {
                p.Kill(entireProcessTree: true);
                return (false, "timed out");
            }
            p.WaitForExit();
            return (p.ExitCode == 0, stdout.Result + stderr.Result);
        }

        public static string LoadAverage() => string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));

        private static string FileSystemOf(string path)
        {
            var best = File.ReadAllLines("/proc/self/mounts").Select(l => l.Split(' '))
                .Where(f => f.Length > 2 && (path + "/").StartsWith(f[1].TrimEnd('/') + "/", StringComparison.Ordinal))
                .OrderByDescending(f => f[1].Length).FirstOrDefault();
            return best == null ? "?" : $"{best[0]} {best[2]}";
        }
    }

    /// <summary>Command-line settings of <c>servicekeeper-bench rfs</c>.</summary>
    public sealed class RfsBenchOptions
    {
        public int Rounds { get; private set; } = 5;
        public int BigMiB { get; private set; } = 256;
        public int SmallMiB { get; private set; } = 64;
        public int FsyncCount { get; private set; } = 200;
        public int ResyncMiB { get; private set; } = 1024;
        public int ResyncFiles { get; private set; } = 64;
        public bool Cold { get; private set; } = true;
        public IReadOnlyList<string> Phases { get; private set; } = ["writes", "resync", "disk"];
        public int ResyncRounds { get; private set; } = 3;
        public int ResyncTimeoutSeconds { get; private set; } = 600;
        public string OutDirectory { get; private set; } = Path.Combine("out", "bench");
        public bool KeepFiles { get; private set; }

        public static RfsBenchOptions Parse(string[] args)
        {
            var o = new RfsBenchOptions();
            for (int i = 0; i < args.Length; i++)
            {
                string Value() => BenchArgs.Value(args, ref i);
                int Int(int min, int max) => BenchArgs.Int(args, ref i, min, max);
                switch (args[i])
                {
                    case "--rounds": o.Rounds = Int(1, 50); break;
                    case "--big-mib": o.BigMiB = Int(1, 4096); break;
                    case "--small-mib": o.SmallMiB = Int(1, 1024); break;
                    case "--fsyncs": o.FsyncCount = Int(10, 100000); break;
                    case "--resync-mib": o.ResyncMiB = Int(16, 16384); break;
                    case "--resync-files": o.ResyncFiles = Int(1, 1000); break;
                    case "--resync-rounds": o.ResyncRounds = Int(1, 20); break;
                    case "--out": o.OutDirectory = Value(); break;
                    case "--keep-files": o.KeepFiles = true; break;
                    case "--cold": o.Cold = true; break;
                    case "--warm": o.Cold = false; break;
                    case "--phases":
                        o.Phases = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                        if (o.Phases.Except(["writes", "resync", "disk"]).FirstOrDefault() is { } bad) throw new ArgumentException($"Unknown phase '{bad}' (writes, resync, disk).");
                        break;
                    default: throw new ArgumentException($"Unknown option '{args[i]}'.");
                }
            }
            if (o.ResyncMiB % o.ResyncFiles != 0) throw new ArgumentException("--resync-mib must be a multiple of --resync-files.");
            if (o.SmallMiB > o.BigMiB) throw new ArgumentException("--small-mib cannot exceed --big-mib (both read the same source file).");
            return o;
        }
    }
}
