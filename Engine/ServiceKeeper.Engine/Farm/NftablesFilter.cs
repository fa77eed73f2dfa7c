// Applies, checks and removes one farm module's kernel filter on Linux through the nft, ip and
// sysctl commands. Every command goes through a runner delegate, so tests run it inside a network
// namespace (ip netns exec) and the engine runs it locally.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json;

namespace ServiceKeeper.Engine.Farm
{
    /// <summary>Outcome of one command run for the farm filter.</summary>
    public sealed record FarmCommandResult(int ExitCode, string StdOut, string StdErr)
    {
        public bool Succeeded => ExitCode == 0;
    }

    /// <summary>Runs <paramref name="argv"/> (argv[0] = program name: nft, ip, sysctl) with optional stdin.</summary>
    public delegate FarmCommandResult FarmCommandRunner(IReadOnlyList<string> argv, string? stdin);

    public sealed class FarmFilterException(string message) : Exception(message);

    /// <summary>What <see cref="NftablesFilter.Verify"/> found; <see cref="Problems"/> says what is wrong in words.</summary>
    public sealed record FarmFilterStatus(bool Intact, bool OwnedMatches, IReadOnlyList<int> Owned, IReadOnlyList<string> Problems)
    {
        public bool Ok => Intact && OwnedMatches;
    }

    public sealed class NftablesFilter
    {
        public const string TcpLooseSysctl = "net.netfilter.nf_conntrack_tcp_loose";

        private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(30);
        private readonly FarmCommandRunner _run;

        /// <param name="rules">The module's filter text.</param>
        /// <param name="interfaceName">The NIC that carries the VIPs ("eth0"): gets the multicast MAC memberships.</param>
        /// <param name="run">Command runner; null runs the commands on this machine (<see cref="RunLocal"/>).</param>
        public NftablesFilter(FarmFilterRules rules, string interfaceName, FarmCommandRunner? run = null)
        {
            ArgumentNullException.ThrowIfNull(rules);
            ArgumentException.ThrowIfNullOrEmpty(interfaceName);
            Rules = rules;
            InterfaceName = interfaceName;
            _run = run ?? RunLocal;
        }

        public FarmFilterRules Rules { get; }

        public string InterfaceName { get; }

        /// <summary>
        /// Installs (or replaces, atomically) both tables with <paramref name="owned"/> buckets, sets
        /// nf_conntrack_tcp_loose=0 in this network namespace and joins the VIPs' multicast MACs.
        /// Idempotent. tcp_loose is left at 0 by <see cref="Remove"/>: it is per namespace, not per module.
        /// </summary>
        public void Apply(IEnumerable<int> owned)
        {
            Nft(Rules.Ruleset(owned), "install the farm filter");
            // After the ruleset: its ct expressions load conntrack, which creates the sysctl.
            Ensure(_run(new[] { "sysctl", "-q", "-w", TcpLooseSysctl + "=0" }, null), "set " + TcpLooseSysctl);
            var joined = MulticastMemberships();
            foreach (var mac in Macs().Where(m => !joined.Contains(m)))
            {
                Ensure(_run(new[] { "ip", "maddr", "add", mac, "dev", InterfaceName }, null), $"join {mac} on {InterfaceName}");
            }
        }

        /// <summary>Replaces the owned buckets in one transaction; the table must be installed.</summary>
        public void UpdateOwned(IEnumerable<int> owned) => Nft(Rules.OwnedUpdate(owned), "update the owned buckets");

        /// <summary>Deletes both tables and leaves the multicast MACs. Safe when nothing is installed.</summary>
        public void Remove()
        {
            Nft(Rules.Removal(), "remove the farm filter");
            var joined = MulticastMemberships();
            foreach (var mac in Macs().Where(joined.Contains))
            {
                Ensure(_run(new[] { "ip", "maddr", "del", mac, "dev", InterfaceName }, null), $"leave {mac} on {InterfaceName}");
            }
        }

