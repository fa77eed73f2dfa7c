// The properties every run must keep, each with a name a failing run reports. Ground truth comes from the
// simulator (which writes the application was told are done, which node holds which write), never from
// the machines' own opinion of their data.
using System;
using System.Linq;
using ServiceKeeper.Engine.Mirror;

namespace ServiceKeeper.Simulation
{
    public static class Invariants
    {
        /// <summary>With a witness configured, two applications never run at once where clients reach both (port open, virtual IP up; one that is
        /// already stopping is the lack of fencing, not counted; nor is a node the admin forced with prim -Force). Limit of a
        /// ping witness: two nodes that both reach the witness but not each other cannot be kept from both serving, so the
        /// simulator places every network fault at a node's port, where it hits the witness pings too (see MirrorSimulation).</summary>
        public const string NoDoubleServingWithWitness = nameof(NoDoubleServingWithWitness);
        /// <summary>A node whose application starts holds every write the application was told is done (witness runs;
        /// without a witness a partition lets both nodes serve by design, and DivergenceDetected covers it).</summary>
        public const string NoLostAcknowledgedWrite = nameof(NoLostAcknowledgedWrite);
        /// <summary>A resynchronisation never overwrites acknowledged writes the source lacks (diverged data is reported, not merged).</summary>
        public const string DivergenceDetected = nameof(DivergenceDetected);
        /// <summary>A node never starts the application (without -Force) lacking writes acknowledged while it was down or stopped.</summary>
        public const string StaleNodeNeverServes = nameof(StaleNodeNeverServes);
        /// <summary>After the faults stop: PRIM + up-to-date SECOND within the bound, or a reported split brain of truly diverged data.</summary>
        public const string ConvergesAfterFaults = nameof(ConvergesAfterFaults);

        public static readonly string[] All =
            [NoDoubleServingWithWitness, NoLostAcknowledgedWrite, DivergenceDetected, StaleNodeNeverServes, ConvergesAfterFaults];
    }

    public sealed partial class MirrorSimulation
    {
        private long _convergedAt = -1;
        private bool _overlapSeen, _forcedOverlapSeen;
        private readonly System.Collections.Generic.HashSet<SimNode> _adminChoseSecondary = new();

        private void Fail(string invariant, string message)
        {
            if (_violation != null) return;
            _violation = new Violation(invariant, message, Now);
            Trace(null, $"VIOLATION {invariant}: {message}");
            Trace(null, "state: " + string.Join("; ", _nodes.Select(n => n.Name + " " + n.Describe())));
        }

        private void CheckEveryStep()
        {
            var (a, b) = (_nodes[0], _nodes[1]);
            // A node whose stop_prim already runs has decided to give way (the window until it finishes is the design's
            // lack of fencing, counted apart in Overlaps); two nodes that both mean to serve are the violation.
            if (_witness && a.Up && b.Up && a.AppRunning && b.AppRunning && a.Reachable && b.Reachable && !a.VipDown && !b.VipDown &&
                (a.Machine!.RunningProcedure == Procedure.StopApplication || b.Machine!.RunningProcedure == Procedure.StopApplication))
            {
                if (!_overlapSeen) { _overlapSeen = true; Trace(null, "overlap: both applications run while one is stopping (no fencing)"); }
                return;
            }
            // prim -Force is the admin overriding the engine's judgement (it is also refused only when the peer is seen serving):
            // a forced node serving next to one it could not see is the admin's doing, accounted as such, not the protocol's.
            if (_witness && a.Up && b.Up && a.AppRunning && b.AppRunning && a.Reachable && b.Reachable && (a.Disk.Authoritative || b.Disk.Authoritative))
            {
                if (!_forcedOverlapSeen) { _forcedOverlapSeen = true; Trace(null, "both applications run after prim -Force (the admin's choice)"); }
                return;
            }
            if (_witness && a.Up && b.Up && a.AppRunning && b.AppRunning && a.Reachable && b.Reachable && !a.VipDown && !b.VipDown)
                Fail(Invariants.NoDoubleServingWithWitness, $"both applications run and clients reach both ({a.Name}: {a.Describe()}; {b.Name}: {b.Describe()})");
        }

