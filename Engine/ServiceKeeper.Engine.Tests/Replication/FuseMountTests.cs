// ReplicatedMount's lifecycle: mount in place, /proc/mounts, the real tree under the mount through
// LinuxDirectory.ProcPath, statistics, sink changes while mounted, unmount (also while busy), stale mounts.
using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using System.Runtime.Versioning;
using System.Text;
using ServiceKeeper.Engine.Replication;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Replication
{
    [SupportedOSPlatform("linux")]
    public sealed class FuseMountTests
    {
        [FuseFact]
        public void Mount_InPlace_ServesTheRealTreeAndUnmountsCleanly()
        {
            string root;
            using (var t = new FuseTestTree())
            {
                root = t.Root;
                var line = File.ReadLines("/proc/mounts").Single(l => l.Split(' ')[1] == t.Root);
                Assert.StartsWith("servicekeeper:test " + t.Root + " fuse.servicekeeper rw,", line);
                Assert.Contains("allow_other", line);
                Assert.Contains("default_permissions", line);

                File.WriteAllText(t["hello.txt"], "through the mount");
                Assert.Equal("through the mount", File.ReadAllText(t["hello.txt"]));
                Assert.Equal("through the mount", File.ReadAllText(t.Real.ProcPath + "/hello.txt"));
                Assert.True(t.Real.TryStat("hello.txt", out var st));
                Assert.Equal(17, st.Size);
                var stats = t.Mount.Statistics;
                Assert.True(stats.Operations > 0);
                Assert.True(stats.Mutations >= 2);
                Assert.Equal(17, stats.BytesWritten);
                Assert.Equal(0, stats.Failures);
            }
            Assert.False(FuseTestTree.IsMounted(root));
        }

        private sealed class RecordingSink : IMutationSink
        {
            public ConcurrentQueue<string> Seen { get; } = new();

            public Func<FsMutation, int, int> Result { get; set; } = (_, local) => local;

            public MutationTicket Begin(FsMutation m)
            {
                var data = m.Op == FsOp.Write ? Encoding.UTF8.GetString(m.Data.Span) : "";
                Seen.Enqueue($"{m.Op} {m.Path} {m.Target} off={m.Offset} uid={m.Uid} gid={m.Gid} handle={(m.LocalHandle >= 0 ? "yes" : "no")} data={data}");
                return new MutationTicket(0, m);
            }

            public int Complete(MutationTicket ticket, int localResult) => Result((FsMutation)ticket.State!, localResult);
        }

        [FuseFact]
        public void Sink_SetWhileMounted_SeesMutationsAndDecidesTheResult()
        {
            using var t = new FuseTestTree();
            File.WriteAllText(t["before"], "local only");
            var sink = new RecordingSink();
            t.Mount.Sink = sink;
            Directory.CreateDirectory(t["open"]);
            File.SetUnixFileMode(t["open"], (UnixFileMode)0x1FF);
            var r = FuseTestTree.Sh($"printf abc > '{t["open/f"]}'", uid: 65534);
            Assert.True(r.Exit == 0, r.Err);
            Assert.Contains(sink.Seen, s => s.StartsWith("Create open/f  off=0 uid=65534 gid=65534", StringComparison.Ordinal));
            Assert.Contains(sink.Seen, s => s.StartsWith("Write open/f  off=0", StringComparison.Ordinal) && s.EndsWith("handle=yes data=abc", StringComparison.Ordinal));
            Assert.DoesNotContain(sink.Seen, s => s.Contains("before", StringComparison.Ordinal));

            // What Complete returns is what the application gets: here the "secondary" refuses writes.
            sink.Result = (m, local) => m.Op == FsOp.Write ? -5 : local;
            var ex = Assert.ThrowsAny<IOException>(() => File.AppendAllText(t["open/f"], "more"));
            Assert.Contains("Input/output error", ex.Message);
            t.Mount.Sink = null;
            File.AppendAllText(t["open/f"], "!");
            Assert.StartsWith("abc", File.ReadAllText(t["open/f"]));
            Assert.EndsWith("!", File.ReadAllText(t["open/f"]));
        }

        [FuseFact]
        public void Dispose_WhileAFileIsOpen_DetachesAndReturns()
        {
            var t = new FuseTestTree();
            try
            {
                var held = new FileStream(t["held"], FileMode.Create, FileAccess.ReadWrite);
                held.Write(new byte[] { 1, 2, 3 });
                held.Flush();
                var sw = Stopwatch.StartNew();
                Assert.True(Task.Run(t.Mount.Dispose).Wait(TimeSpan.FromSeconds(60)), "Dispose did not return");
                Assert.False(FuseTestTree.IsMounted(t.Root));
                try
                {
                    held.Dispose();
                }
                catch (IOException)
                {
                    // the connection was cut under the open file: expected
                }
                Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(t["held"])); // the real file, no mount on top now
            }
            finally
            {
                t.Dispose();
            }
        }

        [FuseFact]
        public void CleanupStale_DetachesAMountWhoseServerIsGone()
        {
            using var t = new FuseTestTree();
            File.WriteAllText(t["kept"], "data");
            // What a killed engine leaves: the kernel side of the mount without a server.
            Assert.True(ReplicatedMount.AbortConnection(ReplicatedMount.ConnectionOf(t.Root)!));
            var ex = Assert.ThrowsAny<IOException>(() => File.ReadAllText(t["kept"]));
            Assert.Contains("not connected", ex.Message);
            ReplicatedMount.CleanupStale(t.Root);
            Assert.False(FuseTestTree.IsMounted(t.Root));
            Assert.Equal("data", File.ReadAllText(t["kept"]));
            ReplicatedMount.CleanupStale(t.Root); // nothing there: does nothing
        }
    }
}