        /// <summary>
        /// Reads the kernel's state back: both tables with their chains and rule counts, the jhash
        /// seed, the multicast memberships and tcp_loose (<see cref="FarmFilterStatus.Intact"/>), and
        /// whether the owned set holds exactly <paramref name="expectedOwned"/>. Never throws for a
        /// missing or damaged filter: that is what it reports.
        /// </summary>
        public FarmFilterStatus Verify(IEnumerable<int> expectedOwned)
        {
            ArgumentNullException.ThrowIfNull(expectedOwned);
            var expected = expectedOwned.Distinct().OrderBy(b => b).ToList();
            var problems = new List<string>();
            var owned = new List<int>();
            var ownedFound = false;

            var inet = ListTable("inet", problems);
            if (inet is not null)
            {
                CheckChain(inet, FarmFilterRules.PreroutingChain, "prerouting", Rules.PreroutingRuleCount, problems);
                CheckChain(inet, FarmFilterRules.InputChain, "input", Rules.InputRuleCount, problems);
                var seeds = inet.Rules(FarmFilterRules.InputChain)
                    .SelectMany(r => Descendants(r, "jhash"))
                    .Select(j => j.TryGetProperty("seed", out var s) && s.TryGetUInt32(out var v) ? v : (uint?)null)
                    .ToList();
                if (seeds.Count == 0 || seeds.Any(s => s != Rules.Seed))
                {
                    problems.Add($"input chain: jhash seed is not {Rules.Seed} everywhere");
                }
                if (inet.Set(FarmFilterRules.OwnedSetName) is { } set)
                {
                    ownedFound = true;
                    if (set.TryGetProperty("elem", out var elems))
                    {
                        foreach (var e in elems.EnumerateArray())
                        {
                            if (e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var b))
                            {
                                owned.Add(b);
                            }
                            else
                            {
                                problems.Add($"set {FarmFilterRules.OwnedSetName}: unexpected element {e.GetRawText()}");
                            }
                        }
                    }
                }
                else
                {
                    problems.Add($"set {FarmFilterRules.OwnedSetName} is missing");
                }
            }
            var arp = ListTable("arp", problems);
            if (arp is not null)
            {
                CheckChain(arp, FarmFilterRules.ArpOutputChain, "output", Rules.ArpRuleCount, problems);
            }

            var joined = MulticastMemberships();
            foreach (var mac in Macs().Where(m => !joined.Contains(m)))
            {
                problems.Add($"{InterfaceName} has not joined {mac}");
            }
            var loose = _run(new[] { "sysctl", "-n", TcpLooseSysctl }, null);
            if (!loose.Succeeded || loose.StdOut.Trim() != "0")
            {
                problems.Add($"{TcpLooseSysctl} is '{loose.StdOut.Trim()}', not 0");
            }

            owned.Sort();
            var ownedMatches = ownedFound && owned.SequenceEqual(expected);
            var intact = problems.Count == 0;
            if (ownedFound && !ownedMatches)
            {
                problems.Add($"set {FarmFilterRules.OwnedSetName} holds {owned.Count} bucket(s), {expected.Count} expected" +
                    $" ({owned.Except(expected).Count()} extra, {expected.Except(owned).Count()} missing)");
            }
            return new FarmFilterStatus(intact, ownedMatches, owned, problems);
        }

