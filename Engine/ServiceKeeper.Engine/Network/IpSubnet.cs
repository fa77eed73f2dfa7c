using System;
using System.Net;
using System.Net.Sockets;

namespace ServiceKeeper.Engine.Network
{
    /// <summary>Prefix arithmetic on IPv4 and IPv6 addresses.</summary>
    internal static class IpSubnet
    {
        public static int MaxPrefixLength(AddressFamily family) => family == AddressFamily.InterNetworkV6 ? 128 : 32;

        /// <summary>Is <paramref name="candidate"/> in <paramref name="network"/>/<paramref name="prefixLength"/>? Different families never match.</summary>
        public static bool Contains(IPAddress network, int prefixLength, IPAddress candidate)
        {
            network = Normalize(network);
            candidate = Normalize(candidate);
            if (network.AddressFamily != candidate.AddressFamily)
                return false;
            if (prefixLength < 0 || prefixLength > MaxPrefixLength(network.AddressFamily))
                return false;
            Span<byte> a = stackalloc byte[16];
            Span<byte> b = stackalloc byte[16];
            network.TryWriteBytes(a, out var length);
            candidate.TryWriteBytes(b, out _);
            var fullBytes = prefixLength / 8;
            if (!a.Slice(0, fullBytes).SequenceEqual(b.Slice(0, fullBytes)))
                return false;
            var restBits = prefixLength % 8;
            if (restBits == 0 || fullBytes >= length)
                return true;
            var mask = (byte)(0xFF << (8 - restBits));
            return (a[fullBytes] & mask) == (b[fullBytes] & mask);
        }

        /// <summary>Same address, ignoring the IPv6 scope id and IPv4-mapped IPv6 forms.</summary>
        public static bool SameAddress(IPAddress x, IPAddress y)
        {
            x = Normalize(x);
            y = Normalize(y);
            if (x.AddressFamily != y.AddressFamily)
                return false;
            Span<byte> a = stackalloc byte[16];
            Span<byte> b = stackalloc byte[16];
            x.TryWriteBytes(a, out var la);
            y.TryWriteBytes(b, out var lb);
            return a.Slice(0, la).SequenceEqual(b.Slice(0, lb));
        }

        public static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
    }
}
