// File system conformance of the mount: what applications rely on (errnos, holes, truncate, links,
// symlinks, xattrs, permissions for a non-root user, large and many files, metadata), each checked
// through the mount and, where it matters, on the real tree underneath.
using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Engine.Replication;
using Xunit;
using static ServiceKeeper.Engine.Tests.Replication.FuseSys;

namespace ServiceKeeper.Engine.Tests.Replication
{
    [SupportedOSPlatform("linux")]
    public sealed class FuseConformanceTests
    {
        /// <summary>Polls until <paramref name="condition"/> holds (kernel attribute caches expire within a second).</summary>
        internal static void Eventually(Func<bool> condition, string what, int seconds = 10)
        {
            var sw = Stopwatch.StartNew();
            while (!condition())
            {
                if (sw.Elapsed > TimeSpan.FromSeconds(seconds))
                    Assert.Fail("timed out waiting for: " + what);
                Thread.Sleep(20);
            }
        }

        [FuseFact]
        public void Errnos_AreTheOnesTheKernelGivesOnADiskFileSystem()
        {
            using var t = new FuseTestTree();
            Assert.Equal(-ENOENT, Open(t["missing"], O_RDONLY));
            Assert.Equal(0, Mkdir(t["d"]));
            Assert.Equal(-EEXIST, Mkdir(t["d"]));
            int fd = Open(t["d/f"], O_WRONLY | O_CREAT | O_EXCL);
            Assert.True(fd >= 0);
            Close(fd);
            Assert.Equal(-EEXIST, Open(t["d/f"], O_WRONLY | O_CREAT | O_EXCL));
            Assert.Equal(-ENOTEMPTY, Rmdir(t["d"]));
            Assert.Equal(-EISDIR, Open(t["d"], O_WRONLY));
            Assert.Equal(-ENOTDIR, Open(t["d/f/x"], O_RDONLY));
            Assert.Equal(-ENOTDIR, Rmdir(t["d/f"]));
            Assert.Equal(-EISDIR, Unlink(t["d"]));
            Assert.Equal(-ENOENT, Unlink(t["d/none"]));
            Assert.Equal(-ENOENT, Rename(t["d/none"], t["d/other"]));
            Assert.Equal(0, Mkdir(t["e"]));
            Assert.Equal(-EEXIST, Rename(t["d/f"], t["e"], flags: 1)); // RENAME_NOREPLACE
            Assert.Equal(-ENOTEMPTY, Rename(t["e"], t["d"]));
            Assert.Equal(-ENODATA, GetXattr(t["d/f"], "user.none", out var e) == null ? e : 0);
            // A name that is not UTF-8 could not be replicated faithfully: refused rather than mangled.
            var bad = FuseTestTree.Sh($"touch \"{t.Root}/$(printf 'bad\\377')\"");
            Assert.NotEqual(0, bad.Exit);
            Assert.Contains("multibyte", bad.Err);
            Assert.Equal(0, t.Mount.Statistics.Failures);
        }

        [FuseFact]
        public void RenameFlags_NoReplaceAndExchange_GiveTheErrnosOfADiskFileSystem_AndReplicate()
        {
            using var t = FuseTestTree.Replicating(out var sink);
            File.WriteAllText(t["a"], "a");
            File.WriteAllText(t["b"], "b");
            Assert.Equal(0, Mkdir(t["d"]));
            Assert.Equal(-EINVAL, Rename(t["a"], t["b"], flags: 3)); // NOREPLACE | EXCHANGE
            Assert.Equal(-EINVAL, Rename(t["a"], t["b"], flags: 8)); // no such flag
            Assert.Equal(-EEXIST, Rename(t["a"], t["b"], flags: 1));
            Assert.Equal(-EEXIST, Rename(t["a"], t["a"], flags: 1));
            Assert.Equal(-ENOENT, Rename(t["a"], t["none"], flags: 2)); // EXCHANGE needs both
            Assert.Equal(-ENOENT, Rename(t["none"], t["a"], flags: 2));
            Assert.Equal(-EINVAL, Rename(t["d"], t["d/sub"], flags: 1)); // into itself
            Assert.Equal(0, Rename(t["a"], t["c"], flags: 1));
            Assert.Equal(0, Rename(t["c"], t["d"], flags: 2)); // a file and a directory trade places
            Assert.Equal(0, Rename(t["c"], t["c"], flags: 2));
            t.Mount.Sink = null;
            Assert.Equal("a", File.ReadAllText(t["d"]));
            Assert.True(Directory.Exists(t["c"]));
            Assert.Empty(sink.Disagreements);
            t.AssertCopyIdenticalAndNoFailure();
        }

