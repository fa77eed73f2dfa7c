// File replication through real engines: a mirror module with a replicated directory, written through
// the primary's FUSE mount (in the engine's own mount namespace, as its application would), compared on
// both nodes, failed over and resynchronised.
using System;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Tests.Testing;
using ServiceKeeper.Testing;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Integration
{
    public class ReplicationEndToEndTests(ITestOutputHelper output)
    {
        private const string Module = "files";
        private const string Dir = "/srv/skrep";

        private sealed class Lab(ITestOutputHelper output, string rfsAttributes = "", string extra = "")
            : MirrorModuleLab(output.WriteLine, new MirrorModuleSetup
            {
                ModuleName = Module,
                VipHost = 80,
                UserConfigXml = $"""<service mode="mirror"><rfs {rfsAttributes}><replicated dir="{Dir}"><notreplicated path="tmp"/>{extra}</replicated></rfs></service>""",
                LabOptions = new NetLabOptions().AddBindMount("rep", Dir),
            })
        {
            public void WaitFor(LabNode node, string state) => WaitForState(node, state, seconds: 120);

            /// <summary>A shell command where the node's application would run it: through the engine's mounts.</summary>
            public ExecResult Sh(LabNode node, string script) => Env.Lab.ExecInEngineMounts(node, TimeSpan.FromSeconds(120), "sh", "-c", script);

            public void ShOk(LabNode node, string script)
            {
                var r = Sh(node, script);
                Assert.True(r.Succeeded, $"{script} on {node.Name} failed: {r.StdErr}{r.StdOut}");
            }

            public System.Collections.Generic.List<ReplicationDifference> Differences() => Api.TestReplicationAsync(Module).GetAwaiter().GetResult();

            public ReplicationStatus Replication(LabNode node) =>
                Api.GetReplicationAsync(Module, node.Name).GetAwaiter().GetResult().Single();
        }

        private static string Sha(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

        [NetnsFact]
        public void Writes_ReachTheSecondary_FailbackResyncsOnlyChangedZones_CrashedPrimaryComesBackIdentical()
        {
            using var lab = new Lab(output);
            lab.Command(ModuleCommands.Start);
            lab.WaitFor(lab.N1, "PRIM");
            lab.WaitFor(lab.N2, "SECOND");

            // A mixed workload through the primary's mount.
            lab.ShOk(lab.N1, $"""
                set -e
                cd {Dir}
                dd if=/dev/urandom of=big bs=1M count=48 status=none
                mkdir -p docs/sub tmp
                for i in $(seq 1 200); do echo "file $i" > docs/sub/f$i.txt; done
                ln docs/sub/f1.txt docs/hard
                ln -s sub/f2.txt docs/link
                chmod 600 docs/sub/f3.txt
                chown 65534:65534 docs/sub/f4.txt
                mv docs/sub/f5.txt docs/moved.txt
                rm docs/sub/f6.txt
                truncate -s 10M sparse
                echo scratch > tmp/not-replicated
                sync
                """);
            Assert.Empty(lab.Differences());
            Assert.Equal(Sha(lab.N1.RootPath("rep/big")), Sha(lab.N2.RootPath("rep/big")));
            Assert.False(File.Exists(lab.N2.RootPath("rep/tmp/not-replicated")), "a <notreplicated> path reached the secondary");
            Assert.Equal("replicating", lab.Replication(lab.N1).State);
            Assert.Equal("receiving", lab.Replication(lab.N2).State);

            // The secondary's view is read-only for applications.
            var write = lab.Sh(lab.N2, $"echo x > {Dir}/docs/forbidden");
            Assert.False(write.Succeeded);
            Assert.Contains("Read-only", write.StdErr);

            // The secondary stops: the primary goes on alone and journals; 2 MiB change in the middle of the 48 MiB file.
            lab.Command(ModuleCommands.Stop, "n2");
            lab.WaitFor(lab.N1, "ALONE");
            lab.ShOk(lab.N1, $"dd if=/dev/urandom of={Dir}/big bs=1M count=2 seek=20 conv=notrunc status=none && echo new > {Dir}/docs/new.txt && rm {Dir}/docs/sub/f7.txt");
            var alone = lab.Replication(lab.N1);
            Assert.Equal("alone", alone.State);
            Assert.True(alone.BytesDirty > 0, "nothing journaled while alone");

            lab.Command(ModuleCommands.Start, "n2");
            lab.WaitFor(lab.N2, "SECOND");
            lab.WaitFor(lab.N1, "PRIM");
            var resync = lab.Replication(lab.N2).LastResync;
            Assert.NotNull(resync);
            output.WriteLine($"resync: {resync!.Method}, {resync.BytesSent} bytes sent");
            Assert.Equal("journal", resync.Method);
            Assert.InRange(resync.BytesSent, 1, 8L << 20); // the changed zones, not the 48 MiB file
            Assert.Empty(lab.Differences());

            // A difference that persists through every pass of the comparison (the later passes ask both nodes for the
            // differing paths only) is reported: a file changed beneath the secondary's mount, where replication does
            // not see it. Put back, the copies are identical again.
            var tampered = lab.N2.RootPath("rep/docs/sub/f8.txt");
            File.WriteAllText(tampered, "FILE 8\n");
            var difference = Assert.Single(lab.Differences());
            Assert.Equal((Dir, "docs/sub/f8.txt", "Content"), (difference.Directory, difference.Path, difference.Kind));
            File.WriteAllText(tampered, "file 8\n");
            Assert.Empty(lab.Differences());

            // The primary dies with everything on it: the secondary takes over with every write.
            lab.ShOk(lab.N1, $"dd if=/dev/urandom of={Dir}/last bs=64k count=16 status=none");
            var last = Sha(lab.N1.RootPath("rep/last"));
            lab.Env.Lab.KillEngine(lab.N1);
            lab.WaitFor(lab.N2, "ALONE");
            Assert.Equal(last, Sha(lab.N2.RootPath("rep/last")));
            lab.ShOk(lab.N2, $"echo after > {Dir}/docs/after.txt");

            // Its engine restarts the module it was running: it comes back as secondary (its journal was never
            // closed: block comparison) and ends identical.
            lab.Env.Start(lab.N1);
            lab.WaitFor(lab.N1, "SECOND");
            lab.WaitFor(lab.N2, "PRIM");
            Assert.Empty(lab.Differences());
            Assert.Equal("after\n", File.ReadAllText(lab.N1.RootPath("rep/docs/after.txt")));

            lab.Command(ModuleCommands.Stop);
            lab.WaitFor(lab.N1, "STOP");
            lab.WaitFor(lab.N2, "STOP");
            foreach (var node in lab.Env.Nodes)
                Assert.DoesNotContain("servicekeeper:" + Module, lab.Sh(node, "cat /proc/self/mountinfo").StdOut);
        }
    }
}
