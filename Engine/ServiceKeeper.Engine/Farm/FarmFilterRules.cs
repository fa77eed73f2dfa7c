// The nftables text of one farm module's kernel filter on one node (DESIGN.md "Farm module on Linux").
// Pure: builds strings, runs nothing; NftablesFilter applies them.
//
//   table inet sk_<module>
//     set owned        the bucket numbers this node serves (typeof meta length: a 32-bit host-order
//                      integer, the type jhash yields; "type mark" is refused as a different datatype
//                      and "typeof jhash ..." loads but makes nft 1.0.6 crash when listing it)
//     chain prerouting (hook prerouting, priority raw): ip daddr VIP meta pkttype set host
//                      Frames to the multicast MAC arrive as PACKET_MULTICAST and TCP drops those
//                      (ping still works, so always test with TCP). TCP checks pkt_type only after
//                      the hooks; raw priority simply sets it before anything else looks.
//     chain input      (hook input, priority filter: after conntrack), per rule and VIP, in rule order:
//                        ... ct state established,related accept     live sessions survive a rebalance
//                        ... ct state new jhash <key> mod 256 seed S @owned accept
//                        ... drop
//                      The last line also drops mid-stream packets of connections another node owns:
//                      with nf_conntrack_tcp_loose=0 they are ct INVALID (never NEW), so a node that
//                      just gained a bucket stays silent instead of sending RSTs into a live session.
//                      on_ipid (stateless UDP) hashes "ip id" per packet without the ct lines.
//   table arp sk_<module>
//     chain output:    arp saddr ip VIP arp saddr ether set <multicast MAC>
//                      so every node's ARP answer for the VIP names the same multicast MAC and the
//                      switch floods client frames to all nodes.
// Traffic to the VIP that no rule covers (ping, other ports) is not filtered: every node answers it.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using ServiceKeeper.Engine.Configuration;

namespace ServiceKeeper.Engine.Farm
{
    public sealed class FarmFilterRules
    {
        public const string OwnedSetName = "owned";
        public const string PreroutingChain = "prerouting";
        public const string InputChain = "input";
        public const string ArpOutputChain = "output";

        // The table name is "sk_" + module, so nft's "letter first" holds; keep to characters nft never quotes.
        private static readonly Regex ModuleNamePattern = new("^[A-Za-z0-9_][A-Za-z0-9_-]{0,60}$", RegexOptions.CultureInvariant);

        private readonly List<(IPAddress Vip, LoadBalancingRule Rule)> _lines;

        /// <param name="module">Module name; the tables are called sk_&lt;module&gt;.</param>
        /// <param name="vips">The farm VIPs of the module (IPv4: the hash reads <c>ip saddr</c>).</param>
        /// <param name="rules">&lt;rule&gt;s in config order; a rule without virtual_addr covers every VIP.</param>
        /// <param name="seed">jhash seed; null: <see cref="SeedFor"/>(module). Must be the same on every node.</param>
        public FarmFilterRules(string module, IEnumerable<IPAddress> vips, IEnumerable<LoadBalancingRule> rules, uint? seed = null)
        {
            ArgumentNullException.ThrowIfNull(module);
            ArgumentNullException.ThrowIfNull(vips);
            ArgumentNullException.ThrowIfNull(rules);
            if (!ModuleNamePattern.IsMatch(module))
            {
                throw new ArgumentException($"Module name '{module}' cannot name an nft table (letters, digits, '_' and '-', up to 61).", nameof(module));
            }
            Module = module;
            TableName = "sk_" + module;
            Vips = vips.Distinct().ToList();
            if (Vips.Count == 0)
            {
                throw new ArgumentException("A farm filter needs at least one VIP.", nameof(vips));
            }
            foreach (var vip in Vips)
            {
                if (vip.AddressFamily != AddressFamily.InterNetwork)
                {
                    throw new NotSupportedException($"Farm VIP {vip}: only IPv4 VIPs are filtered (the hash reads ip saddr).");
                }
            }
            Rules = rules.ToList();
            if (Rules.Count == 0)
            {
                throw new ArgumentException("A farm filter needs at least one load-balancing rule.", nameof(rules));
            }
            _lines = new List<(IPAddress, LoadBalancingRule)>();
            foreach (var rule in Rules)
            {
                if (rule.Port is < 1 or > 65535)
                {
                    throw new ArgumentOutOfRangeException(nameof(rules), rule.Port, "A rule's port is 1..65535 or absent (every port).");
                }
                if (rule.VirtualAddress is { } only && !Vips.Contains(only))
                {
                    throw new ArgumentException($"Rule virtual_addr {only} is not a VIP of module '{module}'.", nameof(rules));
                }
                foreach (var vip in rule.VirtualAddress is null ? Vips : new List<IPAddress> { rule.VirtualAddress })
                {
                    _lines.Add((vip, rule));
                }
            }
            Seed = seed ?? SeedFor(module);
        }

