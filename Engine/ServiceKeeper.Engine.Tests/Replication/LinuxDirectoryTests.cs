// LinuxDirectory.Apply on a plain directory: every FsOp, the errnos applications rely on, the write handle
// cache across renames, and that no path leaves the tree through a symlink.
using System;
using System.IO;
using System.Linq;
using System.Runtime.Versioning;
using System.Text;
using ServiceKeeper.Engine.Replication;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Replication
{
    [SupportedOSPlatform("linux")]
    public sealed class LinuxDirectoryTests : IDisposable
    {
        private const int ENOENT = 2, EEXIST = 17, ENOTDIR = 20, EINVAL = 22, ENOTEMPTY = 39, ELOOP = 40, ENODATA = 61;

        private readonly string root;
        private readonly string outside;
        private readonly LinuxDirectory dir;

        public LinuxDirectoryTests()
        {
            foreach (var old in Directory.EnumerateDirectories(Path.GetTempPath(), "sk-ldir-*"))
            {
                if (Directory.GetLastWriteTimeUtc(old) < DateTime.UtcNow.AddMinutes(-30))
                    Directory.Delete(old, recursive: true); // left by a killed run
            }
            var baseDir = Path.Combine(Path.GetTempPath(), "sk-ldir-" + Guid.NewGuid().ToString("N")[..12]);
            root = Path.Combine(baseDir, "tree");
            outside = Path.Combine(baseDir, "outside");
            Directory.CreateDirectory(root);
            Directory.CreateDirectory(outside);
            try
            {
                dir = LinuxDirectory.Open(root);
            }
            catch
            {
                Directory.Delete(baseDir, recursive: true);
                throw;
            }
        }

        public void Dispose()
        {
            dir.Dispose();
            Directory.Delete(Path.GetDirectoryName(root)!, recursive: true);
        }

        private static FsMutation M(FsOp op, string path, Action<FsMutation>? set = null)
        {
            var m = new FsMutation { Op = op, Path = path };
            set?.Invoke(m);
            return m;
        }

        private int Write(string path, long offset, string text) =>
            dir.Apply(M(FsOp.Write, path, m => { m.Offset = offset; m.Data = Encoding.UTF8.GetBytes(text); }));

        [LinuxDirectoryFact]
        public void Open_GivesProcPathThatReachesTheTree()
        {
            File.WriteAllText(Path.Combine(root, "x"), "1");
            Assert.Equal(root, dir.Path);
            Assert.True(dir.Descriptor >= 0);
            Assert.Equal("/proc/self/fd/" + dir.Descriptor, dir.ProcPath);
            Assert.Equal("1", File.ReadAllText(dir.ProcPath + "/x"));
        }

        [LinuxDirectoryFact]
        public void Create_Write_Truncate_ByPath_GiveExactContentModeAndOwner()
        {
            Assert.Equal(0, dir.Apply(M(FsOp.Create, "a.txt", m => { m.Mode = 0x8000 | 0b110_100_000; m.Uid = 65534; m.Gid = 65534; m.Flags = 1; })));
            Assert.Equal(0, Write("a.txt", 0, "hello"));
            Assert.Equal(0, Write("a.txt", 10, "world"));
            Assert.Equal("hello\0\0\0\0\0world", File.ReadAllText(Path.Combine(root, "a.txt")));
            Assert.True(dir.TryStat("a.txt", out var st));
            Assert.Equal(FileType.Regular, st.Type);
            Assert.Equal(0b110_100_000u, st.Permissions);
            Assert.Equal(65534, st.Uid);
            Assert.Equal(65534, st.Gid);
            Assert.Equal(15, st.Size);
            Assert.Equal(0, dir.Apply(M(FsOp.Truncate, "a.txt", m => m.Offset = 3)));
            Assert.Equal("hel", File.ReadAllText(Path.Combine(root, "a.txt")));
            Assert.Equal(-EEXIST, dir.Apply(M(FsOp.Create, "a.txt", m => { m.Mode = 0x1A4; m.Flags = 0x80 | 1; })));
            Assert.Equal(-ENOENT, Write("missing", 0, "x"));
        }

        [LinuxDirectoryFact]
        public void Create_WithModeOutsideTheUmask_KeepsTheExactMode()
        {
            Assert.Equal(0, dir.Apply(M(FsOp.Create, "shared", m => m.Mode = 0x8000 | 0x1B6))); // 0666
            Assert.Equal(0, dir.Apply(M(FsOp.Mkdir, "d", m => m.Mode = 0x1FF))); // 0777
            Assert.True(dir.TryStat("shared", out var f));
            Assert.True(dir.TryStat("d", out var d));
            Assert.Equal(0x1B6u, f.Permissions);
            Assert.Equal(0x1FFu, d.Permissions);
            Assert.Equal(FileType.Directory, d.Type);
        }

        [LinuxDirectoryFact]
        public void Namespace_Operations_ReturnTheErrnosOfTheKernel()
        {
            Assert.Equal(0, dir.Apply(M(FsOp.Mkdir, "d", m => m.Mode = 0x1ED)));
            Assert.Equal(-EEXIST, dir.Apply(M(FsOp.Mkdir, "d", m => m.Mode = 0x1ED)));
            Assert.Equal(0, dir.Apply(M(FsOp.Create, "d/f", m => m.Mode = 0x1A4)));
            Assert.Equal(-ENOTEMPTY, dir.Apply(M(FsOp.Rmdir, "d")));
            Assert.Equal(-ENOTDIR, dir.Apply(M(FsOp.Create, "d/f/g", m => m.Mode = 0x1A4)));
            Assert.Equal(0, dir.Apply(M(FsOp.Link, "d/f", m => m.Target = "d/h")));
            Assert.True(dir.TryStat("d/h", out var linked));
            Assert.Equal(2ul, linked.Links);
            Assert.Equal(0, dir.Apply(M(FsOp.Symlink, "d/s", m => m.Target = "f")));
            Assert.Equal("f", dir.ReadLink("d/s"));
            Assert.Equal(0, dir.Apply(M(FsOp.Rename, "d/f", m => m.Target = "g")));
            Assert.Equal(0, dir.Apply(M(FsOp.Rename, "d/h", m => { m.Target = "g"; m.Flags = 1; }) ) == 0 ? -1 : 0); // NOREPLACE fails
            Assert.Equal(0, dir.Apply(M(FsOp.Mknod, "fifo", m => m.Mode = 0x1000 | 0x1A4)));
            Assert.True(dir.TryStat("fifo", out var fifo));
            Assert.Equal(FileType.Fifo, fifo.Type);
            Assert.Equal(0, dir.Apply(M(FsOp.Unlink, "d/h")));
            Assert.Equal(0, dir.Apply(M(FsOp.Unlink, "d/s")));
            Assert.Equal(-ENOENT, dir.Apply(M(FsOp.Unlink, "d/s")));
            Assert.Equal(0, dir.Apply(M(FsOp.Rmdir, "d")));
            Assert.Equal(new[] { "fifo", "g" }, dir.ReadDirectory("").Select(e => e.Name).OrderBy(n => n, StringComparer.Ordinal));
            Assert.Equal(-EINVAL, dir.Apply(M(FsOp.Chmod, "..", m => m.Mode = 0x1FF)));
            Assert.Equal(-EINVAL, dir.Apply(M(FsOp.Create, "a/../../x", m => m.Mode = 0x1FF)));
        }

        [LinuxDirectoryFact]
        public void Paths_ThroughOrAtASymlink_NeverReachOutsideTheTree()
        {
            File.WriteAllText(Path.Combine(outside, "secret"), "keep");
            File.SetUnixFileMode(Path.Combine(outside, "secret"), UnixFileMode.UserRead);
            File.CreateSymbolicLink(Path.Combine(root, "out"), outside);
            File.CreateSymbolicLink(Path.Combine(root, "sec"), Path.Combine(outside, "secret"));

            Assert.Equal(-ELOOP, dir.Apply(M(FsOp.Create, "out/new", m => m.Mode = 0x1A4)));
            Assert.Equal(-ELOOP, dir.Apply(M(FsOp.Chmod, "out/secret", m => m.Mode = 0x1FF)));
            Assert.Equal(-ELOOP, Write("sec", 0, "gotcha"));
            Assert.Equal(-ELOOP, dir.Apply(M(FsOp.Truncate, "sec", m => m.Offset = 0)));
            Assert.NotEqual(0, dir.Apply(M(FsOp.Chmod, "sec", m => m.Mode = 0x1FF)));
            Assert.Equal(0, dir.Apply(M(FsOp.Utimens, "sec", m => { m.MtimeSeconds = 1000; m.MtimeNanoseconds = 5; })));
            Assert.Equal(0, dir.Apply(M(FsOp.Chown, "sec", m => { m.Uid = 65534; m.Gid = 65534; })));

            Assert.False(File.Exists(Path.Combine(outside, "new")));
            Assert.Equal("keep", File.ReadAllText(Path.Combine(outside, "secret")));
            Assert.Equal(UnixFileMode.UserRead, File.GetUnixFileMode(Path.Combine(outside, "secret")));
            var target = new FileInfo(Path.Combine(outside, "secret"));
            Assert.NotEqual(1000, new DateTimeOffset(target.LastWriteTimeUtc).ToUnixTimeSeconds());
            Assert.True(dir.TryStat("sec", out var link));
            Assert.Equal(FileType.Symlink, link.Type);
            Assert.Equal(65534, link.Uid);
            Assert.Equal(1000, link.MtimeSeconds);
            Assert.Equal(5, link.MtimeNanoseconds);
        }

        [LinuxDirectoryFact]
        public void WriteByPath_AfterRenameAndRecreate_GoesToTheNewFile()
        {
            Assert.Equal(0, dir.Apply(M(FsOp.Create, "f", m => m.Mode = 0x1A4)));
            Assert.Equal(0, Write("f", 0, "old"));
            Assert.Equal(0, dir.Apply(M(FsOp.Rename, "f", m => m.Target = "g")));
            Assert.Equal(0, dir.Apply(M(FsOp.Create, "f", m => m.Mode = 0x1A4)));
            Assert.Equal(0, Write("f", 0, "new"));
            Assert.Equal("old", File.ReadAllText(Path.Combine(root, "g")));
            Assert.Equal("new", File.ReadAllText(Path.Combine(root, "f")));

            Assert.Equal(0, dir.Apply(M(FsOp.Mkdir, "d", m => m.Mode = 0x1ED)));
            Assert.Equal(0, dir.Apply(M(FsOp.Create, "d/x", m => m.Mode = 0x1A4)));
            Assert.Equal(0, Write("d/x", 0, "1"));
            Assert.Equal(0, dir.Apply(M(FsOp.Rename, "d", m => m.Target = "e")));
            Assert.Equal(0, dir.Apply(M(FsOp.Mkdir, "d", m => m.Mode = 0x1ED)));
            Assert.Equal(0, dir.Apply(M(FsOp.Create, "d/x", m => m.Mode = 0x1A4)));
            Assert.Equal(0, Write("d/x", 0, "2"));
            Assert.Equal("1", File.ReadAllText(Path.Combine(root, "e/x")));
            Assert.Equal("2", File.ReadAllText(Path.Combine(root, "d/x")));

            Assert.Equal(0, dir.Apply(M(FsOp.Unlink, "f")));
            Assert.Equal(-ENOENT, Write("f", 0, "gone"));
        }

        [LinuxDirectoryFact]
        public void Metadata_XattrsTimesOwnerFallocateFsync_AreApplied()
        {
            Assert.Equal(0, dir.Apply(M(FsOp.Create, "f", m => m.Mode = 0x1A4)));
            Assert.Equal(0, dir.Apply(M(FsOp.SetXattr, "f", m => { m.Name = "user.k"; m.Data = new byte[] { 1, 2, 3 }; })));
            Assert.Equal(0, dir.Apply(M(FsOp.SetXattr, "f", m => { m.Name = "user.empty"; m.Data = Array.Empty<byte>(); })));
            Assert.Equal(new[] { "user.empty", "user.k" }, dir.ListXattrs("f").OrderBy(n => n, StringComparer.Ordinal));
            Assert.Equal(new byte[] { 1, 2, 3 }, dir.GetXattr("f", "user.k"));
            Assert.Equal(0, dir.Apply(M(FsOp.RemoveXattr, "f", m => m.Name = "user.k")));
            Assert.Null(dir.GetXattr("f", "user.k"));
            Assert.Equal(-ENODATA, dir.Apply(M(FsOp.RemoveXattr, "f", m => m.Name = "user.k")));

            Assert.Equal(0, dir.Apply(M(FsOp.Chown, "f", m => m.Gid = 65534)));
            Assert.Equal(0, dir.Apply(M(FsOp.Chmod, "f", m => m.Mode = 0x8000 | 0x180)));
            Assert.Equal(0, dir.Apply(M(FsOp.Fallocate, "f", m => { m.Offset = 0; m.Length = 1 << 20; })));
            Assert.Equal(0, dir.Apply(M(FsOp.Fsync, "f")));
            Assert.Equal(0, dir.Apply(M(FsOp.Utimens, "f", m => { m.AtimeSeconds = 100; m.AtimeNanoseconds = 1; m.MtimeSeconds = 200; m.MtimeNanoseconds = 123456789; })));
            Assert.Equal(0, dir.Apply(M(FsOp.Fsync, "", m => m.Flags = LinuxDirectory.FsyncDataOnly)));
            Assert.True(dir.TryStat("f", out var st));
            Assert.Equal(200, st.MtimeSeconds);
            Assert.Equal(123456789, st.MtimeNanoseconds);
            Assert.Equal(0, st.Uid);
            Assert.Equal(65534, st.Gid);
            Assert.Equal(0x180u, st.Permissions);
            Assert.Equal(1 << 20, st.Size);
            Assert.True(st.Blocks >= 2048);
            using var h = dir.OpenRead("f");
            Assert.Equal(1 << 20, RandomAccess.GetLength(h));
        }

        [LinuxDirectoryFact]
        public void WritesByPath_ReuseCachedDescriptors_AndEvictTheLeastRecentlyUsed()
        {
            foreach (var name in new[] { "a", "b", "c" })
                Assert.Equal(0, dir.Apply(M(FsOp.Create, name, m => m.Mode = 0x1A4)));
            for (int i = 0; i < 1000; i++)
            {
                Assert.Equal(0, Write("a", i, "x"));
                Assert.Equal(0, Write("b", i, "y"));
            }
            Assert.Equal(2, dir.PathOpens);
            Assert.Equal(new string('x', 1000), File.ReadAllText(Path.Combine(root, "a")));

            using var small = LinuxDirectory.Open(root, cachedHandles: 2);
            for (int i = 0; i < 10; i++)
            {
                foreach (var name in new[] { "a", "b", "c" })
                    Assert.Equal(0, small.Apply(M(FsOp.Write, name, m => { m.Offset = i; m.Data = new byte[] { 0x7A }; })));
            }
            Assert.Equal(30, small.PathOpens); // round robin over three files with room for two: every write misses
            Assert.Equal(0, small.Apply(M(FsOp.Truncate, "c", m => m.Offset = 3)));
            Assert.Equal("zzz", File.ReadAllText(Path.Combine(root, "c")));
        }
    }
}
