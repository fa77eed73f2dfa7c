// Walks a replicated directory (through its ReadRoot) and lists every path with its metadata, leaving out
// NotReplicated paths. Used by the resync (both nodes describe their tree) and by TreeManifest.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace ServiceKeeper.Engine.Replication
{
    /// <summary>One path of a tree as the resync sees it (no content).</summary>
    internal sealed record TreeEntry(string Path, FsStat Stat, string? Link, byte[]? XattrDigest, IReadOnlyList<string>? XattrNames = null);

    /// <summary>Which relative paths are left out of replication.</summary>
    internal sealed class PathFilter
    {
        private readonly string[] _excluded;

        public PathFilter(IEnumerable<string> notReplicated) =>
            _excluded = notReplicated.Select(Normalize).Where(p => p.Length > 0).Distinct().ToArray();

        public static string Normalize(string path) => path.Trim('/').Replace("//", "/", StringComparison.Ordinal);

        public bool IsExcluded(string? path)
        {
            if (string.IsNullOrEmpty(path) || _excluded.Length == 0) return false;
            foreach (var e in _excluded)
            {
                if (path.Length == e.Length ? string.Equals(path, e, StringComparison.Ordinal)
                    : path.Length > e.Length && path[e.Length] == '/' && path.StartsWith(e, StringComparison.Ordinal)) return true;
            }
            return false;
        }
    }

    internal static class TreeScan
    {
        public static string Full(string root, string relative) => relative.Length == 0 ? root : root.TrimEnd('/') + "/" + relative;

        /// <summary>Every path under root except root itself, parents before children, in ordinal order per directory.</summary>
        public static List<TreeEntry> Scan(string root, PathFilter filter, bool xattrs)
        {
            var result = new List<TreeEntry>();
            var pending = new Stack<string>();
            pending.Push("");
            while (pending.Count > 0)
            {
                var dir = pending.Pop();
                string[] names;
                try
                {
                    names = Directory.EnumerateFileSystemEntries(Full(root, dir)).Select(Path.GetFileName).OfType<string>().ToArray();
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
                Array.Sort(names, StringComparer.Ordinal);
                var subdirs = new List<string>();
                foreach (var name in names)
                {
                    var rel = dir.Length == 0 ? name : dir + "/" + name;
                    if (filter.IsExcluded(rel)) continue;
                    var full = Full(root, rel);
                    if (NativeFs.Stat(full, out var st) != 0) continue; // vanished meanwhile
                    string? link = null;
                    if (st.Type == FsEntryType.Symlink)
                    {
                        try { link = new FileInfo(full).LinkTarget; } catch (IOException) { continue; }
                    }
                    if (xattrs)
                    {
                        var all = NativeFs.Xattrs(full);
                        result.Add(new TreeEntry(rel, st, link, Digest(all), all.Count == 0 ? null : all.Keys.ToList()));
                    }
                    else result.Add(new TreeEntry(rel, st, link, null));
                    if (st.Type == FsEntryType.Directory) subdirs.Add(rel);
                }
                for (int i = subdirs.Count - 1; i >= 0; i--) pending.Push(subdirs[i]);
            }
            return result;
        }

        /// <summary>A digest of all extended attributes (names and values); null when there are none.</summary>
        public static byte[]? Digest(SortedDictionary<string, byte[]> all)
        {
            if (all.Count == 0) return null;
            using var h = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
            foreach (var (name, value) in all)
            {
                h.AppendData(System.Text.Encoding.UTF8.GetBytes(name));
                h.AppendData(BitConverter.GetBytes(value.Length));
                h.AppendData(value);
            }
            return h.GetHashAndReset()[..16];
        }
    }
}