        public string Module { get; }

        /// <summary>"sk_&lt;module&gt;", in family inet and in family arp.</summary>
        public string TableName { get; }

        public IReadOnlyList<IPAddress> Vips { get; }

        public IReadOnlyList<LoadBalancingRule> Rules { get; }

        public uint Seed { get; }

        /// <summary>Rules the generated prerouting chain holds (for Verify).</summary>
        public int PreroutingRuleCount => Vips.Count;

        /// <summary>Rules the generated input chain holds (for Verify).</summary>
        public int InputRuleCount => 1 + _lines.Sum(l => l.Rule.Filter == LoadBalancingFilter.OnIpId ? 2 : 3);

        /// <summary>Rules the generated arp output chain holds (for Verify).</summary>
        public int ArpRuleCount => Vips.Count;

        /// <summary>A stable seed from the module name (FNV-1a 32 of its UTF-8 bytes), the same on every node.</summary>
        public static uint SeedFor(string module)
        {
            ArgumentNullException.ThrowIfNull(module);
            var h = 2166136261u;
            foreach (var c in Encoding.UTF8.GetBytes(module))
            {
                h = (h ^ c) * 16777619u;
            }
            return h;
        }

        /// <summary>
        /// The multicast MAC a VIP is answered with in ARP: 03:00:5e + the low three bytes of the VIP.
        /// 0x03 = group bit (frames are flooded, every node's NIC accepts them after <c>ip maddr add</c>)
        /// + locally administered bit (outside IANA's 01:00:5e IPv4-multicast range, so it never
        /// collides with a real multicast group's MAC).
        /// </summary>
        public static string MulticastMac(IPAddress vip)
        {
            ArgumentNullException.ThrowIfNull(vip);
            if (vip.AddressFamily != AddressFamily.InterNetwork)
            {
                throw new NotSupportedException($"Farm VIP {vip}: only IPv4 VIPs have a multicast MAC here.");
            }
            var b = vip.GetAddressBytes();
            return string.Format(CultureInfo.InvariantCulture, "03:00:5e:{0:x2}:{1:x2}:{2:x2}", b[1], b[2], b[3]);
        }

