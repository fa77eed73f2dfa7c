// Throughput through the mount against the raw directory with dd (1 MiB and 4 KiB blocks), printed to
// the test output; the assertions are floors far below what this machine does, to catch a regression to
// per-write allocation or copying, not to benchmark.
using System;
using System.Globalization;
using System.IO;
using System.Runtime.Versioning;
using System.Text.RegularExpressions;
using ServiceKeeper.Engine.Replication;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Replication
{
    [SupportedOSPlatform("linux")]
    public sealed class FusePerformanceTests
    {
        private readonly ITestOutputHelper output;

        public FusePerformanceTests(ITestOutputHelper output) => this.output = output;

        /// <summary>dd from /dev/zero into a new file; the best of three runs in MB/s (the machine is shared).</summary>
        private static double Dd(string file, string bs, int count)
        {
            double best = 0;
            for (int run = 0; run < 3; run++)
            {
                var (exit, output, err) = FuseTestTree.Sh($"dd if=/dev/zero of='{file}' bs={bs} count={count} 2>&1; rm -f '{file}'");
                Assert.True(exit == 0, output + err);
                var m = Regex.Match(output, @"(\d+) bytes .* copied, ([\d.,e-]+) s");
                Assert.True(m.Success, output);
                best = Math.Max(best, double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) /
                    double.Parse(m.Groups[2].Value.Replace(',', '.'), CultureInfo.InvariantCulture) / 1e6);
            }
            return best;
        }

        [FuseFact]
        public void SequentialWrites_ThroughTheMount_KeepUp()
        {
            using var t = new FuseTestTree();
            var raw = Path.Combine(t.Base, "raw.bin");
            double raw1m = Dd(raw, "1M", 256), fuse1m = Dd(t["f.bin"], "1M", 256);
            double raw4k = Dd(raw, "4k", 16384), fuse4k = Dd(t["f.bin"], "4k", 16384);
            var stats = t.Mount.Statistics;
            output.WriteLine($"1 MiB blocks: raw {raw1m:0} MB/s, mount {fuse1m:0} MB/s");
            output.WriteLine($"4 KiB blocks: raw {raw4k:0} MB/s, mount {fuse4k:0} MB/s");
            output.WriteLine($"operations {stats.Operations}, mutations {stats.Mutations}, written {stats.BytesWritten}, errors {stats.Errors}, failures {stats.Failures}");
            Assert.True(fuse1m > 100, $"1 MiB writes through the mount at {fuse1m:0} MB/s");
            Assert.True(fuse4k > 10, $"4 KiB writes through the mount at {fuse4k:0} MB/s");
            Assert.Equal(0, stats.Failures);
        }
    }
}
