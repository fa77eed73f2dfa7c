using System;
using System.Collections.Generic;
using System.Linq;
using ServiceKeeper.Engine.Heartbeat;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Heartbeat
{
    public class PeerLivenessTests
    {
        private static readonly TimeSpan Pulse = TimeSpan.FromMilliseconds(50);
        private static readonly TimeSpan Timeout = TimeSpan.FromMilliseconds(1500);

        private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

        private static PeerLiveness TwoRings(TimeSpan? start = null) =>
            new([("n2", [0, 1])], Timeout, start ?? TimeSpan.Zero);

        /// <summary>Heartbeats on the given rings every pulse from <paramref name="from"/> to <paramref name="to"/>,
        /// evaluating every pulse/2 as the service does; returns every event in order.</summary>
        private static List<HeartbeatEvent> Run(PeerLiveness liveness, TimeSpan from, TimeSpan to, params int[] rings)
        {
            var events = new List<HeartbeatEvent>();
            for (var now = from; now <= to; now += Pulse / 2)
            {
                if ((now - from).Ticks % Pulse.Ticks == 0)
                    foreach (var ring in rings) events.AddRange(liveness.Heard("n2", ring, now));
                events.AddRange(liveness.Evaluate(now));
            }
            return events;
        }

        [Fact]
        public void FirstPacket_RaisesPeerFoundThenRingUp_OnlyOnce()
        {
            var liveness = TwoRings();

            Assert.Equal<HeartbeatEvent>([new PeerFound("n2"), new RingUp("n2", 0)], liveness.Heard("n2", 0, Ms(10)));
            Assert.Equal<HeartbeatEvent>([new RingUp("n2", 1)], liveness.Heard("n2", 1, Ms(11)));
            Assert.Empty(liveness.Heard("n2", 0, Ms(60)));
            Assert.Equal(PeerStatus.Alive, liveness.StatusOf("n2"));
        }

        [Fact]
        public void OneRingOfTwoSilent_IsRingDown_NeverPeerLost()
        {
            var liveness = TwoRings();
            var events = Run(liveness, TimeSpan.Zero, Ms(1000), 0, 1);

            events.AddRange(Run(liveness, Ms(1000), TimeSpan.FromMinutes(10), 0));

            Assert.Single(events.OfType<RingDown>(), new RingDown("n2", 1));
            Assert.DoesNotContain(events, e => e is PeerLost);
            Assert.Equal(RingStatus.Down, liveness.StatusOf("n2", 1));
            Assert.Equal(PeerStatus.Alive, liveness.StatusOf("n2"));
        }

        [Fact]
        public void AllRingsSilent_PeerLostBetweenTimeoutAndTimeoutPlusPulse_AfterItsRingsWentDown()
        {
            var liveness = TwoRings();
            Run(liveness, TimeSpan.Zero, Ms(3000), 0, 1);
            var lastHeard = liveness.LastHeard("n2")!.Value;

            var events = new List<(TimeSpan At, HeartbeatEvent Event)>();
            for (var now = Ms(3000) + Pulse / 2; now < Ms(10_000); now += Pulse / 2)
                events.AddRange(liveness.Evaluate(now).Select(e => (now, e)));

            Assert.Equal<HeartbeatEvent>([new RingDown("n2", 0), new RingDown("n2", 1), new PeerLost("n2")], events.Select(e => e.Event));
            var detection = events[^1].At - lastHeard;
            Assert.InRange(detection, Timeout, Timeout + Pulse);
        }

        [Fact]
        public void SilentForExactlyTheTimeout_IsNotYetLost()
        {
            var liveness = TwoRings();
            liveness.Heard("n2", 0, Ms(100));
            liveness.Heard("n2", 1, Ms(100));

            Assert.Empty(liveness.Evaluate(Ms(100) + Timeout));
            Assert.Contains(new PeerLost("n2"), liveness.Evaluate(Ms(100) + Timeout + TimeSpan.FromTicks(1)));
        }

        [Fact]
        public void PacketAfterLoss_FindsThePeerAgain_OnlyItsRingComesUp()
        {
            var liveness = TwoRings();
            liveness.Heard("n2", 0, Ms(0));
            liveness.Evaluate(Ms(5000));
            Assert.Equal(PeerStatus.Lost, liveness.StatusOf("n2"));

            var events = liveness.Heard("n2", 1, Ms(6000));

            Assert.Equal<HeartbeatEvent>([new PeerFound("n2"), new RingUp("n2", 1)], events);
            Assert.Equal(RingStatus.Down, liveness.StatusOf("n2", 0));
            Assert.Empty(liveness.Evaluate(Ms(6000) + Timeout));
        }

        [Fact]
        public void PeerNeverHeard_IsLostOneTimeoutAfterStart()
        {
            var liveness = TwoRings(start: Ms(500));

            Assert.Empty(liveness.Evaluate(Ms(500) + Timeout));
            Assert.Equal<HeartbeatEvent>(
                [new RingDown("n2", 0), new RingDown("n2", 1), new PeerLost("n2")],
                liveness.Evaluate(Ms(501) + Timeout));
            Assert.Empty(liveness.Evaluate(Ms(9000)));
        }

        [Fact]
        public void PacketProcessedLate_DoesNotMoveLastHeardBackwards()
        {
            var liveness = TwoRings();
            liveness.Heard("n2", 0, Ms(1000));
            liveness.Heard("n2", 0, Ms(900));

            Assert.Equal(Ms(1000), liveness.LastHeard("n2"));
            Assert.DoesNotContain(liveness.Evaluate(Ms(1000) + Timeout), e => e is PeerLost or RingDown { Ring: 0 });
        }

        [Fact]
        public void UnknownPeerOrRing_ChangesNothing()
        {
            var liveness = TwoRings();

            Assert.Empty(liveness.Heard("n3", 0, Ms(1)));
            Assert.Empty(liveness.Heard("n2", 5, Ms(1)));
            Assert.Equal(PeerStatus.Unknown, liveness.StatusOf("n2"));
        }

        [Fact]
        public void PeersAreJudgedSeparately()
        {
            var liveness = new PeerLiveness([("n2", [0]), ("n3", [0])], Timeout, TimeSpan.Zero);
            liveness.Heard("n2", 0, Ms(0));
            liveness.Heard("n3", 0, Ms(0));
            liveness.Heard("n3", 0, Ms(1000));

            Assert.Equal<HeartbeatEvent>([new RingDown("n2", 0), new PeerLost("n2")], liveness.Evaluate(Ms(2000)));
            Assert.Equal(PeerStatus.Alive, liveness.StatusOf("n3"));
        }
    }
}
