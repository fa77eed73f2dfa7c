// Which farm node serves which of the 256 traffic buckets: one pure, deterministic function of the
// membership view (UP node name -> power), so every node computes the same map without talking.
//
// Scheme: weighted rendezvous hashing (highest random weight), per bucket:
//     owner(b) = argmax over nodes n with power > 0 of  -power(n) / ln(u(b, n)),  u in (0, 1)
// u is a fixed 64-bit hash of (bucket, node name) mapped to (0, 1): no .NET string hashing (it is
// randomized per process), no dependence on dictionary order. Properties:
//   - a bucket's owner depends only on the scores of the nodes in the view, so removing node X moves
//     exactly X's buckets (each to the runner-up) and adding X moves only the buckets X now wins,
//     from their old owners to X; nothing ever moves between two nodes that stayed;
//   - P(owner = n) = power(n) / sum of powers (the -w/ln(u) form is exact for weights, unlike
//     multiplying hashes by weights), so shares follow power up to binomial noise over 256 buckets.
// A contiguous "power-proportional ranges" split would be perfectly fair but moves up to half the
// buckets on any change, cutting affinity for clients that did not need to move; we prefer stability.
//
// Transitions: how a node goes from one map to the next without double owners (release lost buckets
// at once, take gained ones only once every member gossips the same view; Plan splits a change into
// those two steps) and why established connections never move (conntrack) is FarmMachine's business:
// see the header of FarmMachine.cs. In short, a bucket owned by two nodes at once is the harmful case
// (both answer the SYN, the loser's RST kills the new connection); a bucket owned by nobody for a
// moment only drops SYNs, which the client retransmits.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace ServiceKeeper.Engine.Farm
{
    /// <summary>One bucket that changes owner between two maps (null: nobody).</summary>
    public readonly record struct BucketMove(int Bucket, string? From, string? To);

    /// <summary>
    /// What one node does when its map changes: drop <see cref="Release"/> from its owned set at
    /// once (keeping <see cref="Interim"/>), and add <see cref="Take"/> after the settle delay,
    /// ending with <see cref="Final"/>.
    /// </summary>
    public sealed record BucketTransition(
        IReadOnlyList<int> Release, IReadOnlyList<int> Take, IReadOnlyList<int> Interim, IReadOnlyList<int> Final)
    {
        public bool IsEmpty => Release.Count == 0 && Take.Count == 0;
    }

    public static class BucketMap
    {
        /// <summary>Buckets of the kernel filter: <c>jhash ... mod 256</c>.</summary>
        public const int BucketCount = 256;

        /// <summary>
        /// The owner of each of the 256 buckets (index = bucket), or null for every bucket when no node
        /// has power &gt; 0. Nodes with power 0 own nothing. The same view gives the same map on every node.
        /// </summary>
        public static string?[] Assign(IReadOnlyDictionary<string, int> powers)
        {
            ArgumentNullException.ThrowIfNull(powers);
            foreach (var (name, power) in powers)
            {
                if (string.IsNullOrEmpty(name))
                {
                    throw new ArgumentException("A node name is empty.", nameof(powers));
                }
                if (power < 0)
                {
                    throw new ArgumentOutOfRangeException(nameof(powers), power, $"Power of node '{name}' is negative.");
                }
            }
            // Sorted, so that ties (practically impossible with 53-bit hashes) break the same way everywhere.
            var nodes = powers.Where(p => p.Value > 0)
                .OrderBy(p => p.Key, StringComparer.Ordinal)
                .Select(p => (Name: p.Key, Power: (double)p.Value, Key: NodeKey(p.Key)))
                .ToArray();
            var map = new string?[BucketCount];
            if (nodes.Length == 0)
            {
                return map;
            }
            for (var b = 0; b < BucketCount; b++)
            {
                string? best = null;
                var bestScore = double.NegativeInfinity;
                foreach (var (name, power, key) in nodes)
                {
                    var score = -power / Math.Log(UnitInterval(Mix(key ^ Mix((ulong)b + 0x9E3779B97F4A7C15UL))));
                    if (score > bestScore)
                    {
                        bestScore = score;
                        best = name;
                    }
                }
                map[b] = best;
            }
            return map;
        }

        /// <summary>The buckets <paramref name="node"/> owns in <paramref name="map"/>, ascending.</summary>
        public static IReadOnlyList<int> BucketsOf(IReadOnlyList<string?> map, string node)
        {
            ArgumentNullException.ThrowIfNull(map);
            ArgumentNullException.ThrowIfNull(node);
            var owned = new List<int>();
            for (var b = 0; b < map.Count; b++)
            {
                if (string.Equals(map[b], node, StringComparison.Ordinal))
                {
                    owned.Add(b);
                }
            }
            return owned;
        }

        /// <summary>Buckets per owner (owners with none are absent).</summary>
        public static IReadOnlyDictionary<string, int> Counts(IReadOnlyList<string?> map)
        {
            ArgumentNullException.ThrowIfNull(map);
            return map.Where(o => o is not null)
                .GroupBy(o => o!, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        }

        /// <summary>Every bucket whose owner differs between the two maps, ascending.</summary>
        public static IReadOnlyList<BucketMove> Moves(IReadOnlyList<string?> oldMap, IReadOnlyList<string?> newMap)
        {
            CheckMap(oldMap, nameof(oldMap));
            CheckMap(newMap, nameof(newMap));
            var moves = new List<BucketMove>();
            for (var b = 0; b < BucketCount; b++)
            {
                if (!string.Equals(oldMap[b], newMap[b], StringComparison.Ordinal))
                {
                    moves.Add(new BucketMove(b, oldMap[b], newMap[b]));
                }
            }
            return moves;
        }

        /// <summary>
        /// How <paramref name="node"/> goes from <paramref name="oldMap"/> to <paramref name="newMap"/>:
        /// release lost buckets now, take gained ones after the settle delay (file header explains why).
        /// </summary>
        public static BucketTransition Plan(IReadOnlyList<string?> oldMap, IReadOnlyList<string?> newMap, string node)
        {
            CheckMap(oldMap, nameof(oldMap));
            CheckMap(newMap, nameof(newMap));
            ArgumentNullException.ThrowIfNull(node);
            var before = BucketsOf(oldMap, node);
            var after = BucketsOf(newMap, node);
            return new BucketTransition(
                Release: before.Except(after).ToList(),
                Take: after.Except(before).ToList(),
                Interim: before.Intersect(after).ToList(),
                Final: after);
        }

        private static void CheckMap(IReadOnlyList<string?> map, string name)
        {
            ArgumentNullException.ThrowIfNull(map, name);
            if (map.Count != BucketCount)
            {
                throw new ArgumentException($"A bucket map has {BucketCount} entries, not {map.Count}.", name);
            }
        }

        // FNV-1a 64 of the UTF-8 name, then a finalizer: stable across processes, platforms and versions.
        private static ulong NodeKey(string name)
        {
            var h = 0xCBF29CE484222325UL;
            foreach (var c in Encoding.UTF8.GetBytes(name))
            {
                h = (h ^ c) * 0x100000001B3UL;
            }
            return Mix(h);
        }

        // SplitMix64 finalizer: full avalanche, so (bucket, node) pairs give independent-looking values.
        private static ulong Mix(ulong z)
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        // The top 53 bits as a double strictly inside (0, 1): ln(u) is finite and negative.
        private static double UnitInterval(ulong x) => ((x >> 11) + 0.5) / (1UL << 53);
    }
}