        private void CheckApplicationStart(SimNode n)
        {
            var missing = _ackOrder.Take(n.AcknowledgedAtServeDecision).Where(id => !_discarded.Contains(id) && !n.DataSet.Contains(id)).ToList();
            if (missing.Count == 0) return;
            // Writes acknowledged while this node was connected should have reached it: a lost write. Writes acknowledged
            // while it was down or stopped mean it is stale and should have known.
            // The admin forced the other node's data (prim -Force) while it could not see this node, which served on, or
            // restarted with its own branch up to date and decided to serve it without seeing it: two branches by the admin's doing, as in
            // NoDoubleServingWithWitness. Nothing on this node can know of the other branch until the two meet (then this
            // node gives way to the authoritative data, or the divergence is reported).
            if (n.Peer.Disk.Authoritative && !n.PeerInSightAtServeDecision &&
                MirrorStateMachine.Relate(n.Disk.Generation, n.Disk.History, n.Peer.Disk.Generation, n.Peer.Disk.History) == DataRelation.Diverged)
            {
                Trace(n, "started its own branch out of sight of the branch the admin forced on " + n.Peer.Name + " (the admin's split brain)");
                return;
            }
            var inTransit = missing.Where(id => !_missedWhileAbsent[n].Contains(id)).Take(5).ToList();
            if (_witness && inTransit.Count > 0)
            {
                Fail(Invariants.NoLostAcknowledgedWrite,
                    $"{n.Name} started the application without acknowledged writes {string.Join(", ", inTransit)} (acknowledged at {string.Join(", ", inTransit.Select(id => TimeSpan.FromTicks(_acknowledged[id]).TotalSeconds.ToString("0.000") + "s"))})");
                return;
            }
            var relation = MirrorStateMachine.Relate(n.Disk.Generation, n.Disk.History, n.Peer.Disk.Generation, n.Peer.Disk.History);
            // Without a witness a partition lets both nodes take over by design; their data then diverged (DivergenceDetected's business).
            if (n.ForcedSinceServing || (!_witness && relation == DataRelation.Diverged)) return;
            var missed = missing.Where(id => _missedWhileAbsent[n].Contains(id)).Take(5).ToList();
            if (missed.Count > 0)
                Fail(Invariants.StaleNodeNeverServes,
                    $"{n.Name} started the application without -Force but lacks writes acknowledged while it was down or stopped: {string.Join(", ", missed)}");
            else if (_witness)
                Fail(Invariants.NoLostAcknowledgedWrite, $"{n.Name} started the application without acknowledged writes {string.Join(", ", missing.Take(5))}");
        }

        private void CheckResync(SimNode target, SimNode source)
        {
            if (source.Disk.Authoritative)
            {
                DiscardOnly(target, $"resync from {source.Name}, made authoritative by prim -Force");
                return;
            }
            var merged = _ackOrder.Where(id => !_discarded.Contains(id) && target.DataSet.Contains(id) && !source.DataSet.Contains(id)).Take(5).ToList();
            if (merged.Count > 0)
                Fail(Invariants.DivergenceDetected,
                    $"{target.Name} resynchronised from {source.Name} and silently lost acknowledged writes only it held: {string.Join(", ", merged)} " +
                    $"(generations: {target.Disk.Generation ?? "-"} here, {source.Disk.Generation ?? "-"} there)");
        }

        private bool Converged(out string why)
        {
            var prim = _nodes.FirstOrDefault(n => n.Up && n.Machine!.State == MirrorStateName.Prim && n.Machine.Ready);
            var second = prim?.Peer;
            if (prim == null || second == null || !second.Up || second.Machine!.State != MirrorStateName.Second || !second.Machine.Ready)
            {
                why = "no PRIM + SECOND (ready)";
                return false;
            }
            if (prim.Disk.Generation != second.Disk.Generation || !prim.AppRunning || second.AppRunning)
            {
                why = "generations differ or the application runs on the wrong node";
                return false;
            }
            var missing = _ackOrder.Where(id => !_discarded.Contains(id) && !second.DataSet.Contains(id)).Take(5).ToList();
            if (missing.Count > 0 && _acknowledged[missing[0]] < _now - TimeSpan.FromSeconds(1).Ticks)
            {
                why = "the secondary lacks acknowledged writes " + string.Join(", ", missing);
                return false;
            }
            why = "";
            return true;
        }

