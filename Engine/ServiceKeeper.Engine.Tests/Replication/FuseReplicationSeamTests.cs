// The replication seam: a sink that applies every mutation it is given to a second real directory (as the
// secondary will, by path), a workload that touches every kind of change, then a complete comparison of
// both trees. If a field were missing from FsMutation, the copy would differ here.
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Win32.SafeHandles;
using ServiceKeeper.Engine.Replication;
using Xunit;
using static ServiceKeeper.Engine.Tests.Replication.FuseSys;

namespace ServiceKeeper.Engine.Tests.Replication
{
    /// <summary>Applies each mutation to a copy in Begin (by path, like the secondary) and checks both results agree.</summary>
    internal sealed class CopySink : IMutationSink
    {
        private readonly LinuxDirectory copy;
        private readonly object order = new();
        private long sequence;

        public CopySink(LinuxDirectory copy) => this.copy = copy;

        public ConcurrentQueue<string> Disagreements { get; } = new();

        public ConcurrentDictionary<FsOp, int> Seen { get; } = new();

        /// <summary>Every mutation given, in order: what the secondary would have received.</summary>
        public ConcurrentQueue<(FsOp Op, string Path, string? Target)> Received { get; } = new();

        public long Count => Interlocked.Read(ref sequence);

        public MutationTicket Begin(FsMutation m)
        {
            // One mutation at a time, in the order the primary applies them (Complete releases).
            Monitor.Enter(order);
            Seen.AddOrUpdate(m.Op, 1, (_, n) => n + 1);
            Received.Enqueue((m.Op, m.Path, m.Target));
            var remote = new FsMutation
            {
                Op = m.Op, Path = m.Path, Target = m.Target, Offset = m.Offset, Length = m.Length, Data = m.Data,
                Mode = m.Mode, Uid = m.Uid, Gid = m.Gid, Flags = m.Flags, Name = m.Name, Rdev = m.Rdev,
                AtimeSeconds = m.AtimeSeconds, AtimeNanoseconds = m.AtimeNanoseconds,
                MtimeSeconds = m.MtimeSeconds, MtimeNanoseconds = m.MtimeNanoseconds,
                LocalHandle = -1,
            };
            int r = copy.Apply(remote);
            return new MutationTicket(Interlocked.Increment(ref sequence), (r, m.ToString()));
        }

        public int Complete(MutationTicket ticket, int localResult)
        {
            try
            {
                var (remote, what) = ((int, string))ticket.State!;
                if (remote != localResult)
                    Disagreements.Enqueue($"{what}: primary {localResult}, copy {remote}");
                return localResult;
            }
            finally
            {
                Monitor.Exit(order);
            }
        }
    }

