// The dirty journal: what it marks, how it follows renames, what survives a restart and what a crash costs.
using System;
using System.IO;
using System.Linq;
using ServiceKeeper.Engine.Replication;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Replication
{
    public sealed class DirtyJournalTests : IDisposable
    {
        private readonly string _dir = Path.Combine(Path.GetTempPath(), "skrepl-j" + Guid.NewGuid().ToString("N")[..10]);
        private string File1 => Path.Combine(_dir, "t.journal");

        public void Dispose()
        {
            try { Directory.Delete(_dir, true); } catch (IOException) { }
        }

        [Fact]
        public void Writes_MarkTheZonesTheyTouch()
        {
            using var j = DirtyJournal.Open(File1, 1 << 20);
            j.Mark(new FsMutation { Op = FsOp.Write, Path = "a", Offset = (1 << 20) - 10, Data = new byte[20] });
            j.Mark(new FsMutation { Op = FsOp.Write, Path = "b", Offset = 5 << 20, Data = new byte[1] });
            var snap = j.Snapshot();
            Assert.Equal(new long[] { 0, 1 }, snap["a"].Zones().ToArray());
            Assert.Equal(new long[] { 5 }, snap["b"].Zones().ToArray());
            Assert.Equal(2, j.FilesDirty);
            Assert.Equal(3L << 20, j.BytesDirty);
        }

        [Fact]
        public void RenamesMoveEntries_UnlinkAndRmdirDropThem()
        {
            using var j = DirtyJournal.Open(File1, 1 << 20);
            j.Mark(new FsMutation { Op = FsOp.Write, Path = "d/x", Offset = 0, Data = new byte[1] });
            j.Mark(new FsMutation { Op = FsOp.Write, Path = "d/y", Offset = 0, Data = new byte[1] });
            j.Mark(new FsMutation { Op = FsOp.Write, Path = "dd", Offset = 0, Data = new byte[1] });
            j.Mark(new FsMutation { Op = FsOp.Rename, Path = "d", Target = "e" });
            Assert.Equal(new[] { "dd", "e/x", "e/y" }, j.DirtyPaths().OrderBy(x => x, StringComparer.Ordinal));
            j.Mark(new FsMutation { Op = FsOp.Unlink, Path = "e/x" });
            j.Mark(new FsMutation { Op = FsOp.Rename, Path = "dd", Target = "e/y" }); // replaces e/y
            Assert.Equal(new[] { "e/y" }, j.DirtyPaths());
        }

        [Fact]
        public void CleanClose_IsTrustedOnReopen_CrashIsNot_AndStaysUntrustedUntilResynced()
        {
            using (var j = DirtyJournal.Open(File1, 1 << 20))
            {
                j.Mark(new FsMutation { Op = FsOp.Write, Path = "a", Offset = 0, Data = new byte[1] });
                j.SetSyncPoint(new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc));
            }
            using (var j = DirtyJournal.Open(File1, 1 << 20))
            {
                Assert.True(j.Trusted);
                Assert.Equal(1, j.FilesDirty);
                Assert.Equal(2026, j.SyncPoint!.Value.Year);
                j.Flush(); // and then the process dies: no Close
            }
            ReplicationPairless.Crash(File1);
            var k = DirtyJournal.Open(File1, 1 << 20);
            Assert.False(k.Trusted);
            Assert.Equal(1, k.FilesDirty);
            k.Close();
            using (var j = DirtyJournal.Open(File1, 1 << 20))
            {
                Assert.False(j.Trusted); // a clean restart does not make a crashed journal whole
                j.MarkResynced(j.MarkCounter, DateTime.UtcNow);
            }
            using (var j = DirtyJournal.Open(File1, 1 << 20))
            {
                Assert.True(j.Trusted);
                Assert.Equal(0, j.FilesDirty);
            }
        }

        [Fact]
        public void CorruptJournal_IsUntrustedWithoutSyncPoint()
        {
            Directory.CreateDirectory(_dir);
            File.WriteAllBytes(File1, new byte[] { 1, 2, 3 });
            using var j = DirtyJournal.Open(File1, 1 << 20);
            Assert.False(j.Trusted);
            Assert.Null(j.SyncPoint);
        }

        [Fact]
        public void ClearAfterResync_KeepsWhatWasMarkedLater()
        {
            using var j = DirtyJournal.Open(File1, 1 << 20);
            j.Mark(new FsMutation { Op = FsOp.Write, Path = "a", Offset = 0, Data = new byte[1] });
            long mark = j.MarkCounter;
            j.Mark(new FsMutation { Op = FsOp.Write, Path = "b", Offset = 0, Data = new byte[1] });
            j.MarkResynced(mark, DateTime.UtcNow);
            Assert.Equal(new[] { "b" }, j.DirtyPaths());
        }
    }

    internal static class ReplicationPairless
    {
        /// <summary>Makes a journal file look as a crash leaves it: no clean marker.</summary>
        public static void Crash(string file)
        {
            var bytes = File.ReadAllBytes(file);
            bytes[4] &= 0xFE;
            File.WriteAllBytes(file, bytes);
        }
    }
}
