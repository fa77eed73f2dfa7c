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

        /// <summary>Marks writes in 64 KiB zones: inside one block, across two blocks, across two zones, a whole zone.</summary>
        private static void MarkScattered(DirtyJournal j)
        {
            j.Mark(new FsMutation { Op = FsOp.Write, Path = "a", Offset = 10, Data = new byte[20] });            // block 0
            j.Mark(new FsMutation { Op = FsOp.Write, Path = "a", Offset = 8192 + 4000, Data = new byte[200] });  // blocks 2, 3
            j.Mark(new FsMutation { Op = FsOp.Write, Path = "a", Offset = (5L << 16) - 4096, Data = new byte[8192] }); // blocks 79, 80
            j.Mark(new FsMutation { Op = FsOp.Write, Path = "b", Offset = 3L << 16, Data = new byte[1 << 16] });  // blocks 48..63
            j.Mark(new FsMutation { Op = FsOp.Write, Path = "c", Offset = 0, Data = new byte[1] });
            j.Mark(new FsMutation { Op = FsOp.Create, Path = "c" }); // all of it: no block map needed
        }

        private static long[] FineBlocks(DirtyJournal.Entry e) =>
            Enumerable.Range(0, 4096).Where(b => e.IsFine(b)).Select(b => (long)b).ToArray();

        [Fact]
        public void BlockMap_SurvivesACleanRestart_ExactlyAsItWas()
        {
            System.Collections.Generic.Dictionary<string, DirtyJournal.Entry> before;
            using (var j = DirtyJournal.Open(File1, 64 << 10))
            {
                MarkScattered(j);
                before = j.Snapshot();
            }
            Assert.Equal(new long[] { 0, 2, 3, 79, 80 }, FineBlocks(before["a"]));
            using (var j = DirtyJournal.Open(File1, 64 << 10))
            {
                Assert.True(j.Trusted);
                var after = j.Snapshot();
                foreach (var path in new[] { "a", "b" })
                {
                    Assert.True(after[path].FineExact, path);
                    Assert.Equal(before[path].Zones(), after[path].Zones());
                    Assert.Equal(FineBlocks(before[path]), FineBlocks(after[path]));
                }
                Assert.True(after["c"].All);
                // Marks after the restart add to the loaded map, and the next restart keeps both.
                j.Mark(new FsMutation { Op = FsOp.Write, Path = "a", Offset = 3L << 16, Data = new byte[1] });
            }
            using (var j = DirtyJournal.Open(File1, 64 << 10))
                Assert.Equal(new long[] { 0, 2, 3, 48, 79, 80 }, FineBlocks(j.Snapshot()["a"]));
        }

        [Fact]
        public void BlockMap_OfASequentialWrite_CostsOneBitPerZoneOnDisk()
        {
            using (var j = DirtyJournal.Open(File1, 64 << 10))
                j.Mark(new FsMutation { Op = FsOp.Write, Path = "big", Offset = 0, Data = new byte[8 << 20] }); // 128 whole zones
            long with = new FileInfo(File1).Length;
            ReplicationPairless.DropBlockMap(File1);
            long without = new FileInfo(File1).Length;
            // magic + block size, the entry's "exact" byte, 128 bits of "partly written": no block bits at all.
            Assert.Equal(8 + 1 + 16, with - without);
        }

        [Fact]
        public void BlockMap_ClearedZonesStayCleared_AcrossARestart()
        {
            using (var j = DirtyJournal.Open(File1, 64 << 10))
            {
                MarkScattered(j);
                j.ClearZone("a", 0, j.MarkCounter);
                j.Flush();
                j.Close();
            }
            using var k = DirtyJournal.Open(File1, 64 << 10);
            var a = k.Snapshot()["a"];
            Assert.True(a.FineExact);
            Assert.Equal(new long[] { 4, 5 }, a.Zones());
            Assert.Equal(new long[] { 79, 80 }, FineBlocks(a));
        }

        [Fact]
        public void JournalOfAnOlderEngine_WithoutTheBlockMap_LoadsItsZones_ToBeComparedByHashes()
        {
            using (var j = DirtyJournal.Open(File1, 64 << 10))
            {
                MarkScattered(j);
                j.LogRename(new FsMutation { Op = FsOp.Rename, Path = "x", Target = "y" });
            }
            ReplicationPairless.DropBlockMap(File1);
            using var k = DirtyJournal.Open(File1, 64 << 10);
            Assert.True(k.Trusted);
            var a = k.Snapshot()["a"];
            Assert.False(a.FineExact);
            Assert.Empty(FineBlocks(a));
            Assert.Equal(new long[] { 0, 4, 5 }, a.Zones());
            Assert.Single(k.Renames());
        }

        [Fact]
        public void BlockMap_AfterACrash_IsNotExact()
        {
            using (var j = DirtyJournal.Open(File1, 64 << 10))
            {
                MarkScattered(j);
                j.Flush(); // and the process dies
            }
            ReplicationPairless.Crash(File1);
            using var k = DirtyJournal.Open(File1, 64 << 10);
            Assert.False(k.Trusted);
            Assert.False(k.Snapshot()["a"].FineExact);
            Assert.Equal(new long[] { 0, 4, 5 }, k.Snapshot()["a"].Zones());
        }

        [Fact]
        public void BlockMap_OfAnotherZoneSize_IsNotUsed()
        {
            using (var j = DirtyJournal.Open(File1, 64 << 10))
                MarkScattered(j);
            using var k = DirtyJournal.Open(File1, 128 << 10);
            var a = k.Snapshot()["a"];
            Assert.True(a.All);
            Assert.False(a.FineExact);
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
        /// <summary>Cuts the block map off a journal file: what an engine from before it wrote.</summary>
        public static void DropBlockMap(string file)
        {
            long end;
            using (var r = new BinaryReader(File.OpenRead(file), System.Text.Encoding.UTF8))
            {
                r.ReadBytes(4 + 1 + 8 + 4);
                int count = r.ReadInt32();
                for (int i = 0; i < count; i++)
                {
                    r.ReadString();
                    r.ReadInt64();
                    r.ReadBoolean();
                    r.ReadBytes(8 * r.ReadInt32());
                }
                int renames = r.ReadInt32();
                for (int i = 0; i < renames; i++)
                {
                    r.ReadString();
                    r.ReadString();
                    r.ReadUInt32();
                }
                end = r.BaseStream.Position;
                Assert.True(end < r.BaseStream.Length, "the journal has no block map to drop");
            }
            using var f = new FileStream(file, FileMode.Open, FileAccess.Write);
            f.SetLength(end);
        }

        /// <summary>Makes a journal file look as a crash leaves it: no clean marker.</summary>
        public static void Crash(string file)
        {
            var bytes = File.ReadAllBytes(file);
            bytes[4] &= 0xFE;
            File.WriteAllBytes(file, bytes);
        }
    }
}