    [SupportedOSPlatform("linux")]
    public sealed class FuseReplicationSeamTests
    {
        [FuseFact]
        public void EveryMutation_AppliedToASecondDirectory_GivesAnIdenticalTree()
        {
            using var t = FuseTestTree.Replicating(out var sink);
            var explicitTimes = new List<string> { "a/rand", "a/b/sym", "stamped" };

            var script = @"set -e
mkdir -p a/b/c open
chmod 777 open
echo hello > a/b/c/file
dd if=/dev/urandom of=a/rand bs=1k count=300 2>/dev/null
dd if=/dev/urandom of=big bs=1M count=20 2>/dev/null
dd if=/dev/urandom of=odd bs=7777 count=33 2>/dev/null
printf appended >> a/b/c/file
truncate -s 10M sparse
printf data | dd of=sparse bs=1 seek=5000000 conv=notrunc 2>/dev/null
truncate -s 100000 odd
truncate -s 200000 odd
ln a/b/c/file hard1
ln a/b/c/file a/hard2
ln -s ../b/c/file a/b/sym
ln -s /absolute/elsewhere dangling
mkfifo fifo
fallocate -l 1M alloc
fallocate -p -o 4096 -l 65536 big
chmod 600 a/rand
chmod 2775 a/b
chown 65534:65534 a/b/c/file
chown 65534 a
touch -d '2020-01-01 00:00:00.5 UTC' a/rand
touch -h -d '2019-05-05 05:05:05.25 UTC' a/b/sym
echo stamp > stamped && touch -a -d '2011-01-01 UTC' stamped && touch -m -d '2012-02-02 02:02:02.000000007 UTC' stamped
mkdir a/b/c/inner && echo x > a/b/c/inner/y
mv a/b/c a/b/moved
mv big big2
echo over > victim && mv victim big2
mkdir gone && touch gone/x && rm -r gone
echo once > replaced && mv -f a/hard2 replaced
cp a/rand copied && rm copied
echo 'in setgid dir' > a/b/ingroup
mkdir small && for i in $(seq 1 300); do echo $i > small/$i; done && rm small/1?
";
            var r = FuseTestTree.Sh($"cd '{t.Root}' && {script}");
            Assert.True(r.Exit == 0, r.Err);
            r = FuseTestTree.Sh($"cd '{t.Root}' && echo user > open/byuser && mkdir open/userdir && ln -s byuser open/userlink", uid: 65534);
            Assert.True(r.Exit == 0, r.Err);

            // xattrs, RENAME_EXCHANGE, a file written after it was unlinked, and racing renames.
            Assert.Equal(0, SetXattr(t["a/rand"], "user.one", Encoding.UTF8.GetBytes("1")));
            Assert.Equal(0, SetXattr(t["a"], "user.dir", new byte[] { 0, 1, 2, 255 }));
            Assert.Equal(0, SetXattr(t["a/rand"], "user.gone", new byte[] { 9 }));
            Assert.Equal(0, RemoveXattr(t["a/rand"], "user.gone"));
            File.WriteAllText(t["left"], "left");
            File.WriteAllText(t["right"], "right");
            Assert.Equal(0, Rename(t["left"], t["right"], flags: 2)); // RENAME_EXCHANGE
            using (var h = File.Open(t["doomed"], FileMode.Create, FileAccess.ReadWrite))
            {
                h.Write(Encoding.UTF8.GetBytes("before"));
                h.Flush();
                Assert.Equal(0, Unlink(t["doomed"]));
                h.Write(Encoding.UTF8.GetBytes(" after"));
                h.Flush(flushToDisk: true);
            }
            Assert.Equal(0, Mkdir(t["race"], 0x1FF));
            Parallel.For(0, 4, w =>
            {
                for (int i = 0; i < 100; i++)
                {
                    File.WriteAllText(t[$"race/w{w}-{i}"], $"{w}:{i}");
                    Rename(t[$"race/w{w}-{i}"], t[$"race/s{i % 3}"]);
                    if (i % 4 == 0)
                        Unlink(t[$"race/s{(i + w) % 3}"]);
                }
            });
            t.Mount.Sink = null;
            Assert.DoesNotContain(sink.Received, x => FuseRemovedOpenFileTests.IsHidden(x.Path) || FuseRemovedOpenFileTests.IsHidden(x.Target));

            Assert.Empty(sink.Disagreements);
            foreach (var op in new[] { FsOp.Write, FsOp.Truncate, FsOp.Create, FsOp.Mkdir, FsOp.Mknod, FsOp.Unlink, FsOp.Rmdir,
                FsOp.Rename, FsOp.Link, FsOp.Symlink, FsOp.Chmod, FsOp.Chown, FsOp.Utimens, FsOp.Fallocate, FsOp.SetXattr,
                FsOp.RemoveXattr, FsOp.Fsync })
            {
                Assert.True(sink.Seen.ContainsKey(op), $"the workload produced no {op}");
            }

            var primary = TreeImage.Read(t.Real);
            var copy = TreeImage.Read(t.Copy!);
            TreeImage.AssertSame(primary, copy, explicitTimes);
            Assert.True(primary.Entries.Count > 300, $"only {primary.Entries.Count} entries");
            Assert.True(primary.Entries["sparse"].Status.Blocks < 64, "sparse file lost its holes on the primary");
            Assert.True(copy.Entries["sparse"].Status.Blocks < 64, "sparse file lost its holes on the copy");
            Assert.Equal("left", File.ReadAllText(t["right"]));
            Assert.Equal("right", File.ReadAllText(t["left"]));
            Assert.Equal(0, t.Mount.Statistics.Failures);
        }
    }

