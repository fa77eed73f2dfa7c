// The farm module on real engines: three nginx nodes sharing one VIP, balanced by each node's kernel.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using ServiceKeeper.Contracts;
using ServiceKeeper.Testing;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Integration
{
    [Collection(FarmEnginesCollection.Name)]
    public class FarmModuleTests(ITestOutputHelper output)
    {
        private const string Module = "www";

        // nginx answering with the node's name.
        private static readonly NginxFarmApp Nginx = new() { WorkerConnections = 256 };

        [Fact]
        public async Task ThreeNginxNodes_ShareTheVip_ACutNodeAndAFailedNginxLeaveTheMap_StopLeavesNothing()
        {
            using var env = new EngineLab(output.WriteLine, 3);
            var vip = $"198.18.{env.Lab.Options.Subnet}.60";
            var api = env.Local(env.Nodes[0]);
            await api.CreateClusterAsync(new CreateClusterRequest { Name = "c1", Nodes = env.Nodes.Select(n => n.Address).ToList() });
            await api.AddFarmModuleAsync(new AddFarmModuleRequest
            {
                Name = Module, Nodes = ["n1", "n2", "n3"], VirtualIP = vip + "/24", Ports = [80], Rule = "on_port",
                UserConfigXml = """<service mode="farm"><errd polltimer="500ms"><proc name="nginx" atleast="1" action="restart"/></errd></service>""",
                Scripts = Nginx.Scripts(),
            });
            await api.SendCommandAsync(Module, new ModuleCommandRequest { Command = ModuleCommands.Start });
            foreach (var node in env.Nodes) WaitUp(env, node);

            // Every connection answered by exactly one node, and all three serve.
            var answers = Ask(env, vip, 90);
            output.WriteLine("all up: " + Describe(answers));
            Assert.DoesNotContain(null, answers);
            Assert.Equal(["n1", "n2", "n3"], answers.Distinct().OrderBy(a => a));
            var load = await api.GetFarmLoadAsync(Module);
            Assert.Equal(256, load.Sum(l => l.Buckets));

            // n3 cut off: its share moves to the others; new connections succeed.
            env.Lab.Cut(env.Nodes[2]);
            MirrorLab.WaitFor(() => Ask(env, vip, 30) is var a && !a.Contains(null) && !a.Contains("n3"), "n1 and n2 serving every connection", 30);
            // n3 back: it takes its share again.
            env.Lab.Heal(env.Nodes[2]);
            MirrorLab.WaitFor(() => Ask(env, vip, 60) is var a && !a.Contains(null) && a.Contains("n3"), "n3 serving again", 30);

            // nginx dies on n2 (its whole process group at once, so the master cannot respawn a worker):
            // n2 leaves the map first, restarts nginx, and comes back.
            var pid = System.IO.File.ReadAllText(NginxFarmApp.PidFile(System.IO.Path.Combine(env.Nodes[1].Home, "modules", Module))).Trim();
            env.Lab.ExecInNode(env.Nodes[1], "kill", "-9", "--", "-" + pid);
            MirrorLab.WaitFor(() => ModuleLog(env, 1).Contains("errd.nginx is down: out of the map"), "n2 leaving the map", 30);
            MirrorLab.WaitFor(() => Ask(env, vip, 60) is var a && !a.Contains(null) && a.Contains("n2"), "n2 serving again after its restart", 60);

            // Stop: no table, no address, no multicast membership left anywhere.
            await api.SendCommandAsync(Module, new ModuleCommandRequest { Command = ModuleCommands.Stop });
            foreach (var node in env.Nodes)
            {
                MirrorLab.WaitFor(() => env.Local(node).GetLocalStateAsync().GetAwaiter().GetResult().Single().State == "STOP", node.Name + " STOP", 30);
                Assert.DoesNotContain("sk_" + Module, env.Lab.ExecInNode(node, "nft", "list", "tables").StdOut);
                Assert.DoesNotContain(vip + "/", env.Lab.ExecInNode(node, "ip", "-o", "addr", "show").StdOut);
                Assert.DoesNotContain("03:00:5e", env.Lab.ExecInNode(node, "ip", "maddr", "show", "dev", "eth0").StdOut);
            }
        }

        private static string ModuleLog(EngineLab env, int node) =>
            string.Join("\n", env.Local(env.Nodes[node]).GetLocalLogAsync(Module, 500).GetAwaiter().GetResult().Select(l => l.Text));

        private static void WaitUp(EngineLab env, LabNode node) =>
            MirrorLab.WaitFor(() => env.Local(node).GetLocalStateAsync().GetAwaiter().GetResult().SingleOrDefault() is { State: "UP", Ready: true },
                node.Name + " UP", 60);

        /// <summary>Opens <paramref name="count"/> new connections from the client (new source port each): who answered.</summary>
        private static List<string?> Ask(EngineLab env, string vip, int count)
        {
            var script = $"for i in $(seq 1 {count}); do curl -s -m 2 http://{vip}/ || echo FAIL; done";
            var text = env.Lab.Exec(TimeSpan.FromSeconds(count * 3), env.Lab.Client!.Namespace, "sh", "-c", script).StdOut;
            return text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim() == "FAIL" ? null : l.Trim()).ToList<string?>();
        }

        private static string Describe(List<string?> answers) =>
            string.Join(", ", answers.GroupBy(a => a ?? "failed").OrderBy(g => g.Key).Select(g => $"{g.Key} {g.Count()}"));
    }
}
