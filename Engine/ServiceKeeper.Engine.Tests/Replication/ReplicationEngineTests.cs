// End-to-end tests of the replication engine: real TCP over loopback, real directories, the primary
// applying each mutation with LinuxDirectory and through the sink as the FUSE file system does.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Replication;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Replication
{
    [SupportedOSPlatform("linux")]
    public sealed class ReplicationEngineTests
    {
        private static string Show(List<ReplicationDifference> d) =>
            string.Join("\n", d.Take(20).Select(x => $"{x.Kind} {x.Path}: {x.Primary} / {x.Secondary}"));

        /// <summary>Reconnects, waits for the copies to be identical, checks the resync's method; its record and the bytes the
        /// secondary wrote meanwhile.</summary>
        private static async Task<(ResyncProgress Last, long Sent)> ReconnectAndResyncAsync(ReplicationPair pair, string method)
        {
            long before = pair.SecondaryApplier.WriteBytes;
            await pair.ConnectAsync();
            AssertIdentical(pair);
            var last = pair.Source.Status()[0].LastResync!;
            Assert.Equal(method, last.Method);
            return (last, pair.SecondaryApplier.WriteBytes - before);
        }

        private static void AssertIdentical(ReplicationPair pair)
        {
            var diff = pair.Diff();
            Assert.True(diff.Count == 0, "trees differ:\n" + Show(diff));
        }

        private static void MixedWorkload(ReplicationPair pair, int seed)
        {
            var rnd = new Random(seed);
            pair.Mkdir("a");
            pair.Mkdir("a/b");
            pair.Mkdir("logs", 0x1C0);
            pair.WriteFile("a/big.bin", 5 << 20, seed);
            pair.WriteFile("a/b/small.txt", 3000, seed + 1, chunk: 4096);
            pair.WriteFile("logs/app.log", 100_000, seed + 2, chunk: 4096);
            // Overwrites at random places, a truncate that shrinks and one that extends.
            for (int i = 0; i < 200; i++)
            {
                var data = new byte[rnd.Next(1, 20_000)];
                rnd.NextBytes(data);
                pair.Write("a/big.bin", rnd.Next(0, 5 << 20), data);
            }
            pair.Ok(new FsMutation { Op = FsOp.Truncate, Path = "logs/app.log", Offset = 40_000 });
            pair.Ok(new FsMutation { Op = FsOp.Truncate, Path = "a/b/small.txt", Offset = 70_000 });
            pair.Ok(new FsMutation { Op = FsOp.Symlink, Path = "a/link", Target = "b/small.txt" });
            pair.Ok(new FsMutation { Op = FsOp.Link, Path = "a/big.bin", Target = "a/hard.bin" });
            pair.Ok(new FsMutation { Op = FsOp.Chmod, Path = "a/b/small.txt", Mode = 0x180 });
            pair.Ok(new FsMutation { Op = FsOp.Chown, Path = "a/b/small.txt", Uid = 1234, Gid = 4321 });
            pair.Ok(new FsMutation { Op = FsOp.SetXattr, Path = "a/b/small.txt", Name = "user.tag", Data = Encoding.UTF8.GetBytes("blue") });
            pair.WriteFile("tmpfile", 1000, seed + 3);
            pair.Ok(new FsMutation { Op = FsOp.Rename, Path = "tmpfile", Target = "a/renamed" });
            pair.Mkdir("gone");
            pair.WriteFile("gone/x", 10, seed + 4);
            pair.Ok(new FsMutation { Op = FsOp.Unlink, Path = "gone/x" });
            pair.Ok(new FsMutation { Op = FsOp.Rmdir, Path = "gone" });
            pair.Ok(new FsMutation { Op = FsOp.Fsync, Path = "a/big.bin" });
        }

        [LinuxDirectoryFact]
        public async Task LiveReplication_MixedWorkload_BothTreesIdentical()
        {
            await using var pair = ReplicationPair.Create();
            await pair.ConnectAsync();
            MixedWorkload(pair, 1);
            AssertIdentical(pair);
            var st = pair.Source.Status()[0];
            Assert.Equal("replicating", st.State);
            Assert.Equal("sync", st.Mode);
            Assert.Equal(0, st.OperationsPending);
            Assert.True(st.OperationsReplicated > 200);
            Assert.Equal(0, st.FilesDirty);
            Assert.Equal("receiving", pair.Target!.Status()[0].State);
        }

        [LinuxDirectoryFact]
        public async Task LiveReplication_SyncDisk_SecondaryAcknowledgesDurableWrites()
        {
            await using var pair = ReplicationPair.Create(RfsAsync.None);
            long fsyncs = 0;
            pair.SecondaryApplier.Before = m => { if (m.Op == FsOp.Fsync) Interlocked.Increment(ref fsyncs); return null; };
            await pair.ConnectAsync();
            pair.Create("wal");
            long before = Interlocked.Read(ref fsyncs);
            // Four writers on one file (a database log): one fsync on the secondary covers the writes that
            // arrived together, and each write is acknowledged only after it.
            await ReplicationPair.RunThreads(4, w =>
            {
                var data = new byte[4096];
                for (int i = 0; i < 300; i++) pair.Write("wal", (i * 4 + w) * 4096L, data);
            });
            long used = Interlocked.Read(ref fsyncs) - before;
            MixedWorkload(pair, 2);
            AssertIdentical(pair);
            Assert.Equal("sync-disk", pair.Source.Status()[0].Mode);
            Assert.True(used > 0, "the secondary made nothing durable");
            Assert.True(used < 1200, $"{used} fsyncs for 1200 writes: durability is not batched");
        }

        [LinuxDirectoryFact]
        public async Task LargeWrites_SyncDisk_TheSecondaryAcknowledgesEachWriteOnce_AfterItsLastPart()
        {
            // A 1 MiB write goes in parts; acknowledging a part on its own would cost the secondary an fdatasync per part.
            await using var pair = ReplicationPair.Create(RfsAsync.None);
            long fsyncs = 0, parts = 0;
            pair.SecondaryApplier.Before = m =>
            {
                if (m.Op == FsOp.Fsync) Interlocked.Increment(ref fsyncs);
                if (m.Op == FsOp.Write) Interlocked.Increment(ref parts);
                return null;
            };
            await pair.ConnectAsync();
            pair.Create("big");
            long fsyncsBefore = Interlocked.Read(ref fsyncs), partsBefore = Interlocked.Read(ref parts);
            var data = new byte[1 << 20];
            new Random(7).NextBytes(data);
            const int Writes = 40;
            for (int i = 0; i < Writes; i++) pair.Write("big", (long)i * data.Length, data);

            long sent = Interlocked.Read(ref parts) - partsBefore, synced = Interlocked.Read(ref fsyncs) - fsyncsBefore;
            Assert.True(sent > Writes, $"{sent} frames for {Writes} writes of 1 MiB: they did not go in parts");
            Assert.True(synced <= Writes, $"{synced} fdatasyncs on the secondary for {Writes} writes ({sent} parts)");
            AssertIdentical(pair);
        }

        /// <summary>
        /// Writes <paramref name="path"/> (<paramref name="size"/> bytes) and connects; then the secondary holds every write
        /// to it (30 s at most) until the returned gate is set: a secondary that stopped answering.
        /// </summary>
        private static async Task<ManualResetEventSlim> ConnectHoldingSecondaryWritesAsync(ReplicationPair pair, string path, int size)
        {
            pair.WriteFile(path, size, 5);
            await pair.ConnectAsync();
            var hold = new ManualResetEventSlim(false);
            pair.SecondaryApplier.Before = m => { if (m.Path == path && m.Op == FsOp.Write) hold.Wait(TimeSpan.FromSeconds(30)); return null; };
            return hold;
        }

        [LinuxDirectoryFact]
        public async Task SendTimeout_RaisesPeerFailed_CompleteWaitsForGoAlone_ThenJournalHoldsTheChange()
        {
            await using var pair = ReplicationPair.Create(sendTimeout: TimeSpan.FromSeconds(1));
            using var hold = await ConnectHoldingSecondaryWritesAsync(pair, "f", 3 << 20);
            var release = new TaskCompletionSource();
            var failed = new TaskCompletionSource<string>();
            pair.Source.PeerFailed = async reason => { failed.TrySetResult(reason); await release.Task; pair.Source.GoAlone(); };
            var write = Task.Run(() => pair.Do(new FsMutation { Op = FsOp.Write, Path = "f", Offset = (2 << 20) + 5, Data = new byte[100] }));
            var reason = await failed.Task.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Contains("no acknowledgement", reason);
            // The host has not persisted ALONE yet: the write must not be reported done.
            await Task.Delay(300);
            Assert.False(write.IsCompleted, "Complete returned before GoAlone");
            release.SetResult();
            Assert.Equal(0, await write.WaitAsync(TimeSpan.FromSeconds(30)));
            hold.Set();
            var st = pair.Source.Status()[0];
            Assert.Equal("alone", st.State);
            Assert.Equal(1, st.FilesDirty);
            Assert.True(st.BytesDirty >= 64 << 10); // one journal zone
            // Later changes are journaled only, and return at once.
            pair.Write("f", 0, new byte[10]);
            Assert.Equal(1, pair.Source.Status()[0].FilesDirty);
        }

        [LinuxDirectoryFact]
        public async Task LargeWrite_SecondaryLostWhileItsPartsAreQueued_ReturnsAfterGoAlone_AndIsJournaledWhole()
        {
            // Its parts are sent from the caller's buffer: the write returns only once the lost connection dropped them.
            await using var pair = ReplicationPair.Create(sendTimeout: TimeSpan.FromSeconds(1));
            pair.WriteFile("f", 1 << 20, 5);
            await pair.ConnectAsync();
            using var hold = new ManualResetEventSlim(false);
            pair.SecondaryApplier.Before = m => { if (m.Path == "f" && m.Op == FsOp.Write) hold.Wait(TimeSpan.FromSeconds(30)); return null; };
            pair.Source.PeerFailed = reason => { pair.Source.GoAlone(); return Task.CompletedTask; };
            var data = new byte[(8 << 20) + 3];
            new Random(3).NextBytes(data);
            var writes = Task.Run(() =>
            {
                // The first is held on the secondary; the next ones fill the socket buffers and stay queued.
                for (int i = 0; i < 4; i++) Assert.Equal(0, pair.Do(new FsMutation { Op = FsOp.Write, Path = "f", Offset = (long)i * data.Length, Data = data }));
            });
            await writes.WaitAsync(TimeSpan.FromSeconds(60));
            hold.Set();
            var st = pair.Source.Status()[0];
            Assert.Equal("alone", st.State);
            Assert.True(st.BytesDirty >= 4L * data.Length, $"{st.BytesDirty} bytes dirty");
        }

        [LinuxDirectoryFact]
        public async Task Fence_WhileAWriteWaitsForTheSecondary_ItAndLaterWritesFailWithEio_AndAreJournaled()
        {
            // The node gives way (isolated) while a write waits for a secondary that no longer answers.
            await using var pair = ReplicationPair.Create(sendTimeout: TimeSpan.FromSeconds(30));
            using var hold = await ConnectHoldingSecondaryWritesAsync(pair, "f", 1 << 20);
            var write = Task.Run(() => pair.Do(new FsMutation { Op = FsOp.Write, Path = "f", Offset = 5, Data = new byte[100] }));
            await Task.Delay(300);
            Assert.False(write.IsCompleted, "the write returned before the secondary applied it");

            pair.Source.Fence();

            Assert.Equal(-5, await write.WaitAsync(TimeSpan.FromSeconds(30))); // EIO, never acknowledged
            Assert.Equal(-5, pair.Do(new FsMutation { Op = FsOp.Write, Path = "g", Offset = 0, Data = new byte[10] }));
            Assert.Equal(-5, pair.Do(new FsMutation { Op = FsOp.Fsync, Path = "f" }));
            hold.Set();
            var st = pair.Source.Status()[0];
            Assert.True(pair.Source.Fenced);
            Assert.Equal("alone", st.State);
            Assert.True(st.FilesDirty >= 1, "the failed writes are not in the journal: the resync would not repair them");
        }

        [LinuxDirectoryTheory]
        [InlineData(3)]
        [InlineData(1 << 20)] // sent in parts: the first one fails
        public async Task SecondaryFailsAWriteInSync_TheWriteReturnsOnlyOnceThePrimaryIsAlone_ItsReturnResyncsTheFile(int size)
        {
            // The secondary's disk is full: its copy lacks a write the application is about to be told is done, so it
            // must stop counting as up to date first (a failover to it would lose the write).
            await using var pair = ReplicationPair.Create();
            pair.WriteFile("f", 1 << 20, 5);
            await pair.ConnectAsync();
            int forced = 0;
            pair.SecondaryApplier.Before = m => m.Op == FsOp.Write && m.Path == "f" && Interlocked.Exchange(ref forced, 1) == 0 ? -28 : null; // ENOSPC
            var release = new TaskCompletionSource();
            var failed = new TaskCompletionSource<string>();
            pair.Source.PeerFailed = async reason => { failed.TrySetResult(reason); await release.Task; pair.Source.GoAlone(); };

            var write = Task.Run(() => pair.Do(new FsMutation { Op = FsOp.Write, Path = "f", Offset = 4096, Data = Enumerable.Repeat((byte)7, size).ToArray() }));
            var reason = await failed.Task.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Contains("differs", reason);
            Assert.Contains("-28", reason);
            // The host has not persisted ALONE yet: the write must not be reported done.
            await Task.Delay(300);
            Assert.False(write.IsCompleted, "the write returned while the secondary that lacks it still counted as in sync");
            release.SetResult();
            Assert.Equal(0, await write.WaitAsync(TimeSpan.FromSeconds(30)));
            var st = pair.Source.Status()[0];
            Assert.Equal("alone", st.State);
            Assert.Equal(1, st.FilesDirty);

            pair.SecondaryApplier.Before = null;
            await pair.ConnectAsync();
            AssertIdentical(pair);
        }

        [LinuxDirectoryFact]
        public async Task WriteFailsOnTheSecondaryUnderANameItsFileLostSince_TheNextResyncStillFindsTheFile()
        {
            // A write to an open file whose own name is gone goes under another name of the inode (a hard link); a rename
            // of that name racing it makes the secondary fail the write and leaves the journal with the old name:
            // the journal is distrusted, and the resync compares every file changed since the sync point.
            await using var pair = ReplicationPair.Create();
            var data = pair.WriteFile("b", 256 << 10, 5);
            await pair.ConnectAsync();
            pair.SecondaryApplier.Before = m =>
            {
                if (m.Op != FsOp.Write || m.Path != "b") return null;
                // The rename reaches both copies between the primary's local write and the secondary's.
                File.Move(Path.Combine(pair.PrimaryDir, "b"), Path.Combine(pair.PrimaryDir, "c"));
                File.Move(Path.Combine(pair.SecondaryDir, "b"), Path.Combine(pair.SecondaryDir, "c"));
                return -2; // ENOENT
            };
            Assert.Equal(0, pair.Do(new FsMutation { Op = FsOp.Write, Path = "b", Offset = 8192, Data = new byte[] { 9, 9, 9 } }));
            Assert.Equal("alone", pair.Source.Status()[0].State);

            pair.SecondaryApplier.Before = null;
            await pair.ConnectAsync();
            AssertIdentical(pair);
            Assert.Equal(9, File.ReadAllBytes(Path.Combine(pair.SecondaryDir, "c"))[8192]);
        }

        [LinuxDirectoryFact]
        public async Task ResyncAfterAlone_SendsOnlyTheDirtyZones()
        {
            await using var pair = ReplicationPair.Create();
            await pair.ConnectAsync();
            for (int i = 0; i < 8; i++) pair.WriteFile($"f{i}", 8 << 20, i);
            AssertIdentical(pair);
            await pair.DisconnectAsync();
            var rnd = new Random(3);
            for (int i = 0; i < 3; i++) pair.Write($"f{i}", rnd.Next(0, 8 << 20), new byte[5000]);
            pair.WriteFile("new.bin", 100_000, 9);
            pair.Ok(new FsMutation { Op = FsOp.Unlink, Path = "f7" });
            pair.Ok(new FsMutation { Op = FsOp.Rename, Path = "f6", Target = "f6.renamed" });
            pair.Write("f6.renamed", 10, new byte[10]);
            Assert.True(pair.Source.Status()[0].FilesDirty >= 4);
            var (last, sent) = await ReconnectAndResyncAsync(pair, "journal");
            // At most one or two 1 MiB zones per changed file, far below the 64 MiB tree.
            Assert.True(sent <= 8L << 20, $"{sent} bytes sent");
            Assert.Equal(last.BytesSent, sent);
            Assert.Equal(0, pair.Source.Status()[0].FilesDirty);
            Assert.NotNull(pair.Source.Status()[0].LastSyncPointUtc);
        }

        [LinuxDirectoryFact]
        public async Task ResyncAfterAlone_Scattered4KiBChanges_SendOnlyTheChangedBlocksOfEachZone() => await Scattered4KiBChanges(restartPrimary: false);

        [LinuxDirectoryFact]
        public async Task ResyncAfterPrimaryRestart_Scattered4KiBChanges_TheBlockMapSurvives_SendOnlyTheChangedBlocks() => await Scattered4KiBChanges(restartPrimary: true);

        [LinuxDirectoryFact]
        public async Task ResyncAfterPrimaryRestart_JournalWithoutBlockMap_ZonesComparedByHash_SendOnlyTheChangedBlocks() =>
            await Scattered4KiBChanges(restartPrimary: true, olderJournal: true);

        /// <summary>
        /// The journal's block map says which blocks, also after a restart (it is persisted); a journal without it
        /// (an older engine's) makes the resync compare the dirty zones block by block.
        /// </summary>
        private static async Task Scattered4KiBChanges(bool restartPrimary, bool olderJournal = false)
        {
            await using var pair = ReplicationPair.Create();
            await pair.ConnectAsync();
            pair.WriteFile("f", 8 << 20, 1);
            AssertIdentical(pair);
            await pair.DisconnectAsync();
            // 40 aligned 4 KiB blocks in 40 different 64 KiB zones, and one unaligned write across two blocks.
            var rnd = new Random(5);
            var zones = Enumerable.Range(0, 128).OrderBy(_ => rnd.Next()).Take(41).ToList();
            foreach (var z in zones.Take(40))
            {
                var data = new byte[4096];
                rnd.NextBytes(data);
                pair.Write("f", (long)z * (64 << 10) + 4096 * rnd.Next(0, 16), data);
            }
            pair.Write("f", (long)zones[40] * (64 << 10) + 4000, new byte[200]);
            if (restartPrimary) await pair.RestartSourceAsync(crash: false, asOlderJournal: olderJournal);
            var (last, sent) = await ReconnectAndResyncAsync(pair, "journal");
            // 40 blocks + 2 blocks for the unaligned write (whole zones would be 41 x 64 KiB).
            Assert.True(sent <= 42 * 4096, $"{sent} bytes sent");
            Assert.Equal(last.BytesSent, sent);
            // Planned from the block map: only those blocks; compared by hash: the whole dirty zones.
            if (olderJournal) Assert.True(last.BytesTotal >= 41L * (64 << 10), $"{last.BytesTotal} bytes planned");
            else Assert.True(last.BytesTotal <= 42 * 4096, $"{last.BytesTotal} bytes planned: the block map was not used");
            Assert.Equal(0, pair.Source.Status()[0].FilesDirty);
        }

        [LinuxDirectoryFact]
        public async Task CrashedPrimary_ChangesOnBothSides_HashResyncSendsOnlyDifferingBlocks()
        {
            await using var pair = ReplicationPair.Create();
            await pair.ConnectAsync();
            for (int i = 0; i < 4; i++) pair.WriteFile($"f{i}", 8 << 20, 10 + i);
            AssertIdentical(pair);
            await pair.DisconnectAsync();
            // The primary crashes with writes the secondary acknowledged... and some it never saw, which the journal does not know.
            await pair.RestartSourceAsync(crash: true);
            Assert.Equal("alone", pair.Source.Status()[0].State);
            using (var f = File.OpenWrite(Path.Combine(pair.PrimaryDir, "f1"))) { f.Position = 3 << 20; f.Write(new byte[1000]); }
            // The secondary holds a change the primary never made (applied, then the primary died before its own write).
            using (var f = File.OpenWrite(Path.Combine(pair.SecondaryDir, "f2"))) { f.Position = 100; f.Write(new byte[] { 1, 2, 3 }); }
            using (var f = File.OpenWrite(Path.Combine(pair.SecondaryDir, "f3"))) { f.SetLength(5 << 20); }
            var (last, sent) = await ReconnectAndResyncAsync(pair, "hash");
            // f1: 1000 bytes may straddle two 64 KiB blocks; f2: one block; f3: the 3 MiB cut off.
            Assert.True(sent >= (3 << 20) + 64 * 1024 && sent <= (3 << 20) + 4 * 64 * 1024, $"{sent} bytes sent");
            Assert.True(pair.Source.Status()[0].LastSyncPointUtc != null);
        }

        [LinuxDirectoryFact]
        public async Task FullResync_CopiesEverything_AndRemovesWhatThePrimaryLacks()
        {
            await using var pair = ReplicationPair.Create();
            for (int i = 0; i < 3; i++) pair.WriteFile($"d{i}.bin", 3 << 20, 20 + i);
            pair.Mkdir("dir");
            pair.Ok(new FsMutation { Op = FsOp.Symlink, Path = "dir/l", Target = "../d0.bin" });
            pair.Ok(new FsMutation { Op = FsOp.Link, Path = "d2.bin", Target = "dir/hard" });
            pair.Ok(new FsMutation { Op = FsOp.SetXattr, Path = "d0.bin", Name = "user.k", Data = new byte[] { 7 } });
            Directory.CreateDirectory(Path.Combine(pair.SecondaryDir, "stale/deep"));
            File.WriteAllText(Path.Combine(pair.SecondaryDir, "stale/deep/x"), "old");
            File.WriteAllText(Path.Combine(pair.SecondaryDir, "d1.bin"), "different");
            Directory.CreateDirectory(Path.Combine(pair.SecondaryDir, "dir/l"));
            File.WriteAllText(Path.Combine(pair.SecondaryDir, "d2.bin"), "x");
            File.SetUnixFileMode(Path.Combine(pair.SecondaryDir, "d2.bin"), UnixFileMode.UserRead);
            Assert.Equal(0, pair.Secondary.Apply(new FsMutation { Op = FsOp.SetXattr, Path = "d2.bin", Name = "user.extra", Data = new byte[] { 1 } }));
            var reports = new List<ResyncProgress>();
            await pair.ConnectAsync(full: true, new Progress<ResyncProgress>(p => { lock (reports) reports.Add(p); }));
            AssertIdentical(pair);
            var last = pair.Source.Status()[0].LastResync!;
            Assert.Equal("full", last.Method);
            Assert.Equal(9L << 20, last.BytesTotal);
            Assert.Equal(9L << 20, last.BytesSent);
            Assert.NotNull(last.FinishedUtc);
            Assert.NotNull(pair.Target!.Status()[0].LastResync);
        }

        [LinuxDirectoryFact]
        public async Task InterruptedResync_TheNextOneConverges()
        {
            await using var pair = ReplicationPair.Create();
            for (int i = 0; i < 6; i++) pair.WriteFile($"f{i}", 4 << 20, 30 + i);
            int writes = 0;
            pair.SecondaryApplier.Before = m =>
            {
                if (m.Op == FsOp.Write && Interlocked.Increment(ref writes) == 7) pair.Target!.Disconnect();
                return null;
            };
            var first = await Record.ExceptionAsync(() => pair.ConnectAsync());
            Assert.IsType<IOException>(first);
            await ReplicationPair.Until(() => pair.Source.Status()[0].State == "alone", "the primary to go alone");
            pair.SecondaryApplier.Before = null;
            pair.Write("f0", 0, new byte[100]); // the primary goes on meanwhile
            long before = pair.SecondaryApplier.WriteBytes;
            await pair.ConnectAsync();
            AssertIdentical(pair);
            var last = pair.Source.Status()[0].LastResync!;
            // What the first attempt copied is compared, not sent again.
            Assert.True(pair.SecondaryApplier.WriteBytes - before < 24L << 20, $"{pair.SecondaryApplier.WriteBytes - before} bytes sent by the second resync ({last.Method})");
        }

        [LinuxDirectoryFact]
        public async Task LiveWritesDuringResync_EndIdentical()
        {
            await using var pair = ReplicationPair.Create();
            await pair.ConnectAsync();
            for (int i = 0; i < 6; i++) pair.WriteFile($"f{i}", 6 << 20, 40 + i);
            await pair.DisconnectAsync();
            var rnd = new Random(7);
            for (int i = 0; i < 200; i++) pair.Write($"f{rnd.Next(6)}", rnd.Next(0, 6 << 20), new byte[rnd.Next(1, 70_000)]);
            using var stop = new CancellationTokenSource();
            var writer = Task.Run(() =>
            {
                var r = new Random(8);
                int n = 0;
                while (!stop.IsCancellationRequested)
                {
                    var data = new byte[r.Next(1, 200_000)];
                    r.NextBytes(data);
                    int f = r.Next(7);
                    if (f == 6) { pair.Ok(new FsMutation { Op = FsOp.Truncate, Path = $"f{r.Next(6)}", Offset = r.Next(1 << 20, 7 << 20) }); continue; }
                    pair.Write($"f{f}", r.Next(0, 6 << 20), data);
                    if (++n % 50 == 0) { pair.Mkdir($"d{n}"); pair.WriteFile($"d{n}/x", 1000, n); pair.Ok(new FsMutation { Op = FsOp.Rename, Path = $"d{n}", Target = $"e{n}" }); }
                }
                return n;
            });
            await pair.ConnectAsync();
            await Task.Delay(200);
            stop.Cancel();
            Assert.True(await writer > 0);
            AssertIdentical(pair);
        }

        [LinuxDirectoryFact]
        public async Task WrongClusterKey_IsRefusedAndCounted()
        {
            await using var pair = ReplicationPair.Create();
            pair.SecondaryOptions = pair.SecondaryOptions with { ClusterKey = RandomNumberGenerator.GetBytes(32) };
            await Assert.ThrowsAnyAsync<Exception>(() => pair.ConnectAsync());
            await ReplicationPair.Until(() => pair.Source.AuthenticationFailures == 1, "the primary to count the failed handshake");
            Assert.Equal("alone", pair.Source.Status()[0].State);
        }

        [LinuxDirectoryFact]
        public async Task ForgedFrame_ClosesTheConnectionAndIsCounted()
        {
            await using var pair = ReplicationPair.Create();
            await pair.ConnectAsync();
            pair.WriteFile("f", 1000, 1);
            // A frame whose tag was not made with the session key, injected into the secondary's stream.
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await pair.DisconnectAsync();
            await socket.ConnectAsync(pair.Source.LocalEndpoint!);
            var keys = Handshake.Connect(socket, pair.PrimaryOptions.ClusterKey, ReplicationPair.Module, TimeSpan.FromSeconds(5));
            var bad = new byte[5 + 8 + 16];
            bad[0] = 8; bad[4] = (byte)MsgType.Request;
            socket.Send(bad);
            await ReplicationPair.Until(() => pair.Source.ForgedFrames == 1, "the forged frame to be counted");
            var buffer = new byte[16];
            Assert.Equal(0, socket.Receive(buffer)); // closed by the primary
            Assert.Equal("alone", pair.Source.Status()[0].State);
            // A real secondary still gets in afterwards.
            await pair.ConnectAsync();
            AssertIdentical(pair);
        }

        [LinuxDirectoryFact]
        public async Task NotReplicatedPaths_AreNeitherSentNorJournaled()
        {
            await using var pair = ReplicationPair.Create(RfsAsync.Second, null, "tmp", "cache/x");
            await pair.ConnectAsync();
            pair.Mkdir("tmp");
            pair.WriteFile("tmp/scratch", 50_000, 1);
            pair.Mkdir("cache");
            pair.Mkdir("cache/x");
            pair.WriteFile("cache/x/y", 1000, 2);
            pair.WriteFile("cache/keep", 1000, 3);
            Assert.False(Directory.Exists(Path.Combine(pair.SecondaryDir, "tmp")));
            Assert.False(Directory.Exists(Path.Combine(pair.SecondaryDir, "cache/x")));
            Assert.True(File.Exists(Path.Combine(pair.SecondaryDir, "cache/keep")));
            AssertIdentical(pair);
            await pair.DisconnectAsync();
            pair.WriteFile("tmp/more", 50_000, 4);
            Assert.Equal(0, pair.Source.Status()[0].FilesDirty);
            await pair.ConnectAsync();
            Assert.False(File.Exists(Path.Combine(pair.SecondaryDir, "tmp/more")));
            AssertIdentical(pair);
        }
    }
}