    /// <summary>
    /// An open file that is unlinked or renamed over keeps working through its descriptor, never shows as a
    /// .fuse_hidden* name on either node (the mount uses hard_remove), and its later changes reach the copy only
    /// when the inode still has a name in the tree.
    /// </summary>
    [SupportedOSPlatform("linux")]
    public sealed class FuseRemovedOpenFileTests
    {
        [FuseFact]
        public void OpenFile_UnlinkedOrRenamedOver_IsNeverHidden_AndBothTreesStayEqual()
        {
            using var t = FuseTestTree.Replicating(out var sink);
            var hiddenSeen = new ConcurrentQueue<string>();
            using var stop = new CancellationTokenSource();
            var watcher = Task.Run(() =>
            {
                // Every view, over and over, for as long as the files are open and closing.
                while (!stop.IsCancellationRequested)
                {
                    var names = Directory.GetFileSystemEntries(t.Root, "*", SearchOption.AllDirectories).Select(p => Path.GetFileName(p)!)
                        .Concat(t.Real.ReadDirectory("").Select(e => e.Name)).Concat(t.Copy!.ReadDirectory("").Select(e => e.Name));
                    foreach (var n in names.Where(IsHidden))
                        hiddenSeen.Enqueue(n);
                    Thread.Sleep(5);
                }
            });
            try
            {
                // 1. Unlinked while open: every handle operation still works, on the primary only.
                int fd = Open(t["doomed"], O_RDWR | O_CREAT);
                Assert.True(fd >= 0, $"open: {fd}");
                Assert.Equal(6, PWrite(fd, Encoding.UTF8.GetBytes("before"), 0));
                Assert.Equal(0, Unlink(t["doomed"]));
                Assert.Equal(6, PWrite(fd, Encoding.UTF8.GetBytes(" after"), 6));
                var back = new byte[12];
                Assert.Equal(12, PRead(fd, back, 0));
                Assert.Equal("before after", Encoding.UTF8.GetString(back));
                Assert.Equal(0, FTruncate(fd, 3));
                Assert.Equal(0, FAllocate(fd, 0, 0, 8192));
                Assert.Equal(0, FChmod(fd, 0x180));
                Assert.Equal(0, FChown(fd, 65534, 65534));
                Assert.Equal(0, FUtimens(fd, 1_000_000, 0, 1_000_000, 5));
                Assert.Equal(0, Fstat(fd, out var gone));
                Assert.Equal((0ul, 8192L, 0x8180u, 65534u, 1_000_000L, 5L), (gone.Nlink, gone.Size, gone.Mode, gone.Uid, gone.MtimeSec, gone.MtimeNsec));
                Assert.Equal(0, Fsync(fd));
                Assert.Equal(0, Close(fd));

                // 2. Renamed over while open: the old inode's later writes are lost with it, on both nodes.
                fd = Open(t["target"], O_RDWR | O_CREAT);
                Assert.Equal(3, PWrite(fd, Encoding.UTF8.GetBytes("old"), 0));
                File.WriteAllText(t["incoming"], "new");
                Assert.Equal(0, Rename(t["incoming"], t["target"]));
                Assert.Equal(5, PWrite(fd, Encoding.UTF8.GetBytes("later"), 0));
                Assert.Equal(0, Fsync(fd));
                Assert.Equal(0, Close(fd));

                // 3. Unlinked while open but still hard-linked in the tree: the changes go under the other name.
                File.WriteAllText(t["h1"], "linked");
                Assert.Equal(0, Mkdir(t["sub"]));
                Assert.Equal(0, Link(t["h1"], t["sub/h2"]));
                fd = Open(t["h1"], O_RDWR);
                Assert.Equal(0, Unlink(t["h1"]));
                Assert.Equal(7, PWrite(fd, Encoding.UTF8.GetBytes("LINKED!"), 0));
                Assert.Equal(0, FTruncate(fd, 6));
                Assert.Equal(0, FAllocate(fd, 0, 0, 8192));
                Assert.Equal(0, Fsync(fd));
                Assert.Equal(0, Close(fd));

                // 4. A directory removed while open.
                Assert.Equal(0, Mkdir(t["gonedir"]));
                fd = Open(t["gonedir"], O_RDONLY | O_DIRECTORY);
                Assert.Equal(0, Rmdir(t["gonedir"]));
                Assert.Equal(0, Fsync(fd));
                Assert.Equal(0, Close(fd));
            }
            finally
            {
                stop.Cancel();
                watcher.Wait();
            }
            t.Mount.Sink = null;

            Assert.Empty(hiddenSeen);
            Assert.Empty(sink.Disagreements);
            Assert.DoesNotContain(sink.Received, x => IsHidden(x.Path) || IsHidden(x.Target));
            // Nothing was sent under a wrong name: the unlinked file's later changes were not sent at all.
            Assert.DoesNotContain(sink.Received, x => x.Path.Length == 0);
            Assert.Equal(new[] { FsOp.Create, FsOp.Write, FsOp.Unlink },
                sink.Received.Where(x => x.Path == "doomed").Select(x => x.Op).Distinct());
            Assert.Contains(sink.Received, x => x.Op == FsOp.Write && x.Path == "sub/h2");
            Assert.Contains(sink.Received, x => x.Op == FsOp.Truncate && x.Path == "sub/h2");
            Assert.Contains(sink.Received, x => x.Op == FsOp.Fallocate && x.Path == "sub/h2");

            Assert.Equal(new[] { "sub", "target" }, t.Real.ReadDirectory("").Select(e => e.Name).OrderBy(n => n, StringComparer.Ordinal));
            Assert.Equal("new", File.ReadAllText(t.Real.ProcPath + "/target"));
            Assert.StartsWith("LINKED\0", File.ReadAllText(t.Copy!.ProcPath + "/sub/h2"), StringComparison.Ordinal);
            Assert.True(t.Copy!.TryStat("sub/h2", out var h2));
            Assert.Equal(8192, h2.Size);
            t.AssertCopyIdenticalAndNoFailure();
        }

