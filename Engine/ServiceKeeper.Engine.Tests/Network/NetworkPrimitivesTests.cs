// Byte layouts and address arithmetic of the network code, without touching any network.
using System;
using System.Buffers.Binary;
using System.Net;
using System.Threading;
using ServiceKeeper.Engine.Network;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Network;

public sealed class NetworkPrimitivesTests
{
    private static readonly byte[] Mac = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };

    [Fact]
    public void GratuitousArp_IsABroadcastRequestWithSenderIpEqualToTargetIp()
    {
        var frame = Announcements.GratuitousArp(Mac, IPAddress.Parse("198.18.0.50"));

        Assert.Equal(42, frame.Length);
        Assert.Equal(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF }, frame[0..6]);
        Assert.Equal(Mac, frame[6..12]);
        Assert.Equal(0x0806, BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(12)));
        Assert.Equal(new byte[] { 0, 1, 8, 0, 6, 4, 0, 1 }, frame[14..22]);   // Ethernet/IPv4, request
        Assert.Equal(Mac, frame[22..28]);
        Assert.Equal(new byte[] { 198, 18, 0, 50 }, frame[28..32]);
        Assert.Equal(new byte[6], frame[32..38]);
        Assert.Equal(new byte[] { 198, 18, 0, 50 }, frame[38..42]);
    }

    [Fact]
    public void NeighborAdvertisement_HasOverrideFlagTargetAndLinkLayerOption()
    {
        var target = IPAddress.Parse("2001:2::50");
        var message = Announcements.UnsolicitedNeighborAdvertisement(Mac, target);

        Assert.Equal(32, message.Length);
        Assert.Equal(136, message[0]);
        Assert.Equal(0x20000000u, BinaryPrimitives.ReadUInt32BigEndian(message.AsSpan(4)));
        Assert.Equal(target.GetAddressBytes(), message[8..24]);
        Assert.Equal(new byte[] { 2, 1 }, message[24..26]);
        Assert.Equal(Mac, message[26..32]);
    }

    [Fact]
    public void AddressRequest_IsAnAckedCreateWithLocalAndAddressAttributes()
    {
        var add = RtNetlink.BuildAddressRequest(add: true, IPAddress.Parse("198.18.0.50"), 24, interfaceIndex: 7, sequence: 42);

        Assert.Equal(16 + 8 + 8 + 8, add.Length);
        Assert.Equal((uint)add.Length, BinaryPrimitives.ReadUInt32LittleEndian(add));
        Assert.Equal(20, BinaryPrimitives.ReadUInt16LittleEndian(add.AsSpan(4)));          // RTM_NEWADDR
        Assert.Equal(0x605, BinaryPrimitives.ReadUInt16LittleEndian(add.AsSpan(6)));       // REQUEST|ACK|EXCL|CREATE
        Assert.Equal(42u, BinaryPrimitives.ReadUInt32LittleEndian(add.AsSpan(8)));
        Assert.Equal(new byte[] { 2, 24, 0, 0 }, add[16..20]);                              // AF_INET, /24
        Assert.Equal(7, BinaryPrimitives.ReadInt32LittleEndian(add.AsSpan(20)));
        Assert.Equal(new byte[] { 8, 0, 2, 0, 198, 18, 0, 50 }, add[24..32]);              // IFA_LOCAL
        Assert.Equal(new byte[] { 8, 0, 1, 0, 198, 18, 0, 50 }, add[32..40]);              // IFA_ADDRESS

        var delete = RtNetlink.BuildAddressRequest(add: false, IPAddress.Parse("2001:2::50"), 64, 3, 1);
        Assert.Equal(21, BinaryPrimitives.ReadUInt16LittleEndian(delete.AsSpan(4)));        // RTM_DELADDR
        Assert.Equal(0x5, BinaryPrimitives.ReadUInt16LittleEndian(delete.AsSpan(6)));       // REQUEST|ACK
        Assert.Equal(10, delete[16]);                                                        // AF_INET6
        Assert.Equal(16 + 8 + 20 + 20, delete.Length);
    }

    [Theory]
    [InlineData("198.18.0.0", 24, "198.18.0.50", true)]
    [InlineData("198.18.0.1", 24, "198.18.1.50", false)]
    [InlineData("198.18.0.1", 15, "198.19.7.7", true)]
    [InlineData("198.18.0.1", 32, "198.18.0.1", true)]
    [InlineData("198.18.0.1", 0, "8.8.8.8", true)]
    [InlineData("2001:2::1", 64, "2001:2::50", true)]
    [InlineData("2001:2::1", 64, "2001:2:0:1::50", false)]
    [InlineData("2001:2::1", 64, "198.18.0.50", false)]
    public void Contains_MatchesThePrefix(string network, int prefix, string candidate, bool expected) =>
        Assert.Equal(expected, IpSubnet.Contains(IPAddress.Parse(network), prefix, IPAddress.Parse(candidate)));

    [Fact]
    public void UnsupportedManager_EveryCallSaysVirtualIpsAreNotSupportedYet()
    {
        var manager = new UnsupportedVirtualIpManager();
        var vip = IPAddress.Parse("198.18.0.50");
        var errors = new Exception[]
        {
            Refused(() => { manager.AddAsync(vip, 24, "Ethernet", CancellationToken.None); }),
            Refused(() => { manager.RemoveAsync(vip, 24, "Ethernet", CancellationToken.None); }),
            Refused(() => _ = manager.IsPresent(vip, null)),
            Refused(() => { manager.AnnounceAsync(vip, "Ethernet", 5, TimeSpan.FromMilliseconds(200), CancellationToken.None); }),
            Refused(() => _ = manager.ResolveInterface(vip)),
        };
        foreach (var error in errors)
        {
            Assert.IsType<PlatformNotSupportedException>(error);
            Assert.StartsWith("virtual IPs on Windows are not supported yet", error.Message, StringComparison.Ordinal);
            Assert.Contains("198.18.0.50", error.Message, StringComparison.Ordinal);
        }
    }

    // The calls throw before any Task exists; Assert.Throws would take them for asynchronous ones.
    private static Exception Refused(Action call)
    {
        try
        {
            call();
        }
        catch (Exception e)
        {
            return e;
        }
        throw new Xunit.Sdk.XunitException("the call did not throw");
    }
}
