// The namespace test-host fixture itself: wiring, failure injection, bind mounts and cleanup.
using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using ServiceKeeper.Testing;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Testing;

public sealed class NetLabTests
{
    private readonly ITestOutputHelper _output;

    public NetLabTests(ITestOutputHelper output) => _output = output;

    private NetLabOptions Options() => new() { Log = _output.WriteLine };

    [NetnsFact]
    public void Create_TwoNodes_NodesAndClientReachEachOtherOverTheBridge()
    {
        var prefix = LabNames.NewPrefix();
        using var lab = NetLab.Create(prefix, 2, Options());

        Assert.Equal(new[] { "n1", "n2" }, lab.Nodes.Select(n => n.Name));
        Assert.Equal("198.18.0.1", lab.Nodes[0].Address);
        Assert.Equal("198.18.0.2", lab.Nodes[1].Address);
        Assert.Null(lab.Nodes[0].Address2);
        Assert.Equal($"{prefix}-n1", lab.Nodes[0].Namespace);
        Assert.Equal($"/tmp/{prefix}/n1/home", lab.Nodes[0].Home);
        Assert.Equal($"/tmp/{prefix}/n1/root", lab.Nodes[0].Root);
        Assert.True(Directory.Exists(lab.Nodes[1].Home));
        Assert.True(Directory.Exists(lab.Nodes[1].Root));
        Assert.NotNull(lab.Client);
        Assert.Equal("198.18.0.100", lab.Client!.Address);
        Assert.Equal(new[] { $"{prefix}-cl", $"{prefix}-n1", $"{prefix}-n2", $"{prefix}-sw" }, ListLabNamespaces(prefix));

        var (n1, n2) = (lab.Nodes[0], lab.Nodes[1]);
        Assert.True(lab.Ping(n1, n2.Address), "n1 -> n2");
        Assert.True(lab.Ping(n2, n1.Address), "n2 -> n1");
        Assert.True(lab.Ping(n1, lab.Client.Address), "n1 -> client");
        Assert.True(lab.Ping(lab.Client.Namespace, n2.Address), "client -> n2");
        Assert.True(lab.Ping(n1, "127.0.0.1"), "lo is up");
        Assert.False(lab.Ping(n1, "198.18.0.77"), "nobody has .77");

        // Nothing of the lab shows in the root namespace.
        var rootLinks = lab.Exec(null, "ip", "-o", "link", "show").EnsureSuccess().StdOut;
        Assert.DoesNotContain(prefix, rootLinks, StringComparison.Ordinal);
    }

    [NetnsFact]
    public void Cut_StopsTraffic_AndHealRestoresIt()
    {
        using var lab = NetLab.Create(LabNames.NewPrefix(), 2, Options());
        var (n1, n2) = (lab.Nodes[0], lab.Nodes[1]);
        Assert.True(lab.Ping(n1, n2.Address));

        lab.Cut(n2);
        Assert.False(lab.Ping(n1, n2.Address), "n2 is cut");
        Assert.False(lab.Ping(lab.Client!.Namespace, n2.Address), "n2 is cut from the client too");
        // The kernel applies carrier changes through its link watcher, asynchronously (up to a second later).
        Assert.True(WaitUntil(() => lab.ExecInNode(n2, "ip", "link", "show", "eth0").StdOut.Contains("NO-CARRIER", StringComparison.Ordinal),
            TimeSpan.FromSeconds(5)), "n2's eth0 shows NO-CARRIER: " + lab.ExecInNode(n2, "ip", "link", "show", "eth0"));
        Assert.True(lab.Ping(n1, lab.Client.Address), "n1 is not affected");

        lab.Heal(n2);
        Assert.True(WaitUntil(() => lab.Ping(n1, n2.Address), TimeSpan.FromSeconds(5)), "n2 is back");

        Assert.Throws<InvalidOperationException>(() => lab.Cut(n2, network: 2)); // no second network here
        Assert.Throws<ArgumentOutOfRangeException>(() => lab.Cut(n2, network: 3));
    }