        [FuseFact]
        public void OTmpfile_IsRefusedWithEopnotsupp_AndLeavesNothing()
        {
            // libfuse 3.14's API has no tmpfile: the kernel gets ENOSYS and answers EOPNOTSUPP, which is what
            // glibc's tmpfile(), Python's TemporaryFile and others take as "fall back to create + unlink".
            using var t = new FuseTestTree();
            Assert.Equal(-EOPNOTSUPP, Open(t.Root, O_TMPFILE | O_RDWR));
            Assert.Equal(-EOPNOTSUPP, Open(t.Root, O_TMPFILE | O_RDWR));
            var r = FuseTestTree.Sh($"python3 -c \"import tempfile; f = tempfile.TemporaryFile(dir='{t.Root}'); f.write(b'x' * 10000); f.seek(0); assert f.read() == b'x' * 10000; f.close()\"");
            Assert.True(r.Exit == 0, r.Err);
            Assert.Empty(t.Real.ReadDirectory(""));
            Assert.Equal(0, t.Mount.Statistics.Failures);
        }

        [FuseFact]
        public void CopyFileRange_CopiesThroughReadAndWrite_SoTheCopyIsReplicated()
        {
            using var t = FuseTestTree.Replicating(out var sink);
            var data = new byte[300_000];
            new Random(7).NextBytes(data);
            File.WriteAllBytes(t["src"], data);
            int from = Open(t["src"], O_RDONLY);
            int to = Open(t["dst"], O_WRONLY | O_CREAT);
            try
            {
                long done = 0;
                while (done < data.Length)
                {
                    long n = CopyFileRange(from, done, to, 1000 + done, data.Length - done);
                    Assert.True(n > 0, $"copy_file_range: {n}");
                    done += n;
                }
            }
            finally
            {
                Close(from);
                Close(to);
            }
            t.Mount.Sink = null;
            var copied = File.ReadAllBytes(t.Real.ProcPath + "/dst");
            Assert.Equal(1000 + data.Length, copied.Length);
            Assert.Equal(data, copied.AsSpan(1000).ToArray());
            Assert.Empty(sink.Disagreements);
            t.AssertCopyIdenticalAndNoFailure();
        }

        [FuseFact]
        public void CreateRenameUnlink_FromParallelThreads_LeaveTheTreeConsistent()
        {
            using var t = new FuseTestTree();
            Assert.Equal(0, Mkdir(t["race"]));
            var errors = new ConcurrentBag<string>();
            Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, worker =>
            {
                for (int i = 0; i < 200; i++)
                {
                    var mine = t[$"race/w{worker}-{i}"];
                    File.WriteAllText(mine, $"{worker}:{i}");
                    // Several workers rename onto the same few names and unlink them: each call must succeed or
                    // fail with the errno of a lost race, never with EIO.
                    int r = Rename(mine, t[$"race/shared{i % 3}"]);
                    if (r != 0)
                        errors.Add($"rename {mine}: {r}");
                    r = Unlink(t[$"race/shared{(i + worker) % 3}"]);
                    if (r != 0 && r != -ENOENT)
                        errors.Add($"unlink: {r}");
                }
            });
            Assert.Empty(errors);
            // close() sends FUSE's RELEASE asynchronously, so libfuse may still count a just-closed file as open when it
            // is renamed over or unlinked: with hard_remove it removes the name at once all the same (no .fuse_hidden*
            // until the release arrives), so the tree is final as soon as the calls returned.
            var viaMount = Directory.GetFileSystemEntries(t["race"]).Select(Path.GetFileName).OrderBy(n => n, StringComparer.Ordinal).ToArray();
            var real = t.Real.ReadDirectory("race").Select(x => x.Name).OrderBy(n => n, StringComparer.Ordinal).ToArray();
            Assert.Equal(real, viaMount);
            Assert.All(viaMount, n => Assert.StartsWith("shared", n));
            foreach (var n in viaMount)
                Assert.Matches(@"^\d:\d+$", File.ReadAllText(t["race/" + n!]));
            Assert.Equal(0, t.Mount.Statistics.Failures);
        }