        [FuseFact]
        public void Fstat_OfAnUnlinkedFile_KeepsWorking_WhileItsOtherHandlesAreClosed()
        {
            // fstat borrows one of the file's open handles (the first opened): closing that one meanwhile must
            // neither break the fstat in flight nor let it read another file through a reused descriptor. No attribute
            // cache, so that every fstat reaches the file system.
            using var t = new FuseTestTree(new ReplicatedMountOptions { FsName = "servicekeeper:test", AttrTimeout = 0 });
            var payload = new byte[12345];
            for (int round = 0; round < 30; round++)
            {
                var name = t[$"f{round}"];
                var handles = Enumerable.Range(0, 8).Select(_ => Open(name, O_RDWR | O_CREAT)).ToArray();
                Assert.All(handles, h => Assert.True(h >= 0, $"open: {h}"));
                Assert.Equal(payload.Length, PWrite(handles[0], payload, 0));
                Assert.Equal(0, Unlink(name));
                int last = handles[^1];
                var errors = new ConcurrentQueue<string>();
                int closing = 1, stats = 0;
                var stat = Task.Run(() =>
                {
                    for (int i = 0; Volatile.Read(ref closing) == 1 || i < 50; i++)
                    {
                        Interlocked.Increment(ref stats);
                        int r = Fstat(last, out var st);
                        if (r != 0 || st.Nlink != 0 || st.Size != payload.Length)
                            errors.Enqueue($"fstat {r}: nlink {st.Nlink}, size {st.Size}");
                    }
                });
                FuseConformanceTests.Eventually(() => Volatile.Read(ref stats) >= 20, "the fstat loop to run");
                foreach (var h in handles[..^1])
                {
                    Assert.Equal(0, Close(h));
                    int other = Open(t[$"other{round}"], O_RDWR | O_CREAT); // may take a descriptor number just freed
                    Assert.True(other >= 0);
                    Close(other);
                }
                Volatile.Write(ref closing, 0);
                stat.Wait();
                Assert.Equal(0, Close(last));
                Assert.Empty(errors);
            }
            Assert.Equal(0, t.Mount.Statistics.Failures);
        }