        /// <summary>The default runner: the program from PATH (or /usr/sbin, /sbin), killed after 30 s.</summary>
        public static FarmCommandResult RunLocal(IReadOnlyList<string> argv, string? stdin)
        {
            ArgumentNullException.ThrowIfNull(argv);
            if (argv.Count == 0)
            {
                throw new ArgumentException("No command.", nameof(argv));
            }
            var psi = new ProcessStartInfo(Resolve(argv[0]))
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var a in argv.Skip(1))
            {
                psi.ArgumentList.Add(a);
            }
            using var p = Process.Start(psi) ?? throw new FarmFilterException($"Could not start {argv[0]}.");
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            try
            {
                if (stdin is not null)
                {
                    p.StandardInput.Write(stdin);
                }
                p.StandardInput.Close();
            }
            catch (IOException)
            {
                // The program exited without reading; its exit code tells why.
            }
            if (!p.WaitForExit(CommandTimeout))
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit();
                return new FarmCommandResult(-1, stdout.Result, $"{argv[0]} timed out after {CommandTimeout.TotalSeconds} s. {stderr.Result}");
            }
            p.WaitForExit();
            return new FarmCommandResult(p.ExitCode, stdout.Result, stderr.Result);
        }

        private static string Resolve(string program)
        {
            if (program.Contains('/'))
            {
                return program;
            }
            var dirs = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries)
                .Concat(new[] { "/usr/sbin", "/sbin", "/usr/bin", "/bin" });
            return dirs.Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists) ?? program;
        }

        private IEnumerable<string> Macs() => Rules.Vips.Select(FarmFilterRules.MulticastMac).Distinct();

        private void Nft(string script, string what) => Ensure(_run(new[] { "nft", "-f", "-" }, script), what);

        private static void Ensure(FarmCommandResult r, string what)
        {
            if (!r.Succeeded)
            {
                throw new FarmFilterException($"Could not {what}: exit {r.ExitCode}: {r.StdErr.Trim()}");
            }
        }

        private HashSet<string> MulticastMemberships()
        {
            var r = _run(new[] { "ip", "maddr", "show", "dev", InterfaceName }, null);
            // "link  03:00:5e:12:07:32 static" lines; lower-case hex like MulticastMac.
            return r.StdOut.Split('\n')
                .Select(l => l.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Where(f => f.Length >= 2 && f[0] == "link")
                .Select(f => f[1].ToLowerInvariant())
                .ToHashSet(StringComparer.Ordinal);
        }

        private TableListing? ListTable(string family, List<string> problems)
        {
            var r = _run(new[] { "nft", "-j", "list", "table", family, Rules.TableName }, null);
            if (!r.Succeeded)
            {
                problems.Add($"table {family} {Rules.TableName} is missing");
                return null;
            }
            try
            {
                using var doc = JsonDocument.Parse(r.StdOut);
                var items = doc.RootElement.GetProperty("nftables").EnumerateArray().Select(e => e.Clone()).ToList();
                return new TableListing(items);
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                problems.Add($"table {family} {Rules.TableName}: unreadable listing ({e.Message})");
                return null;
            }
        }

        private static void CheckChain(TableListing table, string chain, string hook, int ruleCount, List<string> problems)
        {
            var c = table.Chain(chain);
            if (c is null)
            {
                problems.Add($"chain {chain} is missing");
                return;
            }
            if (!c.Value.TryGetProperty("hook", out var h) || h.GetString() != hook)
            {
                problems.Add($"chain {chain} is not on hook {hook}");
            }
            var n = table.Rules(chain).Count();
            if (n != ruleCount)
            {
                problems.Add($"chain {chain} has {n} rule(s), {ruleCount} expected");
            }
        }

        private static IEnumerable<JsonElement> Descendants(JsonElement e, string property)
        {
            if (e.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in e.EnumerateObject())
                {
                    if (p.Name == property)
                    {
                        yield return p.Value;
                    }
                    foreach (var d in Descendants(p.Value, property))
                    {
                        yield return d;
                    }
                }
            }
            else if (e.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in e.EnumerateArray())
                {
                    foreach (var d in Descendants(item, property))
                    {
                        yield return d;
                    }
                }
            }
        }

        // The objects of one "nft -j list table": {"table":...}, {"set":...}, {"chain":...}, {"rule":...}.
        private sealed class TableListing(List<JsonElement> items)
        {
            public JsonElement? Chain(string name) => Of("chain").Where(c => Name(c) == name).Select(c => (JsonElement?)c).FirstOrDefault();

            public JsonElement? Set(string name) => Of("set").Where(s => Name(s) == name).Select(s => (JsonElement?)s).FirstOrDefault();

            public IEnumerable<JsonElement> Rules(string chain) =>
                Of("rule").Where(r => r.TryGetProperty("chain", out var c) && c.GetString() == chain);

            private IEnumerable<JsonElement> Of(string kind) =>
                items.Where(i => i.ValueKind == JsonValueKind.Object && i.TryGetProperty(kind, out _)).Select(i => i.GetProperty(kind));

            private static string? Name(JsonElement e) => e.TryGetProperty("name", out var n) ? n.GetString() : null;
        }
    }
}
