// The farm filter in real network namespaces: 3 nodes share a VIP through a multicast MAC, the
// kernel hash splits real TCP connections by the bucket map, rebalancing keeps live sessions.
using System;
using System.Collections.Generic;
using System.Linq;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Farm;
using ServiceKeeper.Engine.Tests.Testing;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Farm;

public sealed class NftablesFilterNetnsTests
{
    private readonly ITestOutputHelper _output;

    public NftablesFilterNetnsTests(ITestOutputHelper output) => _output = output;

    private static Dictionary<string, int> EqualPowers(FarmLab farm) =>
        farm.Lab.Nodes.ToDictionary(n => n.Name, _ => 1, StringComparer.Ordinal);

    private static void ApplyMap(FarmLab farm, string?[] map)
    {
        foreach (var (node, filter) in farm.Filters)
        {
            filter.Apply(BucketMap.BucketsOf(map, node));
        }
    }

    [NetnsFact]
    public void OnPort_ManyConnections_EachIsAcceptedOnceByTheBucketOwner()
    {
        using var farm = FarmLab.Create(3, LoadBalancingFilter.OnPort, _output.WriteLine);
        var map = BucketMap.Assign(EqualPowers(farm));
        ApplyMap(farm, map);
        foreach (var (node, filter) in farm.Filters)
        {
            var status = filter.Verify(BucketMap.BucketsOf(map, node));
            Assert.True(status.Ok, $"{node}: {string.Join("; ", status.Problems)}");
        }

        var results = farm.Connect(farm.AddClientAddresses(20), perAddress: 15);

        Assert.Equal(300, results.Count);
        Assert.All(results, r => Assert.False(r.Answer.StartsWith("FAIL", StringComparison.Ordinal), $"{r.Source}:{r.Port} {r.Answer}"));
        // The kernel picked exactly the node the map names for the connection's bucket.
        Assert.All(results, r => Assert.Equal(map[farm.BucketOf(r.Source, r.Port, LoadBalancingFilter.OnPort)], r.Answer));
        var spread = results.GroupBy(r => r.Answer).ToDictionary(g => g.Key, g => g.Count());
        _output.WriteLine("spread: " + string.Join(", ", spread.OrderBy(s => s.Key).Select(s => $"{s.Key}={s.Value}")));
        Assert.Equal(3, spread.Count);
        Assert.All(spread.Values, c => Assert.InRange(c, 60, 140));
        // No connection was also accepted by a second node.
        Assert.Equal(300, farm.Lab.Nodes.Sum(farm.AcceptedBy));
        foreach (var node in farm.Lab.Nodes)
        {
            Assert.Equal(spread[node.Name], farm.AcceptedBy(node));
        }
        // One client address is spread over several nodes (no affinity with on_port).
        Assert.Contains(results.GroupBy(r => r.Source), g => g.Select(r => r.Answer).Distinct().Count() > 1);
    }

    [NetnsFact]
    public void OnAddress_EachClientAddressAlwaysReachesTheSameNode()
    {
        using var farm = FarmLab.Create(3, LoadBalancingFilter.OnAddress, _output.WriteLine);
        var map = BucketMap.Assign(EqualPowers(farm));
        ApplyMap(farm, map);

        var results = farm.Connect(farm.AddClientAddresses(20), perAddress: 5);

        Assert.Equal(100, results.Count);
        foreach (var group in results.GroupBy(r => r.Source))
        {
            var expected = map[farm.BucketOf(group.Key, 0, LoadBalancingFilter.OnAddress)];
            Assert.All(group, r => Assert.Equal(expected, r.Answer));
        }
        var perNode = results.GroupBy(r => r.Source).GroupBy(g => g.First().Answer).ToDictionary(g => g.Key, g => g.Count());
        _output.WriteLine("client addresses per node: " + string.Join(", ", perNode.OrderBy(s => s.Key).Select(s => $"{s.Key}={s.Value}")));
        Assert.True(perNode.Count >= 2, "20 client addresses all landed on one node");
        Assert.Equal(100, farm.Lab.Nodes.Sum(farm.AcceptedBy));
    }

