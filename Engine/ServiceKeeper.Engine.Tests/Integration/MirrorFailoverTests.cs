// The mirror module on real engines in namespaces: failover, failback, swap, split brain, restarts.
using System;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using ServiceKeeper.Contracts;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Integration
{
    public class MirrorFailoverTests(ITestOutputHelper output)
    {
        [Fact]
        public async Task PrimaryCut_SecondaryTakesOver_ReturnsAsSecond_SwapBack()
        {
            using var lab = new MirrorLab(output);
            lab.Start();
            lab.WaitForState(lab.N1, "PRIM");
            lab.WaitForState(lab.N2, "SECOND");
            lab.WaitForAnswer("n1");
            Assert.False(lab.HasVip(lab.N2));

            lab.Env.Lab.Cut(lab.N1);
            lab.WaitForState(lab.N2, "ALONE");
            lab.WaitForAnswer("n2");
            // The cut node reaches no witness: it stops serving instead of competing for the VIP.
            MirrorLab.WaitFor(() => lab.StateOf(lab.N1)?.Reason?.Contains("isolated") == true, "n1 WAIT isolated", 60, lab.Describe);
            Assert.Equal("WAIT", lab.StateOf(lab.N1)!.State);
            Assert.False(lab.HasVip(lab.N1));

            lab.Env.Lab.Heal(lab.N1);
            lab.WaitForState(lab.N1, "SECOND");
            lab.WaitForState(lab.N2, "PRIM");
            Assert.Equal(lab.StateOf(lab.N2)!.DataGeneration, lab.StateOf(lab.N1)!.DataGeneration);

            var states = await lab.Api.SendCommandAsync(MirrorLab.Module, new ModuleCommandRequest { Command = ModuleCommands.Swap });
            Assert.Equal("n2", Assert.Single(states).Node);
            lab.WaitForState(lab.N1, "PRIM");
            lab.WaitForState(lab.N2, "SECOND");
            lab.WaitForAnswer("n1");
            Assert.False(lab.HasVip(lab.N2));
        }

        [Fact]
        public async Task PrimaryEngineKilled_SecondaryTakesOver_RestartedEngineReleasesVipAndApplication_BecomesSecond()
        {
            using var lab = new MirrorLab(output);
            lab.Start();
            lab.WaitForState(lab.N1, "PRIM");
            lab.WaitForState(lab.N2, "SECOND");
            lab.WaitForAnswer("n1");

            // kill -9 of the engine alone: the application and the VIP stay behind on n1.
            lab.N1.EngineProcess!.Kill(entireProcessTree: false);
            lab.N1.EngineProcess.WaitForExit();
            lab.WaitForState(lab.N2, "ALONE");

            lab.Env.Start(lab.N1);
            lab.WaitForState(lab.N1, "SECOND");
            Assert.False(lab.HasVip(lab.N1));
            lab.WaitForAnswer("n2");
            Assert.Contains("releasing what the previous engine may have left",
                string.Join("\n", (await lab.ApiOf(0).GetLogAsync(MirrorLab.Module, "n1", 500)).Select(l => l.Text)));
        }

        [Fact]
        public void PartitionWithoutWitness_BothServe_OnHealDivergenceIsReported_OneStops()
        {
            using var lab = new MirrorLab(output, witness: false);
            lab.Start();
            lab.WaitForState(lab.N1, "PRIM");
            lab.WaitForState(lab.N2, "SECOND");

            lab.Env.Lab.Cut(lab.N2);
            lab.WaitForState(lab.N1, "ALONE");
            lab.WaitForState(lab.N2, "ALONE");
            var g1 = lab.StateOf(lab.N1)!.DataGeneration;
            var g2 = lab.StateOf(lab.N2)!.DataGeneration;
            Assert.NotEqual(g1, g2);

            lab.Env.Lab.Heal(lab.N2);
            MirrorLab.WaitFor(() => lab.StateOf(lab.N2)?.Reason?.Contains("split brain") == true, "n2 WAIT split brain", 60, lab.Describe);
            Assert.Equal("WAIT", lab.StateOf(lab.N2)!.State);
            Assert.Equal("ALONE", lab.StateOf(lab.N1)!.State);
            // Nothing merged: each node keeps its own generation.
            Assert.Equal(g1, lab.StateOf(lab.N1)!.DataGeneration);
            Assert.Equal(g2, lab.StateOf(lab.N2)!.DataGeneration);
            lab.WaitForAnswer("n1");
            Assert.False(lab.HasVip(lab.N2));
        }

        [Fact]
        public async Task BothStopped_StartedInEitherOrder_TheUpToDateNodeBecomesPrimary()
        {
            using var lab = new MirrorLab(output);
            lab.Start();
            lab.WaitForState(lab.N1, "PRIM");
            lab.WaitForState(lab.N2, "SECOND");

            await lab.Api.SendCommandAsync(MirrorLab.Module, new ModuleCommandRequest { Command = ModuleCommands.Stop });
            lab.WaitForState(lab.N1, "STOP");
            lab.WaitForState(lab.N2, "STOP");

            // The secondary stopped first, so n1 alone holds the newest data: n2 alone must wait.
            await lab.Api.SendCommandAsync(MirrorLab.Module, new ModuleCommandRequest { Command = ModuleCommands.Start, Node = "n2" });
            MirrorLab.WaitFor(() => lab.StateOf(lab.N2)?.Reason?.Contains("not up to date") == true, "n2 WAIT data not up to date", 60, lab.Describe);
            Assert.Equal("WAIT", lab.StateOf(lab.N2)!.State);
            var refused = await Assert.ThrowsAsync<SKApiException>(() => lab.Api.SendCommandAsync(MirrorLab.Module,
                new ModuleCommandRequest { Command = ModuleCommands.Prim, Node = "n2" }));
            Assert.Equal(ErrorIds.DataNotUpToDate, refused.ErrorId);

            await lab.Api.SendCommandAsync(MirrorLab.Module, new ModuleCommandRequest { Command = ModuleCommands.Start, Node = "n1" });
            lab.WaitForState(lab.N1, "PRIM");
            lab.WaitForState(lab.N2, "SECOND");
            lab.WaitForAnswer("n1");
        }

        [Fact]
        public void ApplicationDies_IsRestartedLocally_ThenFailsOverAfterMaxloop()
        {
            using var lab = new MirrorLab(output, extraConfig: """
                <errd polltimer="500ms"><proc name="python3.*" regex="on" argregex="http.server" atleast="1" action="restart"/></errd>
                """);
            // maxloop default 3: three local restarts, the fourth failure fails over.
            lab.Start();
            lab.WaitForState(lab.N1, "PRIM");
            lab.WaitForState(lab.N2, "SECOND");
            lab.WaitForAnswer("n1");

            for (int i = 1; i <= 3; i++)
            {
                KillApplication(lab, lab.N1);
                MirrorLab.WaitFor(() => RestartCount(lab) >= i, $"restart {i}", 30, lab.Describe);
                lab.WaitForAnswer("n1");
                Assert.Equal("PRIM", lab.StateOf(lab.N1)!.State);
            }
            KillApplication(lab, lab.N1);
            lab.WaitForState(lab.N2, "PRIM", seconds: 60);
            lab.WaitForState(lab.N1, "SECOND");
            lab.WaitForAnswer("n2");
        }

        private static int RestartCount(MirrorLab lab) =>
            lab.ApiOf(0).GetLogAsync(MirrorLab.Module, "n1", 1000).GetAwaiter().GetResult().Count(l => l.Text.Contains("action restart"));

        private static void KillApplication(MirrorLab lab, ServiceKeeper.Testing.LabNode node)
        {
            var pidFile = Path.Combine(node.Home, "modules", MirrorLab.Module, "http.pid");
            MirrorLab.WaitFor(() => File.Exists(pidFile), "the application's pid file", 30, lab.Describe);
            var pid = int.Parse(File.ReadAllText(pidFile).Trim());
            try { System.Diagnostics.Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { }
        }

        [Fact]
        public async Task OneOfTwoHeartbeatNetworksLost_NoFailover()
        {
            using var lab = new MirrorLab(output, secondNetwork: true);
            lab.Start();
            lab.WaitForState(lab.N1, "PRIM");
            lab.WaitForState(lab.N2, "SECOND");
            var generation = lab.StateOf(lab.N1)!.DataGeneration;

            lab.Env.Lab.Cut(lab.N1, 2);
            System.Threading.Thread.Sleep(5000); // well past the detection time

            Assert.Equal("PRIM", lab.StateOf(lab.N1)!.State);
            Assert.Equal("SECOND", lab.StateOf(lab.N2)!.State);
            Assert.Equal(generation, lab.StateOf(lab.N2)!.DataGeneration);
            var log = string.Join("\n", (await lab.ApiOf(1).GetLogAsync(MirrorLab.Module, "n2", 200)).Select(l => l.Text));
            Assert.Contains("on LAN2: that network is down", log);
        }
    }
}
