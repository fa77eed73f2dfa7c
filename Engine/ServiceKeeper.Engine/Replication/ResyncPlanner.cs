// Pure planning of a resync: from both nodes' tree listings (taken at the same point of the replication
// stream), the primary's journal and what both sides know about the last sync point, decide
//   (a) the namespace and metadata operations that make the secondary's tree shape equal the primary's, and
//   (b) per file, how its data is brought over: dirty zones (journal), block hash comparison (hash), whole (full).
// No I/O: ReplicationSource runs the plan.
using System;
using System.Collections.Generic;
using System.Linq;

namespace ServiceKeeper.Engine.Replication
{
    internal enum DataMethod { Zones, Hash, All }

    internal sealed class DataItem
    {
        public string Path = "";
        public DataMethod Method;
        public List<long> Zones = new();
        /// <summary>The journal's exact 4 KiB block map (null when unknown, as after a restart): only those blocks are sent.</summary>
        public DirtyJournal.Entry? Fine;
        public long TruncatedFrom = long.MaxValue;
        /// <summary>Size when planned, for the progress total.</summary>
        public long PlannedBytes;
    }

    internal sealed class ResyncPlan
    {
        public List<FsMutation> Namespace { get; } = new();
        public List<DataItem> Data { get; } = new();
        public string Method = "journal";
        public long BytesTotal;
    }

    /// <summary>What the secondary says about its copy of one tree.</summary>
    internal sealed record SecondaryTreeState(string TreeId, DateTime? SyncPoint, bool Trusted, bool Interrupted, bool InterruptedFull, IReadOnlyList<string> DirtyPaths);

    internal static class ResyncPlanner
    {
        private const uint OCreatWrite = 0x41; // O_WRONLY | O_CREAT

