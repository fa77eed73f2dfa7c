// The resync planner alone (pure): which namespace operations, and which method per file.
using System;
using System.Collections.Generic;
using System.Linq;
using ServiceKeeper.Engine.Replication;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Replication
{
    public sealed class ResyncPlannerTests
    {
        private static readonly DateTime SyncPoint = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        private static long Ns(DateTime t) => (t - DateTime.UnixEpoch).Ticks * 100;
        private static ulong _ino = 100;

        private static TreeEntry File(string path, long size, DateTime? ctime = null, ulong? ino = null, uint links = 1) =>
            new(path, new FsStat(FsEntryType.File, 0x81A4, 0, 0, size, 0, Ns(ctime ?? SyncPoint.AddHours(-1)), ino ?? _ino++, links, 0), null, null);

        private static TreeEntry Dir(string path) => new(path, new FsStat(FsEntryType.Directory, 0x41ED, 0, 0, 0, 0, 0, _ino++, 2, 0), null, null);

        private static SecondaryTreeState Peer(bool trusted = true, DateTime? sp = null) =>
            new("t", sp ?? SyncPoint, trusted, false, false, Array.Empty<string>());

        private static ResyncPlan Plan(List<TreeEntry> p, List<TreeEntry> s, Dictionary<string, DirtyJournal.Entry>? j = null,
            bool primaryTrusted = true, SecondaryTreeState? peer = null, bool full = false, DateTime? primarySp = null) =>
            ResyncPlanner.Plan(p, s, j ?? new(), primaryTrusted, primarySp ?? SyncPoint, peer ?? Peer(), full, 1 << 20);

        [Fact]
        public void TrustedJournal_SendsOnlyJournaledZones_OfJournaledFiles()
        {
            var e = new DirtyJournal.Entry();
            e.SetZone(3);
            var plan = Plan([File("a", 10 << 20), File("b", 10 << 20)], [File("a", 10 << 20), File("b", 10 << 20)], new() { ["a"] = e });
            var item = Assert.Single(plan.Data);
            Assert.Equal("a", item.Path);
            Assert.Equal(DataMethod.Zones, item.Method);
            Assert.Equal(new long[] { 3 }, item.Zones);
            Assert.Equal("journal", plan.Method);
            Assert.Equal(1L << 20, plan.BytesTotal);
        }

        [Fact]
        public void UntrustedJournal_HashesFilesChangedSinceTheSyncPointOnEitherSide()
        {
            var after = SyncPoint.AddMinutes(1);
            var plan = Plan(
                [File("old", 100), File("newhere", 100, after), File("newthere", 100)],
                [File("old", 100), File("newhere", 100), File("newthere", 100, after)],
                primaryTrusted: false);
            Assert.Equal(new[] { "newhere", "newthere" }, plan.Data.Select(d => d.Path).OrderBy(x => x));
            Assert.All(plan.Data, d => Assert.Equal(DataMethod.Hash, d.Method));
            Assert.Equal("hash", plan.Method);
        }

        [Fact]
        public void NoCommonSyncPoint_MeansFullCopy()
        {
            var plan = Plan([File("a", 100)], [File("a", 100)], peer: Peer(sp: null) with { SyncPoint = null });
            Assert.Equal("full", plan.Method);
            Assert.Equal(DataMethod.All, Assert.Single(plan.Data).Method);
        }

        [Fact]
        public void TypeChange_RemovesTheOldSubtreeChildrenFirst_ThenCreates()
        {
            var plan = Plan([File("x", 5)], [Dir("x"), Dir("x/y"), File("x/y/z", 1)]);
            var ops = plan.Namespace.Select(m => $"{m.Op} {m.Path}").ToList();
            Assert.Equal(new[] { "Unlink x/y/z", "Rmdir x/y", "Rmdir x", "Create x" }, ops.Take(4));
            Assert.Equal(DataMethod.All, Assert.Single(plan.Data).Method);
        }

        [Fact]
        public void HardLinks_AreLinkedNotCopied_AndWrongGroupingIsUndone()
        {
            // Primary: a and b are one inode. Secondary: a exists alone, c shares a's inode but must not.
            var plan = Plan(
                [File("a", 10, ino: 1, links: 2), File("b", 10, ino: 1, links: 2), File("c", 10, ino: 2)],
                [File("a", 10, ino: 7, links: 2), File("c", 10, ino: 7, links: 2)]);
            var ops = plan.Namespace.Where(m => m.Op is FsOp.Unlink or FsOp.Link or FsOp.Create).Select(m => $"{m.Op} {m.Path} {m.Target}").ToList();
            Assert.Contains("Unlink c ", ops);
            Assert.Contains("Create c ", ops);
            Assert.Contains("Link a b", ops);
            Assert.DoesNotContain(plan.Data, d => d.Path == "b");
        }
    }
}