        /// <summary>
        /// The whole filter with <paramref name="owned"/> as the owned buckets, for one <c>nft -f -</c>:
        /// an existing table is replaced in the same transaction (declare, delete, define), so there is
        /// no instant without a filter and no leftover from an older ruleset.
        /// </summary>
        public string Ruleset(IEnumerable<int> owned)
        {
            var set = CheckOwned(owned);
            var sb = new StringBuilder();
            DeleteTables(sb);
            sb.Append("table inet ").Append(TableName).Append(" {\n");
            sb.Append("  set ").Append(OwnedSetName).Append(" {\n    typeof meta length\n  }\n");
            sb.Append("  chain ").Append(PreroutingChain).Append(" {\n    type filter hook prerouting priority raw; policy accept;\n");
            foreach (var vip in Vips)
            {
                sb.Append("    ip daddr ").Append(vip).Append(" meta pkttype set host\n");
            }
            sb.Append("  }\n");
            sb.Append("  chain ").Append(InputChain).Append(" {\n    type filter hook input priority filter; policy accept;\n");
            sb.Append("    iifname \"lo\" accept\n");
            foreach (var (vip, rule) in _lines)
            {
                var match = Match(vip, rule);
                var hash = $"jhash {HashKey(rule)} mod {BucketMap.BucketCount} seed 0x{Seed.ToString("x8", CultureInfo.InvariantCulture)} @{OwnedSetName} accept";
                if (rule.Filter == LoadBalancingFilter.OnIpId)
                {
                    sb.Append("    ").Append(match).Append(' ').Append(hash).Append('\n');
                }
                else
                {
                    sb.Append("    ").Append(match).Append(" ct state established,related accept\n");
                    sb.Append("    ").Append(match).Append(" ct state new ").Append(hash).Append('\n');
                }
                sb.Append("    ").Append(match).Append(" drop\n");
            }
            sb.Append("  }\n}\n");
            sb.Append("table arp ").Append(TableName).Append(" {\n");
            sb.Append("  chain ").Append(ArpOutputChain).Append(" {\n    type filter hook output priority filter; policy accept;\n");
            foreach (var vip in Vips)
            {
                sb.Append("    arp saddr ip ").Append(vip).Append(" arp saddr ether set ").Append(MulticastMac(vip)).Append('\n');
            }
            sb.Append("  }\n}\n");
            AddElements(sb, set);
            return sb.ToString();
        }

        /// <summary>Replaces the owned buckets in one transaction (flush + add); the chains are untouched.</summary>
        public string OwnedUpdate(IEnumerable<int> owned)
        {
            var set = CheckOwned(owned);
            var sb = new StringBuilder();
            sb.Append("flush set inet ").Append(TableName).Append(' ').Append(OwnedSetName).Append('\n');
            AddElements(sb, set);
            return sb.ToString();
        }

        /// <summary>Deletes both tables; succeeds whether they exist or not.</summary>
        public string Removal()
        {
            var sb = new StringBuilder();
            DeleteTables(sb);
            return sb.ToString();
        }

        private static IReadOnlyList<int> CheckOwned(IEnumerable<int> owned)
        {
            ArgumentNullException.ThrowIfNull(owned);
            var set = owned.Distinct().OrderBy(b => b).ToList();
            if (set.Count > 0 && (set[0] < 0 || set[^1] >= BucketMap.BucketCount))
            {
                throw new ArgumentOutOfRangeException(nameof(owned), $"Buckets are 0..{BucketMap.BucketCount - 1}.");
            }
            return set;
        }

        // "table X" creates it if missing, so the "delete" that follows never fails.
        private void DeleteTables(StringBuilder sb)
        {
            foreach (var family in new[] { "inet", "arp" })
            {
                sb.Append("table ").Append(family).Append(' ').Append(TableName).Append('\n');
                sb.Append("delete table ").Append(family).Append(' ').Append(TableName).Append('\n');
            }
        }

        private void AddElements(StringBuilder sb, IReadOnlyList<int> set)
        {
            // "{ }" is a syntax error: an empty owned set is just not filled.
            if (set.Count > 0)
            {
                sb.Append("add element inet ").Append(TableName).Append(' ').Append(OwnedSetName).Append(" { ")
                    .Append(string.Join(", ", set.Select(b => b.ToString(CultureInfo.InvariantCulture))))
                    .Append(" }\n");
            }
        }

        private static string Proto(LoadBalancingRule rule) => rule.Protocol == TransportProtocol.Udp ? "udp" : "tcp";

        private static string Match(IPAddress vip, LoadBalancingRule rule) => rule.Port is { } port
            ? $"ip daddr {vip} {Proto(rule)} dport {port.ToString(CultureInfo.InvariantCulture)}"
            : $"ip daddr {vip} meta l4proto {Proto(rule)}";

        private static string HashKey(LoadBalancingRule rule) => rule.Filter switch
        {
            LoadBalancingFilter.OnAddress => "ip saddr",
            LoadBalancingFilter.OnPort => $"ip saddr . {Proto(rule)} sport",
            LoadBalancingFilter.OnIpId => "ip id",
            _ => throw new ArgumentOutOfRangeException(nameof(rule), rule.Filter, "Unknown load-balancing filter."),
        };
    }
}
