// Real UDP between two heartbeat services on loopback, two rings (127.0.0.1 and 127.0.0.2), ephemeral
// ports. Timings are asserted loosely: a slow machine may delay, never break, these tests.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using ServiceKeeper.Engine.Heartbeat;
using Xunit;
using static ServiceKeeper.Engine.Tests.Heartbeat.HeartbeatTestKit;

namespace ServiceKeeper.Engine.Tests.Heartbeat
{
    public class HeartbeatServiceLoopbackTests
    {
        private static readonly TimeSpan Pulse = TimeSpan.FromMilliseconds(50);
        private static readonly TimeSpan Timeout = TimeSpan.FromMilliseconds(1000);

        private static bool Has(EventRecorder events, string payload) =>
            events.Snapshot().OfType<PeerMessage>().Any(m => Encoding.UTF8.GetString(m.Payload) == payload);

        [Fact]
        public void TwoNodes_ExchangePayloadsOnBothRings_AndStateChangesArriveAtOnce()
        {
            using var a = Service("a");
            using var b = Service("b");
            var onA = new EventRecorder();
            var onB = new EventRecorder();
            using var channelA = a.OpenChannel("sql", [PeerOf(b)], Pulse, Timeout, onA.Add, "a:SECOND"u8);
            using var channelB = b.OpenChannel("sql", [PeerOf(a)], Pulse, Timeout, onB.Add, "b:PRIM"u8);

            onB.WaitFor<PeerMessage>(m => m.Node == "a" && m.Payload.SequenceEqual("a:SECOND"u8.ToArray()) && m.Incarnation == 1);
            onA.WaitFor<PeerMessage>(m => m.Node == "b" && m.Payload.SequenceEqual("b:PRIM"u8.ToArray()));
            onB.WaitFor<PeerFound>(f => f.Node == "a");
            onB.WaitFor<RingUp>(r => r.Node == "a" && r.Ring == 0);
            onB.WaitFor<RingUp>(r => r.Node == "a" && r.Ring == 1);
            Assert.Equal(PeerStatus.Alive, channelB.GetPeerStatus("a"));

            // A pulse is 50 ms; a long one shows that SetPayload does not wait for it.
            channelA.SetPayload("a:PRIM"u8);
            onB.WaitFor<PeerMessage>(m => m.Payload.SequenceEqual("a:PRIM"u8.ToArray()));

            Eventually(() => channelB.Statistics.Received > 20, "b receives a's heartbeats");
            var messages = onB.Snapshot().OfType<PeerMessage>().Count();
            var stats = channelB.Statistics;
            // Each round arrives on both rings but is delivered once.
            Assert.True(messages <= stats.Received / 2 + 2, $"{messages} messages for {stats.Received} packets");
            Assert.Equal(0, b.Statistics.Forged + b.Statistics.Malformed + b.Statistics.WrongCluster + b.Statistics.Replayed);
            Assert.True(channelA.Statistics.Sent > 0);
            Assert.DoesNotContain(onB.Snapshot(), e => e is PeerLost or RingDown);
        }

        [Fact]
        public void ForgedMalformedAndForeignDatagrams_AreCounted_NeverDelivered_LoggedOncePerSource()
        {
            var log = new ListLogger();
            using var b = Service("b", log);
            var onB = new EventRecorder();
            var fakeA = new HeartbeatPeer("a", new Dictionary<int, IPEndPoint> { [0] = new(Ring0, 9) });
            using var channel = b.OpenChannel("sql", [fakeA], Pulse, TimeSpan.FromSeconds(30), onB.Add);
            using var attacker = new UdpClient(new IPEndPoint(Ring0, 0));
            var target = b.LocalEndPoints[0];
            var looksRight = new HeartbeatPacket(HeartbeatPacketTests.Cluster, "sql", "a", 1, 1, 0, 0, "PWNED"u8.ToArray());
            var forged = looksRight.Encode(Encoding.ASCII.GetBytes("a guessed key, long enough to pass"));
            var foreign = (looksRight with { ClusterId = Guid.NewGuid() }).Encode(HeartbeatPacketTests.Key);
            var garbage = new byte[200];
            new Random(7).NextBytes(garbage);

            for (var i = 0; i < 20; i++)
            {
                attacker.Send(forged, target);
                attacker.Send(foreign, target);
                attacker.Send(garbage, target);
            }

            Eventually(() => b.Statistics is { Forged: 20, WrongCluster: 20, Malformed: 20 }, $"counted: {b.Statistics}");
            Assert.Equal(0, b.Statistics.Received);
            Assert.Equal(0, channel.Statistics.Received + channel.Statistics.Forged);
            Assert.Empty(onB.Snapshot());
            Assert.Single(log.Lines, l => l.Message.Contains("dropped", StringComparison.Ordinal));
        }

