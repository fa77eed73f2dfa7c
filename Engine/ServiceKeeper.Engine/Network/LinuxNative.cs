// libc calls the Linux network code needs and .NET does not expose (netlink sockets, interface indexes).
using System;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace ServiceKeeper.Engine.Network
{
    internal static partial class LinuxNative
    {
        public const int AF_NETLINK = 16;
        public const int SOCK_RAW = 3;
        public const int SOCK_CLOEXEC = 0x80000;
        public const int NETLINK_ROUTE = 0;

        public const ushort ETH_P_ARP = 0x0806;
        public const ushort ETH_P_IPV6 = 0x86DD;

        [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
        private static partial int SocketNative(int domain, int type, int protocol);

        [LibraryImport("libc", EntryPoint = "if_nametoindex", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        private static partial uint IfNameToIndexNative(string name);

        /// <summary>A rtnetlink socket, in the network namespace of the calling thread.</summary>
        public static Socket OpenRouteNetlink()
        {
            var fd = SocketNative(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
            if (fd < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                throw new SocketException(errno, $"cannot open a netlink socket: {ErrnoText(errno)}");
            }
            return new Socket(new SafeSocketHandle((IntPtr)fd, ownsHandle: true));
        }

        /// <summary>The index of interface <paramref name="name"/> in the calling thread's namespace, or 0 when there is none.</summary>
        public static int InterfaceIndex(string name) => (int)IfNameToIndexNative(name);

        public static string ErrnoText(int errno) => Marshal.GetPInvokeErrorMessage(errno);

        /// <summary>htons: the protocol argument of an AF_PACKET socket is in network byte order.</summary>
        public static ProtocolType PacketProtocol(ushort etherType) =>
            (ProtocolType)(ushort)System.Net.IPAddress.HostToNetworkOrder((short)etherType);
    }
}
