// What one simulated run is made of: the seed, the cluster configuration, the fault mix, and which
// protection (if any) the simulator switches off to show that the invariants catch its absence.
using System;

namespace ServiceKeeper.Simulation
{
    /// <summary>
    /// Protections the simulator can switch off to show that the invariant relying on each is then reported: the
    /// machine's own (MirrorSafety) and the host's (write acknowledgement, resync) as the simulator models it.
    /// </summary>
    [Flags]
    public enum Protection
    {
        None = 0,
        /// <summary>MirrorSafety.IgnoreWitness: the machine decides as if no witness were configured.</summary>
        WitnessCheck = 1,
        /// <summary>MirrorSafety.IgnoreGenerations: every generation comparison says "same".</summary>
        GenerationComparison = 2,
        /// <summary>Replication acknowledges a write to the application before the secondary applied it.</summary>
        WriteAckWait = 4,
        /// <summary>MirrorSafety.IgnoreStaleness: the machine treats its data as up to date whatever its record says.</summary>
        StaleCheck = 8,
        /// <summary>A resynchronisation never completes (the copy always breaks): nothing brings a returning node back.</summary>
        Resync = 16,
    }

    /// <summary>The kinds of fault a run draws from.</summary>
    [Flags]
    public enum FaultKind
    {
        None = 0,
        Crash = 1,
        Partition = 2,
        /// <summary>Packet loss at a node's port (one way or both): heartbeats, replication (retransmitted) and witness pings.</summary>
        PacketLoss = 4,
        DelayReorderDuplicate = 8,
        DiskStall = 16,
        ApplicationFailure = 32,
        AdminCommand = 64,
        All = Crash | Partition | PacketLoss | DelayReorderDuplicate | DiskStall | ApplicationFailure | AdminCommand,
    }

    public sealed record SimOptions
    {
        /// <summary>The kinds of fault drawn during the fault phase.</summary>
        public FaultKind Faults { get; init; } = FaultKind.All;
        public int Seed { get; init; }
        /// <summary>A split-brain witness is configured; null: chosen by the seed (half of the runs).</summary>
        public bool? Witness { get; init; }
        /// <summary>Protections switched off (to prove the simulator notices).</summary>
        public Protection Off { get; init; }
        /// <summary>Faults (and admin commands) happen during this much simulated time, then stop.</summary>
        public TimeSpan FaultPhase { get; init; } = TimeSpan.FromSeconds(120);
        /// <summary>After the faults stop, the cluster must reach PRIM + SECOND within this bound.</summary>
        public TimeSpan ConvergenceBound { get; init; } = TimeSpan.FromSeconds(60);
        /// <summary>Mean simulated time between two faults.</summary>
        public TimeSpan MeanFaultInterval { get; init; } = TimeSpan.FromSeconds(3);
        /// <summary>Keep a readable trace of every step (replays keep it; batch runs replay a failing seed to get it).</summary>
        public bool Trace { get; init; }
        /// <summary>Crashes may tear the action list of the step they interrupt (later actions never happen): persistent state torn.</summary>
        public bool TornCrashes { get; init; } = true;
        /// <summary>Port cuts and port losses may be one-way (only incoming or only outgoing traffic).</summary>
        public bool OneWayCuts { get; init; } = true;

        /// <summary>The fault mix without the triggers of the engine findings reported so far (admin commands, one-way cuts,
        /// torn crashes): a baseline that must stay clean, against which switched-off protections must show.</summary>
        public SimOptions Core() => this with { Faults = Faults & ~FaultKind.AdminCommand, OneWayCuts = false, TornCrashes = false };
    }
}
