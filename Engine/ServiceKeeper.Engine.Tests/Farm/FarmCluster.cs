// A tiny in-memory farm for FarmMachine tests: N machines on one fake clock, their actions carried out
// on a model of the kernel filter, views gossiped between connected nodes in FIFO order, and the
// "no bucket with two owners among nodes that see each other" invariant checked after every event.
using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.Extensions.Time.Testing;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Farm;

namespace ServiceKeeper.Engine.Tests.Farm
{
    internal sealed class FarmCluster
    {
        public static readonly TimeSpan PeerTimeout = TimeSpan.FromSeconds(1.5);
        private readonly Queue<(string Node, FarmEvent Event)> _queue = new();

        public FarmCluster(int count, IReadOnlyDictionary<string, int>? powers = null, int maxLoop = 3)
        {
            var names = Enumerable.Range(1, count).Select(i => "n" + i).ToList();
            foreach (var name in names)
            {
                var settings = new FarmSettings("www", name, names, powers ?? new Dictionary<string, int>(), PeerTimeout,
                    maxLoop, TimeSpan.FromHours(24), TimeSpan.FromMinutes(5));
                Nodes[name] = new Node(name, new FarmMachine(settings, Time));
            }
        }

        public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        public Dictionary<string, Node> Nodes { get; } = new(StringComparer.Ordinal);
        public Node this[string name] => Nodes[name];
        /// <summary>While true, views are not delivered (they are delivered when it goes false and Pump runs).</summary>
        public bool HoldGossip { get; set; }
        public List<string> Violations { get; } = new();

        public sealed class Node(string name, FarmMachine machine)
        {
            public string Name { get; } = name;
            public FarmMachine Machine { get; } = machine;
            public SortedSet<int>? Filter { get; set; }
            public bool Vip { get; set; }
            public bool Checkers { get; set; }
            public bool Connected { get; set; } = true;
            public int? OpenConnections { get; set; } = 0;
            /// <summary>Procedures answer at once (with Outcome) unless false: then they wait in Pending.</summary>
            public bool AutoComplete { get; set; } = true;
            public Func<FarmProcedure, bool> Outcome { get; set; } = _ => true;
            public List<FarmProcedure> Pending { get; } = new();
            public List<FarmAction> Actions { get; } = new();
            public List<string> Log { get; } = new();
            public FarmView? LastSent { get; set; }
            public FarmStateName State => Machine.State;
            public int Owned => Filter?.Count ?? 0;
        }

        public void Send(string node, FarmEvent e)
        {
            _queue.Enqueue((node, e));
            Pump();
        }

        public void StartAll()
        {
            foreach (var n in Nodes.Keys) Send(n, new FarmStartCommand());
        }

        public void Pump()
        {
            while (_queue.Count > 0)
            {
                var (name, e) = _queue.Dequeue();
                var node = Nodes[name];
                foreach (var action in node.Machine.Handle(e)) Carry(node, action);
                Gossip(node);
                CheckInvariant(name + " after " + e.GetType().Name);
            }
            if (!HoldGossip) foreach (var n in Nodes.Values) Gossip(n, force: true);
            if (_queue.Count > 0) Pump();
        }

        /// <summary>Advances the clock in pulse-sized steps, ticking every machine.</summary>
        public void Advance(TimeSpan span)
        {
            var end = Time.GetUtcNow() + span;
            while (Time.GetUtcNow() < end)
            {
                Time.Advance(TimeSpan.FromMilliseconds(100));
                foreach (var n in Nodes.Keys) _queue.Enqueue((n, new FarmTick()));
                Pump();
            }
        }

