// The primary's answer when its secondary stops acknowledging writes while heartbeats still flow, and the
// order every path out of PRIM keeps: the new record is persisted before replication stops (the host
// acknowledges the blocked writes into the dirty journal as it stops replicating).
using System;
using System.Collections.Generic;
using System.Linq;
using ServiceKeeper.Engine.Mirror;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Mirror
{
    public class ReplicationLostTests
    {
        private static int IndexOf<T>(IReadOnlyList<MirrorAction> actions) => actions.ToList().FindIndex(a => a is T);

        /// <summary>Every StopReplication follows a PersistAction issued after the last StartReplication.</summary>
        private static void AssertPersistBeforeEveryStopReplication(IReadOnlyList<MirrorAction> actions)
        {
            var persistedSinceStart = false;
            for (var i = 0; i < actions.Count; i++)
            {
                switch (actions[i])
                {
                    case StartReplication: persistedSinceStart = false; break;
                    case PersistAction: persistedSinceStart = true; break;
                    case StopReplication:
                        Assert.True(persistedSinceStart, $"StopReplication at {i} without a PersistAction before it: " + string.Join(", ", actions.Select(a => a.GetType().Name)));
                        break;
                }
            }
        }

        [Fact]
        public void ReplicationLost_OnThePrimary_GoesAloneWithANewGeneration_PersistedBeforeReplicationStops_WithoutAWitnessProbe()
        {
            var pair = new MirrorPair(witness: true);
            pair.StartBoth();
            var before = pair["n1"].Persisted.Generation;
            pair["n2"].Held.Add(Procedure.Resync);
            pair["n1"].Actions.Clear();

            var actions = pair.Step("n1", new ReplicationLost("send timeout after 30 s"));

            var persist = IndexOf<PersistAction>(actions);
            Assert.True(persist >= 0, string.Join(", ", actions.Select(a => a.GetType().Name)));
            var disk = ((PersistAction)actions[persist]).Disk;
            Assert.NotEqual(before, disk.Generation);
            Assert.Equal(before, disk.History[0]);
            // Up to date only once n2 can no longer take over (it has seen the new generation): sim seed 14792.
            Assert.False(disk.UpToDate);
            Assert.True(pair["n1"].Persisted.UpToDate);
            Assert.DoesNotContain(pair["n1"].Actions, a => a is RunProcedure { Procedure: Procedure.ProbeWitness });
            Assert.Contains(actions, a => a is LogAction { Text: "web: PRIM -> ALONE (secondary stopped acknowledging writes: send timeout after 30 s)" });
            Assert.Equal(MirrorStateName.Alone, pair["n1"].State);
            Assert.True(pair["n1"].ApplicationRunning);
            // n2 has seen the new generation (it resyncs): the blocked writes complete, after the new generation was persisted.
            Assert.Equal(MirrorStateName.Second, pair["n2"].State);
            Assert.False(pair["n2"].Machine.Ready);
            Assert.Contains(pair["n1"].Actions, a => a is StopReplication);
            AssertPersistBeforeEveryStopReplication(pair["n1"].Actions);
        }

        [Fact]
        public void ReplicationLost_WhileTheSecondaryStillLooksReady_HoldsTheWrites_UntilItHasSeenTheNewGeneration()
        {
            var pair = new MirrorPair();
            pair.StartBoth();
            pair.Connected = false; // the secondary's view stays SECOND Ready: it has not seen anything yet

            var actions = pair["n1"].Machine.Handle(new ReplicationLost("send timeout"));

            Assert.Contains(actions, a => a is PersistAction);
            Assert.DoesNotContain(actions, a => a is StopReplication);
            Assert.Equal(MirrorStateName.Alone, pair["n1"].State);
        }

        [Fact]
        public void ReplicationLost_ThenTheSecondaryReportsItLostThisNode_ThePrimaryStepsDown()
        {
            var pair = new MirrorPair(witness: true);
            pair.StartBoth();
            pair["n1"].Machine.Handle(new ReplicationLost("send timeout"));
            var secondary = pair["n2"].Machine.View;

            var actions = pair["n1"].Machine.Handle(new PeerHeard(secondary with { Ready = false, LostPeer = true }));

            Assert.Contains(actions, a => a is RunProcedure { Procedure: Procedure.StopApplication });
            Assert.DoesNotContain(actions, a => a is StopReplication);
        }

        [Fact]
        public void ReplicationLost_ThenThePrimaryIsCutOff_GivesBackItsUnusedGeneration_AndReturnsAsSecondary()
        {
            // Cut off under load: the send timeout fires before the heartbeats time out (PostgreSQL test, network cut rounds).
            var pair = new MirrorPair(witness: true);
            pair.StartBoth();
            var shared = pair["n1"].Persisted.Generation;
            pair.Connected = false;
            pair["n1"].WitnessReachable = false;

            pair.Send("n1", new ReplicationLost("send timeout"));

            Assert.True(pair["n1"].State == MirrorStateName.Wait && pair["n2"].State == MirrorStateName.Alone, pair.Describe());
            Assert.False(pair["n1"].ApplicationRunning);
            Assert.Contains(pair["n1"].Actions, a => a is FenceWrites); // its held writes fail: the application stops at once
            Assert.Equal(shared, pair["n2"].Persisted.History[0]);

            pair["n1"].WitnessReachable = true;
            pair.Connected = true;
            pair.Settle();
            pair.Advance(TimeSpan.FromSeconds(5));

            Assert.True(pair["n2"].State == MirrorStateName.Prim && pair["n1"].State == MirrorStateName.Second && pair["n1"].Machine.Ready, pair.Describe());
            Assert.Equal(pair["n2"].Persisted.Generation, pair["n1"].Persisted.Generation);
            Assert.DoesNotContain(pair["n1"].Log.Concat(pair["n2"].Log), l => l.Contains("split brain", StringComparison.Ordinal));
        }

        [Fact]
        public void ReplicationLost_SecondarySeesTheGenerationAhead_ResyncsAndThePairIsPrimSecondAgain()
        {
            var pair = new MirrorPair();
            pair.StartBoth();
            var resyncs = pair["n2"].Ran.Count(p => p == Procedure.Resync);

            pair.Send("n1", new ReplicationLost("connection reset"));

            Assert.True(pair["n2"].Ran.Count(p => p == Procedure.Resync) > resyncs);
            Assert.True(pair["n1"].State == MirrorStateName.Prim && pair["n2"].State == MirrorStateName.Second && pair["n2"].Machine.Ready, pair.Describe());
            Assert.Equal(pair["n1"].Persisted.Generation, pair["n2"].Persisted.Generation);
            Assert.False(pair["n2"].ApplicationRunning);
        }

        [Fact]
        public void ReplicationLost_SecondaryThatMissesTheServingView_NeverTakesOverFromAPeerAhead()
        {
            var pair = new MirrorPair();
            pair.StartBoth();
            pair["n2"].Held.Add(Procedure.Resync);
            pair.Send("n1", new ReplicationLost("send timeout"));
            var ahead = pair["n1"].Machine.View;

            // n2 resyncs; the primary then stops before the copy is done: n2 must not serve its older data.
            pair["n2"].Held.Clear();
            pair.Crash("n1");

            Assert.NotEqual(ahead.Generation, pair["n2"].Persisted.Generation);
            Assert.NotEqual(MirrorStateName.Alone, pair["n2"].State);
            Assert.False(pair["n2"].ApplicationRunning);
        }

        [Theory]
        [InlineData(MirrorStateName.Second)]
        [InlineData(MirrorStateName.Stop)]
        public void ReplicationLost_OutsidePrim_IsIgnoredWithALogLine(MirrorStateName state)
        {
            var pair = new MirrorPair();
            pair.StartBoth();
            var node = state == MirrorStateName.Second ? "n2" : "n1";
            if (state == MirrorStateName.Stop) pair.Send("n1", new StopCommand());
            var disk = pair[node].Persisted;

            var actions = pair[node].Machine.Handle(new ReplicationLost("late report"));

            Assert.Single(actions);
            Assert.Contains("replication to", ((LogAction)actions[0]).Text);
            Assert.Equal(disk, pair[node].Machine.Disk);
        }

        [Fact]
        public void PeerLost_OnThePrimary_PersistsTheNewGenerationBeforeReplicationStops()
        {
            var pair = new MirrorPair();
            pair.StartBoth();
            pair.Connected = false;

            var actions = pair["n1"].Machine.Handle(new PeerLost());

            var persist = IndexOf<PersistAction>(actions);
            var stop = IndexOf<StopReplication>(actions);
            Assert.True(persist >= 0 && stop > persist, string.Join(", ", actions.Select(a => a.GetType().Name)));
            Assert.Equal(MirrorStateName.Alone, pair["n1"].State);
        }

        [Fact]
        public void PeerLost_OnThePrimaryWithAWitness_PersistsBeforeReplicationStops()
        {
            var pair = new MirrorPair(witness: true);
            pair.StartBoth();
            pair.Connected = false;
            pair["n1"].Actions.Clear();

            pair.Settle();

            Assert.Equal(MirrorStateName.Alone, pair["n1"].State);
            Assert.Contains(pair["n1"].Actions, a => a is StopReplication);
            AssertPersistBeforeEveryStopReplication(pair["n1"].Actions);
        }

        [Theory]
        [InlineData("stop")]
        [InlineData("swap")]
        [InlineData("replication lost")]
        [InlineData("peer lost")]
        [InlineData("application down, action wait")]
        public void EveryPathOutOfPrim_PersistsBeforeReplicationStops(string path)
        {
            var pair = new MirrorPair();
            pair.StartBoth();
            pair["n1"].Actions.Clear();

            switch (path)
            {
                case "stop": pair.Send("n1", new StopCommand()); break;
                case "swap": pair.Send("n1", new SwapCommand()); break;
                case "replication lost": pair.Send("n1", new ReplicationLost("send timeout")); break;
                case "peer lost": pair.Crash("n2"); break;
                default:
                    pair.Send("n1", new ResourceChanged("custom.app", ServiceKeeper.Engine.Checkers.ResourceValue.Down,
                        ServiceKeeper.Engine.Configuration.CheckAction.Wait, ServiceKeeper.Engine.Configuration.CheckWhen.Prim, false, "down"));
                    break;
            }

            Assert.Contains(pair["n1"].Actions, a => a is StopReplication);
            AssertPersistBeforeEveryStopReplication(pair["n1"].Actions);
        }

        [Fact]
        public void Swap_WhenReplicationIsLostWhileTheApplicationStops_IsAbandoned_AndThisNodeServesAgain()
        {
            var pair = new MirrorPair();
            pair.StartBoth();
            pair["n1"].Held.Add(Procedure.StopApplication);
            pair.Send("n1", new SwapCommand());

            pair.Send("n1", new ReplicationLost("send timeout"));
            pair["n1"].Held.Clear();
            pair.Settle();

            Assert.True(pair["n1"].State == MirrorStateName.Prim && pair["n2"].State == MirrorStateName.Second, pair.Describe());
            Assert.True(pair["n1"].ApplicationRunning);
            Assert.False(pair["n2"].ApplicationRunning);
            Assert.Equal(pair["n1"].Persisted.Generation, pair["n2"].Persisted.Generation);
            Assert.Contains(pair["n1"].Log, l => l.Contains("swap abandoned", StringComparison.Ordinal));
        }

        [Fact]
        public void IgnoreWitness_IsolatedSecondaryTakesOver_WhereTheWitnessWouldHaveStoppedIt()
        {
            var on = new MirrorPair(witness: true);
            on.StartBoth();
            on["n2"].WitnessReachable = false;
            on.Connected = false;
            on.Settle();
            Assert.Equal(MirrorStateName.Wait, on["n2"].State);

            var off = new MirrorPair(witness: true, safety: new MirrorSafety(IgnoreWitness: true));
            off.StartBoth();
            off["n2"].WitnessReachable = false;
            off.Connected = false;
            off.Settle();
            Assert.Equal(MirrorStateName.Alone, off["n2"].State);
        }
    }
}