        [FuseFact]
        public void SparseFile_KeepsItsHoles_AndSeekHoleFindsThem()
        {
            using var t = new FuseTestTree();
            int fd = Open(t["sparse"], O_RDWR | O_CREAT);
            Assert.True(fd >= 0);
            try
            {
                var block = Enumerable.Repeat((byte)0xAB, 4096).ToArray();
                Assert.Equal(4096, PWrite(fd, block, 0));
                Assert.Equal(4096, PWrite(fd, block, 64L << 20));
                Assert.Equal(4096, Seek(fd, 0, SEEK_HOLE));
                Assert.Equal(64L << 20, Seek(fd, 4096, SEEK_DATA));
            }
            finally
            {
                Close(fd);
            }
            var st = Lstat(t["sparse"]);
            Assert.Equal((64L << 20) + 4096, st.Size);
            Assert.True(st.Blocks < 1024, $"{st.Blocks} blocks of 512 bytes for 8 KiB of data");
            Assert.True(t.Real.TryStat("sparse", out var real));
            Assert.Equal(st.Blocks, real.Blocks);
            using var h = t.Real.OpenRead("sparse");
            var buf = new byte[4096];
            RandomAccess.Read(h, buf, 1 << 20);
            Assert.All(buf, b => Assert.Equal(0, b));
        }

        [FuseFact]
        public void Truncate_UpAndDown_ChangesSizeAndContent()
        {
            using var t = new FuseTestTree();
            File.WriteAllText(t["f"], "0123456789");
            using (var fs = new FileStream(t["f"], FileMode.Open, FileAccess.ReadWrite))
            {
                fs.SetLength(4);
                fs.SetLength(8);
            }
            Assert.Equal("0123\0\0\0\0", File.ReadAllText(t["f"]));
            Assert.Equal(0, FuseTestTree.Sh($"truncate -s 2 '{t["f"]}' && truncate -s 3 '{t["f"]}'").Exit);
            Assert.Equal("01\0", File.ReadAllText(t["f"]));
            File.WriteAllText(t["f"], "x"); // O_TRUNC through open
            Assert.Equal("x", File.ReadAllText(t.Real.ProcPath + "/f"));
        }

        [FuseFact]
        public void HardLinks_ShareContentAndCountLinks()
        {
            using var t = new FuseTestTree();
            File.WriteAllText(t["a"], "one");
            Assert.Equal(0, Link(t["a"], t["b"]));
            Assert.Equal(-EEXIST, Link(t["a"], t["b"]));
            Eventually(() => Lstat(t["a"]).Nlink == 2 && Lstat(t["b"]).Nlink == 2, "nlink 2 on both names");
            Assert.Equal(Lstat(t["a"]).Ino, Lstat(t["b"]).Ino);
            File.WriteAllText(t["b"], "two");
            Assert.Equal("two", File.ReadAllText(t["a"]));
            Assert.Equal(0, Unlink(t["b"]));
            Eventually(() => Lstat(t["a"]).Nlink == 1, "nlink back to 1");
            Assert.True(t.Real.TryStat("a", out var st));
            Assert.Equal(1ul, st.Links);
        }

        [FuseFact]
        public void Symlinks_ResolveInsideTheMount()
        {
            using var t = new FuseTestTree();
            Directory.CreateDirectory(t["dir"]);
            File.WriteAllText(t["dir/target"], "content");
            Assert.Equal(0, Symlink("dir/target", t["rel"]));
            Assert.Equal(0, Symlink("nowhere", t["dangling"]));
            Assert.Equal("content", File.ReadAllText(t["rel"]));
            Assert.Equal("dir/target", new FileInfo(t["rel"]).LinkTarget);
            Assert.Equal(0xA000u, Lstat(t["rel"]).Mode & 0xF000);
            Assert.Equal(-ENOENT, Open(t["dangling"], O_RDONLY));
            Assert.Equal("nowhere", t.Real.ReadLink("dangling"));
            Assert.Equal(-EEXIST, Symlink("x", t["rel"]));
        }

