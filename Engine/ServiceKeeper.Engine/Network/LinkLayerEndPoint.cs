// sockaddr_ll as a .NET EndPoint, so AF_PACKET sockets can be bound and sent to through System.Net.Sockets.
using System;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace ServiceKeeper.Engine.Network
{
    /// <summary>An interface (and, for sending, a destination MAC) of an AF_PACKET socket.</summary>
    internal sealed class LinkLayerEndPoint : EndPoint
    {
        // struct sockaddr_ll: family u16, protocol be16 @2, ifindex i32 (host order) @4, hatype u16 @8,
        // pkttype u8 @10, halen u8 @11, addr u8[8] @12.
        private const int Size = 20;

        public LinkLayerEndPoint(int interfaceIndex, ushort etherType, ReadOnlySpan<byte> address = default)
        {
            if (address.Length > 8)
                throw new ArgumentException("A link-layer address has at most 8 bytes.", nameof(address));
            InterfaceIndex = interfaceIndex;
            EtherType = etherType;
            Address = address.ToArray();
        }

        public int InterfaceIndex { get; }

        public ushort EtherType { get; }

        public byte[] Address { get; }

        public override AddressFamily AddressFamily => AddressFamily.Packet;

        public override SocketAddress Serialize()
        {
            var socketAddress = new SocketAddress(AddressFamily.Packet, Size);
            var bytes = socketAddress.Buffer.Span;
            BinaryPrimitives.WriteUInt16BigEndian(bytes.Slice(2), EtherType);
            var index = InterfaceIndex;
            MemoryMarshal.Write(bytes.Slice(4), in index);
            bytes[11] = (byte)Address.Length;
            Address.CopyTo(bytes.Slice(12));
            return socketAddress;
        }

        public override EndPoint Create(SocketAddress socketAddress)
        {
            var bytes = socketAddress.Buffer.Span;
            var halen = Math.Min((int)bytes[11], 8);
            return new LinkLayerEndPoint(
                MemoryMarshal.Read<int>(bytes.Slice(4)),
                BinaryPrimitives.ReadUInt16BigEndian(bytes.Slice(2)),
                bytes.Slice(12, halen));
        }

        public override string ToString() => $"ifindex {InterfaceIndex}, ethertype 0x{EtherType:x4}";
    }
}
