// The frames that tell a LAN where an address now lives: gratuitous ARP (IPv4) and unsolicited
// neighbour advertisements (IPv6). Built here, sent by LinuxVirtualIpManager.
using System;
using System.Buffers.Binary;
using System.Net;

namespace ServiceKeeper.Engine.Network
{
    internal static class Announcements
    {
        public static readonly byte[] BroadcastMac = { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };

        /// <summary>IPv6 all-nodes multicast group: where unsolicited advertisements go (RFC 4861 7.2.6).</summary>
        public static readonly IPAddress AllNodes = IPAddress.Parse("ff02::1");

        /// <summary>
        /// A broadcast Ethernet frame holding an ARP request with sender IP = target IP = the address
        /// (an RFC 5227 "ARP Announcement"). Requests rather than replies: every stack updates a cache
        /// entry from a broadcast request, some ignore unsolicited replies. Target MAC zero, as RFC 5227 asks.
        /// </summary>
        public static byte[] GratuitousArp(ReadOnlySpan<byte> senderMac, IPAddress address)
        {
            if (senderMac.Length != 6)
                throw new ArgumentException("An Ethernet address has 6 bytes.", nameof(senderMac));
            var ip = address.GetAddressBytes();
            if (ip.Length != 4)
                throw new ArgumentException("Gratuitous ARP is for IPv4 addresses.", nameof(address));

            var frame = new byte[42];
            var span = frame.AsSpan();
            BroadcastMac.CopyTo(span);                                      // destination
            senderMac.CopyTo(span.Slice(6));                                // source
            BinaryPrimitives.WriteUInt16BigEndian(span.Slice(12), LinuxNative.ETH_P_ARP);
            var arp = span.Slice(14);
            BinaryPrimitives.WriteUInt16BigEndian(arp, 1);                  // hardware type: Ethernet
            BinaryPrimitives.WriteUInt16BigEndian(arp.Slice(2), 0x0800);    // protocol type: IPv4
            arp[4] = 6;
            arp[5] = 4;
            BinaryPrimitives.WriteUInt16BigEndian(arp.Slice(6), 1);         // operation: request
            senderMac.CopyTo(arp.Slice(8));                                 // sender MAC
            ip.CopyTo(arp.Slice(14));                                       // sender IP
            // target MAC @18 stays zero
            ip.CopyTo(arp.Slice(24));                                       // target IP
            return frame;
        }

        /// <summary>
        /// ICMPv6 neighbour advertisement (type 136) for <paramref name="target"/> with the Override flag
        /// and a target link-layer address option, so neighbours replace the MAC they have cached. The
        /// checksum is left zero: the kernel fills it in for raw ICMPv6 sockets.
        /// </summary>
        public static byte[] UnsolicitedNeighborAdvertisement(ReadOnlySpan<byte> mac, IPAddress target)
        {
            if (mac.Length != 6)
                throw new ArgumentException("An Ethernet address has 6 bytes.", nameof(mac));
            var ip = target.GetAddressBytes();
            if (ip.Length != 16)
                throw new ArgumentException("Neighbour advertisements are for IPv6 addresses.", nameof(target));

            var message = new byte[32];
            var span = message.AsSpan();
            span[0] = 136;                                                  // type: neighbour advertisement
            span[1] = 0;                                                    // code
            BinaryPrimitives.WriteUInt32BigEndian(span.Slice(4), 0x20000000); // flags: Override (not Router, not Solicited)
            ip.CopyTo(span.Slice(8));
            span[24] = 2;                                                   // option: target link-layer address
            span[25] = 1;                                                   // length in units of 8 bytes
            mac.CopyTo(span.Slice(26));
            return message;
        }
    }
}
