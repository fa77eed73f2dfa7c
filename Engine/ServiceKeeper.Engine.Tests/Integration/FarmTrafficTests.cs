// The farm module with real traffic: three engines running nginx in namespaces, a client with 30
// source addresses. Spread by power, on_addr affinity, a cut node's return that resets nothing, a
// drain that lets open downloads finish, and the engine repairing a flushed nft table.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Farm;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Integration
{
    [Collection(FarmEnginesCollection.Name)]
    public class FarmTrafficTests(ITestOutputHelper output)
    {
        private const string Module = FarmNginxLab.Module;

        [Fact]
        public async Task Power211_SpreadsConnectionsAbout50_25_25_AndAFlushedTableIsRepaired()
        {
            var power = new Dictionary<string, int> { ["n1"] = 2, ["n2"] = 1, ["n3"] = 1 };
            using var lab = new FarmNginxLab(output.WriteLine, "on_port", power);

            // The map the nodes agreed on: n1 about half of the buckets.
            var map = BucketMap.Assign(power);
            var expected = BucketMap.Counts(map).ToDictionary(kv => kv.Key, kv => kv.Value / 256.0);
            var load = await lab.Api.GetFarmLoadAsync(Module);
            output.WriteLine("load: " + string.Join(", ", load.Select(l => $"{l.Node} {l.Buckets} buckets {l.SharePercent}%")));
            foreach (var l in load) Assert.Equal(BucketMap.Counts(map)[l.Node], l.Buckets);
            Assert.InRange(expected["n1"], 0.40, 0.60);
            Assert.InRange(expected["n2"], 0.17, 0.33);
            Assert.InRange(expected["n3"], 0.17, 0.33);

            // 600 connections from 30 addresses and as many source ports: each answered by one node, and
            // the shares follow the buckets (binomial sd about 2% at 600; 7% is far outside noise).
            var answers = lab.Ask(20);
            output.WriteLine("600 connections: " + FarmNginxLab.Count(answers.Select(a => a.Answer)));
            Assert.Equal(600, answers.Count);
            Assert.DoesNotContain(answers, a => a.Answer == null);
            foreach (var node in new[] { "n1", "n2", "n3" })
            {
                var share = answers.Count(a => a.Answer == node) / 600.0;
                Assert.InRange(share, expected[node] - 0.07, expected[node] + 0.07);
            }

            // Someone flushes n1's table and deletes n2's: the engines notice, report nft.www down with the
            // reason, reinstall the whole filter atomically, and the resource goes up again.
            var n1 = lab.Node("n1");
            var n2 = lab.Node("n2");
            var owned1 = lab.Env.Lab.ExecInNode(n1, "nft", "list", "set", "inet", "sk_" + Module, "owned").StdOut;
            lab.Env.Lab.ExecInNode(n1, "nft", "flush", "table", "inet", "sk_" + Module);
            lab.Env.Lab.ExecInNode(n2, "nft", "delete", "table", "inet", "sk_" + Module);
            foreach (var node in new[] { n1, n2 })
            {
                lab.WaitFor(() => lab.ModuleLog(node).Contains($"nft.{Module} down:"), node.Name + " reporting nft.www down", 30);
                lab.WaitFor(() => Resource(lab, node) is { Value: "up", Reason: "the filter is intact" }, node.Name + " nft.www up again", 30);
            }
            output.WriteLine(string.Join("\n", lab.ModuleLog(n1).Split('\n').Where(l => l.Contains("nft.", StringComparison.Ordinal))));
            Assert.Contains("chain", lab.ModuleLog(n1).Split('\n').First(l => l.Contains($"nft.{Module} down:", StringComparison.Ordinal)));
            Assert.Contains("table inet sk_www is missing", lab.ModuleLog(n2));
            Assert.Equal(owned1, lab.Env.Lab.ExecInNode(n1, "nft", "list", "set", "inet", "sk_" + Module, "owned").StdOut);
            var after = lab.Ask(2);
            output.WriteLine("after the repair: " + FarmNginxLab.Count(after.Select(a => a.Answer)));
            Assert.DoesNotContain(after, a => a.Answer == null);
            Assert.Equal(["n1", "n2", "n3"], after.Select(a => a.Answer).Distinct().OrderBy(a => a));
        }

        [Fact]
        public void OnAddr_KeepsEveryClientAddressOnOneNode()
        {
            using var lab = new FarmNginxLab(output.WriteLine, "on_addr");

            var answers = lab.Ask(8);

            Assert.Equal(240, answers.Count);
            Assert.DoesNotContain(answers, a => a.Answer == null);
            var bySource = answers.GroupBy(a => a.Source).ToDictionary(g => g.Key, g => g.Select(a => a.Answer).Distinct().ToList());
            output.WriteLine(string.Join(", ", bySource.Select(kv => $"{kv.Key[(kv.Key.LastIndexOf('.') + 1)..]}->{string.Join("/", kv.Value)}")));
            Assert.All(bySource.Values, nodes => Assert.Single(nodes));
            Assert.True(bySource.Values.Select(v => v[0]).Distinct().Count() >= 2, "30 addresses all landed on one node");
        }

        [Fact]
        public void CutNodeReturns_GetsItsShareBack_AndDownloadsOpenOnTheOthersAreNotReset()
        {
            using var lab = new FarmNginxLab(output.WriteLine, "on_port", rate: "200k");
            var n3 = lab.Node("n3");

            // 5 MB at 200 kB/s: each download lasts about 25 s, across the cut and the return.
            var downloads = lab.StartDownloads(15, "rejoin");
            lab.WaitForDownloads(downloads, d => d.Node != null, "every download started", 60);
            var servedBy = downloads.ToDictionary(d => d, d => d.Node!);
            output.WriteLine("downloads on: " + FarmNginxLab.Count(servedBy.Values));

            lab.Env.Lab.Cut(n3);
            lab.WaitFor(() => lab.Ask(1) is var a && a.All(x => x.Answer is "n1" or "n2"), "n1 and n2 answering every new connection", 60);
            lab.Env.Lab.Heal(n3);
            lab.WaitUp(n3);
            lab.WaitFor(() => lab.Ask(1) is var a && a.All(x => x.Answer != null) && a.Any(x => x.Answer == "n3"), "n3 answering its share again", 60);
            Assert.Contains(downloads, d => !d.Finished); // the rejoin happened while downloads were open

            lab.WaitForDownloads(downloads, d => d.Finished, "every download finished", 120);
            foreach (var d in downloads)
            {
                var intact = d.Intact(out var detail);
                output.WriteLine($"{servedBy[d]}: {detail} {(intact ? "intact" : "BROKEN")}");
                if (servedBy[d] != "n3") Assert.True(intact, $"a download served by {servedBy[d]} broke across n3's return: {detail}");
            }
            Assert.Contains(servedBy.Values, n => n != "n3");
        }

        [Fact]
        public async Task Drain_NewConnectionsGoElsewhereAtOnce_OpenDownloadsFinish_ThenTheNodeStops_LeavingNothing()
        {
            using var lab = new FarmNginxLab(output.WriteLine, "on_port", rate: "500k");
            var n2 = lab.Node("n2");

            // 5 MB at 500 kB/s: about 10 s each.
            var downloads = lab.StartDownloads(20, "drain");
            lab.WaitForDownloads(downloads, d => d.Node != null, "every download started", 60);
            var onN2 = downloads.Where(d => d.Node == "n2").ToList();
            output.WriteLine("downloads on: " + FarmNginxLab.Count(downloads.Select(d => d.Node)));
            Assert.NotEmpty(onN2);

            // Stop-SKModule -Name www -Node n2 -Drain
            await lab.Api.SendCommandAsync(Module, new ModuleCommandRequest { Command = ModuleCommands.Stop, Node = "n2", Drain = true });

            var fresh = lab.Ask(1);
            output.WriteLine("new connections during the drain: " + FarmNginxLab.Count(fresh.Select(a => a.Answer)));
            Assert.DoesNotContain(fresh, a => a.Answer == null);
            Assert.DoesNotContain(fresh, a => a.Answer == "n2");
            if (onN2.Any(d => !d.Finished))
                Assert.Equal("WAIT", lab.StateOf(n2)!.State); // still draining: its downloads are open

            lab.WaitForDownloads(downloads, d => d.Finished, "every download finished", 120);
            foreach (var d in onN2)
                Assert.True(d.Intact(out var detail), "a download drained from n2 did not complete: " + detail);
            lab.WaitFor(() => lab.StateOf(n2) is { State: "STOP" }, "n2 STOP after the drain", 60);
            Assert.Contains("drained", lab.ModuleLog(n2));
            lab.AssertNothingLeft(n2);

            // The others serve everything; then stopping the module leaves nothing anywhere.
            var rest = lab.Ask(1);
            Assert.True(rest.All(a => a.Answer is "n1" or "n3"), FarmNginxLab.Count(rest.Select(a => a.Answer)));
            await lab.Api.SendCommandAsync(Module, new ModuleCommandRequest { Command = ModuleCommands.Stop });
            foreach (var node in lab.Env.Nodes)
            {
                lab.WaitFor(() => lab.StateOf(node) is { State: "STOP" }, node.Name + " STOP", 60);
                lab.AssertNothingLeft(node);
            }
        }

        private static ModuleResource? Resource(FarmNginxLab lab, ServiceKeeper.Testing.LabNode node) =>
            lab.Env.Local(node).GetLocalResourcesAsync(Module).GetAwaiter().GetResult().SingleOrDefault(r => r.Resource == "nft." + Module);
    }
}