    [NetnsFact]
    public void SecondNetwork_CarriesTraffic_AndCutOfOneNetworkLeavesTheOther()
    {
        var options = Options();
        options.SecondNetwork = true;
        options.Subnet = 7;
        options.CreateClient = false;
        var prefix = LabNames.NewPrefix();
        using var lab = NetLab.Create(prefix, 2, options);
        var (n1, n2) = (lab.Nodes[0], lab.Nodes[1]);

        Assert.Null(lab.Client);
        Assert.DoesNotContain($"{prefix}-cl", ListLabNamespaces(prefix));
        Assert.Equal("198.18.7.2", n2.Address);
        Assert.Equal("198.19.7.2", n2.Address2);
        Assert.Contains("198.19.7.1/24", lab.ExecInNode(n1, "ip", "-o", "addr", "show", "eth1").StdOut, StringComparison.Ordinal);
        Assert.True(lab.Ping(n1, n2.Address));
        Assert.True(lab.Ping(n1, n2.Address2!));

        lab.Cut(n2, network: 1);
        Assert.False(lab.Ping(n1, n2.Address), "network 1 is cut");
        Assert.True(lab.Ping(n1, n2.Address2!), "network 2 still works");

        lab.Cut(n2, network: 2);
        Assert.False(lab.Ping(n1, n2.Address2!), "network 2 is cut");

        lab.Heal(n2);
        Assert.True(WaitUntil(() => lab.Ping(n1, n2.Address) && lab.Ping(n1, n2.Address2!), TimeSpan.FromSeconds(5)));
    }

    [NetnsFact]
    public void DropPackets_InstallsAnNftTable_AndClearDropRemovesIt()
    {
        using var lab = NetLab.Create(LabNames.NewPrefix(), 2, Options());
        var (n1, n2) = (lab.Nodes[0], lab.Nodes[1]);

        lab.DropPackets(n2, 30);
        var table = lab.ExecInNode(n2, "nft", "list", "table", "inet", NetLab.DropTableName).EnsureSuccess().StdOut;
        _output.WriteLine(table);
        Assert.Contains("iifname \"eth0\"", table, StringComparison.Ordinal);
        Assert.Contains("numgen random mod 100 < 30", table, StringComparison.Ordinal);
        Assert.Contains("drop", table, StringComparison.Ordinal);
        // The node's table only: n1 is untouched.
        Assert.DoesNotContain(NetLab.DropTableName, lab.ExecInNode(n1, "nft", "list", "tables").StdOut, StringComparison.Ordinal);

        lab.DropPackets(n2, 100);
        Assert.False(lab.Ping(n1, n2.Address), "100% of n2's input is dropped");

        lab.ClearDrop(n2);
        Assert.DoesNotContain(NetLab.DropTableName, lab.ExecInNode(n2, "nft", "list", "tables").StdOut, StringComparison.Ordinal);
        Assert.True(lab.Ping(n1, n2.Address));

        lab.ClearDrop(n2); // clearing twice is harmless
    }

    [NetnsFact]
    public void DropPackets_OnOneNetwork_KeepsTheOtherClean()
    {
        var options = Options();
        options.SecondNetwork = true;
        using var lab = NetLab.Create(LabNames.NewPrefix(), 2, options);
        var (n1, n2) = (lab.Nodes[0], lab.Nodes[1]);

        lab.DropPackets(n2, 100, network: 2);
        lab.DropPackets(n2, 40, network: 1);
        var table = lab.ExecInNode(n2, "nft", "list", "table", "inet", NetLab.DropTableName).EnsureSuccess().StdOut;
        Assert.Contains("iifname \"eth0\" numgen random mod 100 < 40 drop", table, StringComparison.Ordinal);
        Assert.Contains("iifname \"eth1\" drop", table, StringComparison.Ordinal);
        Assert.False(lab.Ping(n1, n2.Address2!));

        lab.ClearDrop(n2, network: 2);
        table = lab.ExecInNode(n2, "nft", "list", "table", "inet", NetLab.DropTableName).EnsureSuccess().StdOut;
        Assert.DoesNotContain("eth1", table, StringComparison.Ordinal);
        Assert.True(lab.Ping(n1, n2.Address2!));
    }

