// The VIP seam on platforms without an implementation yet (Windows): every call says so clearly.
using System;
using System.Net;
using System.Threading;
using System.Threading.Tasks;

namespace ServiceKeeper.Engine.Network
{
    public sealed class UnsupportedVirtualIpManager : IVirtualIpManager
    {
        public Task AddAsync(IPAddress address, int prefixLength, string interfaceName, CancellationToken ct) =>
            throw NotSupported($"cannot add {address}/{prefixLength} to interface '{interfaceName}'");

        public Task RemoveAsync(IPAddress address, int prefixLength, string interfaceName, CancellationToken ct) =>
            throw NotSupported($"cannot remove {address}/{prefixLength} from interface '{interfaceName}'");

        public bool IsPresent(IPAddress address, string? interfaceName) =>
            throw NotSupported($"cannot check whether {address} is configured");

        public Task AnnounceAsync(IPAddress address, string interfaceName, int count, TimeSpan interval, CancellationToken ct) =>
            throw NotSupported($"cannot announce {address} on interface '{interfaceName}'");

        public string ResolveInterface(IPAddress address) =>
            throw NotSupported($"cannot find the interface for {address}");

        private static PlatformNotSupportedException NotSupported(string what) => new(
            $"virtual IPs on Windows are not supported yet ({what}). Modules with a <vip> section run on Linux nodes only; " +
            "on Windows, remove the <vip> section and let clients use the node addresses or a DNS name.");
    }
}
