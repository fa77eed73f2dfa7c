// The virtual IP on this node's interfaces.
using System.Net;
using System.Threading;
using System.Threading.Tasks;

namespace ServiceKeeper.Engine.Network
{
    public interface IVirtualIpManager
    {
        /// <summary>Adds the address (idempotent: present already is fine).</summary>
        Task AddAsync(IPAddress address, int prefixLength, string interfaceName, CancellationToken ct);

        /// <summary>Removes the address (idempotent: absent already is fine).</summary>
        Task RemoveAsync(IPAddress address, int prefixLength, string interfaceName, CancellationToken ct);

        /// <summary>Is the address configured on the interface (on any interface when null)?</summary>
        bool IsPresent(IPAddress address, string? interfaceName);

        /// <summary>Gratuitous ARP (IPv4) / unsolicited neighbour advertisements, <paramref name="count"/> times, spaced.</summary>
        Task AnnounceAsync(IPAddress address, string interfaceName, int count, System.TimeSpan interval, CancellationToken ct);

        /// <summary>The interface whose subnet holds the address, for a VIP configured without an interface.</summary>
        string ResolveInterface(IPAddress address);
    }
}