    [NetnsFact]
    public void BindMounts_EachNodeSeesItsOwnFileAtTheSamePath()
    {
        var options = Options().AddBindMount("srv", "/srv");
        using var lab = NetLab.Create(LabNames.NewPrefix(), 2, options);
        foreach (var node in lab.Nodes)
        {
            File.WriteAllText(node.RootPath("srv/x"), "data of " + node.Name);
        }

        foreach (var node in lab.Nodes)
        {
            using var cat = lab.StartInNode(node, "sh", "-c", "cat /srv/x; echo; cat /proc/self/mounts | grep -c ' /srv ' ; ip -o -4 addr show eth0");
            var stdout = cat.StandardOutput.ReadToEnd();
            Assert.True(cat.WaitForExit(10_000));
            _output.WriteLine(stdout);
            Assert.Equal(0, cat.ExitCode);
            Assert.StartsWith("data of " + node.Name + "\n", stdout, StringComparison.Ordinal);
            Assert.Contains(node.Address + "/24", stdout, StringComparison.Ordinal); // and it is in the node's network namespace

            var again = lab.ExecInNodeWithMounts(node, "cat", "/srv/x").EnsureSuccess();
            Assert.Equal("data of " + node.Name, again.StdOut);
        }

        // The mounts stay private: neither the host nor the plain node namespace sees them.
        Assert.DoesNotContain(" /srv ", File.ReadAllText("/proc/self/mounts"), StringComparison.Ordinal);
        if (!File.Exists("/srv/x"))
        {
            Assert.NotEqual(0, lab.ExecInNode(lab.Nodes[0], "cat", "/srv/x").ExitCode);
        }
    }

