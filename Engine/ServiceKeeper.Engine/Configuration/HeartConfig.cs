// Heartbeat settings: <heart> for a mirror, <farm> for a farm. Defaults detect a lost node in about
// 1.5 s; SafeKit's mirror default of 30 s is the figure to beat. A short pulse rather than a long
// timeout keeps false failovers away on a lossy network: see Heartbeat/HeartbeatDefaults.cs.
using System;
using System.Collections.Generic;

namespace ServiceKeeper.Engine.Configuration
{
    public sealed class HeartConfig
    {
        public static readonly TimeSpan DefaultPulse = Heartbeat.HeartbeatDefaults.MirrorPulse;
        public static readonly TimeSpan DefaultTimeout = Heartbeat.HeartbeatDefaults.MirrorTimeout;

        public TimeSpan Pulse { get; set; } = DefaultPulse;

        /// <summary>Peer lost after this long without a heartbeat on every lan; at least twice the pulse.</summary>
        public TimeSpan Timeout { get; set; } = DefaultTimeout;

        /// <summary>UDP port of the heartbeats; null lets the engine choose one per module.</summary>
        public int? Port { get; set; }

        /// <summary>Names of cluster.xml lans to send heartbeats on, one ring each. When the file lists none
        /// they are resolved against the cluster: every lan both nodes are on.</summary>
        public List<string> Heartbeats { get; set; } = new();
    }

    public sealed class FarmConfig
    {
        public static readonly TimeSpan DefaultPulse = Heartbeat.HeartbeatDefaults.FarmPulse;
        public const int DefaultMasterLostCount = Heartbeat.HeartbeatDefaults.FarmLostCount;
        public const int DefaultSlaveLostCount = Heartbeat.HeartbeatDefaults.FarmLostCount;

        public TimeSpan Pulse { get; set; } = DefaultPulse;

        /// <summary>mlost_count: pulses missed before the membership master is declared lost.</summary>
        public int MasterLostCount { get; set; } = DefaultMasterLostCount;

        /// <summary>slost_count: pulses missed before another node is declared lost.</summary>
        public int SlaveLostCount { get; set; } = DefaultSlaveLostCount;

        /// <summary>UDP port of the farm heartbeats; null lets the engine choose one per module.</summary>
        public int? Port { get; set; }

        /// <summary>Names of cluster.xml lans; resolved like <see cref="HeartConfig.Heartbeats"/>.</summary>
        public List<string> Lans { get; set; } = new();
    }
}