        [FuseFact]
        public void Xattrs_SetGetListRemove()
        {
            using var t = new FuseTestTree();
            File.WriteAllText(t["f"], "");
            var big = new byte[3000];
            new Random(1).NextBytes(big);
            Assert.Equal(0, SetXattr(t["f"], "user.small", Encoding.UTF8.GetBytes("v")));
            Assert.Equal(0, SetXattr(t["f"], "user.big", big));
            Assert.Equal(0, SetXattr(t["f"], "user.empty", Array.Empty<byte>()));
            Assert.Equal(-EEXIST, SetXattr(t["f"], "user.small", new byte[] { 1 }, flags: 1)); // XATTR_CREATE
            Assert.Equal(-ENODATA, SetXattr(t["f"], "user.none", new byte[] { 1 }, flags: 2)); // XATTR_REPLACE
            Assert.Equal(big, GetXattr(t["f"], "user.big", out _));
            Assert.Equal(Array.Empty<byte>(), GetXattr(t["f"], "user.empty", out _));
            Assert.Equal(new[] { "user.big", "user.empty", "user.small" }, ListXattr(t["f"]).OrderBy(n => n, StringComparer.Ordinal));
            Assert.Equal(0, RemoveXattr(t["f"], "user.small"));
            Assert.Equal(-ENODATA, RemoveXattr(t["f"], "user.small"));
            Assert.Equal(big, t.Real.GetXattr("f", "user.big"));
            Assert.DoesNotContain("user.small", t.Real.ListXattrs("f"));
        }

        [FuseFact]
        public void Permissions_ForANonRootUser_AreCheckedByTheKernel()
        {
            using var t = new FuseTestTree();
            Directory.CreateDirectory(t["closed"]);
            File.SetUnixFileMode(t["closed"], (UnixFileMode)0x1ED); // 0755 root
            Directory.CreateDirectory(t["open"]);
            File.SetUnixFileMode(t["open"], (UnixFileMode)0x1FF); // 0777
            File.WriteAllText(t["secret"], "root only");
            File.SetUnixFileMode(t["secret"], (UnixFileMode)0x180); // 0600

            var denied = FuseTestTree.Sh($"touch '{t["closed/x"]}'", uid: 65534);
            Assert.NotEqual(0, denied.Exit);
            Assert.Contains("Permission denied", denied.Err);
            var read = FuseTestTree.Sh($"cat '{t["secret"]}'", uid: 65534);
            Assert.NotEqual(0, read.Exit);
            Assert.Contains("Permission denied", read.Err);

            var ok = FuseTestTree.Sh($"echo mine > '{t["open/mine"]}' && mkdir '{t["open/sub"]}' && ln -s mine '{t["open/ln"]}' && chmod 600 '{t["open/mine"]}' && cat '{t["open/mine"]}'", uid: 65534);
            Assert.True(ok.Exit == 0, ok.Err);
            Assert.Equal("mine\n", ok.Out);
            foreach (var name in new[] { "open/mine", "open/sub", "open/ln" })
            {
                Assert.True(t.Real.TryStat(name, out var st), name);
                Assert.Equal(65534, st.Uid);
                Assert.Equal(65534, st.Gid);
            }
            Assert.True(t.Real.TryStat("open/mine", out var mine));
            Assert.Equal(0x180u, mine.Permissions);
            var chownDenied = FuseTestTree.Sh($"chown 0 '{t["open/mine"]}'", uid: 65534);
            Assert.NotEqual(0, chownDenied.Exit);
            Assert.False(File.Exists(t.Real.ProcPath + "/closed/x"));
        }

