namespace ServiceKeeper.Engine.Heartbeat
{
    /// <summary>Why a datagram was not accepted as a heartbeat; each reason has its own counter.</summary>
    public enum DecodeError
    {
        None,

        /// <summary>Not a heartbeat of this version: bad magic, version, lengths, names or trailing bytes.</summary>
        Malformed,

        /// <summary>Well formed, from another cluster on the same network; ignored, not an attack.</summary>
        WrongCluster,

        /// <summary>Well formed, this cluster's id, but the HMAC does not match: altered or forged.</summary>
        Forged,
    }
}