        [Fact]
        public void AuthenticPacketReplayed_IsDeliveredOnce_CopyOnTheOtherRingOnlyRefreshesIt()
        {
            using var b = Service("b");
            var onB = new EventRecorder();
            var fakeA = new HeartbeatPeer("a", new Dictionary<int, IPEndPoint> { [0] = new(Ring0, 9), [1] = new(Ring1, 9) });
            using var channel = b.OpenChannel("sql", [fakeA], Pulse, TimeSpan.FromSeconds(30), onB.Add);
            using var sender = new UdpClient(new IPEndPoint(Ring0, 0));
            HeartbeatPacket Packet(ulong incarnation, ulong sequence, int ring, string module = "sql", string from = "a") =>
                new(HeartbeatPacketTests.Cluster, module, from, incarnation, sequence, ring, 0, Encoding.ASCII.GetBytes($"{incarnation}.{sequence}"));
            void Send(HeartbeatPacket packet, int toRing) => sender.Send(packet.Encode(HeartbeatPacketTests.Key), b.LocalEndPoints[toRing]);

            Send(Packet(5, 1, ring: 0), toRing: 0);
            onB.WaitFor<PeerMessage>(m => m.Incarnation == 5);
            Send(Packet(5, 1, ring: 0), toRing: 0);
            Send(Packet(5, 1, ring: 1), toRing: 1);
            onB.WaitFor<RingUp>(r => r.Ring == 1);
            Send(Packet(5, 1, ring: 1), toRing: 1);
            Send(Packet(4, 9, ring: 0), toRing: 0);      // older incarnation
            Send(Packet(5, 2, ring: 1), toRing: 0);      // sent on ring 1, arrived on ring 0
            Send(Packet(5, 3, ring: 0, module: "web"), toRing: 0);
            Send(Packet(5, 4, ring: 0, from: "zed"), toRing: 0);

            Eventually(() => b.Statistics is { Replayed: 3, Misrouted: 1, UnknownModule: 1, UnknownPeer: 1 }, $"counted: {b.Statistics}");
            Assert.Equal(2, channel.Statistics.Received);
            Assert.Single(onB.Snapshot().OfType<PeerMessage>());
        }

        [Fact]
        public void OneRingCut_IsRingDown_ThePeerIsNeverLost()
        {
            using var a = Service("a");
            using var b = Service("b");
            var onB = new EventRecorder();
            // a sends its ring-1 heartbeats to a port nobody listens on: for b, ring 1 is cut.
            var bAsSeenByA = new HeartbeatPeer("b", new Dictionary<int, IPEndPoint> { [0] = b.LocalEndPoints[0], [1] = new(Ring1, 9) });
            using var channelA = a.OpenChannel("sql", [bAsSeenByA], Pulse, Timeout, _ => { });
            using var channelB = b.OpenChannel("sql", [PeerOf(a)], Pulse, Timeout, onB.Add);

            onB.WaitFor<RingDown>(r => r.Node == "a" && r.Ring == 1);
            Thread.Sleep(Timeout * 3);

            var events = onB.Snapshot();
            Assert.DoesNotContain(events, e => e is PeerLost);
            Assert.DoesNotContain(events, e => e is RingUp { Ring: 1 });
            Assert.Equal(PeerStatus.Alive, channelB.GetPeerStatus("a"));
            Assert.Equal(RingStatus.Up, channelB.GetRingStatus("a", 0));
        }

        [Fact]
        public void PeerServiceStops_PeerLostAfterTheTimeout_AndFoundAgainWhenItReturns()
        {
            var a = Service("a");
            using var b = Service("b");
            var onB = new EventRecorder();
            a.OpenChannel("sql", [PeerOf(b)], Pulse, Timeout, _ => { });
            using var channelB = b.OpenChannel("sql", [PeerOf(a)], Pulse, Timeout, onB.Add);
            onB.WaitFor<PeerFound>();

            Eventually(() => channelB.GetPeerStatus("a") == PeerStatus.Alive, "a alive before it stops");
            var seen = onB.Count;

            var stopped = Stopwatch.StartNew();
            a.Dispose();
            onB.WaitFor<PeerLost>(l => l.Node == "a", from: seen);
            var detection = stopped.Elapsed;

            // Not before the timeout (less the pulse in flight); the upper bound is only the test's patience.
            Assert.True(detection >= Timeout - Pulse - TimeSpan.FromMilliseconds(20), $"lost after {detection.TotalMilliseconds} ms");
            Assert.Equal(RingStatus.Down, channelB.GetRingStatus("a", 0));
            Assert.Equal(RingStatus.Down, channelB.GetRingStatus("a", 1));
            var lost = onB.Snapshot().Skip(seen).ToList();
            var lostAt = lost.FindIndex(e => e is PeerLost);
            Assert.Contains(new RingDown("a", 0), lost.Take(lostAt));
            Assert.Contains(new RingDown("a", 1), lost.Take(lostAt));

            // a comes back with a new incarnation (on new ephemeral ports: b only needs to hear it).
            using var a2 = Service("a", incarnation: 2);
            using var channelA2 = a2.OpenChannel("sql", [PeerOf(b)], Pulse, Timeout, _ => { });
            onB.WaitFor<PeerMessage>(m => m.Incarnation == 2);
            Assert.Contains(new PeerFound("a"), onB.Snapshot().Skip(seen + lostAt + 1));
        }

