// One heartbeat datagram and its binary codec. Pure: no I/O, no clock; decoding never throws on hostile
// input, it says why it refused (DecodeError).
//
// Wire format, version 1 (integers big-endian):
//
//   off  len  field
//     0    4  magic "SKHB"
//     4    1  version = 1
//     5    1  flags = 0 (reserved; a v1 reader refuses anything else)
//     6   16  cluster id (GUID, RFC 4122 byte order)
//    22    8  incarnation (u64): changes at every start of the sender's engine
//    30    8  sequence (u64): per channel, +1 per send round; the copies sent on each ring share it
//    38    8  send time (i64, unix ms): informational only, clocks are not assumed to agree
//    46    1  ring index of the sender's socket (0..7)
//    47    1  module name length M (1..63)
//    48    M  module name (UTF-8)
//     .    1  sender node name length S (1..63)
//     .    S  sender node name (UTF-8)
//     .    2  payload length L (0..1024)
//     .    L  payload (opaque: the mirror/farm core owns it)
//     .   32  HMAC-SHA256(cluster key, every byte before it)
//
// At most 1233 bytes, so a heartbeat always fits one unfragmented datagram on a 1500-byte MTU.
using System;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;
using System.Text.Unicode;

namespace ServiceKeeper.Engine.Heartbeat
{
    public sealed record HeartbeatPacket(
        Guid ClusterId, string Module, string Sender, ulong Incarnation, ulong Sequence,
        int Ring, long SendTimeUnixMs, byte[] Payload)
    {
        public const byte Version = 1;
        public const int MaxNameBytes = 63;
        public const int MaxPayloadBytes = 1024;
        public const int MaxRings = 8;
        public const int MacBytes = 32;

        private const int FixedHeaderBytes = 47; // magic .. ring index
        private const int MinBytes = FixedHeaderBytes + 1 + 1 + 1 + 1 + 2 + MacBytes;

        public const int MaxBytes = FixedHeaderBytes + 1 + MaxNameBytes + 1 + MaxNameBytes + 2 + MaxPayloadBytes + MacBytes;

        private static ReadOnlySpan<byte> Magic => "SKHB"u8;

        /// <summary>Module and node names travel as 1..63 UTF-8 bytes (node names are at most 63 ASCII characters).</summary>
        public static bool IsValidName(string? name) =>
            !string.IsNullOrEmpty(name) && Encoding.UTF8.GetByteCount(name) is > 0 and <= MaxNameBytes;

        public int EncodedLength =>
            FixedHeaderBytes + 1 + Encoding.UTF8.GetByteCount(Module) + 1 + Encoding.UTF8.GetByteCount(Sender) + 2 + Payload.Length + MacBytes;

        public byte[] Encode(ReadOnlySpan<byte> key)
        {
            var bytes = new byte[EncodedLength];
            Encode(bytes, key);
            return bytes;
        }

        /// <summary>Writes the datagram into <paramref name="destination"/> and returns its length. Throws on a
        /// packet that breaks the format's limits: that is a bug of the caller, never input from the network.</summary>
        public int Encode(Span<byte> destination, ReadOnlySpan<byte> key)
        {
            if (!IsValidName(Module)) throw new ArgumentException($"Module name '{Module}' must be 1..{MaxNameBytes} UTF-8 bytes.");
            if (!IsValidName(Sender)) throw new ArgumentException($"Sender name '{Sender}' must be 1..{MaxNameBytes} UTF-8 bytes.");
            if (Payload.Length > MaxPayloadBytes) throw new ArgumentException($"Payload is {Payload.Length} bytes; at most {MaxPayloadBytes}.");
            if ((uint)Ring >= MaxRings) throw new ArgumentException($"Ring index {Ring} is outside 0..{MaxRings - 1}.");
            var length = EncodedLength;
            if (destination.Length < length) throw new ArgumentException($"Destination holds {destination.Length} bytes; the packet needs {length}.");

            Magic.CopyTo(destination);
            destination[4] = Version;
            destination[5] = 0;
            ClusterId.TryWriteBytes(destination.Slice(6, 16), bigEndian: true, out _);
            BinaryPrimitives.WriteUInt64BigEndian(destination.Slice(22), Incarnation);
            BinaryPrimitives.WriteUInt64BigEndian(destination.Slice(30), Sequence);
            BinaryPrimitives.WriteInt64BigEndian(destination.Slice(38), SendTimeUnixMs);
            destination[46] = (byte)Ring;
            var at = FixedHeaderBytes;
            at = WriteName(destination, at, Module);
            at = WriteName(destination, at, Sender);
            BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(at), (ushort)Payload.Length);
            at += 2;
            Payload.CopyTo(destination.Slice(at));
            at += Payload.Length;
            HMACSHA256.HashData(key, destination[..at], destination.Slice(at, MacBytes));
            return at + MacBytes;
        }