        [FuseFact]
        public void ReadOnlyMount_RefusesEveryMutation_AndShowsChangesMadeUnderneath()
        {
            using var t = new FuseTestTree(new ReplicatedMountOptions { ReadOnly = true, FsName = "servicekeeper:ro" });
            Assert.Contains(File.ReadLines("/proc/mounts"), l => l.Split(' ')[1] == t.Root && l.Split(' ')[3].StartsWith("ro,", StringComparison.Ordinal));
            Assert.Equal(-EROFS, Mkdir(t["d"]));
            Assert.Equal(-EROFS, Open(t["f"], O_WRONLY | O_CREAT));
            // Changes arrive underneath (as the replication receiver writes them) and show at once.
            Assert.Equal(0, t.Real.Apply(new FsMutation { Op = FsOp.Create, Path = "f", Mode = 0x81A4 }));
            Assert.Equal(0, t.Real.Apply(new FsMutation { Op = FsOp.Write, Path = "f", Data = Encoding.UTF8.GetBytes("v1") }));
            Assert.Equal("v1", File.ReadAllText(t["f"]));
            Assert.Equal(0, t.Real.Apply(new FsMutation { Op = FsOp.Write, Path = "f", Offset = 2, Data = Encoding.UTF8.GetBytes("+v2") }));
            Assert.Equal("v1+v2", File.ReadAllText(t["f"]));
            Assert.Equal(-EROFS, Open(t["f"], O_WRONLY));
            Assert.Equal(-EROFS, Open(t["f"], O_RDONLY | O_TRUNC));
            Assert.Equal(-EROFS, Unlink(t["f"]));
            Assert.Equal(-EROFS, Rename(t["f"], t["g"]));
            Assert.Equal(-EROFS, Chmod(t["f"], 0x1FF));
            Assert.Equal(-EROFS, SetXattr(t["f"], "user.x", new byte[] { 1 }));
            Assert.Equal(-EROFS, Symlink("f", t["s"]));
            Assert.Equal(-EROFS, Link(t["f"], t["h"]));
            Assert.Equal(0, t.Mount.Statistics.Mutations);
        }

        [FuseFact]
        public void LargeFile_WrittenWithDd_HasTheSameSha256ThroughTheMountAndUnderneath()
        {
            using var t = new FuseTestTree();
            var source = Path.Combine(t.Base, "source.bin");
            var data = new byte[1 << 20];
            var rng = new Random(42);
            using (var fs = File.Create(source))
            {
                for (int i = 0; i < 300; i++)
                {
                    rng.NextBytes(data);
                    fs.Write(data);
                }
            }
            var r = FuseTestTree.Sh($"dd if='{source}' of='{t["big.bin"]}' bs=1M 2>&1 && dd if='{source}' of='{t["odd.bin"]}' bs=12345 2>&1");
            Assert.True(r.Exit == 0, r.Out);
            string Hash(string p)
            {
                using var s = File.OpenRead(p);
                return Convert.ToHexString(SHA256.HashData(s));
            }
            var expected = Hash(source);
            Assert.Equal(expected, Hash(t["big.bin"]));
            Assert.Equal(expected, Hash(t["odd.bin"]));
            Assert.Equal(expected, Hash(t.Real.ProcPath + "/big.bin"));
            Assert.Equal(expected, Hash(t.Real.ProcPath + "/odd.bin"));
            Assert.Equal(2L * 300 << 20, t.Mount.Statistics.BytesWritten);
        }

        [FuseFact]
        public void ManySmallFiles_AreAllThereWithTheirContent()
        {
            using var t = new FuseTestTree();
            var r = FuseTestTree.Sh($"cd '{t.Root}' && mkdir many && i=0; while [ $i -lt 3000 ]; do echo \"file $i\" > many/f$i; i=$((i+1)); done");
            Assert.True(r.Exit == 0, r.Err);
            var names = Directory.GetFiles(t["many"]);
            Assert.Equal(3000, names.Length);
            Assert.Equal(3000, t.Real.ReadDirectory("many").Count);
            for (int i = 0; i < 3000; i += 7)
                Assert.Equal($"file {i}\n", File.ReadAllText(t[$"many/f{i}"]));
            Assert.Equal(0, FuseTestTree.Sh($"rm -r '{t["many"]}'").Exit);
            Assert.False(t.Real.TryStat("many", out _));
        }

