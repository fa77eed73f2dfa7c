// The data the mirror state machine reasons about: its persisted record, what the peer says, its
// events (inputs) and actions (outputs). No behaviour here: see MirrorStateMachine.
using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Configuration;

namespace ServiceKeeper.Engine.Mirror
{
    public enum MirrorStateName { Stop, Wait, Alone, Prim, Second }

    /// <summary>
    /// What a node remembers about its data across restarts (state/mirror.json), as DRBD remembers
    /// generation identifiers. A node that serves without its peer starts a new generation; the old one
    /// goes to History. Comparing generations on reconnection says who is ahead, who is behind, and
    /// when both served alone (diverged: split brain, never merged silently).
    /// </summary>
    /// <param name="Generation">the data's generation; null before the first start.</param>
    /// <param name="History">earlier generations, newest first (bounded).</param>
    /// <param name="Consistent">the data is a complete copy of Generation (false while a resync is incomplete).</param>
    /// <param name="UpToDate">no other node can hold newer data: true only for the node that served alone last.
    /// While both nodes are connected it is false on both, because either may go on without the other.</param>
    /// <param name="Authoritative">an admin forced this node's data over the other's (prim -Force): a diverged
    /// peer is resynchronised from it instead of being reported.</param>
    /// <param name="LastPrimary">the node that was primary when both last saw each other.</param>
    public sealed record MirrorDisk(
        string? Generation, ImmutableList<string> History, bool Consistent, bool UpToDate, bool Authoritative, string? LastPrimary)
    {
        public const int HistoryLength = 8;

        public static readonly MirrorDisk Empty = new(null, ImmutableList<string>.Empty, false, false, false, null);

        public MirrorDisk NewGeneration(string id) => this with
        {
            Generation = id,
            History = Generation == null ? History : History.Insert(0, Generation).Bounded(HistoryLength),
            Consistent = true,
        };
    }

    internal static class ImmutableListExtensions
    {
        public static ImmutableList<T> Bounded<T>(this ImmutableList<T> list, int count) =>
            list.Count <= count ? list : list.RemoveRange(count, list.Count - count);
    }

    /// <summary>What the peer's heartbeats say (the mirror payload).</summary>
    /// <param name="LostPeer">a ready secondary no longer hears its primary and is deciding to take over: a primary that
    /// still hears it steps down (heartbeats lost one way only, or writes it could not replicate must not be acknowledged).</param>
    /// <param name="LastPrimary">the peer's record of the last primary: both nodes break a tie the same way only when they agree.</param>
    /// <param name="SecondRequested">the admin made the peer secondary (Set-SKSecondary): it waits for this node to serve
    /// and will not serve itself, whatever the two nodes' data say.</param>
    public sealed record PeerView(
        string Node, MirrorStateName State, bool Ready, string? Generation, IReadOnlyList<string> History,
        bool Consistent, bool UpToDate, bool Authoritative, bool HandOver, bool Starting, bool LostPeer = false, string? LastPrimary = null,
        bool SecondRequested = false)
    {
        public bool IsServing => State is MirrorStateName.Alone or MirrorStateName.Prim;
    }

    /// <summary>How two nodes' data relate, from generations alone.</summary>
    public enum DataRelation { Same, Ahead, Behind, Diverged, Unknown }

    /// <summary>Inputs of the state machine.</summary>
    public abstract record MirrorEvent;
    public sealed record StartCommand : MirrorEvent;
    public sealed record StopCommand : MirrorEvent;
    public sealed record RestartCommand : MirrorEvent;
    public sealed record SwapCommand : MirrorEvent;
    public sealed record PrimCommand(bool Force) : MirrorEvent;
    public sealed record SecondCommand(bool FullSync) : MirrorEvent;
    public sealed record MaintenanceCommand(bool? Checkers, bool? Errd, bool? Failover) : MirrorEvent;
    /// <summary>A heartbeat with the peer's current view (every pulse and on every change).</summary>
    public sealed record PeerHeard(PeerView Peer) : MirrorEvent;
    /// <summary>No heartbeat on any network for the timeout.</summary>
    /// <param name="At">when the heartbeat layer found it (it runs on its own threads: a machine stalled on its disk handles
    /// the loss later); null: now.</param>
    public sealed record PeerLost(DateTimeOffset? At = null) : MirrorEvent;
    public sealed record ResourceChanged(string Resource, ResourceValue Value, CheckAction Action, CheckWhen When, bool IsErrd, string Reason) : MirrorEvent;
    /// <summary>A procedure the machine asked for has finished.</summary>
    public sealed record ProcedureDone(Procedure Procedure, bool Succeeded, string? Detail = null) : MirrorEvent;
    /// <summary>Periodic: lets deadlines (start-up wait, loop interval) pass.</summary>
    public sealed record Tick : MirrorEvent;
    /// <summary>
    /// Primary side of replication: the secondary stopped acknowledging writes (send timeout, connection broken)
    /// while heartbeats may still flow. The application's writes are blocked until the machine answers.
    /// </summary>
    public sealed record ReplicationLost(string Reason) : MirrorEvent;
    /// <summary>The answer to ProbeWitnessAside: whether any split-brain witness answered.</summary>
    public sealed record WitnessProbed(bool Reachable) : MirrorEvent;