        /// <summary>
        /// Checks, in this order: structure (Malformed), cluster id (WrongCluster: a neighbour cluster is not an
        /// attack, and its key differs so its MAC would look forged), MAC in constant time (Forged).
        /// </summary>
        public static bool TryDecode(
            ReadOnlySpan<byte> data, Guid clusterId, ReadOnlySpan<byte> key,
            [NotNullWhen(true)] out HeartbeatPacket? packet, out DecodeError error)
        {
            packet = null;
            error = DecodeError.Malformed;
            if (data.Length < MinBytes || data.Length > MaxBytes) return false;
            if (!data[..4].SequenceEqual(Magic) || data[4] != Version || data[5] != 0) return false;
            int ring = data[46];
            if (ring >= MaxRings) return false;

            var at = FixedHeaderBytes;
            if (!TryReadName(data, ref at, out var module)) return false;
            if (!TryReadName(data, ref at, out var sender)) return false;
            if (at + 2 > data.Length) return false;
            int payloadLength = BinaryPrimitives.ReadUInt16BigEndian(data.Slice(at));
            at += 2;
            if (payloadLength > MaxPayloadBytes || at + payloadLength + MacBytes != data.Length) return false;
            var payload = data.Slice(at, payloadLength);
            at += payloadLength;

            var cluster = new Guid(data.Slice(6, 16), bigEndian: true);
            if (cluster != clusterId)
            {
                error = DecodeError.WrongCluster;
                return false;
            }

            Span<byte> mac = stackalloc byte[MacBytes];
            HMACSHA256.HashData(key, data[..at], mac);
            if (!CryptographicOperations.FixedTimeEquals(mac, data.Slice(at, MacBytes)))
            {
                error = DecodeError.Forged;
                return false;
            }

            // Strings are built only now: nothing is allocated for a packet that fails authentication.
            packet = new HeartbeatPacket(
                cluster, Encoding.UTF8.GetString(module), Encoding.UTF8.GetString(sender),
                BinaryPrimitives.ReadUInt64BigEndian(data.Slice(22)),
                BinaryPrimitives.ReadUInt64BigEndian(data.Slice(30)),
                ring,
                BinaryPrimitives.ReadInt64BigEndian(data.Slice(38)),
                payload.ToArray());
            error = DecodeError.None;
            return true;
        }

        private static int WriteName(Span<byte> destination, int at, string name)
        {
            var written = Encoding.UTF8.GetBytes(name, destination.Slice(at + 1));
            destination[at] = (byte)written;
            return at + 1 + written;
        }

        private static bool TryReadName(ReadOnlySpan<byte> data, ref int at, out ReadOnlySpan<byte> name)
        {
            name = default;
            if (at >= data.Length) return false;
            int length = data[at];
            if (length is 0 or > MaxNameBytes || at + 1 + length > data.Length) return false;
            name = data.Slice(at + 1, length);
            if (!Utf8.IsValid(name)) return false;
            at += 1 + length;
            return true;
        }
    }
}