        [FuseFact]
        public void OpenFile_WhoseRemovedNameWasOneOfSeveralLinks_KeepsFstatAndAttributeChanges_ReplicatedUnderTheOtherName()
        {
            // The kernel sends fstat/fchmod/fchown/futimens without the handle, and libfuse cannot name the node of
            // the removed name although the inode lives on as "b": the mount lends the node one of its handles.
            using var t = FuseTestTree.Replicating(out var sink, new ReplicatedMountOptions { FsName = "servicekeeper:test", AttrTimeout = 0 });
            File.WriteAllText(t["a"], "a");
            Assert.Equal(0, Link(t["a"], t["b"]));
            int fd = Open(t["a"], O_RDWR);
            Assert.True(fd >= 0, $"open: {fd}");
            try
            {
                Assert.Equal(0, Fstat(fd, out var before));
                Assert.Equal(2ul, before.Nlink);
                Assert.Equal(0, Unlink(t["a"]));
                Assert.Equal(0, Fstat(fd, out var after));
                Assert.Equal((1ul, before.Ino), (after.Nlink, after.Ino));
                Assert.Equal(1, PWrite(fd, new byte[] { (byte)'B' }, 0));
                Assert.Equal(0, FChmod(fd, 0x1C0));
                Assert.Equal(0, FChown(fd, 65534, 65534));
                Assert.Equal(0, FUtimens(fd, 2_000_000, 0, 2_000_000, 7));
                Assert.Equal(0, Fstat(fd, out var changed));
                Assert.Equal((0x81C0u, 65534u, 2_000_000L, 7L), (changed.Mode, changed.Uid, changed.MtimeSec, changed.MtimeNsec));
            }
            finally
            {
                Close(fd);
            }
            t.Mount.Sink = null;

            Assert.Equal("B", File.ReadAllText(t.Real.ProcPath + "/b"));
            Assert.Empty(sink.Disagreements);
            Assert.Contains(sink.Received, x => x.Op == FsOp.Chmod && x.Path == "b");
            Assert.Contains(sink.Received, x => x.Op == FsOp.Chown && x.Path == "b");
            Assert.Contains(sink.Received, x => x.Op == FsOp.Utimens && x.Path == "b");
            Assert.True(t.Copy!.TryStat("b", out var copy));
            Assert.Equal((0x81C0u, 65534, 2_000_000L, 7L), (copy.Mode, copy.Uid, copy.MtimeSeconds, copy.MtimeNanoseconds));
            t.AssertCopyIdenticalAndNoFailure();
        }

        [FuseFact]
        public void Truncate_ByPath_OfAFileOpenReadOnly_StillWorks_WithTheLentHandle()
        {
            // truncate(2) of a named file sends a handle-less SETATTR: the lent handle is read-only here, the name is
            // still known, and the truncate goes by the name as before.
            using var t = FuseTestTree.Replicating(out var sink);
            File.WriteAllText(t["f"], "0123456789");
            int fd = Open(t["f"], O_RDONLY);
            Assert.True(fd >= 0, $"open: {fd}");
            try
            {
                Assert.Equal(0, Truncate(t["f"], 4));
                Assert.Equal(0, Fstat(fd, out var st));
                Assert.Equal(4, st.Size);
            }
            finally
            {
                Close(fd);
            }
            t.Mount.Sink = null;
            Assert.Equal("0123", File.ReadAllText(t.Real.ProcPath + "/f"));
            Assert.Contains(sink.Received, x => x.Op == FsOp.Truncate && x.Path == "f");
            t.AssertCopyIdenticalAndNoFailure();
        }

        internal static bool IsHidden(string? name) => name != null && name.Contains(".fuse_hidden", StringComparison.Ordinal);
    }

    /// <summary>Everything an application can observe of a tree, read from the real directory.</summary>
    internal sealed class TreeImage
    {
        public sealed record Entry(FileStatus Status, string? Hash, string? Link, SortedDictionary<string, string> Xattrs);

        public Dictionary<string, Entry> Entries { get; } = new(StringComparer.Ordinal);

