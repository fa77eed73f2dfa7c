namespace ServiceKeeper.Engine.Heartbeat
{
    /// <summary>
    /// A snapshot of heartbeat counters, for a whole service or one channel. Sent and SendErrors count
    /// datagrams; Received counts authenticated packets accepted (fresh, late or a copy from another ring).
    /// Malformed, Forged and WrongCluster stay 0 on a channel: a packet that fails authentication cannot be
    /// trusted to name its module.
    /// </summary>
    public sealed record HeartbeatStatistics(
        long Sent, long Received, long Malformed, long Forged, long WrongCluster, long Replayed,
        long UnknownModule, long UnknownPeer, long Misrouted, long SendErrors);
}
