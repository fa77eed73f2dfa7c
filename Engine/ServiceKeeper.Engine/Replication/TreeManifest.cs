// Test-SKReplication's raw material: what one node holds in a replicated directory, path by path, by content
// hash (NotReplicated paths left out), and the comparison of two such lists (ManifestComparison does the
// path-by-path verdict). Reads the real tree through the tree's ReadRoot, never through the FUSE mount.
using System;
using System.Collections.Generic;
using System.IO;
using System.Security.Cryptography;
using System.Threading;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Engine.Replication
{
    public static class TreeManifest
    {
        /// <summary>Lists <paramref name="readRoot"/> as the manifest of directory <paramref name="directory"/>.</summary>
        /// <param name="only">
        /// When given, only these paths are listed (and hashed). Hard links then group only among them: Test-SKReplication
        /// asks again for every path that differed, and a path whose links differ makes all its links on either node differ.
        /// </param>
        public static ManifestDirectory Build(string directory, string readRoot, IEnumerable<string> notReplicated, IReadOnlySet<string>? only = null, CancellationToken ct = default)
        {
            var result = new ManifestDirectory { Directory = directory };
            var groups = new Dictionary<ulong, int>();
            var linkCount = new Dictionary<ulong, int>();
            var entries = TreeScan.Scan(readRoot, new PathFilter(notReplicated), xattrs: false, only);
            foreach (var e in entries)
                if (e.Stat.Type == FsEntryType.File && e.Stat.Links > 1) linkCount[e.Stat.Inode] = linkCount.GetValueOrDefault(e.Stat.Inode) + 1;
            foreach (var e in entries)
            {
                ct.ThrowIfCancellationRequested();
                var full = TreeScan.Full(readRoot, e.Path);
                var m = new ManifestEntry
                {
                    Path = e.Path,
                    Type = e.Stat.Type switch { FsEntryType.File => "file", FsEntryType.Directory => "directory", FsEntryType.Symlink => "symlink", _ => "other" },
                    Size = e.Stat.Type == FsEntryType.File ? e.Stat.Size : 0,
                    Mode = (int)e.Stat.Permissions,
                    Uid = e.Stat.Uid,
                    Gid = e.Stat.Gid,
                    MtimeNanoseconds = e.Stat.MtimeNs,
                    Link = e.Link,
                };
                if (e.Stat.Type == FsEntryType.File)
                {
                    m.Sha256 = HashFile(full);
                    // Only links that are both inside the replicated part count as a group.
                    if (linkCount.GetValueOrDefault(e.Stat.Inode) > 1)
                    {
                        if (!groups.TryGetValue(e.Stat.Inode, out var g)) groups[e.Stat.Inode] = g = groups.Count + 1;
                        m.LinkGroup = g;
                    }
                }
                var xattrs = NativeFs.Xattrs(full);
                if (xattrs.Count > 0)
                {
                    m.Xattrs = new Dictionary<string, string>(StringComparer.Ordinal);
                    foreach (var (name, value) in xattrs) m.Xattrs[name] = Convert.ToHexString(SHA256.HashData(value)).ToLowerInvariant();
                }
                result.Entries.Add(m);
            }
            return result;
        }

        /// <summary>Builds the manifest of a tree of <see cref="ReplicationOptions"/>.</summary>
        public static ManifestDirectory Build(ReplicatedTree tree, CancellationToken ct = default) => Build(tree.Id, tree.ReadRoot, tree.NotReplicated, ct: ct);

        /// <summary>Every way the secondary's copy differs from the primary's (empty: identical).</summary>
        public static List<ReplicationDifference> Diff(string module, ManifestDirectory primary, ManifestDirectory secondary) =>
            ManifestComparison.Compare(module,
                new ReplicationManifest { Node = "primary", Directories = { primary } },
                new ReplicationManifest { Node = "secondary", Directories = { new ManifestDirectory { Directory = primary.Directory, Entries = secondary.Entries } } });

        private static string? HashFile(string full)
        {
            try
            {
                using var f = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 20, FileOptions.SequentialScan);
                return Convert.ToHexString(SHA256.HashData(f)).ToLowerInvariant();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        }
    }
}