    [NetnsFact]
    public void Rebalance_BucketMovesAway_OpenConnectionKeepsItsNode_NewOnesGoToTheNewOwner()
    {
        using var farm = FarmLab.Create(3, LoadBalancingFilter.OnAddress, _output.WriteLine);
        var before = BucketMap.Assign(EqualPowers(farm));
        ApplyMap(farm, before);
        var source = farm.AddClientAddresses(1)[0];
        var bucket = farm.BucketOf(source, 0, LoadBalancingFilter.OnAddress);
        var oldOwner = before[bucket]!;

        var session = farm.StartSession();
        Assert.Equal(oldOwner, FarmLab.Ask(session, "open " + source));

        // The old owner leaves the map (power 0); apply the transition as the module will:
        // everyone releases first, then everyone takes.
        var view = EqualPowers(farm);
        view[oldOwner] = 0;
        var after = BucketMap.Assign(view);
        var newOwner = after[bucket]!;
        Assert.NotEqual(oldOwner, newOwner);
        var plans = farm.Filters.Keys.ToDictionary(n => n, n => BucketMap.Plan(before, after, n));
        Assert.InRange(plans[oldOwner].Release.Count, 55, 115);
        foreach (var (node, filter) in farm.Filters)
        {
            filter.UpdateOwned(plans[node].Interim);
        }
        foreach (var (node, filter) in farm.Filters)
        {
            filter.UpdateOwned(plans[node].Final);
            Assert.True(filter.Verify(plans[node].Final).Ok, node);
        }

        // The live session still talks to the old owner, several times, and nobody reset it.
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(oldOwner, FarmLab.Ask(session, "send"));
        }
        // A new connection from the same address now lands on the new owner.
        var fresh = farm.Connect(new[] { source }, perAddress: 3);
        Assert.All(fresh, r => Assert.Equal(newOwner, r.Answer));
        Assert.Equal(oldOwner, FarmLab.Ask(session, "send"));
        _output.WriteLine($"bucket {bucket}: {oldOwner} -> {newOwner}; open session stayed on {oldOwner}");
    }

    [NetnsFact]
    public void Verify_SeesFlushedRulesAndStaleBuckets_RemoveLeavesNothing()
    {
        using var farm = FarmLab.Create(1, LoadBalancingFilter.OnAddress, _output.WriteLine, servers: false);
        var node = farm.Lab.Nodes[0];
        var filter = farm.Filters[node.Name];
        var mac = FarmFilterRules.MulticastMac(farm.Vip);
        var owned = Enumerable.Range(0, 100).ToList();

        filter.Remove(); // nothing installed yet: still fine
        filter.Apply(owned);
        filter.Apply(owned); // idempotent, and replaces atomically
        Assert.True(filter.Verify(owned).Ok, string.Join("; ", filter.Verify(owned).Problems));
        Assert.Contains(mac, farm.Lab.ExecInNode(node, "ip", "maddr", "show", "dev", "eth0").StdOut);
        Assert.Equal("0", farm.Lab.ExecInNode(node, "cat", "/proc/sys/net/netfilter/nf_conntrack_tcp_loose").StdOut.Trim());

        var stale = filter.Verify(owned.Skip(1));
        Assert.True(stale.Intact);
        Assert.False(stale.OwnedMatches);

        farm.Lab.ExecInNode(node, "nft", "flush", "chain", "inet", farm.Rules.TableName, "input").EnsureSuccess();
        var flushed = filter.Verify(owned);
        Assert.False(flushed.Intact);
        Assert.Contains(flushed.Problems, p => p.Contains("chain input", StringComparison.Ordinal));

        farm.Lab.ExecInNode(node, "nft", "delete", "table", "arp", farm.Rules.TableName).EnsureSuccess();
        Assert.Contains(filter.Verify(owned).Problems, p => p.Contains("table arp", StringComparison.Ordinal));

        filter.Apply(owned);
        filter.UpdateOwned(Array.Empty<int>());
        Assert.True(filter.Verify(Array.Empty<int>()).Ok);

        filter.Remove();
        filter.Remove();
        Assert.Equal(string.Empty, farm.Lab.ExecInNode(node, "nft", "list", "ruleset").EnsureSuccess().StdOut.Trim());
        Assert.DoesNotContain(mac, farm.Lab.ExecInNode(node, "ip", "maddr", "show", "dev", "eth0").StdOut);
        var gone = filter.Verify(owned);
        Assert.False(gone.Intact);
        Assert.Contains(gone.Problems, p => p.Contains("is missing", StringComparison.Ordinal));
    }
}
