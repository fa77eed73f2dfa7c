// What this node says about itself: addresses, version, clock and what the OS offers (FUSE, nftables, ports).
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Hosting;

namespace ServiceKeeper.Engine.Node
{
    public sealed class NodeInfoProvider(EngineOptions options, TimeProvider time, Modules.EnginePorts ports)
    {
        /// <summary>UDP port of module heartbeats and TCP port of replication, checked free by Test-SKCluster.</summary>
        public const int HeartbeatPort = 9454;
        public const int ReplicationPort = 9455;

        public NodeInfo GetInfo(Cluster.ClusterState cluster, string? thumbprint) => new()
        {
            Name = options.NodeName,
            EngineVersion = EngineVersion.Current,
            OperatingSystem = RuntimeInformation.OSDescription,
            Addresses = GetAddresses(),
            ApiPort = options.Listen[0].Port,
            UtcTime = time.GetUtcNow().UtcDateTime,
            ClusterId = cluster.Config?.Id,
            ClusterName = cluster.Config?.Name,
            ClusterConfigHash = cluster.ConfigHash,
            CertificateThumbprint = thumbprint,
            Capabilities = GetCapabilities(ports),
        };

        /// <summary>Unicast addresses of interfaces that are up, loopback and IPv6 link-local left out.</summary>
        public static List<InterfaceAddress> GetAddresses()
        {
            var result = new List<InterfaceAddress>();
            foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
            {
                if (nic.NetworkInterfaceType == NetworkInterfaceType.Loopback || nic.OperationalStatus == OperationalStatus.Down)
                    continue;
                foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
                {
                    var address = unicast.Address;
                    if (IPAddress.IsLoopback(address) || address.IsIPv6LinkLocal) continue;
                    result.Add(new InterfaceAddress { Interface = nic.Name, Address = address.ToString(), PrefixLength = unicast.PrefixLength });
                }
            }
            return result;
        }

        private static NodeCapabilities GetCapabilities(Modules.EnginePorts ports)
        {
            var caps = new NodeCapabilities();
            if (OperatingSystem.IsWindows())
            {
                caps.FuseReason = "replicated directories are not supported on Windows yet (planned through WinFsp)";
                caps.NftablesReason = "the farm filter uses nftables and is not supported on Windows yet";
            }
            else
            {
                caps.Fuse = File.Exists("/dev/fuse") && NativeLibrary.TryLoad("libfuse3.so.3", out var lib) && Free(lib) && OnPath("fusermount3");
                caps.FuseReason = caps.Fuse ? null : "needs /dev/fuse, libfuse3.so.3 and fusermount3 (Debian package fuse3)";
                caps.Nftables = OnPath("nft");
                caps.NftablesReason = caps.Nftables ? null : "needs the nft command (Debian package nftables)";
            }
            if (!ports.Owns($"udp/{HeartbeatPort}") && !CanBind(SocketType.Dgram, ProtocolType.Udp, HeartbeatPort)) caps.PortsInUse.Add($"udp/{HeartbeatPort}");
            if (!ports.Owns($"tcp/{ReplicationPort}") && !CanBind(SocketType.Stream, ProtocolType.Tcp, ReplicationPort)) caps.PortsInUse.Add($"tcp/{ReplicationPort}");
            return caps;
        }

        private static bool Free(IntPtr lib)
        {
            NativeLibrary.Free(lib);
            return true;
        }

        private static bool OnPath(string command) =>
            (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin")
                .Split(Path.PathSeparator)
                .Concat(["/usr/sbin", "/sbin"])
                .Any(dir => File.Exists(Path.Combine(dir, command)));

        private static bool CanBind(SocketType type, ProtocolType protocol, int port)
        {
            try
            {
                using var socket = new Socket(AddressFamily.InterNetwork, type, protocol);
                socket.Bind(new IPEndPoint(IPAddress.Any, port));
                return true;
            }
            catch (SocketException)
            {
                return false;
            }
        }
    }
}