        [Fact]
        public void ClosedChannel_StopsSendingAndRaisingEvents()
        {
            using var a = Service("a");
            using var b = Service("b");
            var onA = new EventRecorder();
            var onB = new EventRecorder();
            var channelA = a.OpenChannel("sql", [PeerOf(b)], Pulse, Timeout, onA.Add);
            using var channelB = b.OpenChannel("sql", [PeerOf(a)], Pulse, Timeout, onB.Add);
            onA.WaitFor<PeerFound>();
            onB.WaitFor<PeerFound>();

            channelA.Close();
            var seen = onA.Snapshot().Count;
            onB.WaitFor<PeerLost>();
            channelA.Close();

            Assert.Equal(seen, onA.Snapshot().Count);
            Assert.True(channelA.IsClosed);
            Eventually(() => a.Statistics.UnknownModule > 0, "b's heartbeats now reach a module a no longer has");
            // The module can be opened again once closed.
            using var again = a.OpenChannel("sql", [PeerOf(b)], Pulse, Timeout, _ => { });
        }

        [Fact]
        public void HandlerThatThrows_DoesNotStopTheHeartbeats()
        {
            var log = new ListLogger();
            using var a = Service("a");
            using var b = Service("b", log);
            using var channelA = a.OpenChannel("sql", [PeerOf(b)], Pulse, Timeout, _ => { });
            using var channelB = b.OpenChannel("sql", [PeerOf(a)], Pulse, Timeout, _ => throw new InvalidOperationException("owner bug"));

            Eventually(() => channelB.Statistics.Received > 20, "b keeps receiving");
            Eventually(() => channelA.Statistics.Received > 20, "b keeps sending");
            Assert.Contains(log.Lines, l => l.Message.Contains("handler of heartbeat event", StringComparison.Ordinal));
        }

        [Fact]
        public void OpenChannel_RefusesWhatCannotWork()
        {
            using var a = Service("a");
            var peer = new HeartbeatPeer("b", new Dictionary<int, IPEndPoint> { [0] = new(Ring0, 9) });
            using var open = a.OpenChannel("sql", [peer], Pulse, Timeout, _ => { });

            Assert.Throws<InvalidOperationException>(() => a.OpenChannel("sql", [peer], Pulse, Timeout, _ => { }));
            Assert.Throws<ArgumentException>(() => a.OpenChannel("web", [peer with { Rings = new Dictionary<int, IPEndPoint> { [2] = new(Ring0, 9) } }], Pulse, Timeout, _ => { }));
            Assert.Throws<ArgumentException>(() => a.OpenChannel("web", [peer with { Node = "a" }], Pulse, Timeout, _ => { }));
            Assert.Throws<ArgumentException>(() => a.OpenChannel("web", [peer, peer], Pulse, Timeout, _ => { }));
            Assert.Throws<ArgumentException>(() => a.OpenChannel("web", [], Pulse, Timeout, _ => { }));
            Assert.Throws<ArgumentOutOfRangeException>(() => a.OpenChannel("web", [peer], Pulse, Pulse, _ => { }));
            Assert.Throws<ArgumentException>(() => a.OpenChannel("web", [peer], Pulse, Timeout, _ => { }, new byte[1025]));
            Assert.Throws<ArgumentException>(() => open.SetPayload(new byte[1025]));
        }

        [Fact]
        public void PortAlreadyTaken_FailsAtConstruction_DisposeIsIdempotent()
        {
            var first = Service("a");
            var port = first.LocalEndPoints[0].Port;

            Assert.Throws<SocketException>(() => new HeartbeatService(HeartbeatPacketTests.Cluster, HeartbeatPacketTests.Key, "b", 1, port,
                [Ring0], new ListLogger(), TimeProvider.System));
            first.Dispose();
            first.Dispose();
            Assert.Throws<ObjectDisposedException>(() => first.OpenChannel("sql",
                [new HeartbeatPeer("b", new Dictionary<int, IPEndPoint> { [0] = new(Ring0, 9) })], Pulse, Timeout, _ => { }));
        }
    }
}
