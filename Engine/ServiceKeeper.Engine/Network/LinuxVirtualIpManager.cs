// The VIP on Linux: rtnetlink for the address, AF_PACKET / raw ICMPv6 for the announcements.
//
// Every call works in the network namespace of the thread that makes it: sockets are created and the
// request is sent synchronously, before any await (AnnounceAsync keeps its one socket across the
// spacing delays). Tests rely on this to drive the manager inside a namespace from one setns() thread.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ServiceKeeper.Engine.Network
{
    /// <summary>
    /// Adds the VIP as one more address of the interface, with the given prefix, as <c>ip addr add</c>
    /// would: it shows in <c>ip addr show</c> (as "secondary" when the interface already has an
    /// address in that subnet), the interface's own addresses are left alone.
    /// </summary>
    /// <remarks>
    /// IFA_F_NOPREFIXROUTE is never set. With another address of the subnet already on the interface,
    /// an IPv4 VIP becomes a secondary address and the kernel installs no prefix route for secondaries
    /// anyway; if that primary is later deleted with promote_secondaries on, the VIP is promoted and
    /// must then carry the subnet route, which the flag would suppress. IPv6 shares one prefix route
    /// among the addresses of a prefix and keeps it while any of them remains. Without an address of
    /// that subnet, the prefix route is what lets the node reach the VIP's subnet at all.
    /// IPv6 VIPs are added with IFA_F_NODAD: an address that moves on failover must answer at once.
    /// </remarks>
    [SupportedOSPlatform("linux")]
    public sealed partial class LinuxVirtualIpManager : IVirtualIpManager
    {
        private readonly ILogger _logger;
        private readonly TimeProvider _time;

        public LinuxVirtualIpManager(ILogger<LinuxVirtualIpManager>? logger = null, TimeProvider? time = null)
        {
            _logger = (ILogger?)logger ?? NullLogger.Instance;
            _time = time ?? TimeProvider.System;
        }

        public Task AddAsync(IPAddress address, int prefixLength, string interfaceName, CancellationToken ct) =>
            RunNow(ct, () =>
            {
                ValidateAddress(address, prefixLength, interfaceName);
                var index = LinuxNative.InterfaceIndex(interfaceName);
                if (index == 0)
                    throw new VirtualIpException(
                        $"Cannot add virtual IP {address}/{prefixLength}: there is no interface '{interfaceName}' on this node.", 19 /* ENODEV */);
                var ack = Change(add: true, address, prefixLength, interfaceName, index);
                if (ack.Errno == 0)
                    Log.Added(_logger, address, prefixLength, interfaceName);
                else if (ack.Errno == RtNetlink.EEXIST)
                    Log.AlreadyPresent(_logger, address, prefixLength, interfaceName);
                else
                    throw Failure("add", "to", address, prefixLength, interfaceName, ack);
            });

        public Task RemoveAsync(IPAddress address, int prefixLength, string interfaceName, CancellationToken ct) =>
            RunNow(ct, () =>
            {
                ValidateAddress(address, prefixLength, interfaceName);
                var index = LinuxNative.InterfaceIndex(interfaceName);
                if (index == 0)
                {
                    // The address went away with its interface: what was asked is true.
                    Log.AlreadyAbsent(_logger, address, prefixLength, interfaceName);
                    return;
                }
                var ack = Change(add: false, address, prefixLength, interfaceName, index);
                if (ack.Errno == 0)
                    Log.Removed(_logger, address, prefixLength, interfaceName);
                else if (ack.Errno == RtNetlink.EADDRNOTAVAIL)
                    Log.AlreadyAbsent(_logger, address, prefixLength, interfaceName);
                else
                    throw Failure("remove", "from", address, prefixLength, interfaceName, ack);
            });

        /// <summary>Through getifaddrs (NetworkInterface), which reads the calling thread's namespace; /sys would show the namespace it was mounted in.</summary>
        public bool IsPresent(IPAddress address, string? interfaceName)
        {
            ArgumentNullException.ThrowIfNull(address);
            foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
            {
                if (interfaceName is not null && nic.Name != interfaceName)
                    continue;
                if (nic.GetIPProperties().UnicastAddresses.Any(u => IpSubnet.SameAddress(u.Address, address)))
                    return true;
            }
            return false;
        }

        /// <summary>
        /// Sends <paramref name="count"/> announcements, <paramref name="interval"/> apart: gratuitous ARP
        /// requests for IPv4, unsolicited neighbour advertisements (Override flag, to ff02::1) for IPv6.
        /// The first goes out before this method returns; an IPv6 VIP must already be on the interface.
        /// </summary>
        public Task AnnounceAsync(IPAddress address, string interfaceName, int count, TimeSpan interval, CancellationToken ct)
        {
            Socket? socket = null;
            try
            {
                ArgumentNullException.ThrowIfNull(address);
                ArgumentException.ThrowIfNullOrEmpty(interfaceName);
                ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
                ArgumentOutOfRangeException.ThrowIfLessThan(interval, TimeSpan.Zero);
                ct.ThrowIfCancellationRequested();
                address = IpSubnet.Normalize(address);

                var (index, mac) = EthernetInterface(address, interfaceName);
                byte[] message;
                EndPoint destination;
                if (address.AddressFamily == AddressFamily.InterNetwork)
                {
                    // Protocol 0: this socket only sends, it receives nothing.
                    socket = new Socket(AddressFamily.Packet, SocketType.Raw, ProtocolType.Unspecified);
                    message = Announcements.GratuitousArp(mac, address);
                    destination = new LinkLayerEndPoint(index, LinuxNative.ETH_P_ARP, Announcements.BroadcastMac);
                }
                else if (address.AddressFamily == AddressFamily.InterNetworkV6)
                {
                    socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Raw, ProtocolType.IcmpV6);
                    // Receivers drop neighbour discovery that did not come with hop limit 255 (RFC 4861 7.1.2).
                    socket.SetSocketOption(SocketOptionLevel.IPv6, SocketOptionName.MulticastTimeToLive, 255);
                    socket.SetSocketOption(SocketOptionLevel.IPv6, SocketOptionName.MulticastInterface, index);
                    socket.Bind(new IPEndPoint(address, 0));
                    message = Announcements.UnsolicitedNeighborAdvertisement(mac, address);
                    destination = new IPEndPoint(new IPAddress(Announcements.AllNodes.GetAddressBytes(), index), 0);
                }
                else
                {
                    throw new ArgumentException($"'{address}' is not an IPv4 or IPv6 address.", nameof(address));
                }

                Send(socket, message, destination, address, interfaceName);
                Log.Announced(_logger, address, interfaceName, count, interval.TotalMilliseconds);
                if (count == 1)
                {
                    socket.Dispose();
                    return Task.CompletedTask;
                }
                var owned = socket;
                socket = null;
                return RepeatAsync(owned, message, destination, address, interfaceName, count - 1, interval, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                socket?.Dispose();
                return Task.FromCanceled(ct);
            }
            catch (SocketException e)
            {
                socket?.Dispose();
                return Task.FromException(new VirtualIpException(
                    $"Cannot announce virtual IP {address} on interface '{interfaceName}': {e.Message} (errno {e.ErrorCode}).", e.ErrorCode, e));
            }
            catch (Exception e)
            {
                socket?.Dispose();
                return Task.FromException(e);
            }
        }

        /// <summary>
        /// The interface with an address whose subnet holds <paramref name="address"/> (longest prefix
        /// wins). Throws <see cref="VirtualIpException"/> when none does, or when two interfaces tie.
        /// </summary>
        public string ResolveInterface(IPAddress address)
        {
            ArgumentNullException.ThrowIfNull(address);
            address = IpSubnet.Normalize(address);
            var best = -1;
            var names = new List<string>();
            foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
            {
                if (nic.NetworkInterfaceType == NetworkInterfaceType.Loopback)
                    continue;
                foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
                {
                    if (unicast.Address.IsIPv6LinkLocal || !IpSubnet.Contains(unicast.Address, unicast.PrefixLength, address))
                        continue;
                    if (unicast.PrefixLength > best)
                    {
                        best = unicast.PrefixLength;
                        names.Clear();
                    }
                    if (unicast.PrefixLength == best && !names.Contains(nic.Name))
                        names.Add(nic.Name);
                }
            }
            return names.Count switch
            {
                1 => names[0],
                0 => throw new VirtualIpException(
                    $"No interface of this node has an address in a subnet that holds virtual IP {address}: " +
                    "give the interface in userconfig.xml (<interface name=\"...\">), or put an address of the VIP's subnet on the NIC that should carry it."),
                _ => throw new VirtualIpException(
                    $"Virtual IP {address} is in the subnet of several interfaces ({string.Join(", ", names)}): give the interface in userconfig.xml (<interface name=\"...\">)."),
            };
        }

        private async Task RepeatAsync(Socket socket, byte[] message, EndPoint destination, IPAddress address, string interfaceName,
            int remaining, TimeSpan interval, CancellationToken ct)
        {
            using (socket)
            {
                for (var i = 0; i < remaining; i++)
                {
                    await Task.Delay(interval, _time, ct).ConfigureAwait(false);
                    try
                    {
                        Send(socket, message, destination, address, interfaceName);
                    }
                    catch (SocketException e)
                    {
                        throw new VirtualIpException(
                            $"Cannot announce virtual IP {address} on interface '{interfaceName}': {e.Message} (errno {e.ErrorCode}).", e.ErrorCode, e);
                    }
                }
            }
        }

        private static void Send(Socket socket, byte[] message, EndPoint destination, IPAddress address, string interfaceName)
        {
            var sent = socket.SendTo(message, destination);
            if (sent != message.Length)
                throw new VirtualIpException($"Cannot announce virtual IP {address} on interface '{interfaceName}': sent {sent} of {message.Length} bytes.");
        }

        private static (int Index, byte[] Mac) EthernetInterface(IPAddress address, string interfaceName)
        {
            var index = LinuxNative.InterfaceIndex(interfaceName);
            var nic = index == 0 ? null : NetworkInterface.GetAllNetworkInterfaces().FirstOrDefault(n => n.Name == interfaceName);
            if (nic is null)
                throw new VirtualIpException($"Cannot announce virtual IP {address}: there is no interface '{interfaceName}' on this node.", 19 /* ENODEV */);
            var mac = nic.GetPhysicalAddress().GetAddressBytes();
            if (mac.Length != 6)
                throw new VirtualIpException(
                    $"Cannot announce virtual IP {address} on interface '{interfaceName}': it has no Ethernet address (announcements need an Ethernet link).");
            return (index, mac);
        }

        private static RtNetlink.Ack Change(bool add, IPAddress address, int prefixLength, string interfaceName, int index)
        {
            try
            {
                return RtNetlink.ChangeAddress(add, IpSubnet.Normalize(address), prefixLength, index);
            }
            catch (SocketException e)
            {
                throw new VirtualIpException(
                    $"Cannot {(add ? "add" : "remove")} virtual IP {address}/{prefixLength} {(add ? "to" : "from")} interface '{interfaceName}': " +
                    $"netlink: {e.Message} (errno {e.ErrorCode}).", e.ErrorCode, e);
            }
        }

        private static VirtualIpException Failure(string verb, string preposition, IPAddress address, int prefixLength, string interfaceName, RtNetlink.Ack ack)
        {
            var kernel = string.IsNullOrEmpty(ack.KernelMessage) ? "" : $"; kernel: {ack.KernelMessage}";
            return new VirtualIpException(
                $"Cannot {verb} virtual IP {address}/{prefixLength} {preposition} interface '{interfaceName}': {LinuxNative.ErrnoText(ack.Errno)} (errno {ack.Errno}{kernel}).",
                ack.Errno);
        }

        private static void ValidateAddress(IPAddress address, int prefixLength, string interfaceName)
        {
            ArgumentNullException.ThrowIfNull(address);
            ArgumentException.ThrowIfNullOrEmpty(interfaceName);
            var family = IpSubnet.Normalize(address).AddressFamily;
            if (family is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
                throw new ArgumentException($"'{address}' is not an IPv4 or IPv6 address.", nameof(address));
            var max = IpSubnet.MaxPrefixLength(family);
            if (prefixLength < 0 || prefixLength > max)
                throw new ArgumentOutOfRangeException(nameof(prefixLength), prefixLength, $"The prefix of {address} must be 0..{max}.");
        }

        // The call happens here and now, on the caller's thread (and so in its network namespace).
        private static Task RunNow(CancellationToken ct, Action action)
        {
            if (ct.IsCancellationRequested)
                return Task.FromCanceled(ct);
            try
            {
                action();
                return Task.CompletedTask;
            }
            catch (Exception e)
            {
                return Task.FromException(e);
            }
        }

        private static partial class Log
        {
            [LoggerMessage(1, LogLevel.Information, "Added virtual IP {Address}/{PrefixLength} to {Interface}")]
            public static partial void Added(ILogger logger, IPAddress address, int prefixLength, string @interface);

            [LoggerMessage(2, LogLevel.Debug, "Virtual IP {Address}/{PrefixLength} was already on {Interface}")]
            public static partial void AlreadyPresent(ILogger logger, IPAddress address, int prefixLength, string @interface);

            [LoggerMessage(3, LogLevel.Information, "Removed virtual IP {Address}/{PrefixLength} from {Interface}")]
            public static partial void Removed(ILogger logger, IPAddress address, int prefixLength, string @interface);

            [LoggerMessage(4, LogLevel.Debug, "Virtual IP {Address}/{PrefixLength} was not on {Interface}")]
            public static partial void AlreadyAbsent(ILogger logger, IPAddress address, int prefixLength, string @interface);

            [LoggerMessage(5, LogLevel.Information, "Announcing virtual IP {Address} on {Interface}: {Count} times, {IntervalMs} ms apart")]
            public static partial void Announced(ILogger logger, IPAddress address, string @interface, int count, double intervalMs);
        }
    }
}
