// The promise of a mirror module with replication: PostgreSQL on a replicated directory, a client
// committing through the VIP, the primary killed (everything on it, kill -9) or cut off mid-load, and
// every transaction the client saw committed is on the new primary. Then the old primary comes back,
// resynchronises, and both copies end identical.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Tests.Testing;
using ServiceKeeper.Testing;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Integration
{
    public class PostgresFailoverTests(ITestOutputHelper output)
    {
        private enum Fault { KillEverything, CutNetwork }

        [NetnsFact]
        public void CommittedTransactions_SurviveKilledPrimaries_AndTheCopiesEndIdentical() =>
            Run(Fault.KillEverything, Fault.KillEverything);

        [NetnsFact]
        public void CommittedTransactions_SurviveCutPrimaries_AndTheCopiesEndIdentical() =>
            Run(Fault.CutNetwork, Fault.CutNetwork, Fault.CutNetwork);

        private void Run(params Fault[] faults)
        {
            using var lab = new PostgresLab(output, rfsAttributes: "sendtimeout=\"10s\"");
            lab.Start();
            lab.WaitForState(lab.N1, "PRIM", seconds: 120);
            lab.WaitForState(lab.N2, "SECOND", seconds: 120);
            lab.WaitForSql("SELECT 1");
            Assert.NotNull(lab.Sql("CREATE TABLE acked (id int PRIMARY KEY)"));
            Assert.NotNull(lab.Sql("SELECT 1", 60));
            // Background load besides the recorded transactions: pgbench's TPC-B-like mix, restarted after each failover.
            Assert.True(lab.Env.Lab.Exec(TimeSpan.FromSeconds(120), lab.Env.Lab.Client!.Namespace, "pgbench", "-i", "-s", "2", "-q",
                "-h", lab.Vip, "-U", "postgres", "postgres").Succeeded, "pgbench -i failed");
            using var pgbench = lab.Env.Lab.StartInClient("sh", "-c",
                $"while :; do pgbench -n -c 3 -T 60 -h {lab.Vip} -U postgres postgres >/dev/null 2>&1; sleep 0.5; done");

            var primary = lab.N1;
            using (var recorder = new CommitRecorder(lab, first: 1))
            {
                foreach (var fault in faults)
                {
                    var secondary = lab.Other(primary);
                    recorder.WaitForMore(60, 120, lab.Describe);
                    var watch = Stopwatch.StartNew();
                    output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {fault} on {primary.Name} ({recorder.Acknowledged.Count} acknowledged)");
                    if (fault == Fault.KillEverything) lab.KillNode(primary);
                    else lab.Env.Lab.Cut(primary);

                    lab.WaitForState(secondary, "ALONE", seconds: 120);
                    recorder.WaitForMore(40, 180, lab.Describe);
                    output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {secondary.Name} serves again after {watch.Elapsed.TotalSeconds:0.0} s");
                    var acknowledged = recorder.Acknowledged;
                    var stored = (lab.Sql("SELECT id FROM acked", 60) ?? throw new InvalidOperationException("the new primary does not answer"))
                        .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToHashSet();
                    var lost = acknowledged.Where(id => !stored.Contains(id)).OrderBy(id => id).ToList();
                    Assert.True(lost.Count == 0,
                        $"{fault}: {lost.Count} of {acknowledged.Count} acknowledged transactions missing on {secondary.Name}: {string.Join(", ", lost.Take(20))}");

                    // The old primary returns and becomes the up-to-date secondary again.
                    if (fault == Fault.KillEverything) lab.Env.Start(primary);
                    else lab.Env.Lab.Heal(primary);
                    lab.WaitForState(primary, "SECOND", seconds: 180);
                    lab.WaitForState(secondary, "PRIM", seconds: 120);
                    primary = secondary;
                }
                output.WriteLine($"{recorder.Acknowledged.Count} transactions acknowledged, {recorder.Failures} failed batches during failovers");
            }
            pgbench.Kill(entireProcessTree: true);

            // Quiet now: the copies must be identical, file by file.
            var differences = lab.Api.TestReplicationAsync(PostgresLab.Module).GetAwaiter().GetResult();
            Assert.True(differences.Count == 0, "copies differ: " + string.Join("; ", differences.Take(10).Select(d => $"{d.Path} {d.Kind} {d.Primary} / {d.Secondary}")));
        }
    }
}
