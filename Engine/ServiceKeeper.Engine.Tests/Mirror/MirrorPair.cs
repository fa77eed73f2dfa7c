// Two mirror state machines wired by a fake link and a fake host: procedures succeed at once unless a
// test holds them, the link delivers each node's view to the other after every step.
using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.Extensions.Time.Testing;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Mirror;

namespace ServiceKeeper.Engine.Tests.Mirror
{
    internal sealed class MirrorPair
    {
        public readonly FakeTimeProvider Time = new(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));
        public readonly Dictionary<string, Node> Nodes = new();
        private int _generation;
        public bool Connected = true;

        public sealed class Node
        {
            public required string Name;
            public required MirrorStateMachine Machine;
            public MirrorDisk Persisted = MirrorDisk.Empty;
            public bool EngineUp = true;
            public bool WitnessReachable = true;
            public bool ApplicationRunning;
            public bool Replicating;
            public readonly HashSet<Procedure> Held = new();
            public readonly List<Procedure> Pending = new();
            public readonly List<string> Log = new();
            /// <summary>Every action the machine returned, in order.</summary>
            public readonly List<MirrorAction> Actions = new();
            public readonly List<Procedure> Ran = new();
            /// <summary>A full resynchronisation ran on this node.</summary>
            public bool ResyncFull;
            public MirrorStateName State => Machine.State;
        }

        public MirrorPair(bool failover = true, bool witness = false, string initialPrimary = "n1", string? defaultPrimary = null, MirrorSafety? safety = null)
        {
            Safety = safety;
            DefaultPrimaryNode = defaultPrimary;
            foreach (var (me, peer) in new[] { ("n1", "n2"), ("n2", "n1") })
                Nodes[me] = new Node { Name = me, Machine = NewMachine(me, peer, MirrorDisk.Empty, failover, witness, initialPrimary) };
            Failover = failover;
            Witness = witness;
            InitialPrimary = initialPrimary;
        }

        private readonly bool Failover, Witness;
        private readonly string? DefaultPrimaryNode;
        private readonly string InitialPrimary;
        private readonly MirrorSafety? Safety;

        private MirrorStateMachine NewMachine(string me, string peer, MirrorDisk disk, bool failover, bool witness, string initialPrimary) =>
            new(new MirrorSettings("web", me, peer, initialPrimary, failover,
                DefaultPrimaryNode == null ? DefaultPrimaryPolicy.Alone : DefaultPrimaryPolicy.Node, DefaultPrimaryNode, 3, TimeSpan.FromHours(24),
                witness, TimeSpan.FromSeconds(3)), disk, Time, () => $"g{++_generation:000}", Safety);

        public Node this[string name] => Nodes[name];
        public Node Other(Node n) => Nodes[n.Name == "n1" ? "n2" : "n1"];

        /// <summary>Feeds an event to a node, runs its actions, lets the link and procedures settle.</summary>
        public void Send(string node, MirrorEvent e)
        {
            var n = Nodes[node];
            if (!n.EngineUp) return;
            Execute(n, n.Machine.Handle(e));
            Settle();
        }

        public void Start(string node) => Send(node, new StartCommand());

        /// <summary>Like Send, and returns the actions of this one step (before the pair settles).</summary>
        public IReadOnlyList<MirrorAction> Step(string node, MirrorEvent e)
        {
            var n = Nodes[node];
            var actions = n.Machine.Handle(e);
            Execute(n, actions);
            Settle();
            return actions;
        }

        private void Execute(Node n, IReadOnlyList<MirrorAction> actions)
        {
            foreach (var action in actions)
            {
                n.Actions.Add(action);
                switch (action)
                {
                    case PersistAction p: n.Persisted = p.Disk; break;
                    case StartReplication: n.Replicating = true; break;
                    case StopReplication: n.Replicating = false; break;
                    case LogAction l: n.Log.Add(l.Text); break;
                    case RunProcedure r:
                        n.Ran.Add(r.Procedure);
                        if (r.Procedure == Procedure.Resync) n.ResyncFull |= r.FullSync;
                        n.Pending.Add(r.Procedure);
                        break;
                }
            }
        }

        /// <summary>Completes procedures that are not held and exchanges views until nothing changes.</summary>
        public void Settle()
        {
            for (int round = 0; round < 200; round++)
            {
                bool progress = false;
                foreach (var n in Nodes.Values.Where(n => n.EngineUp))
                {
                    foreach (var p in n.Pending.ToList())
                    {
                        if (n.Held.Contains(p)) continue;
                        n.Pending.Remove(p);
                        bool ok = true;
                        if (p == Procedure.StartApplication) n.ApplicationRunning = true;
                        if (p == Procedure.StopApplication) n.ApplicationRunning = false;
                        if (p == Procedure.ProbeWitness) ok = n.WitnessReachable;
                        if (p == Procedure.Resync) ok = Connected && Other(n).EngineUp;
                        Execute(n, n.Machine.Handle(new ProcedureDone(p, ok, ok ? null : "failed")));
                        progress = true;
                    }
                }
                foreach (var n in Nodes.Values.Where(n => n.EngineUp))
                {
                    var other = Other(n);
                    if (Connected && other.EngineUp)
                    {
                        var view = other.Machine.View;
                        if (n.Machine.Peer != view) { Execute(n, n.Machine.Handle(new PeerHeard(view))); progress = true; }
                    }
                    else if (n.Machine.Peer != null)
                    {
                        Execute(n, n.Machine.Handle(new PeerLost()));
                        progress = true;
                    }
                }
                if (!progress) return;
            }
            throw new InvalidOperationException("the pair did not settle: " + Describe());
        }

        public void Advance(TimeSpan by)
        {
            Time.Advance(by);
            foreach (var n in Nodes.Values.Where(n => n.EngineUp)) Execute(n, n.Machine.Handle(new Tick()));
            Settle();
        }

        /// <summary>Starts both nodes and waits until they are PRIM/SECOND.</summary>
        public void StartBoth()
        {
            Start("n1");
            Start("n2");
            Advance(TimeSpan.FromSeconds(5));
        }

        /// <summary>kill -9 / power loss: the process and its memory are gone, the disk record stays.</summary>
        public void Crash(string node)
        {
            var n = Nodes[node];
            n.EngineUp = false;
            n.ApplicationRunning = false;
            n.Pending.Clear();
            Settle();
        }

        /// <summary>Both nodes lose power at the same instant.</summary>
        public void CrashBoth()
        {
            foreach (var n in Nodes.Values)
            {
                n.EngineUp = false;
                n.ApplicationRunning = false;
                n.Pending.Clear();
            }
        }

        public void Boot(string node)
        {
            var n = Nodes[node];
            n.Machine = NewMachine(n.Name, Other(n).Name, n.Persisted, Failover, Witness, InitialPrimary);
            n.EngineUp = true;
            Settle();
        }

        public string Describe() => string.Join("; ", Nodes.Values.Select(n =>
            $"{n.Name}: {(n.EngineUp ? MirrorStateMachine.Name(n.State) + (n.Machine.Ready ? "" : "(T)") + " " + n.Machine.Reason + " gen " + n.Machine.Disk.Generation : "down")}"));
    }
}