    /// <summary>
    /// Protections the machine relies on, all on by default. Only tests and the simulator switch one off, to show
    /// that the invariant it protects is then reported as broken.
    /// </summary>
    /// <param name="IgnoreWitness">decide as if no split-brain witness were configured (never probe it).</param>
    /// <param name="IgnoreGenerations">compare data generations as "the same" whatever they are.</param>
    /// <param name="IgnoreStaleness">treat this node's data as up to date whatever its record says.</param>
    public sealed record MirrorSafety(bool IgnoreWitness = false, bool IgnoreGenerations = false, bool IgnoreStaleness = false)
    {
        public static readonly MirrorSafety On = new();
    }

    /// <summary>Slow work the host runs outside the machine, one at a time, answering with ProcedureDone.</summary>
    public enum Procedure
    {
        /// <summary>prestart script.</summary>
        Prestart,
        /// <summary>add the VIP, announce it, run start_prim.</summary>
        StartApplication,
        /// <summary>run stop_prim (graceful, then force), remove the VIP.</summary>
        StopApplication,
        /// <summary>poststop script.</summary>
        Poststop,
        /// <summary>copy what differs from the primary (secondary side).</summary>
        Resync,
        /// <summary>is any split-brain witness reachable from here, right now?</summary>
        ProbeWitness,
    }

    /// <summary>Outputs of the state machine, executed by the module host in order.</summary>
    public abstract record MirrorAction;
    /// <summary>Write the disk record before anything that follows.</summary>
    public sealed record PersistAction(MirrorDisk Disk) : MirrorAction;
    /// <param name="GiveWay">StopApplication because the other node serves or may take over: the host removes the virtual IPs
    /// before stop_prim, so that clients leave this node at once and no write is acknowledged here any more. ProbeWitness of a
    /// serving node: when no witness answers, the host removes the virtual IPs as the probe ends (the machine then gives way,
    /// even if it is stalled until later).</param>
    /// <param name="TakeOver">ProbeWitness before a takeover: only answers to the first ping count. A witness that answers only
    /// a retry shows that this node's own cut healed meanwhile: at the loss it was the isolated one, and the primary, which
    /// heard its witness then, serves on.</param>
    public sealed record RunProcedure(Procedure Procedure, bool FullSync = false, bool GiveWay = false, bool TakeOver = false) : MirrorAction;
    /// <summary>Send writes to the peer (primary side) / stop sending. On StopReplication the host completes the writes
    /// still waiting for the secondary into the dirty journal: the machine persists the generation they belong to first.</summary>
    public sealed record StartReplication : MirrorAction;
    public sealed record StopReplication : MirrorAction;
    /// <summary>This node gives way while its writes wait for a secondary that no longer answers: they, and every write
    /// until it serves again, fail with an I/O error (never acknowledged), so the application stops at once.</summary>
    public sealed record FenceWrites : MirrorAction;
    /// <summary>Probe the split-brain witnesses now, beside the running procedure (the peer was lost while the application
    /// starts here); answered with WitnessProbed. When none answers, the host removes the virtual IPs before it answers, and
    /// the StartApplication under way does not add them back: this node gives way once start_prim has ended.</summary>
    public sealed record ProbeWitnessAside : MirrorAction;
    /// <summary>Run the module's checkers of class prim / stop them.</summary>
    public sealed record SetPrimaryCheckers(bool Running) : MirrorAction;
    public sealed record LogAction(string Text) : MirrorAction;
}