        private void WatchConvergence()
        {
            if (Converged(out _))
            {
                _convergedAt = _now;
                _outcome = $"converged {TimeSpan.FromTicks(_now - _o.FaultPhase.Ticks).TotalSeconds:0.0} s after the faults stopped";
                Trace(null, _outcome);
                return;
            }
            After(TimeSpan.FromMilliseconds(500), null, null, WatchConvergence);
        }

        private void CheckConvergence()
        {
            if (_convergedAt >= 0 || _violation != null) return;
            var (a, b) = (_nodes[0], _nodes[1]);
            var relation = MirrorStateMachine.Relate(a.Disk.Generation, a.Disk.History, b.Disk.Generation, b.Disk.History);
            var reported = _nodes.Any(n => n.Up && n.Machine!.Reason?.Contains("split brain", StringComparison.Ordinal) == true);
            if (relation == DataRelation.Diverged && reported && !(a.AppRunning && b.AppRunning))
            {
                _outcome = "split brain reported, the admin decides";
                Trace(null, _outcome);
                return;
            }
            // An admin asked for a secondary whose peer's data is stale: both wait for the admin's next word (prim -Force).
            // (its peer waits as "not up to date", or waits for it in turn: the admin told the node with the newer data to discard it)
            var waiting = _nodes.FirstOrDefault(n => n.Up && n.Machine!.State == MirrorStateName.Second && !n.Machine.Ready && n.Machine.RunningProcedure == null
                                                     && _adminChoseSecondary.Contains(n));
            var peerOfWaiting = waiting?.Peer;
            // The admin made both nodes secondary (Set-SKSecondary on each): each was told to discard its data for the
            // other's, so serving either would overrule an explicit command; both wait for the admin's next word
            // (Set-SKPrimary on the node to keep). Checked on both nodes, not only the first that waits.
            if (_nodes.All(n => n.Up && n.Machine!.State == MirrorStateName.Second && !n.Machine.Ready && n.Machine.RunningProcedure == null
                                && _adminChoseSecondary.Contains(n) && n.Machine.View.SecondRequested))
            {
                _outcome = "both nodes made secondary by the admin, the admin decides";
                Trace(null, _outcome);
                return;
            }
            if (waiting != null && peerOfWaiting!.Up && !peerOfWaiting.Machine!.IsServing &&
                (peerOfWaiting.Machine.Reason?.Contains("not up to date", StringComparison.Ordinal) == true ||
                 peerOfWaiting.Machine.Reason?.Contains("no data yet", StringComparison.Ordinal) == true ||
                 (peerOfWaiting.Machine.State == MirrorStateName.Second && !peerOfWaiting.Machine.Ready &&
                  (MirrorStateMachine.Relate(waiting.Disk.Generation, waiting.Disk.History, peerOfWaiting.Disk.Generation, peerOfWaiting.Disk.History)
                      is DataRelation.Ahead or DataRelation.Diverged ||
                   // the same generation, served alone last by the waiting node: the peer is stale by the engine's rule (sim seed 145)
                   (waiting.Disk.Generation == peerOfWaiting.Disk.Generation && waiting.Disk.UpToDate && !peerOfWaiting.Disk.UpToDate)))))
            {
                _outcome = "an admin-chosen secondary waits for a stale peer, the admin decides";
                Trace(null, _outcome);
                return;
            }
            Converged(out var why);
            Fail(Invariants.ConvergesAfterFaults,
                $"{_o.ConvergenceBound.TotalSeconds:0} s after the faults stopped: {why}; {a.Name}: {a.Describe()} ({a.Machine?.Reason}); {b.Name}: {b.Describe()} ({b.Machine?.Reason})");
        }
    }
}
