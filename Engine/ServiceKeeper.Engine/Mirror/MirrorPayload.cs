// The mirror module's heartbeat payload: this node's view (state, data generations) as the peer reads it.
using System;
using System.Collections.Generic;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ServiceKeeper.Engine.Mirror
{
    public static class MirrorPayload
    {
        private sealed record Wire(
            [property: JsonPropertyName("s")] MirrorStateName State,
            [property: JsonPropertyName("r")] bool Ready,
            [property: JsonPropertyName("g")] string? Generation,
            [property: JsonPropertyName("h")] List<string> History,
            [property: JsonPropertyName("c")] bool Consistent,
            [property: JsonPropertyName("u")] bool UpToDate,
            [property: JsonPropertyName("a")] bool Authoritative,
            [property: JsonPropertyName("o")] bool HandOver,
            [property: JsonPropertyName("t")] bool Starting,
            [property: JsonPropertyName("l")] bool LostPeer = false,
            [property: JsonPropertyName("p")] string? LastPrimary = null,
            [property: JsonPropertyName("d")] bool SecondRequested = false);

        public static byte[] Encode(PeerView view) => JsonSerializer.SerializeToUtf8Bytes(new Wire(
            view.State, view.Ready, view.Generation, new List<string>(view.History), view.Consistent, view.UpToDate,
            view.Authoritative, view.HandOver, view.Starting, view.LostPeer, view.LastPrimary, view.SecondRequested));

        /// <summary>Null when the bytes are not a mirror payload (a peer of another version, a farm channel...).</summary>
        public static PeerView? Decode(string node, byte[] payload)
        {
            try
            {
                var w = JsonSerializer.Deserialize<Wire>(payload);
                if (w == null || !Enum.IsDefined(w.State)) return null;
                return new PeerView(node, w.State, w.Ready, w.Generation, w.History ?? [], w.Consistent, w.UpToDate, w.Authoritative, w.HandOver, w.Starting, w.LostPeer, w.LastPrimary, w.SecondRequested);
            }
            catch (JsonException)
            {
                return null;
            }
        }
    }
}