        [FuseFact]
        public void ChmodChownUtimens_AreVisibleThroughTheMountAndUnderneath()
        {
            using var t = new FuseTestTree();
            File.WriteAllText(t["f"], "x");
            Assert.Equal(0, FuseTestTree.Sh($"chmod 640 '{t["f"]}' && chown 65534:65534 '{t["f"]}' && touch -m -d '2001-02-03 04:05:06.123456789 UTC' '{t["f"]}'").Exit);
            Eventually(() => (Lstat(t["f"]).Mode & 0xFFF) == 0x1A0, "mode 0640");
            var st = Lstat(t["f"]);
            Assert.Equal(65534u, st.Uid);
            Assert.Equal(65534u, st.Gid);
            Assert.Equal(981173106, st.MtimeSec);
            Assert.Equal(123456789, st.MtimeNsec);
            Assert.True(t.Real.TryStat("f", out var real));
            Assert.Equal(0x1A0u, real.Permissions);
            Assert.Equal(65534, real.Uid);
            Assert.Equal(981173106, real.MtimeSeconds);
            Assert.Equal(123456789, real.MtimeNanoseconds);
            // The application's umask decides, not the engine's (022 here).
            Assert.Equal(0, FuseTestTree.Sh($"cd '{t.Root}' && umask 0 && mkdir wide && touch wide/file && mkfifo wide/fifo").Exit);
            Assert.Equal(0x1FFu, Lstat(t["wide"]).Mode & 0xFFF);
            Assert.Equal(0x1B6u, Lstat(t["wide/file"]).Mode & 0xFFF);
            Assert.Equal(0x1B6u, Lstat(t["wide/fifo"]).Mode & 0xFFF);
            // touch without a time: UTIME_NOW, resolved by the file system to a real clock value
            var before = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            Assert.Equal(0, FuseTestTree.Sh($"touch '{t["f"]}'").Exit);
            Eventually(() => Lstat(t["f"]).MtimeSec >= before, "mtime now");
        }

        [FuseFact]
        public void ProcPath_ReadsTheRealTreeWhileTheMountIsOnTop()
        {
            using var t = new FuseTestTree();
            using (var w = new FileStream(t["log"], FileMode.Create, FileAccess.Write, FileShare.ReadWrite, 1, FileOptions.None))
            {
                for (int i = 0; i < 50; i++)
                {
                    var line = Encoding.UTF8.GetBytes($"line {i}\n");
                    w.Write(line);
                    w.Flush();
                    // write() returned, so the bytes are in the real file underneath already
                    Assert.EndsWith($"line {i}\n", File.ReadAllText(t.Real.ProcPath + "/log"));
                }
            }
            Assert.Equal(t.Real.Path, t.Root);
            Assert.True(FuseTestTree.IsMounted(t.Root));
            Assert.Equal(File.ReadAllText(t["log"]), File.ReadAllText(t.Real.ProcPath + "/log"));
        }

        [FuseFact]
        public void SharedMmapWrites_Exec_AndStatfs_Work()
        {
            using var t = new FuseTestTree();
            File.WriteAllBytes(t["mapped"], new byte[8192]);
            var script = "import mmap,os,sys\n" +
                         "fd=os.open(sys.argv[1],os.O_RDWR)\n" +
                         "m=mmap.mmap(fd,8192)\n" +
                         "m[100:105]=b'mmap!'\n" +
                         "m.flush()\n" +
                         "m.close();os.close(fd)\n";
            File.WriteAllText(Path.Combine(t.Base, "map.py"), script);
            var r = FuseTestTree.Sh($"python3 '{Path.Combine(t.Base, "map.py")}' '{t["mapped"]}'");
            Assert.True(r.Exit == 0, r.Err);
            var real = File.ReadAllBytes(t.Real.ProcPath + "/mapped");
            Assert.Equal("mmap!", Encoding.ASCII.GetString(real, 100, 5));
            // exec opens carry __FMODE_EXEC in their flags
            var exec = FuseTestTree.Sh($"cp /bin/echo '{t["echo"]}' && '{t["echo"]}' executed");
            Assert.True(exec.Exit == 0, exec.Err);
            Assert.Equal("executed\n", exec.Out);
            var df = FuseTestTree.Sh($"df -P '{t.Root}'");
            Assert.True(df.Exit == 0, df.Err);
            Assert.Contains("servicekeeper:test", df.Out);
        }
    }
}
