// Test-SKReplication's verdict: the primary's manifest of its replicated directories against the
// secondary's, path by path. Modification times are not compared (each node's kernel stamps its own
// writes); everything an application reads is: type, size, content hash, permissions, owner, symlink
// target, extended attributes and which paths are hard links of each other.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Engine.Replication
{
    public static class ManifestComparison
    {
        /// <summary>
        /// Test-SKReplication's passes. Both lists are taken while the application writes: a file written between the
        /// two reads differs for a moment. So after a first <paramref name="compare"/> of the whole copies, only the
        /// paths that differ are compared again (up to <paramref name="passes"/> in all, <paramref name="interval"/>
        /// apart), and what differs in every pass is the answer, as the first pass described it. A node whose engine
        /// predates lists of paths (a rolling upgrade) answers such a request with 405: that pass compares the whole
        /// copies again instead.
        /// </summary>
        /// <param name="compare">Compares the copies: all of them (null), or only the paths of a request.</param>
        public static async Task<List<ReplicationDifference>> CompareRepeatedlyAsync(
            Func<ManifestRequest?, CancellationToken, Task<List<ReplicationDifference>>> compare,
            int passes, TimeSpan interval, TimeProvider time, CancellationToken ct)
        {
            var differences = await compare(null, ct);
            for (int pass = 1; pass < passes && differences.Count > 0; pass++)
            {
                await Task.Delay(interval, time, ct);
                List<ReplicationDifference> now;
                try { now = await compare(PathsOf(differences), ct); }
                catch (SKApiException e) when (e.StatusCode == 405) { now = await compare(null, ct); }
                var again = now.Select(Key).ToHashSet();
                differences = differences.Where(d => again.Contains(Key(d))).ToList();
            }
            return differences;
        }

        /// <summary>The paths of <paramref name="differences"/>, per directory: what a later pass asks each node to list.</summary>
        public static ManifestRequest PathsOf(IEnumerable<ReplicationDifference> differences) => new()
        {
            Directories = differences.GroupBy(d => d.Directory, StringComparer.Ordinal).Select(g => new ManifestPaths
            {
                Directory = g.Key,
                Paths = g.Select(d => d.Path).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(),
            }).ToList(),
        };

        private static (string Directory, string Path, string Kind) Key(ReplicationDifference d) => (d.Directory, d.Path, d.Kind);

        public static List<ReplicationDifference> Compare(string module, ReplicationManifest primary, ReplicationManifest secondary)
        {
            var differences = new List<ReplicationDifference>();
            var theirs = secondary.Directories.ToDictionary(d => d.Directory, StringComparer.Ordinal);
            foreach (var mine in primary.Directories)
            {
                if (!theirs.TryGetValue(mine.Directory, out var other))
                {
                    differences.Add(new ReplicationDifference
                    {
                        Module = module, Directory = mine.Directory, Path = "", Kind = "MissingOnSecondary",
                        Primary = "replicated directory", Secondary = "not reported by " + secondary.Node,
                    });
                    continue;
                }
                CompareDirectory(module, mine, other, differences);
            }
            return differences;
        }

        private static void CompareDirectory(string module, ManifestDirectory primary, ManifestDirectory secondary, List<ReplicationDifference> differences)
        {
            void Add(string path, string kind, string? p, string? s) => differences.Add(new ReplicationDifference
            {
                Module = module, Directory = primary.Directory, Path = path, Kind = kind, Primary = p, Secondary = s,
            });

            var theirs = secondary.Entries.ToDictionary(e => e.Path, StringComparer.Ordinal);
            var mineByPath = primary.Entries.ToDictionary(e => e.Path, StringComparer.Ordinal);
            foreach (var p in primary.Entries.OrderBy(e => e.Path, StringComparer.Ordinal))
            {
                if (!theirs.TryGetValue(p.Path, out var s))
                {
                    Add(p.Path, "MissingOnSecondary", Describe(p), null);
                    continue;
                }
                if (p.Type != s.Type) { Add(p.Path, "Type", p.Type, s.Type); continue; }
                if (p.Type == "file" && p.Size != s.Size) Add(p.Path, "Size", Bytes(p.Size), Bytes(s.Size));
                else if (p.Type == "file" && !string.Equals(p.Sha256, s.Sha256, StringComparison.OrdinalIgnoreCase)) Add(p.Path, "Content", "sha256 " + p.Sha256, "sha256 " + s.Sha256);
                if (p.Type != "symlink" && p.Mode != s.Mode) Add(p.Path, "Mode", Octal(p.Mode), Octal(s.Mode));
                if (p.Uid != s.Uid || p.Gid != s.Gid) Add(p.Path, "Owner", $"{p.Uid}:{p.Gid}", $"{s.Uid}:{s.Gid}");
                if (p.Type == "symlink" && p.Link != s.Link) Add(p.Path, "Link", p.Link, s.Link);
                var px = p.Xattrs ?? new Dictionary<string, string>();
                var sx = s.Xattrs ?? new Dictionary<string, string>();
                foreach (var name in px.Keys.Union(sx.Keys).OrderBy(n => n, StringComparer.Ordinal))
                {
                    px.TryGetValue(name, out var pv);
                    sx.TryGetValue(name, out var sv);
                    if (pv != sv) Add(p.Path, "Xattr", pv == null ? null : name + " sha256 " + pv, sv == null ? null : name + " sha256 " + sv);
                }
            }
            foreach (var s in secondary.Entries.Where(e => !mineByPath.ContainsKey(e.Path)).OrderBy(e => e.Path, StringComparer.Ordinal))
                Add(s.Path, "ExtraOnSecondary", null, Describe(s));

            // Hard links: paths that share an inode on the primary must share one on the secondary, and only those.
            string Partner(ManifestDirectory d, ManifestEntry e) =>
                e.LinkGroup == null ? "" : string.Join(",", d.Entries.Where(o => o.LinkGroup == e.LinkGroup).Select(o => o.Path).OrderBy(x => x, StringComparer.Ordinal));
            foreach (var p in primary.Entries.Where(e => e.Type == "file"))
            {
                if (!theirs.TryGetValue(p.Path, out var s) || s.Type != "file") continue;
                var mineLinks = Partner(primary, p);
                var theirLinks = Partner(secondary, s);
                if (mineLinks != theirLinks) Add(p.Path, "HardLink", mineLinks.Length == 0 ? "no other link" : mineLinks, theirLinks.Length == 0 ? "no other link" : theirLinks);
            }
        }

        private static string Describe(ManifestEntry e) => e.Type switch
        {
            "file" => "file, " + Bytes(e.Size),
            "symlink" => "symlink to " + e.Link,
            _ => e.Type,
        };

        private static string Bytes(long n) => n.ToString("N0", CultureInfo.InvariantCulture) + " bytes";

        private static string Octal(int mode) => "0" + Convert.ToString(mode & 0xFFF, 8);
    }
}
