// The generated nft text: table names, rule order, hash keys, MAC derivation, transactions.
using System;
using System.Linq;
using System.Net;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Farm;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Farm;

public sealed class FarmFilterRulesTests
{
    private static readonly IPAddress Vip = IPAddress.Parse("198.18.7.50");

    private static FarmFilterRules Rules(params LoadBalancingRule[] rules) =>
        new("web", new[] { Vip }, rules, seed: 0x1234);

    private static string[] Lines(string text) => text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();

    [Theory]
    [InlineData("198.18.7.50", "03:00:5e:12:07:32")]
    [InlineData("10.0.0.1", "03:00:5e:00:00:01")]
    [InlineData("192.168.255.254", "03:00:5e:a8:ff:fe")]
    public void MulticastMac_IsGroupAndLocalBitsPlusLowThreeBytes(string vip, string mac)
    {
        Assert.Equal(mac, FarmFilterRules.MulticastMac(IPAddress.Parse(vip)));
        Assert.Equal(1, Convert.ToByte(mac[..2], 16) & 1);
    }

    [Fact]
    public void Ruleset_OnAddress_AcceptsTrackedThenOwnedNewThenDrops()
    {
        var text = Rules(new LoadBalancingRule { Port = 80, Filter = LoadBalancingFilter.OnAddress }).Ruleset(new[] { 5, 1, 5 });
        var lines = Lines(text);
        var tracked = Array.IndexOf(lines, "ip daddr 198.18.7.50 tcp dport 80 ct state established,related accept");
        var owned = Array.IndexOf(lines, "ip daddr 198.18.7.50 tcp dport 80 ct state new jhash ip saddr mod 256 seed 0x00001234 @owned accept");
        var drop = Array.IndexOf(lines, "ip daddr 198.18.7.50 tcp dport 80 drop");
        Assert.True(tracked >= 0 && owned > tracked && drop > owned, text);
        Assert.Contains("ip daddr 198.18.7.50 meta pkttype set host", lines);
        Assert.Contains("arp saddr ip 198.18.7.50 arp saddr ether set 03:00:5e:12:07:32", lines);
        Assert.Equal("add element inet sk_web owned { 1, 5 }", lines[^1]);
        // Replacing an installed filter is one transaction that starts by deleting both tables.
        Assert.Equal(new[] { "table inet sk_web", "delete table inet sk_web", "table arp sk_web", "delete table arp sk_web" }, lines[..4]);
    }

    [Fact]
    public void Ruleset_OnPortAndUdpAndAllPorts_HashTheRightKeys()
    {
        var r = new FarmFilterRules("web", new[] { Vip, IPAddress.Parse("198.18.7.51") }, new[]
        {
            new LoadBalancingRule { Port = 443, Filter = LoadBalancingFilter.OnPort },
            new LoadBalancingRule { VirtualAddress = Vip, Protocol = TransportProtocol.Udp, Filter = LoadBalancingFilter.OnIpId },
            new LoadBalancingRule { Port = null, Filter = LoadBalancingFilter.OnAddress },
        }, seed: 7);
        var lines = Lines(r.Ruleset(Array.Empty<int>()));
        Assert.Contains("ip daddr 198.18.7.51 tcp dport 443 ct state new jhash ip saddr . tcp sport mod 256 seed 0x00000007 @owned accept", lines);
        Assert.Contains("ip daddr 198.18.7.50 meta l4proto udp jhash ip id mod 256 seed 0x00000007 @owned accept", lines);
        Assert.DoesNotContain("ip daddr 198.18.7.51 meta l4proto udp drop", lines);
        Assert.Contains("ip daddr 198.18.7.51 meta l4proto tcp ct state new jhash ip saddr mod 256 seed 0x00000007 @owned accept", lines);
        Assert.DoesNotContain(lines, l => l.StartsWith("add element", StringComparison.Ordinal));
        Assert.Equal(1 + 2 * 3 + 2 + 2 * 3, r.InputRuleCount);
        Assert.Equal(r.InputRuleCount, lines.SkipWhile(l => !l.StartsWith("chain input", StringComparison.Ordinal)).Skip(2).TakeWhile(l => l != "}").Count());
    }

    [Fact]
    public void OwnedUpdate_FlushesAndAddsInOneScript()
    {
        var r = Rules(new LoadBalancingRule { Port = 80 });
        Assert.Equal("flush set inet sk_web owned\nadd element inet sk_web owned { 0, 255 }\n", r.OwnedUpdate(new[] { 255, 0 }));
        Assert.Equal("flush set inet sk_web owned\n", r.OwnedUpdate(Array.Empty<int>()));
        Assert.Throws<ArgumentOutOfRangeException>(() => r.OwnedUpdate(new[] { 256 }));
    }

    [Fact]
    public void Removal_DeclaresThenDeletesBothTables()
    {
        Assert.Equal("table inet sk_web\ndelete table inet sk_web\ntable arp sk_web\ndelete table arp sk_web\n", Rules(new LoadBalancingRule()).Removal());
    }

    [Fact]
    public void Seed_DefaultsToAStableFunctionOfTheModule()
    {
        var a = new FarmFilterRules("web", new[] { Vip }, new[] { new LoadBalancingRule() });
        Assert.Equal(FarmFilterRules.SeedFor("web"), a.Seed);
        Assert.NotEqual(FarmFilterRules.SeedFor("web"), FarmFilterRules.SeedFor("db"));
        // FNV-1a 32 of "a" is 0xe40c292c: the seed must not depend on the process.
        Assert.Equal(0xE40C292Cu, FarmFilterRules.SeedFor("a"));
    }

    [Fact]
    public void Constructor_RefusesWhatTheFilterCannotExpress()
    {
        var rule = new[] { new LoadBalancingRule() };
        Assert.Throws<ArgumentException>(() => new FarmFilterRules("we b", new[] { Vip }, rule));
        Assert.Throws<ArgumentException>(() => new FarmFilterRules("web", Array.Empty<IPAddress>(), rule));
        Assert.Throws<ArgumentException>(() => new FarmFilterRules("web", new[] { Vip }, Array.Empty<LoadBalancingRule>()));
        Assert.Throws<NotSupportedException>(() => new FarmFilterRules("web", new[] { IPAddress.Parse("2001:db8::1") }, rule));
        Assert.Throws<ArgumentException>(() => new FarmFilterRules("web", new[] { Vip }, new[] { new LoadBalancingRule { VirtualAddress = IPAddress.Parse("198.18.7.99") } }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FarmFilterRules("web", new[] { Vip }, new[] { new LoadBalancingRule { Port = 0 } }));
    }
}
