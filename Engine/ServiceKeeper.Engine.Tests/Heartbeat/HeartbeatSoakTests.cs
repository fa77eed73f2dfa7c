// Soak: two real services with the default settings on one ring for SK_HB_SOAK_SECONDS. Run it under
// the conditions the defaults promise to survive, inside a private network namespace so nothing else
// is touched, e.g.:
//   stress-ng --cpu 0 --timeout 15m &
//   unshare --net sh -c 'ip link set lo up &&
//     nft add table inet hb && nft add chain inet hb in "{ type filter hook input priority 0; }" &&
//     nft add rule inet hb in udp dport 1024-65535 numgen random mod 100 "<" 30 drop &&
//     SK_HB_SOAK_SECONDS=600 dotnet test Engine/ServiceKeeper.Engine.Tests --filter FullyQualifiedName~HeartbeatSoakTests'
using System;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using ServiceKeeper.Engine.Heartbeat;
using Xunit;
using Xunit.Abstractions;
using static ServiceKeeper.Engine.Tests.Heartbeat.HeartbeatTestKit;

namespace ServiceKeeper.Engine.Tests.Heartbeat
{
    public sealed class SoakFactAttribute : FactAttribute
    {
        public SoakFactAttribute()
        {
            if (!int.TryParse(Environment.GetEnvironmentVariable("SK_HB_SOAK_SECONDS"), out var seconds) || seconds <= 0)
                Skip = "soak test: set SK_HB_SOAK_SECONDS (run it under stress-ng and nft packet loss, see the file)";
        }
    }

    public class HeartbeatSoakTests(ITestOutputHelper output)
    {
        [SoakFact]
        public void DefaultSettings_OneRing_NoFalsePeerLost()
        {
            var duration = TimeSpan.FromSeconds(int.Parse(Environment.GetEnvironmentVariable("SK_HB_SOAK_SECONDS")!));
            using var a = new HeartbeatService(HeartbeatPacketTests.Cluster, HeartbeatPacketTests.Key, "a", 1, 0, [Ring0], new ListLogger(), TimeProvider.System);
            using var b = new HeartbeatService(HeartbeatPacketTests.Cluster, HeartbeatPacketTests.Key, "b", 1, 0, [Ring1], new ListLogger(), TimeProvider.System);
            var onA = new EventRecorder();
            var onB = new EventRecorder();
            // Ring 0 of each side: a listens on 127.0.0.1, b on 127.0.0.2.
            var peerA = new HeartbeatPeer("a", new System.Collections.Generic.Dictionary<int, System.Net.IPEndPoint> { [0] = a.LocalEndPoints[0] });
            var peerB = new HeartbeatPeer("b", new System.Collections.Generic.Dictionary<int, System.Net.IPEndPoint> { [0] = b.LocalEndPoints[0] });
            using var channelA = a.OpenChannel("sql", [peerB], HeartbeatDefaults.MirrorPulse, HeartbeatDefaults.MirrorTimeout, onA.Add);
            using var channelB = b.OpenChannel("sql", [peerA], HeartbeatDefaults.MirrorPulse, HeartbeatDefaults.MirrorTimeout, onB.Add);
            onA.WaitFor<PeerFound>();
            onB.WaitFor<PeerFound>();

            var watch = Stopwatch.StartNew();
            while (watch.Elapsed < duration) Thread.Sleep(1000);

            output.WriteLine($"a: {channelA.Statistics}");
            output.WriteLine($"b: {channelB.Statistics}");
            Assert.DoesNotContain(onA.Snapshot(), e => e is PeerLost);
            Assert.DoesNotContain(onB.Snapshot(), e => e is PeerLost);
        }
    }
}
