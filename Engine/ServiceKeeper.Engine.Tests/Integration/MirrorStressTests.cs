// No false failover under packet loss and CPU saturation; a swap while clients are connected.
using System;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Contracts;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Integration
{
    public class MirrorStressTests(ITestOutputHelper output)
    {
        [Fact]
        public void HeartbeatLoss30PercentAndCpuSaturatedForAMinute_NoFailover()
        {
            using var lab = new MirrorLab(output);
            lab.Start();
            lab.WaitForState(lab.N1, "PRIM");
            lab.WaitForState(lab.N2, "SECOND");
            var generation = lab.StateOf(lab.N1)!.DataGeneration;

            // 30% of every packet dropped on the only network, in both directions, and both cores busy.
            lab.Env.Lab.DropPackets(lab.N1, 30);
            lab.Env.Lab.DropPackets(lab.N2, 30);
            using var stress = Process.Start(new ProcessStartInfo("stress-ng", ["--cpu", "0", "--cpu-load", "100", "--timeout", "60s", "--quiet"])
            {
                RedirectStandardOutput = true, RedirectStandardError = true,
            })!;
            try
            {
                var watch = Stopwatch.StartNew();
                while (watch.Elapsed < TimeSpan.FromSeconds(60))
                {
                    Thread.Sleep(1000);
                    Assert.True(lab.StateOf(lab.N1) is { State: "PRIM" } && lab.StateOf(lab.N2) is { State: "SECOND" },
                        $"failover after {watch.Elapsed.TotalSeconds:0} s: {lab.Describe()}");
                }
            }
            finally
            {
                if (!stress.HasExited) stress.Kill(entireProcessTree: true);
                lab.Env.Lab.ClearDrop(lab.N1);
                lab.Env.Lab.ClearDrop(lab.N2);
            }
            Assert.Equal(generation, lab.StateOf(lab.N1)!.DataGeneration);
            Assert.Equal(generation, lab.StateOf(lab.N2)!.DataGeneration);
        }

        [Fact]
        public async Task Swap_WhileClientsAreConnected_ServiceMovesAndEveryClientIsAnsweredAgain()
        {
            using var lab = new MirrorLab(output);
            lab.Start();
            lab.WaitForState(lab.N1, "PRIM");
            lab.WaitForState(lab.N2, "SECOND");
            lab.WaitForAnswer("n1");

            using var stop = new CancellationTokenSource();
            int answered = 0, failed = 0;
            string? lastAnswer = null;
            var clients = Enumerable.Range(0, 3).Select(_ => Task.Run(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    var answer = lab.Get();
                    if (answer == null) Interlocked.Increment(ref failed);
                    else { Interlocked.Increment(ref answered); lastAnswer = answer; }
                }
            })).ToArray();

            await lab.Api.SendCommandAsync(MirrorLab.Module, new ModuleCommandRequest { Command = ModuleCommands.Swap });
            lab.WaitForState(lab.N2, "PRIM");
            lab.WaitForState(lab.N1, "SECOND");
            MirrorLab.WaitFor(() => lastAnswer == "n2", "clients answered by n2", 30, lab.Describe);
            var answeredAfterSwap = answered;
            // More answers after the swap (a slow machine may take a while: no fixed delay).
            MirrorLab.WaitFor(() => Volatile.Read(ref answered) > answeredAfterSwap, "more answers after the swap", 30, lab.Describe);
            stop.Cancel();
            await Task.WhenAll(clients);

            output.WriteLine($"{answered} answers, {failed} failed requests during the swap");
            Assert.True(answered > answeredAfterSwap, "clients keep being answered after the swap");
            Assert.Equal("n2", lab.Get());
        }
    }
}