        /// <summary>The node's cable is pulled: its link resource goes down, then both sides declare each other lost.</summary>
        public void Cut(string name, bool linkDown = true)
        {
            Nodes[name].Connected = false;
            if (linkDown) Send(name, new FarmResourceChanged("link.eth0", ResourceValue.Down, CheckAction.Wait, false, "no carrier"));
            foreach (var other in Nodes.Values.Where(n => n.Name != name))
            {
                _queue.Enqueue((other.Name, new FarmPeerLost(name)));
                _queue.Enqueue((name, new FarmPeerLost(other.Name)));
            }
            Pump();
        }

        public void Heal(string name, bool linkUp = true)
        {
            Nodes[name].Connected = true;
            foreach (var n in Nodes.Values) n.LastSent = null;
            if (linkUp) _queue.Enqueue((name, new FarmResourceChanged("link.eth0", ResourceValue.Up, CheckAction.Wait, false, "carrier")));
            Pump();
        }

        public void Complete(string name, FarmProcedure procedure, bool ok = true)
        {
            var node = Nodes[name];
            Assert(node.Pending.Remove(procedure), $"{name} has no pending {procedure}");
            Send(name, new FarmProcedureDone(procedure, ok));
        }

        /// <summary>Every bucket has exactly one owner among the connected nodes.</summary>
        public bool Covered() =>
            Enumerable.Range(0, BucketMap.BucketCount).All(b => Nodes.Values.Count(n => n.Connected && n.Filter?.Contains(b) == true) == 1);

        public string Describe() => string.Join("; ", Nodes.Values.Select(n =>
            $"{n.Name} {FarmMachine.Name(n.State)}{(n.Machine.Ready ? "" : "(T)")} owns {n.Owned} [{string.Join(",", n.Machine.Members)}]"));

        private void Carry(Node node, FarmAction action)
        {
            node.Actions.Add(action);
            switch (action)
            {
                case ApplyFilter f:
                    Assert(f.Install || node.Filter != null, $"{node.Name}: owned set updated before the filter was installed");
                    node.Filter = new SortedSet<int>(f.Owned);
                    break;
                case RemoveFilter:
                    Assert(!node.Vip, $"{node.Name}: filter removed while the VIP is still there");
                    node.Filter = null;
                    break;
                case AddVip:
                    Assert(node.Filter != null, $"{node.Name}: VIP added before the filter");
                    node.Vip = true;
                    break;
                case RemoveVip: node.Vip = false; break;
                case SetCheckers s: node.Checkers = s.Running; break;
                case CountConnections: _queue.Enqueue((node.Name, new FarmConnectionsCounted(node.OpenConnections))); break;
                case RunFarmProcedure p:
                    if (node.AutoComplete) _queue.Enqueue((node.Name, new FarmProcedureDone(p.Procedure, node.Outcome(p.Procedure))));
                    else node.Pending.Add(p.Procedure);
                    break;
                case FarmLog l: node.Log.Add(l.Text); break;
            }
        }

        private void Gossip(Node from, bool force = false)
        {
            if (HoldGossip || !from.Connected) return;
            var view = from.Machine.View;
            if (!force && from.LastSent != null && Same(from.LastSent, view)) return;
            if (force && from.LastSent != null && Same(from.LastSent, view)) return;
            from.LastSent = view;
            foreach (var to in Nodes.Values.Where(n => n != from && n.Connected))
                _queue.Enqueue((to.Name, new FarmPeerHeard(view)));
        }

        private static bool Same(FarmView a, FarmView b) => a.State == b.State && a.InMap == b.InMap && a.Settled == b.Settled && a.SameMembers(b.Members);

        private void CheckInvariant(string when)
        {
            for (var b = 0; b < BucketMap.BucketCount; b++)
            {
                var owners = Nodes.Values.Where(n => n.Connected && n.Filter?.Contains(b) == true).Select(n => n.Name).ToList();
                if (owners.Count > 1) Violations.Add($"{when}: bucket {b} owned by {string.Join(" and ", owners)}");
            }
        }

        private static void Assert(bool condition, string message)
        {
            if (!condition) throw new InvalidOperationException(message);
        }
    }
}
