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
        /// <param name="only">When given, only these paths are listed, and only the directories that lead to them are read.</param>
        public static List<TreeEntry> Scan(string root, PathFilter filter, bool xattrs, IReadOnlySet<string>? only = null)
        {
            var leading = only == null ? null : Ancestors(only);
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
                    var listed = only == null || only.Contains(rel);
                    var descend = leading == null || leading.Contains(rel);
                    if (!listed && !descend) continue;
                    var full = Full(root, rel);
                    if (NativeFs.Stat(full, out var st) != 0) continue; // vanished meanwhile
                    string? link = null;
                    if (st.Type == FsEntryType.Symlink)
                    {
                        try { link = new FileInfo(full).LinkTarget; } catch (IOException) { continue; }
                    }
                    if (listed && xattrs)
                    {
                        var all = NativeFs.Xattrs(full);
                        result.Add(new TreeEntry(rel, st, link, Digest(all), all.Count == 0 ? null : all.Keys.ToList()));
                    }
                    else if (listed) result.Add(new TreeEntry(rel, st, link, null));
                    if (st.Type == FsEntryType.Directory && descend) subdirs.Add(rel);
                }
                for (int i = subdirs.Count - 1; i >= 0; i--) pending.Push(subdirs[i]);
            }
            return result;
        }

        /// <summary>Every proper parent of the paths ("a" and "a/b" for "a/b/c").</summary>
        private static HashSet<string> Ancestors(IEnumerable<string> paths)
        {
            var result = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in paths)
                for (var i = p.IndexOf('/'); i > 0; i = p.IndexOf('/', i + 1)) result.Add(p[..i]);
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