        public static TreeImage Read(LinuxDirectory dir)
        {
            var image = new TreeImage();
            void Walk(string rel)
            {
                foreach (var e in dir.ReadDirectory(rel))
                {
                    var path = rel.Length == 0 ? e.Name : rel + "/" + e.Name;
                    Assert.True(dir.TryStat(path, out var st), path);
                    string? hash = null, link = null;
                    if (st.Type == FileType.Regular)
                    {
                        using SafeFileHandle h = dir.OpenRead(path);
                        using var s = new FileStream(h, FileAccess.Read);
                        hash = Convert.ToHexString(SHA256.HashData(s));
                    }
                    else if (st.Type == FileType.Symlink)
                    {
                        link = dir.ReadLink(path);
                    }
                    var x = new SortedDictionary<string, string>(StringComparer.Ordinal);
                    if (st.Type != FileType.Symlink && st.Type != FileType.Fifo)
                    {
                        foreach (var name in dir.ListXattrs(path))
                            x[name] = Convert.ToHexString(dir.GetXattr(path, name) ?? Array.Empty<byte>());
                    }
                    image.Entries[path] = new Entry(st, hash, link, x);
                    if (st.Type == FileType.Directory)
                        Walk(path);
                }
            }
            Walk("");
            return image;
        }

        /// <summary>Groups of paths that are hard links of each other (inode numbers differ between trees, groups do not).</summary>
        private IEnumerable<string> LinkGroups() => Entries
            .Where(e => e.Value.Status.Type != FileType.Directory)
            .GroupBy(e => e.Value.Status.Inode)
            .Select(g => string.Join(" = ", g.Select(e => e.Key).OrderBy(p => p, StringComparer.Ordinal)))
            .OrderBy(s => s, StringComparer.Ordinal);

        public static void AssertSame(TreeImage primary, TreeImage copy, IEnumerable<string> explicitTimes)
        {
            Assert.Equal(primary.Entries.Keys.OrderBy(k => k, StringComparer.Ordinal), copy.Entries.Keys.OrderBy(k => k, StringComparer.Ordinal));
            var exact = new HashSet<string>(explicitTimes, StringComparer.Ordinal);
            foreach (var (path, p) in primary.Entries)
            {
                var c = copy.Entries[path];
                Assert.True(p.Status.Mode == c.Status.Mode, $"{path}: mode {Convert.ToString(p.Status.Mode, 8)} vs {Convert.ToString(c.Status.Mode, 8)}");
                Assert.True(p.Status.Uid == c.Status.Uid && p.Status.Gid == c.Status.Gid, $"{path}: owner {p.Status.Uid}:{p.Status.Gid} vs {c.Status.Uid}:{c.Status.Gid}");
                Assert.True(p.Status.Links == c.Status.Links, $"{path}: nlink {p.Status.Links} vs {c.Status.Links}");
                if (p.Status.Type != FileType.Directory)
                    Assert.True(p.Status.Size == c.Status.Size, $"{path}: size {p.Status.Size} vs {c.Status.Size}");
                Assert.True(p.Hash == c.Hash, $"{path}: content differs");
                Assert.True(p.Link == c.Link, $"{path}: symlink {p.Link} vs {c.Link}");
                Assert.True(p.Xattrs.SequenceEqual(c.Xattrs), $"{path}: xattrs differ");
                if (exact.Contains(path))
                {
                    Assert.True(p.Status.MtimeSeconds == c.Status.MtimeSeconds && p.Status.MtimeNanoseconds == c.Status.MtimeNanoseconds,
                        $"{path}: mtime {p.Status.MtimeSeconds}.{p.Status.MtimeNanoseconds} vs {c.Status.MtimeSeconds}.{c.Status.MtimeNanoseconds}");
                }
                else
                {
                    // Each node's kernel stamps its own writes: the same moment, give or take the apply.
                    Assert.True(Math.Abs(p.Status.MtimeSeconds - c.Status.MtimeSeconds) <= 10, $"{path}: mtime far apart");
                }
            }
            Assert.Equal(primary.LinkGroups(), copy.LinkGroups());
        }
    }
}