    [NetnsFact]
    public void Exec_ReturnsOutputAndExitCode_AndKillsACommandThatOverruns()
    {
        using var lab = NetLab.Create(LabNames.NewPrefix(), 1, Options());
        var node = lab.Nodes[0];

        var (code, stdout, stderr) = lab.ExecInNode(node, "sh", "-c", "echo out; echo err >&2; exit 4");
        Assert.Equal(4, code);
        Assert.Equal("out\n", stdout);
        Assert.Equal("err\n", stderr);

        var clock = Stopwatch.StartNew();
        var slow = lab.Exec(TimeSpan.FromMilliseconds(300), node.Namespace, "sleep", "30");
        Assert.True(slow.TimedOut);
        Assert.Equal(-1, slow.ExitCode);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10));
        Assert.Empty(lab.Exec(null, "ip", "netns", "pids", node.Namespace).StdOut.Trim());
        Assert.Throws<InvalidOperationException>(() => slow.EnsureSuccess());
    }

    [NetnsFact]
    public void Dispose_RemovesNamespacesProcessesAndFiles_AndCanBeCalledTwice()
    {
        var prefix = LabNames.NewPrefix();
        var lab = NetLab.Create(prefix, 2, Options());
        using var sleeper = lab.StartInNode(lab.Nodes[1], "sleep", "1000");
        Assert.True(Directory.Exists($"/tmp/{prefix}"));

        lab.Dispose();

        Assert.True(sleeper.WaitForExit(5000), "processes in the namespaces are killed");
        Assert.Empty(ListLabNamespaces(prefix));
        Assert.False(Directory.Exists($"/tmp/{prefix}"));
        lab.Dispose();
        Assert.Throws<ObjectDisposedException>(() => lab.Cut(lab.Nodes[0]));
    }

    [NetnsFact]
    public void Dispose_WithKeepFiles_KeepsTheFolderButRemovesNamespaces()
    {
        var prefix = LabNames.NewPrefix();
        var options = Options();
        options.KeepFiles = true;
        try
        {
            var lab = NetLab.Create(prefix, 1, options);
            File.WriteAllText(Path.Combine(lab.Nodes[0].Home, "kept"), "yes");
            lab.Dispose();
            Assert.Empty(ListLabNamespaces(prefix));
            Assert.True(File.Exists($"/tmp/{prefix}/n1/home/kept"));
        }
        finally
        {
            NetLab.RemoveLeftovers(prefix);
        }
        Assert.False(Directory.Exists($"/tmp/{prefix}"));
    }

    [NetnsFact]
    public void RemoveLeftovers_CleansAnAbandonedLab_AndLeavesOtherLabsAlone()
    {
        var prefix = LabNames.NewPrefix();
        var abandoned = NetLab.Create(prefix, 2, Options());
        using var neighbour = NetLab.Create(prefix + "x", 1, Options()); // shares the prefix text, not the lab
        var sleeper = abandoned.StartInNode(abandoned.Nodes[0], "sleep", "1000");
        Directory.CreateDirectory($"/tmp/{prefix}/mnt");
        Assert.Equal(0, abandoned.Exec(null, "mount", "-t", "tmpfs", "sktest", $"/tmp/{prefix}/mnt").ExitCode);

        NetLab.RemoveLeftovers(prefix);

        Assert.True(sleeper.WaitForExit(5000));
        Assert.Empty(ListLabNamespaces(prefix));
        Assert.False(Directory.Exists($"/tmp/{prefix}"));
        Assert.DoesNotContain($"/tmp/{prefix}/", File.ReadAllText("/proc/self/mounts"), StringComparison.Ordinal);
        Assert.Equal(new[] { $"{prefix}x-cl", $"{prefix}x-n1", $"{prefix}x-sw" }, ListLabNamespaces(neighbour.Prefix));
        Assert.True(neighbour.Ping(neighbour.Nodes[0], neighbour.Client!.Address));

        abandoned.Dispose(); // after someone else cleaned up: still quiet
    }

    [NetnsFact]
    public void Create_WithThePrefixOfACrashedLab_ReplacesIt()
    {
        var prefix = LabNames.NewPrefix();
        var crashed = NetLab.Create(prefix, 3, Options());
        File.WriteAllText(Path.Combine(crashed.Nodes[0].Home, "stale"), "old");

        using var lab = NetLab.Create(prefix, 1, Options());

        Assert.Equal(new[] { $"{prefix}-cl", $"{prefix}-n1", $"{prefix}-sw" }, ListLabNamespaces(prefix));
        Assert.False(File.Exists(Path.Combine(lab.Nodes[0].Home, "stale")));
        Assert.True(lab.Ping(lab.Nodes[0], lab.Client!.Address));
    }

    [NetnsFact]
    public void CollectLogs_CopiesEngineOutputAndLogFolders()
    {
        using var lab = NetLab.Create(LabNames.NewPrefix(), 2, Options());
        var n1 = lab.Nodes[0];
        Directory.CreateDirectory(Path.Combine(n1.LogDirectory, "modules"));
        File.WriteAllText(Path.Combine(n1.LogDirectory, "engine.log"), "engine line\n");
        File.WriteAllText(Path.Combine(n1.LogDirectory, "modules", "sql.log"), "script line\n");
        File.WriteAllText(n1.LogPath, "stdout line\n");
        var destination = Path.Combine(lab.LabDirectory, "collected");

        lab.CollectLogs(destination);

        Assert.Equal("engine line\n", File.ReadAllText(Path.Combine(destination, "n1", "log", "engine.log")));
        Assert.Equal("script line\n", File.ReadAllText(Path.Combine(destination, "n1", "log", "modules", "sql.log")));
        Assert.Equal("stdout line\n", File.ReadAllText(Path.Combine(destination, "n1", "engine.out")));
        Assert.True(Directory.Exists(Path.Combine(destination, "n2")));

        var dump = lab.DumpLogs();
        Assert.Contains("stdout line", dump, StringComparison.Ordinal);
        Assert.Contains("script line", dump, StringComparison.Ordinal);
        Assert.Contains("n2", dump, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("lab1")]
    [InlineData("sk")]
    [InlineData("skTooLong99")]
    [InlineData("sk-a")]
    [InlineData("SK1")]
    public void Create_WithABadPrefix_Throws(string prefix)
    {
        Assert.Throws<ArgumentException>(() => NetLab.Create(prefix, 1));
        Assert.Throws<ArgumentException>(() => NetLab.RemoveLeftovers(prefix));
    }

    [Fact]
    public void Create_WithBadCounts_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => NetLab.Create("sktbad", 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => NetLab.Create("sktbad", 100));
        Assert.Throws<ArgumentOutOfRangeException>(() => NetLab.Create("sktbad", 2, new NetLabOptions { Subnet = 256 }));
    }

    [Fact]
    public void BindMount_RejectsPathsThatLeaveTheNodeRoot()
    {
        Assert.Throws<ArgumentException>(() => new BindMount("/etc", "/srv"));
        Assert.Throws<ArgumentException>(() => new BindMount("../n2/root", "/srv"));
        Assert.Throws<ArgumentException>(() => new BindMount("srv", "relative"));
        Assert.Equal("srv/data -> /srv", new BindMount("srv/data/", "/srv/").ToString());
    }

    [NetnsFact]
    public void IsSupported_OnATestMachine_IsTrue()
    {
        Assert.True(NetLab.IsSupported(out var reason), reason);
        Assert.Equal(string.Empty, reason);
    }

    // Not from the lab, so it also works after the lab is disposed.
    private static string[] ListLabNamespaces(string prefix) =>
        HostTools.ListNetns(TimeSpan.FromSeconds(30))
            .Where(n => n.StartsWith(prefix + "-", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToArray();

    private static bool WaitUntil(Func<bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (condition())
            {
                return true;
            }
            Thread.Sleep(100);
        }
        return condition();
    }
}
