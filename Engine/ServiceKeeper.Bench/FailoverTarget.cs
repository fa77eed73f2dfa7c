// What a failover scenario provides to the trial loop: a two-node lab with a client, a VIP served by
// n1, and a way back to that start state after a trial.
using System;
using System.Threading;
using ServiceKeeper.Testing;

namespace ServiceKeeper.Bench;

public abstract class FailoverTarget : IDisposable
{
    /// <summary>Port of the HTTP application on the VIP.</summary>
    public const int AppPort = 8080;

    private readonly bool _keepFiles;
    private NetLab? _lab;

    protected FailoverTarget(string prefix, int subnet, bool keepFiles, CancellationToken ct)
    {
        Prefix = prefix;
        Subnet = subnet;
        _keepFiles = keepFiles;
        Cancel = ct;
    }

    public string Prefix { get; }

    public int Subnet { get; }

    protected CancellationToken Cancel { get; }

    public NetLab Lab => _lab ?? throw new InvalidOperationException("SetUp has not run.");

    public LabNode Primary => Lab.Nodes[0];

    public LabNode Backup => Lab.Nodes[1];

    public string Vip => $"198.18.{Subnet}.50";

    /// <summary>Builds the lab (n1, n2, client) and starts the cluster with n1 serving.</summary>
    public void SetUp()
    {
        _lab?.Dispose();
        _lab = NetLab.Create(Prefix, 2, new NetLabOptions { Subnet = Subnet, KeepFiles = _keepFiles });
        Start();
    }

    protected abstract void Start();

    /// <summary>Waits until n1 serves the VIP and n2 stands by, bringing the cluster back there after a failover.</summary>
    public abstract void MakeReady(TimeSpan timeout);

    /// <summary>
    /// True once the cut primary no longer serves (released the VIP): healing before that would
    /// bring a second holder of the VIP back onto the network.
    /// </summary>
    public abstract bool PrimaryStoodDown();

    /// <summary>One line on the cluster's state, for failure messages.</summary>
    public abstract string Describe();

    /// <summary>Is the VIP configured in the node's namespace?</summary>
    public bool HasVip(LabNode node) =>
        Lab.ExecInNode(node, "ip", "-o", "-4", "addr", "show").StdOut.Contains(" " + Vip + "/", StringComparison.Ordinal);

    public virtual void Dispose()
    {
        _lab?.Dispose();
        GC.SuppressFinalize(this);
    }
}
