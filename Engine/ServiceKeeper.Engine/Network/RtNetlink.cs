// RTM_NEWADDR / RTM_DELADDR over rtnetlink: the same requests `ip addr add|del` sends, without a process.
using System;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;

namespace ServiceKeeper.Engine.Network
{
    internal static class RtNetlink
    {
        private const ushort NLMSG_ERROR = 2;
        private const ushort RTM_NEWADDR = 20;
        private const ushort RTM_DELADDR = 21;

        private const ushort NLM_F_REQUEST = 0x1;
        private const ushort NLM_F_ACK = 0x4;
        private const ushort NLM_F_EXCL = 0x200;
        private const ushort NLM_F_CREATE = 0x400;
        private const ushort NLM_F_CAPPED = 0x100;
        private const ushort NLM_F_ACK_TLVS = 0x200;

        private const ushort IFA_ADDRESS = 1;
        private const ushort IFA_LOCAL = 2;
        private const byte IFA_F_NODAD = 0x02;
        private const byte RT_SCOPE_UNIVERSE = 0;

        private const int SOL_NETLINK = 270;
        private const int NETLINK_CAP_ACK = 10;
        private const int NETLINK_EXT_ACK = 11;
        private const ushort NLMSGERR_ATTR_MSG = 1;

        private const int HeaderSize = 16;      // struct nlmsghdr
        private const int IfAddrMsgSize = 8;    // struct ifaddrmsg

        public const int EEXIST = 17;
        public const int EADDRNOTAVAIL = 99;

        private static int s_sequence = Environment.TickCount;

        /// <summary>The kernel's answer to one request: 0 or a positive errno, and the kernel's own words when it gave some.</summary>
        public readonly record struct Ack(int Errno, string? KernelMessage);

        /// <summary>
        /// Adds (<paramref name="add"/>) or deletes an address on interface <paramref name="interfaceIndex"/>,
        /// in the network namespace of the calling thread (the socket is created here).
        /// </summary>
        public static Ack ChangeAddress(bool add, IPAddress address, int prefixLength, int interfaceIndex)
        {
            using var socket = LinuxNative.OpenRouteNetlink();
            // Best effort: older kernels lack extended acks; the errno alone is still an answer.
            TrySetOption(socket, NETLINK_CAP_ACK);
            TrySetOption(socket, NETLINK_EXT_ACK);
            socket.ReceiveTimeout = 5000;

            var sequence = unchecked((uint)Interlocked.Increment(ref s_sequence));
            var request = BuildAddressRequest(add, address, prefixLength, interfaceIndex, sequence);
            socket.Send(request);

            var buffer = new byte[8192];
            while (true)
            {
                var received = socket.Receive(buffer);
                var span = buffer.AsSpan(0, received);
                while (span.Length >= HeaderSize)
                {
                    var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(span);
                    if (length < HeaderSize || length > span.Length)
                        break;
                    var type = BinaryPrimitives.ReadUInt16LittleEndian(span.Slice(4));
                    var flags = BinaryPrimitives.ReadUInt16LittleEndian(span.Slice(6));
                    var seq = BinaryPrimitives.ReadUInt32LittleEndian(span.Slice(8));
                    if (type == NLMSG_ERROR && seq == sequence)
                        return ParseAck(span.Slice(0, length), flags);
                    span = span.Slice(Align(length));
                }
            }
        }

        internal static byte[] BuildAddressRequest(bool add, IPAddress address, int prefixLength, int interfaceIndex, uint sequence)
        {
            var bytes = address.GetAddressBytes();
            var attributeSize = Align(4 + bytes.Length);
            var length = HeaderSize + IfAddrMsgSize + 2 * attributeSize;
            var message = new byte[length];
            var span = message.AsSpan();

            BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)length);
            BinaryPrimitives.WriteUInt16LittleEndian(span.Slice(4), add ? RTM_NEWADDR : RTM_DELADDR);
            var flags = (ushort)(NLM_F_REQUEST | NLM_F_ACK);
            if (add)
                flags |= NLM_F_CREATE | NLM_F_EXCL;
            BinaryPrimitives.WriteUInt16LittleEndian(span.Slice(6), flags);
            BinaryPrimitives.WriteUInt32LittleEndian(span.Slice(8), sequence);
            // nlmsg_pid 0: the kernel fills in our port.

            var ifa = span.Slice(HeaderSize);
            ifa[0] = (byte)(address.AddressFamily == AddressFamily.InterNetworkV6 ? 10 : 2); // AF_INET6 / AF_INET
            ifa[1] = (byte)prefixLength;
            // A VIP that moves between nodes must answer at once: no duplicate address detection (IPv6).
            ifa[2] = add && address.AddressFamily == AddressFamily.InterNetworkV6 ? IFA_F_NODAD : (byte)0;
            ifa[3] = RT_SCOPE_UNIVERSE;
            BinaryPrimitives.WriteInt32LittleEndian(ifa.Slice(4), interfaceIndex);

            // IFA_LOCAL and IFA_ADDRESS both the address, as `ip addr` sends for a non point-to-point link.
            var attributes = span.Slice(HeaderSize + IfAddrMsgSize);
            WriteAttribute(attributes, IFA_LOCAL, bytes);
            WriteAttribute(attributes.Slice(attributeSize), IFA_ADDRESS, bytes);
            return message;
        }

        private static Ack ParseAck(ReadOnlySpan<byte> message, ushort flags)
        {
            var error = BinaryPrimitives.ReadInt32LittleEndian(message.Slice(HeaderSize));
            string? kernelMessage = null;
            if ((flags & NLM_F_ACK_TLVS) != 0)
            {
                // struct nlmsgerr: error, then the request's header (and its payload unless capped), then attributes.
                var offset = HeaderSize + 4 + HeaderSize;
                if ((flags & NLM_F_CAPPED) == 0 && message.Length >= HeaderSize + 4 + 4)
                    offset = HeaderSize + 4 + Align((int)BinaryPrimitives.ReadUInt32LittleEndian(message.Slice(HeaderSize + 4)));
                kernelMessage = FindStringAttribute(message, offset, NLMSGERR_ATTR_MSG);
            }
            return new Ack(-error, kernelMessage);
        }

        private static string? FindStringAttribute(ReadOnlySpan<byte> message, int offset, ushort wanted)
        {
            while (offset + 4 <= message.Length)
            {
                var length = BinaryPrimitives.ReadUInt16LittleEndian(message.Slice(offset));
                var type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(message.Slice(offset + 2)) & 0x3FFF);
                if (length < 4 || offset + length > message.Length)
                    return null;
                if (type == wanted)
                    return Encoding.UTF8.GetString(message.Slice(offset + 4, length - 4)).TrimEnd('\0');
                offset += Align(length);
            }
            return null;
        }

        private static void WriteAttribute(Span<byte> destination, ushort type, ReadOnlySpan<byte> value)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(destination, (ushort)(4 + value.Length));
            BinaryPrimitives.WriteUInt16LittleEndian(destination.Slice(2), type);
            value.CopyTo(destination.Slice(4));
        }

        private static void TrySetOption(Socket socket, int option)
        {
            try
            {
                Span<byte> one = stackalloc byte[4];
                BinaryPrimitives.WriteInt32LittleEndian(one, 1);
                socket.SetRawSocketOption(SOL_NETLINK, option, one);
            }
            catch (SocketException)
            {
            }
        }

        private static int Align(int length) => (length + 3) & ~3;
    }
}
