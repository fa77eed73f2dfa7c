// The data the farm machine reasons about: its settings, what a node gossips in its heartbeats (the
// view), its events (inputs) and actions (outputs). No behaviour here: see FarmMachine.
using System;
using System.Collections.Generic;
using System.Linq;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Configuration;

namespace ServiceKeeper.Engine.Farm
{
    public enum FarmStateName { Stop, Wait, Up }

    /// <summary>Module settings the farm machine needs (from userconfig.xml and the module's install).</summary>
    /// <param name="Module">module name (first word of every transition log line).</param>
    /// <param name="Node">this node.</param>
    /// <param name="Nodes">every node of the module, this one included.</param>
    /// <param name="Powers">power per node (absent: 1; 0: owns no bucket).</param>
    /// <param name="PeerTimeout">how long a silent peer takes to be declared lost (pulse x lost count). A node that
    /// joins without hearing every peer waits this long before it takes buckets alone, and a view change whose
    /// peers never agree is applied after this long anyway.</param>
    /// <param name="DrainTimeout">the longest a drain waits for open connections before it stops anyway.</param>
    public sealed record FarmSettings(
        string Module, string Node, IReadOnlyList<string> Nodes, IReadOnlyDictionary<string, int> Powers,
        TimeSpan PeerTimeout, int MaxLoop, TimeSpan LoopInterval, TimeSpan DrainTimeout)
    {
        /// <summary>How often a draining node counts its open connections.</summary>
        public TimeSpan DrainPoll { get; init; } = TimeSpan.FromMilliseconds(500);

        public int PowerOf(string node) => Powers.TryGetValue(node, out var p) ? p : 1;
    }

    /// <summary>A command that does not fit the current state; nothing was changed.</summary>
    public sealed class FarmCommandException(string errorId, string message) : Exception(message)
    {
        public string ErrorId { get; } = errorId;
    }

    /// <summary>
    /// One member of a view: a node in the map, and the epoch of its current stay in the map (a fresh,
    /// increasing number each time it joins). Two views agree only when they name the same stays, so a
    /// view gossiped before a node left and rejoined never passes for agreement with the new stay.
    /// </summary>
    public readonly record struct FarmMember(string Node, long Epoch)
    {
        public override string ToString() => $"{Node}:{Epoch}";
    }

    /// <summary>
    /// What a node says about itself in every heartbeat: its state, whether it is in the bucket map (and
    /// since which epoch), and the members of the view it has applied to its filter, sorted by node.
    /// Peers take buckets only once every member's view equals theirs (see FarmMachine).
    /// </summary>
    public sealed record FarmView(string Node, FarmStateName State, bool InMap, long Epoch, IReadOnlyList<FarmMember> Members)
    {
        /// <summary>
        /// UP, in the map and done joining: the node has heard every live peer (or waited PeerTimeout for the silent ones)
        /// and has been connected since, so a node its members leave out is lost to it or out of the map. False from
        /// peers that do not send it (older engines): the safe value.
        /// </summary>
        public bool Settled { get; init; }

        public bool SameMembers(IReadOnlyList<FarmMember> other)
        {
            // Called for every peer on every heartbeat: no LINQ enumerators here.
            if (ReferenceEquals(Members, other)) return true;
            if (other is null || Members.Count != other.Count) return false;
            for (var i = 0; i < Members.Count; i++)
                if (!Members[i].Equals(other[i])) return false;
            return true;
        }

        public override string ToString() =>
            $"{Node} {FarmMachine.Name(State)}{(InMap ? $" in map since {Epoch}" : "")}{(Settled ? " settled" : "")} [{string.Join(",", Members)}]";
    }

    /// <summary>Inputs of the farm machine.</summary>
    public abstract record FarmEvent;
    public sealed record FarmStartCommand : FarmEvent;
    /// <summary>Stop here; with Drain, new connections go elsewhere at once and the open ones finish first.</summary>
    public sealed record FarmStopCommand(bool Drain = false) : FarmEvent;
    public sealed record FarmRestartCommand : FarmEvent;
    public sealed record FarmMaintenanceCommand(bool? Checkers, bool? Errd) : FarmEvent;
    /// <summary>A heartbeat from a peer with its current view (on every change at least).</summary>
    public sealed record FarmPeerHeard(FarmView View) : FarmEvent;
    /// <summary>No heartbeat from this peer on any network for the timeout.</summary>
    public sealed record FarmPeerLost(string Node) : FarmEvent;
    /// <summary>A checker's resource flipped (errd, tcp, custom... and the host's link.&lt;interface&gt;).</summary>
    public sealed record FarmResourceChanged(string Resource, ResourceValue Value, CheckAction Action, bool IsErrd, string Reason) : FarmEvent;
    /// <summary>A procedure the machine asked for has finished.</summary>
    public sealed record FarmProcedureDone(FarmProcedure Procedure, bool Succeeded, string? Detail = null) : FarmEvent;
    /// <summary>The host read the kernel filter back (for <see cref="FarmMachine.FilterVersion"/> = Version).</summary>
    /// <param name="Problems">what is wrong, in words; empty: intact and holding exactly the owned buckets.</param>
    /// <param name="VipMissing">the VIP address is gone from the interface.</param>
    public sealed record FarmFilterChecked(int Version, IReadOnlyList<string> Problems, bool VipMissing = false) : FarmEvent;
    /// <summary>Answer to <see cref="CountConnections"/>: established connections to the VIP here (null: unknown).</summary>
    public sealed record FarmConnectionsCounted(int? Open) : FarmEvent;
    /// <summary>Periodic (about every pulse): lets deadlines pass.</summary>
    public sealed record FarmTick : FarmEvent;

    /// <summary>Slow work the host runs outside the machine, one at a time, answering with FarmProcedureDone.</summary>
    public enum FarmProcedure
    {
        /// <summary>prestart script.</summary>
        Prestart,
        /// <summary>start_both.</summary>
        StartApplication,
        /// <summary>stop_both (graceful, then force).</summary>
        StopApplication,
        /// <summary>poststop script.</summary>
        Poststop,
    }

    /// <summary>Outputs of the farm machine, executed by the host in order, before it gossips the new view.</summary>
    public abstract record FarmAction;
    public sealed record RunFarmProcedure(FarmProcedure Procedure) : FarmAction;
    /// <summary>
    /// Make the kernel filter accept exactly <paramref name="Owned"/>. Install: write the whole ruleset (both
    /// tables, atomically, also repairing a flushed one); otherwise only the owned set changes.
    /// </summary>
    public sealed record ApplyFilter(IReadOnlyList<int> Owned, bool Install, int Version) : FarmAction;
    /// <summary>Delete the module's tables and leave the multicast MAC.</summary>
    public sealed record RemoveFilter : FarmAction;
    /// <summary>Add the VIP to the interface (always after the filter is installed: see FarmMachine).</summary>
    public sealed record AddVip : FarmAction;
    public sealed record RemoveVip : FarmAction;
    /// <summary>Run the module's checkers / stop them (their resources go back to init).</summary>
    public sealed record SetCheckers(bool Running) : FarmAction;
    /// <summary>Count established connections to the VIP; answer with FarmConnectionsCounted.</summary>
    public sealed record CountConnections : FarmAction;
    /// <summary>The nft.&lt;module&gt; resource (Get-SKResource) flips.</summary>
    public sealed record SetFilterResource(ResourceValue Value, string Reason) : FarmAction;
    public sealed record FarmLog(string Text) : FarmAction;
}
