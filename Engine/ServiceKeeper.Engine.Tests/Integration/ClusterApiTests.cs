// Cluster create / status / validation / removal and module install through the API, on real engines.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.Versioning;
using System.Text;
using System.Threading.Tasks;
using ServiceKeeper.Contracts;
using ServiceKeeper.Testing;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Integration
{
    [SupportedOSPlatform("linux")]
    public class ClusterApiTests(ITestOutputHelper output)
    {
        private static Task<ClusterInfo> CreateAsync(EngineLab env, string name = "c1") =>
            env.Local(env.Lab.Nodes[0]).CreateClusterAsync(new CreateClusterRequest
            {
                Name = name,
                Nodes = env.Lab.Nodes.Select(n => n.Address).ToList(),
            });

        [Fact]
        public async Task Create_OnThreeNodesWithTwoNetworks_EveryNodeHoldsTheSameClusterAndKey()
        {
            using var env = new EngineLab(output.WriteLine, 3, options: new NetLabOptions { SecondNetwork = true });

            var cluster = await CreateAsync(env);

            Assert.Equal(["n1", "n2", "n3"], cluster.Nodes.Select(n => n.Name));
            Assert.Equal(["LAN1", "LAN2"], cluster.Networks.Select(n => n.Name));
            Assert.Equal(env.Lab.Nodes.Select(n => n.Address2), cluster.Networks[1].Members.Select(m => m.Address));
            Assert.All(cluster.Nodes, n => Assert.False(string.IsNullOrEmpty(n.CertificateThumbprint)));
            var xml = env.Lab.Nodes.Select(n => File.ReadAllText(Path.Combine(n.Home, "cluster", "cluster.xml"))).ToList();
            var keys = env.Lab.Nodes.Select(n => Path.Combine(n.Home, "cluster", "cluster.key")).ToList();
            Assert.All(xml, x => Assert.Equal(xml[0], x));
            Assert.All(keys, k => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(k)));
            Assert.Single(keys.Select(File.ReadAllText).Distinct());
            foreach (var node in env.Lab.Nodes)
                Assert.Equal(cluster.Id, (await env.Local(node).GetClusterAsync()).Id);
        }

        [Fact]
        public async Task Create_WhenANodeIsUnreachable_FailsNamingIt_AndNoNodeJoins()
        {
            using var env = new EngineLab(output.WriteLine, 3);
            env.Lab.Cut(env.Lab.Nodes[2]);

            var ex = await Assert.ThrowsAsync<SKApiException>(() => CreateAsync(env));

            Assert.Equal(ErrorIds.NodeUnreachable, ex.ErrorId);
            Assert.Contains(env.Lab.Nodes[2].Address, ex.Message);
            foreach (var node in env.Lab.Nodes.Take(2))
                Assert.Equal(ErrorIds.ClusterNotFound, (await Assert.ThrowsAsync<SKApiException>(() => env.Local(node).GetClusterAsync())).ErrorId);
        }

        [Fact]
        public async Task Create_WhenANodeHasAnotherAdminKey_IsAuthenticationFailedNamingIt()
        {
            using var env = new EngineLab(output.WriteLine, 2, start: false);
            env.Start(env.Lab.Nodes[0]);
            env.Start(env.Lab.Nodes[1], adminKey: "another-key-another-key-1234");

            var ex = await Assert.ThrowsAsync<SKApiException>(() => CreateAsync(env));

            Assert.Equal(ErrorIds.AuthenticationFailed, ex.ErrorId);
            Assert.Contains("same admin key", ex.Message);
            Assert.Equal(env.Lab.Nodes[1].Address, ex.Target);
        }

        [Fact]
        public async Task Create_Twice_IsClusterExists()
        {
            using var env = new EngineLab(output.WriteLine, 2);
            await CreateAsync(env);

            var ex = await Assert.ThrowsAsync<SKApiException>(() => CreateAsync(env, "c2"));

            Assert.Equal(ErrorIds.ClusterExists, ex.ErrorId);
        }

        [Fact]
        public async Task Nodes_WithOneNodeCut_ReportItUnreachable_AndTheOthersWithVersionAndClock()
        {
            using var env = new EngineLab(output.WriteLine, 3);
            await CreateAsync(env);
            env.Lab.Cut(env.Lab.Nodes[2]);

            var nodes = await env.Local(env.Lab.Nodes[0]).GetNodesAsync();

            Assert.Equal(["n1", "n2", "n3"], nodes.Select(n => n.Name));
            Assert.All(nodes.Take(2), n =>
            {
                Assert.True(n.Reachable);
                Assert.False(string.IsNullOrEmpty(n.EngineVersion));
                Assert.InRange(n.ClockOffsetMs!.Value, -1000, 1000); // one machine, one clock
            });
            Assert.False(nodes[2].Reachable);
            Assert.False(string.IsNullOrEmpty(nodes[2].Error));
        }

        [Fact]
        public async Task Test_HealthyCluster_PassesEveryCheck_CutNodeFails()
        {
            using var env = new EngineLab(output.WriteLine, 3);
            await CreateAsync(env);
            var api = env.Local(env.Lab.Nodes[0]);

            var healthy = await api.TestClusterAsync();
            output.WriteLine(string.Join("\n", healthy.Select(c => $"{c.Result} {c.Check} {c.Node} {c.Network}: {c.Reason}")));
            // Every ordered pair of nodes on the one network, plus per-node checks.
            Assert.Equal(6, healthy.Count(c => c.Check == "NetworkReachability" && c.Result == CheckResult.Passed));
            foreach (var check in new[] { "ClusterConfiguration", "ClockSkew", "EngineVersion", "Ports", "Fuse", "Nftables" })
                Assert.Equal(3, healthy.Count(c => c.Check == check && c.Result == CheckResult.Passed));
            Assert.DoesNotContain(healthy, c => c.Result != CheckResult.Passed);

            env.Lab.Cut(env.Lab.Nodes[2]);
            var cut = await api.TestClusterAsync();
            Assert.Contains(cut, c => c.Check == "NodeReachable" && c.Node == "n3" && c.Result == CheckResult.Failed);
            Assert.Contains(cut, c => c.Check == "NetworkReachability" && c.Node == "n1 -> n3" && c.Result == CheckResult.Failed);
        }

        [Fact]
        public async Task Test_ForeignProgramOnTheHeartbeatPort_FailsThePortsCheck()
        {
            using var env = new EngineLab(output.WriteLine, 2);
            await CreateAsync(env);
            using var holder = env.Lab.StartInNode(env.Lab.Nodes[1], "python3", "-c",
                "import socket,time; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('0.0.0.0',9454)); time.sleep(60)");
            try
            {
                List<ClusterCheck> report = [];
                for (int i = 0; i < 50 && !report.Any(c => c.Check == "Ports" && c.Node == "n2" && c.Result == CheckResult.Failed); i++)
                {
                    await Task.Delay(100);
                    report = await env.Local(env.Lab.Nodes[0]).TestClusterAsync();
                }
                var ports = Assert.Single(report, c => c.Check == "Ports" && c.Node == "n2");
                Assert.Equal(CheckResult.Failed, ports.Result);
                Assert.Contains("udp/9454", ports.Reason);
            }
            finally
            {
                holder.Kill();
            }
        }

        [Fact]
        public async Task Remove_WithANodeCut_RemovesNothing_WithForceRemovesTheRest()
        {
            using var env = new EngineLab(output.WriteLine, 3);
            await CreateAsync(env);
            var api = env.Local(env.Lab.Nodes[0]);
            env.Lab.Cut(env.Lab.Nodes[2]);

            var refused = await Assert.ThrowsAsync<SKApiException>(() => api.RemoveClusterAsync());
            Assert.Equal(ErrorIds.NodeUnreachable, refused.ErrorId);
            Assert.Equal("n3", refused.Target);
            Assert.All(env.Lab.Nodes, n => Assert.True(File.Exists(Path.Combine(n.Home, "cluster", "cluster.xml"))));

            var removed = await api.RemoveClusterAsync(force: true);
            Assert.Equal(["n1", "n2"], removed.OrderBy(n => n));
            Assert.False(File.Exists(Path.Combine(env.Lab.Nodes[0].Home, "cluster", "cluster.xml")));
            Assert.False(File.Exists(Path.Combine(env.Lab.Nodes[1].Home, "cluster", "cluster.key")));
        }

        [Fact]
        public async Task Modules_InstallListRemove_ConfigAndScriptsReachTheModuleNodesOnly()
        {
            using var env = new EngineLab(output.WriteLine, 3);
            await CreateAsync(env);
            var api = env.Local(env.Lab.Nodes[0]);
            var request = new InstallModuleRequest
            {
                Name = "web",
                UserConfigXml = """
                    <service mode="mirror">
                      <nodes><node name="n2"/><node name="n3"/></nodes>
                      <heart><heartbeat name="LAN1"/></heart>
                    </service>
                    """,
                Scripts = new() { ["start_prim"] = Convert.ToBase64String(Encoding.UTF8.GetBytes("#!/bin/sh\necho started\n")) },
            };

            var info = await api.InstallModuleAsync(request);

            Assert.Equal("mirror", info.Kind);
            Assert.Equal(["n2", "n3"], info.Nodes);
            Assert.Empty(await api.GetModulesAsync()); // n1 is not a node of the module
            foreach (var node in env.Lab.Nodes.Skip(1))
            {
                var script = Path.Combine(node.Home, "modules", "web", "bin", "start_prim");
                Assert.Equal("web", Assert.Single(await env.Local(node).GetModulesAsync()).Name);
                Assert.True(File.GetUnixFileMode(script).HasFlag(UnixFileMode.UserExecute));
                Assert.Equal(request.UserConfigXml, File.ReadAllText(Path.Combine(node.Home, "modules", "web", "userconfig.xml")));
            }
            var again = await Assert.ThrowsAsync<SKApiException>(() => api.InstallModuleAsync(request));
            Assert.Equal(ErrorIds.ModuleExists, again.ErrorId);

            var removed = await env.Local(env.Lab.Nodes[1]).RemoveModuleAsync("web");
            Assert.Equal(["n2", "n3"], removed.OrderBy(n => n));
            Assert.False(Directory.Exists(Path.Combine(env.Lab.Nodes[2].Home, "modules", "web")));
        }

        [Fact]
        public async Task Modules_InvalidUserConfig_IsInvalidConfigurationWithLine_AndNothingIsInstalled()
        {
            using var env = new EngineLab(output.WriteLine, 2);
            await CreateAsync(env);
            var api = env.Local(env.Lab.Nodes[0]);

            var ex = await Assert.ThrowsAsync<SKApiException>(() => api.InstallModuleAsync(new InstallModuleRequest
            {
                Name = "bad",
                UserConfigXml = "<service mode=\"mirror\">\n  <heart pulse=\"fast\"/>\n</service>",
            }));

            Assert.Equal(ErrorIds.InvalidConfiguration, ex.ErrorId);
            Assert.Contains("bad/userconfig.xml:2:", ex.Message);
            Assert.Contains("fast", ex.Message);
            Assert.Empty(await api.GetModulesAsync());
        }
    }
}
