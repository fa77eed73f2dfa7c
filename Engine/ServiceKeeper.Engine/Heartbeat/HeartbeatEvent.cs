// What a heartbeat channel tells its owner. Raised on the heartbeat service's own threads: the owner hands
// each event to its actor loop at once (ChannelWriter.TryWrite or similar) and never blocks in the callback,
// since a blocked callback delays every heartbeat of the channel.
namespace ServiceKeeper.Engine.Heartbeat
{
    public abstract record HeartbeatEvent(string Node);

    /// <summary>The newest payload of a peer, delivered once per send round whichever ring brought it first.
    /// A new <paramref name="Incarnation"/> means the peer's engine restarted.</summary>
    public sealed record PeerMessage(string Node, int Ring, ulong Incarnation, byte[] Payload) : HeartbeatEvent(Node);

    /// <summary>Nothing heard from the peer on this ring for longer than the timeout. Informational: the peer
    /// is lost only when every ring is down.</summary>
    public sealed record RingDown(string Node, int Ring) : HeartbeatEvent(Node);

    public sealed record RingUp(string Node, int Ring) : HeartbeatEvent(Node);

    /// <summary>Nothing heard on any ring for longer than the timeout, including a peer never heard since the
    /// channel opened (so an owner waiting for its peer gets a definite answer after one timeout).</summary>
    public sealed record PeerLost(string Node) : HeartbeatEvent(Node);

    /// <summary>The first authenticated packet after the channel opened or after <see cref="PeerLost"/>.</summary>
    public sealed record PeerFound(string Node) : HeartbeatEvent(Node);
}
