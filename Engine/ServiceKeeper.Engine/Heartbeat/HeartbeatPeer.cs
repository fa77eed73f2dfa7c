using System.Collections.Generic;
using System.Net;

namespace ServiceKeeper.Engine.Heartbeat
{
    /// <summary>A peer of a channel: its node name and, per ring index (the cluster lan index), the endpoint
    /// its heartbeat service listens on.</summary>
    public sealed record HeartbeatPeer(string Node, IReadOnlyDictionary<int, IPEndPoint> Rings);
}