        /// <param name="primaryTrusted">The primary's journal survived since the last sync point (clean shutdowns only).</param>
        /// <param name="primarySyncPoint">The primary's last sync point.</param>
        public static ResyncPlan Plan(
            IReadOnlyList<TreeEntry> primary, IReadOnlyList<TreeEntry> secondary,
            IReadOnlyDictionary<string, DirtyJournal.Entry> journal, bool primaryTrusted, DateTime? primarySyncPoint,
            SecondaryTreeState peer, bool fullRequested, int zoneBytes)
        {
            var plan = new ResyncPlan();
            var p = primary.ToDictionary(e => e.Path, StringComparer.Ordinal);
            var s = secondary.ToDictionary(e => e.Path, StringComparer.Ordinal);

            // Common base: the older of both sync points. None → full copy (or hash everything when resuming one).
            DateTime? syncPoint = primarySyncPoint == null || peer.SyncPoint == null ? null
                : primarySyncPoint < peer.SyncPoint ? primarySyncPoint : peer.SyncPoint;
            bool full = fullRequested || (syncPoint == null && !peer.InterruptedFull);
            bool hashAll = !fullRequested && syncPoint == null && peer.InterruptedFull;
            bool trusted = primaryTrusted && peer.Trusted && !peer.Interrupted;
            long spNs = syncPoint == null ? long.MinValue : (syncPoint.Value - DateTime.UnixEpoch).Ticks * 100;
            var peerDirty = new HashSet<string>(peer.DirtyPaths, StringComparer.Ordinal);

            var sLeader = LeaderMap(secondary);
            var pLeader = LeaderMap(primary);
            string Key(Dictionary<string, string> leaders, string path) => leaders.TryGetValue(path, out var l) ? l : path;

            // What must go on the secondary: wrong type, wrong symlink, wrong hard-link grouping.
            var replace = new HashSet<string>(StringComparer.Ordinal);
            foreach (var pe in primary)
            {
                if (!s.TryGetValue(pe.Path, out var se)) continue;
                if (se.Stat.Type != pe.Stat.Type
                    || (pe.Stat.Type == FsEntryType.Symlink && se.Link != pe.Link)
                    || (pe.Stat.Type == FsEntryType.Other && (se.Stat.Mode & 0xF000) != (pe.Stat.Mode & 0xF000) || pe.Stat.Type == FsEntryType.Other && se.Stat.Rdev != pe.Stat.Rdev)
                    || (pe.Stat.Type == FsEntryType.File && Key(sLeader, pe.Path) != Key(pLeader, pe.Path)))
                    replace.Add(pe.Path);
            }
            // (a1) Deletes, children before parents.
            var deletes = secondary.Where(se => !p.ContainsKey(se.Path) || replace.Contains(se.Path))
                .OrderByDescending(se => se.Path, StringComparer.Ordinal).ToList();
            var deleted = new HashSet<string>(StringComparer.Ordinal);
            foreach (var se in deletes)
            {
                // A directory to replace loses its children first: they are not in the primary's tree under a non-directory.
                plan.Namespace.Add(new FsMutation { Op = se.Stat.Type == FsEntryType.Directory ? FsOp.Rmdir : FsOp.Unlink, Path = se.Path });
                deleted.Add(se.Path);
            }

            // (a2) Creates in path order (parents first), then hard links, then metadata.
            var created = new HashSet<string>(StringComparer.Ordinal);
            var links = new List<FsMutation>();
            foreach (var pe in primary)
            {
                bool exists = s.ContainsKey(pe.Path) && !deleted.Contains(pe.Path);
                if (exists) continue;
                var st = pe.Stat;
                if (st.Type == FsEntryType.File && Key(pLeader, pe.Path) != pe.Path)
                {
                    links.Add(new FsMutation { Op = FsOp.Link, Path = Key(pLeader, pe.Path), Target = pe.Path });
                    continue;
                }
                created.Add(pe.Path);
                plan.Namespace.Add(st.Type switch
                {
                    FsEntryType.Directory => new FsMutation { Op = FsOp.Mkdir, Path = pe.Path, Mode = st.Permissions, Uid = st.Uid, Gid = st.Gid },
                    FsEntryType.Symlink => new FsMutation { Op = FsOp.Symlink, Path = pe.Path, Target = pe.Link, Uid = st.Uid, Gid = st.Gid },
                    FsEntryType.File => new FsMutation { Op = FsOp.Create, Path = pe.Path, Mode = st.Mode, Flags = OCreatWrite, Uid = st.Uid, Gid = st.Gid },
                    _ => new FsMutation { Op = FsOp.Mknod, Path = pe.Path, Mode = st.Mode, Rdev = st.Rdev, Uid = st.Uid, Gid = st.Gid },
                });
            }
            plan.Namespace.AddRange(links);
            foreach (var pe in primary)
            {
                s.TryGetValue(pe.Path, out var se);
                bool fresh = created.Contains(pe.Path) || se == null || deleted.Contains(pe.Path);
                if (pe.Stat.Type != FsEntryType.Symlink && (fresh || se!.Stat.Permissions != pe.Stat.Permissions))
                    plan.Namespace.Add(new FsMutation { Op = FsOp.Chmod, Path = pe.Path, Mode = pe.Stat.Permissions });
                if (fresh || se!.Stat.Uid != pe.Stat.Uid || se.Stat.Gid != pe.Stat.Gid)
                    plan.Namespace.Add(new FsMutation { Op = FsOp.Chown, Path = pe.Path, Uid = pe.Stat.Uid, Gid = pe.Stat.Gid });
            }

            // (b) Data, one item per inode (the link group's leader).
            bool anyHash = false;
            foreach (var pe in primary)
            {
                if (pe.Stat.Type != FsEntryType.File || Key(pLeader, pe.Path) != pe.Path) continue;
                s.TryGetValue(pe.Path, out var se);
                bool fresh = se == null || deleted.Contains(pe.Path);
                var item = new DataItem { Path = pe.Path, PlannedBytes = pe.Stat.Size };
                journal.TryGetValue(pe.Path, out var je);
                if (fresh || full)
                {
                    if (fresh && pe.Stat.Size == 0 && !full) continue;
                    item.Method = hashAll && !fresh ? DataMethod.Hash : DataMethod.All;
                }
                else if (hashAll || peerDirty.Contains(pe.Path) || se!.Stat.Size != pe.Stat.Size || (je != null && je.All)
                    || (!trusted && (pe.Stat.CtimeNs >= spNs || se.Stat.CtimeNs >= spNs))
                    || !XattrEqual(pe, se))
                {
                    item.Method = DataMethod.Hash;
                }
                else if (je != null)
                {
                    item.Method = DataMethod.Zones;
                    item.Zones = je.Zones().Where(z => z * zoneBytes < pe.Stat.Size).ToList();
                    item.TruncatedFrom = je.TruncatedFrom;
                    long tail = je.TruncatedFrom < pe.Stat.Size ? pe.Stat.Size - je.TruncatedFrom : 0;
                    item.PlannedBytes = Math.Min(pe.Stat.Size, item.Zones.Count * (long)zoneBytes + tail);
                    if (je.FineExact && zoneBytes > DirtyJournal.FineBlockBytes && zoneBytes % DirtyJournal.FineBlockBytes == 0)
                    {
                        item.Fine = je;
                        int per = zoneBytes / DirtyJournal.FineBlockBytes;
                        long blocks = item.Zones.Sum(z => Enumerable.Range(0, per).Count(k => je.IsFine(z * per + k)) is var c && c > 0 ? c : per);
                        item.PlannedBytes = Math.Min(pe.Stat.Size, blocks * DirtyJournal.FineBlockBytes + tail);
                    }
                }
                else continue;
                anyHash |= item.Method == DataMethod.Hash;
                plan.Data.Add(item);
                plan.BytesTotal += item.PlannedBytes;
            }
            // Big files first: they bound the resync's duration, small ones fill the gaps.
            plan.Data.Sort((a, b) => b.PlannedBytes.CompareTo(a.PlannedBytes));
            plan.Method = full ? "full" : anyHash ? "hash" : "journal";
            return plan;
        }

        private static bool XattrEqual(TreeEntry a, TreeEntry b) =>
            a.XattrDigest == null ? b.XattrDigest == null : b.XattrDigest != null && a.XattrDigest.AsSpan().SequenceEqual(b.XattrDigest);

        /// <summary>For files with several links inside the tree: path → the ordinal-first path of its inode.</summary>
        private static Dictionary<string, string> LeaderMap(IReadOnlyList<TreeEntry> entries)
        {
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var g in entries.Where(e => e.Stat.Type == FsEntryType.File && e.Stat.Links > 1).GroupBy(e => e.Stat.Inode))
            {
                var paths = g.Select(e => e.Path).OrderBy(x => x, StringComparer.Ordinal).ToList();
                if (paths.Count < 2) continue;
                foreach (var x in paths) result[x] = paths[0];
            }
            return result;
        }
    }
}
