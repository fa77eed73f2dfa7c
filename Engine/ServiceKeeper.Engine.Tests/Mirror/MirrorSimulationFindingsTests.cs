// Scenarios the deterministic simulator found (servicekeeper-sim --seed N), replayed step by step on one machine fed with
// the peer views and procedure answers the seed produced: each pins the core fix marked "sim seed N" in MirrorStateMachine.
using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.Extensions.Time.Testing;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Mirror;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Mirror
{
    public class MirrorSimulationFindingsTests
    {
        private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));
        private int _generation = 100;

        private MirrorStateMachine Machine(MirrorDisk disk, string node = "n1", bool witness = false) =>
            new(new MirrorSettings("web", node, node == "n1" ? "n2" : "n1", "n1", Failover: true, DefaultPrimaryPolicy.Alone, null, 3,
                TimeSpan.FromHours(24), witness, TimeSpan.FromSeconds(3)), disk, _time, () => $"g{++_generation}");

        private static MirrorDisk Disk(string generation, string? lastPrimary, bool upToDate = false, params string[] history) =>
            new(generation, ImmutableList.CreateRange(history), Consistent: true, UpToDate: upToDate, Authoritative: false, lastPrimary);

        private static PeerView Peer(MirrorStateName state, bool ready, MirrorDisk disk, string node = "n2") =>
            new(node, state, ready, disk.Generation, disk.History, disk.Consistent, disk.UpToDate, disk.Authoritative,
                HandOver: false, Starting: false, LastPrimary: disk.LastPrimary);

        private static bool Runs(IEnumerable<MirrorAction> actions, Procedure p) => actions.Any(a => a is RunProcedure r && r.Procedure == p);

        [Fact]
        public void WaitingForThePeerToServe_ThePeerIsMadeSecondaryByTheAdmin_ThisNodeServes()
        {
            // sim seed 15150: n1 started, saw n2 waiting and let it serve (n2 was primary last); the admin then made n2
            // secondary (Set-SKSecondary -FullSync). Both waited for each other until the end of the run.
            var disk = Disk("g7", lastPrimary: "n2");
            var m = Machine(disk);
            m.Handle(new StartCommand());
            m.Handle(new ProcedureDone(Procedure.Prestart, true));
            m.Handle(new PeerHeard(Peer(MirrorStateName.Wait, false, disk)));
            Assert.Equal(MirrorStateName.Second, m.State);
            Assert.False(m.Ready);

            var actions = m.Handle(new PeerHeard(Peer(MirrorStateName.Second, false, disk) with { SecondRequested = true }));

            Assert.True(Runs(actions, Procedure.StartApplication), string.Join(", ", actions));
            Assert.Equal(MirrorStateName.Alone, m.State);
        }

        [Fact]
        public void WaitingForThePeerToServe_ThePeerAlsoWaitsOfItsOwnAccord_ThisNodeKeepsWaiting()
        {
            // Without the admin's word the peer may still decide to serve: deciding again here could make two primaries.
            var disk = Disk("g7", lastPrimary: "n2");
            var m = Machine(disk);
            m.Handle(new StartCommand());
            m.Handle(new ProcedureDone(Procedure.Prestart, true));
            m.Handle(new PeerHeard(Peer(MirrorStateName.Wait, false, disk)));

            var actions = m.Handle(new PeerHeard(Peer(MirrorStateName.Second, false, disk)));

            Assert.False(Runs(actions, Procedure.StartApplication));
            Assert.Equal(MirrorStateName.Second, m.State);
        }

        [Fact]
        public void SecondRequested_IsPublished_AndCarriedByTheHeartbeatPayload()
        {
            var m = Machine(Disk("g7", lastPrimary: "n2"));
            m.Handle(new SecondCommand(FullSync: false));

            Assert.True(m.View.SecondRequested);
            Assert.True(MirrorPayload.Decode("n1", MirrorPayload.Encode(m.View))!.SecondRequested);
        }
            [Fact]
        public void Swap_ThePeerNeverSawTheHandOverAndWaitsIsolated_TheOldPrimaryServesAgain()
        {
            // sim seed 10265: n2's incoming port was cut as n1 handed over; n2 lost n1, found no witness and waited
            // (isolated). n1, still hearing n2, waited as SECOND (handing over) until the end of the run.
            var pair = new MirrorPair(witness: true);
            pair.StartBoth();
            var n1 = pair["n1"].Machine;
            var secondary = pair["n2"].Machine.View;
            n1.Handle(new SwapCommand());
            n1.Handle(new ProcedureDone(Procedure.StopApplication, true));
            Assert.True(n1.HandOver);

            var actions = n1.Handle(new PeerHeard(secondary with { State = MirrorStateName.Wait, Ready = false }));

            Assert.False(n1.HandOver);
            Assert.True(Runs(actions, Procedure.StartApplication), string.Join(", ", actions));
            var persisted = actions.OfType<PersistAction>().Last().Disk;
            Assert.NotEqual(secondary.Generation, persisted.Generation);
            Assert.True(persisted.UpToDate);
        }

        [Fact]
        public void Swap_ThePeerStillSecondReady_TheOldPrimaryKeepsHandingOver()
        {
            var pair = new MirrorPair(witness: true);
            pair.StartBoth();
            var n1 = pair["n1"].Machine;
            var secondary = pair["n2"].Machine.View;
            n1.Handle(new SwapCommand());
            n1.Handle(new ProcedureDone(Procedure.StopApplication, true));

            var actions = n1.Handle(new PeerHeard(secondary with { History = secondary.History }));

            Assert.True(n1.HandOver);
            Assert.False(Runs(actions, Procedure.StartApplication));
        }
    }
}
