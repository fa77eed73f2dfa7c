using System;
using System.Linq;
using System.Text;
using ServiceKeeper.Engine.Heartbeat;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Heartbeat
{
    public class HeartbeatPacketTests
    {
        internal static readonly Guid Cluster = Guid.Parse("6f9c2d1e-3b4a-4c5d-8e7f-0a1b2c3d4e5f");
        internal static readonly byte[] Key = Enumerable.Range(1, 32).Select(i => (byte)(i * 7)).ToArray();

        private static HeartbeatPacket Sample(byte[]? payload = null) => new(
            Cluster, "sql", "n1", Incarnation: 0x0102030405060708UL, Sequence: 42, Ring: 1,
            SendTimeUnixMs: 1_760_000_000_123, Payload: payload ?? "PRIM gen=7"u8.ToArray());

        private static DecodeError Decode(ReadOnlySpan<byte> data, out HeartbeatPacket? packet)
        {
            HeartbeatPacket.TryDecode(data, Cluster, Key, out packet, out var error);
            return error;
        }

        [Fact]
        public void RoundTrip_KeepsEveryField()
        {
            var sent = Sample();
            var bytes = sent.Encode(Key);

            Assert.True(HeartbeatPacket.TryDecode(bytes, Cluster, Key, out var got, out var error));
            Assert.Equal(DecodeError.None, error);
            Assert.Equal(sent with { Payload = got.Payload }, got);
            Assert.Equal(sent.Payload, got.Payload);
            Assert.Equal(sent.EncodedLength, bytes.Length);
        }

        [Fact]
        public void RoundTrip_EmptyPayloadAndUnicodeNames()
        {
            var sent = Sample([]) with { Module = "base-données", Sender = "nœud-2", Ring = 7, Sequence = ulong.MaxValue };

            Assert.True(HeartbeatPacket.TryDecode(sent.Encode(Key), Cluster, Key, out var got, out _));
            Assert.Equal("base-données", got.Module);
            Assert.Equal("nœud-2", got.Sender);
            Assert.Equal(7, got.Ring);
            Assert.Equal(ulong.MaxValue, got.Sequence);
            Assert.Empty(got.Payload);
        }

        [Fact]
        public void LargestPacket_FitsOneUnfragmentedDatagramOn1500Mtu()
        {
            var name = new string('m', HeartbeatPacket.MaxNameBytes);
            var sent = Sample(new byte[HeartbeatPacket.MaxPayloadBytes]) with { Module = name, Sender = name };

            var bytes = sent.Encode(Key);

            Assert.Equal(HeartbeatPacket.MaxBytes, bytes.Length);
            Assert.True(bytes.Length <= 1500 - 20 - 8, $"{bytes.Length} bytes do not fit in a 1500-byte MTU");
            Assert.True(HeartbeatPacket.TryDecode(bytes, Cluster, Key, out _, out _));
        }

        [Fact]
        public void WireLayout_IsTheDocumentedOne()
        {
            var bytes = Sample([0xAA]).Encode(Key);

            Assert.Equal("SKHB"u8.ToArray(), bytes[..4]);
            Assert.Equal(1, bytes[4]);
            Assert.Equal(0, bytes[5]);
            Assert.Equal(Cluster.ToByteArray(bigEndian: true), bytes[6..22]);
            Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, bytes[22..30]);
            Assert.Equal(42, bytes[37]);
            Assert.Equal(1, bytes[46]);
            Assert.Equal(3, bytes[47]);
            Assert.Equal("sql"u8.ToArray(), bytes[48..51]);
            Assert.Equal(2, bytes[51]);
            Assert.Equal("n1"u8.ToArray(), bytes[52..54]);
            Assert.Equal(new byte[] { 0, 1, 0xAA }, bytes[54..57]);
            Assert.Equal(57 + 32, bytes.Length);
        }

        [Fact]
        public void EverySingleBitFlip_IsRejected_WrongClusterOnlyInsideTheClusterId()
        {
            var bytes = Sample().Encode(Key);
            var flipped = new byte[bytes.Length];

            for (var bit = 0; bit < bytes.Length * 8; bit++)
            {
                bytes.CopyTo(flipped, 0);
                flipped[bit / 8] ^= (byte)(1 << (bit % 8));

                var error = Decode(flipped, out var packet);

                Assert.Null(packet);
                var inClusterId = bit / 8 is >= 6 and < 22;
                if (inClusterId) Assert.Equal(DecodeError.WrongCluster, error);
                else Assert.True(error is DecodeError.Forged or DecodeError.Malformed, $"bit {bit}: {error}");
            }
        }

        [Fact]
        public void EveryTruncationAndExtension_IsMalformed()
        {
            var bytes = Sample().Encode(Key);

            for (var length = 0; length < bytes.Length; length++)
                Assert.Equal(DecodeError.Malformed, Decode(bytes.AsSpan(0, length), out _));
            Assert.Equal(DecodeError.Malformed, Decode([.. bytes, 0], out _));
        }

        [Fact]
        public void RandomGarbageAndMutations_TenThousandSeededCases_NeverThrowNeverAccept()
        {
            var random = new Random(20251125);
            var valid = Sample().Encode(Key);
            for (var i = 0; i < 10_000; i++)
            {
                byte[] data;
                switch (i % 4)
                {
                    case 0: // pure noise of any length, up to past the maximum
                        data = new byte[random.Next(0, HeartbeatPacket.MaxBytes + 64)];
                        random.NextBytes(data);
                        break;
                    case 1: // a valid header followed by noise: reaches the length and name parsing
                        data = new byte[random.Next(0, 300)];
                        random.NextBytes(data);
                        data = [.. valid.AsSpan(0, Math.Min(valid.Length, random.Next(0, 60))), .. data];
                        break;
                    case 2: // a valid packet with a few bytes changed
                        data = (byte[])valid.Clone();
                        for (var k = random.Next(1, 6); k > 0; k--) data[random.Next(data.Length)] ^= (byte)random.Next(1, 256);
                        break;
                    default: // a valid packet, truncated or extended at random
                        data = new byte[random.Next(0, valid.Length * 2)];
                        random.NextBytes(data);
                        valid.AsSpan(0, Math.Min(valid.Length, data.Length)).CopyTo(data);
                        if (data.Length == valid.Length) data[^1] ^= 1;
                        break;
                }

                var accepted = HeartbeatPacket.TryDecode(data, Cluster, Key, out var packet, out var error);

                Assert.False(accepted, $"case {i} accepted");
                Assert.Null(packet);
                Assert.NotEqual(DecodeError.None, error);
            }
        }

        [Fact]
        public void PacketOfAnotherCluster_IsWrongCluster_EvenWithTheSameKey()
        {
            var other = Sample() with { ClusterId = Guid.NewGuid() };

            Assert.Equal(DecodeError.WrongCluster, Decode(other.Encode(Key), out _));
        }

        [Fact]
        public void PacketSignedWithAnotherKey_IsForged()
        {
            var bytes = Sample().Encode(Encoding.ASCII.GetBytes("not the cluster key, but long enough"));

            Assert.Equal(DecodeError.Forged, Decode(bytes, out _));
        }

        [Fact]
        public void OtherVersionOrFlags_AreMalformed()
        {
            var bytes = Sample().Encode(Key);
            var v2 = (byte[])bytes.Clone();
            v2[4] = 2;
            var flags = (byte[])bytes.Clone();
            flags[5] = 1;

            Assert.Equal(DecodeError.Malformed, Decode(v2, out _));
            Assert.Equal(DecodeError.Malformed, Decode(flags, out _));
        }

        [Theory]
        [InlineData("", "n1", 0, 0)]
        [InlineData("sql", "", 0, 0)]
        [InlineData("sql", "n1", 8, 0)]
        [InlineData("sql", "n1", -1, 0)]
        [InlineData("sql", "n1", 0, 1025)]
        public void Encode_RefusesPacketsOutsideTheFormat(string module, string sender, int ring, int payload)
        {
            var packet = Sample(new byte[payload]) with { Module = module, Sender = sender, Ring = ring };

            Assert.Throws<ArgumentException>(() => packet.Encode(Key));
        }

        [Fact]
        public void Encode_RefusesNamesLongerThan63Bytes()
        {
            var packet = Sample() with { Sender = new string('é', 32) }; // 64 UTF-8 bytes

            Assert.Throws<ArgumentException>(() => packet.Encode(Key));
        }
    }
}
