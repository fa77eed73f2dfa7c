using ServiceKeeper.Engine.Heartbeat;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Heartbeat
{
    public class ReplayGuardTests
    {
        [Fact]
        public void SamePacketTwiceOnTheSameRing_IsReplayed()
        {
            var guard = new ReplayGuard();

            Assert.Equal(ReplayVerdict.Fresh, guard.Check(1, 10, ring: 0));
            Assert.Equal(ReplayVerdict.Replayed, guard.Check(1, 10, ring: 0));
        }

        [Fact]
        public void SameSequenceOnTheOtherRing_IsDuplicate_OnceOnly()
        {
            var guard = new ReplayGuard();

            Assert.Equal(ReplayVerdict.Fresh, guard.Check(1, 10, ring: 0));
            Assert.Equal(ReplayVerdict.Duplicate, guard.Check(1, 10, ring: 1));
            Assert.Equal(ReplayVerdict.Replayed, guard.Check(1, 10, ring: 1));
            Assert.Equal(ReplayVerdict.Replayed, guard.Check(1, 10, ring: 0));
        }

        [Fact]
        public void CopyOnTheSlowerRingAfterNewerPackets_StillRefreshesThatRing()
        {
            var guard = new ReplayGuard();
            guard.Check(1, 10, ring: 0);
            guard.Check(1, 11, ring: 0);

            Assert.Equal(ReplayVerdict.Duplicate, guard.Check(1, 10, ring: 1));
            Assert.Equal(ReplayVerdict.Duplicate, guard.Check(1, 11, ring: 1));
        }

        [Fact]
        public void ReorderedWithinTheWindow_IsLate_ThenReplayed()
        {
            var guard = new ReplayGuard();
            guard.Check(1, 1000, ring: 0);
            guard.Check(1, 1003, ring: 0);

            Assert.Equal(ReplayVerdict.Late, guard.Check(1, 1001, ring: 0));
            Assert.Equal(ReplayVerdict.Late, guard.Check(1, 1002, ring: 0));
            Assert.Equal(ReplayVerdict.Replayed, guard.Check(1, 1002, ring: 0));
            Assert.Equal(ReplayVerdict.Late, guard.Check(1, 1003 - ReplayGuard.WindowSize + 1, ring: 0));
            Assert.Equal(ReplayVerdict.Replayed, guard.Check(1, 1003 - ReplayGuard.WindowSize, ring: 0));
        }

        [Fact]
        public void OlderIncarnation_IsReplayed_NewerOneStartsAfresh()
        {
            var guard = new ReplayGuard();
            guard.Check(5, 1000, ring: 0);

            Assert.Equal(ReplayVerdict.Replayed, guard.Check(4, 5000, ring: 0));
            Assert.Equal(ReplayVerdict.Fresh, guard.Check(6, 1, ring: 0));
            Assert.Equal(ReplayVerdict.Replayed, guard.Check(5, 1001, ring: 0));
            Assert.Equal(ReplayVerdict.Fresh, guard.Check(6, 2, ring: 0));
            Assert.Equal(6UL, guard.Incarnation);
        }

        [Fact]
        public void SlotsReusedAfterTheWindowMoves_DoNotRememberOldSequences()
        {
            var guard = new ReplayGuard();
            guard.Check(1, 2, ring: 0);
            guard.Check(1, 5, ring: 0);

            // 133 takes the slot of 5: it must not inherit "seen on ring 0" from it.
            Assert.Equal(ReplayVerdict.Fresh, guard.Check(1, 5 + ReplayGuard.WindowSize, ring: 1));
            Assert.Equal(ReplayVerdict.Duplicate, guard.Check(1, 5 + ReplayGuard.WindowSize, ring: 0));
            Assert.Equal(ReplayVerdict.Late, guard.Check(1, 4 + ReplayGuard.WindowSize, ring: 0));
            Assert.Equal(ReplayVerdict.Replayed, guard.Check(1, 5, ring: 0));
            Assert.Equal(ReplayVerdict.Replayed, guard.Check(1, 2, ring: 0));
        }

        [Fact]
        public void JumpLargerThanTheWindow_ForgetsEverything()
        {
            var guard = new ReplayGuard();
            for (ulong s = 1; s <= 50; s++) guard.Check(1, s, ring: 0);

            Assert.Equal(ReplayVerdict.Fresh, guard.Check(1, 10_000, ring: 0));
            Assert.Equal(ReplayVerdict.Late, guard.Check(1, 9_999, ring: 0));
            Assert.Equal(ReplayVerdict.Replayed, guard.Check(1, 50, ring: 0));
        }

        [Fact]
        public void ReplayingADeadPeersLastPackets_CannotKeepItAlive()
        {
            // The peer died after sequence 200; an attacker replays everything it recorded, on every ring, forever.
            var guard = new ReplayGuard();
            for (ulong s = 1; s <= 200; s++) guard.Check(1, s, ring: 0);

            var refreshed = 0;
            for (var round = 0; round < 10; round++)
                for (ulong s = 1; s <= 200; s++)
                    for (var ring = 0; ring < 2; ring++)
                        if (guard.Check(1, s, ring) != ReplayVerdict.Replayed) refreshed++;

            // Only the window's sequences never seen on ring 1 get through, once each.
            Assert.Equal(ReplayGuard.WindowSize, refreshed);
        }
    }
}
