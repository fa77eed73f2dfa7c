// One node of a NetLab: its namespaces, addresses, folders and engine process.
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;

namespace ServiceKeeper.Testing;

/// <summary>A cluster node of a <see cref="NetLab"/>, living in network namespace <see cref="Namespace"/>.</summary>
public sealed class LabNode
{
    internal LabNode(string prefix, int index, int subnet, bool secondNetwork, int apiPort)
    {
        Index = index;
        Name = "n" + index;
        Namespace = $"{prefix}-{Name}";
        Address = $"198.18.{subnet}.{index}";
        Address2 = secondNetwork ? $"198.19.{subnet}.{index}" : null;
        SwitchPort = $"{prefix}-{Name}-p";
        SwitchPort2 = secondNetwork ? $"{prefix}-{Name}-q" : null;
        NodeDirectory = Path.Combine("/tmp", prefix, Name);
        Home = Path.Combine(NodeDirectory, "home");
        Root = Path.Combine(NodeDirectory, "root");
        LogPath = Path.Combine(NodeDirectory, "engine.out");
        ApiEndpoint = $"{Address}:{apiPort}";
    }

    /// <summary>1-based number of the node.</summary>
    public int Index { get; }

    /// <summary>Node name as the engine knows it: "n1", "n2", ...</summary>
    public string Name { get; }

    /// <summary>Network namespace: "&lt;prefix&gt;-n1".</summary>
    public string Namespace { get; }

    /// <summary>Address of eth0 (first network), 198.18.&lt;subnet&gt;.&lt;index&gt;.</summary>
    public string Address { get; }

    /// <summary>Address of eth1 (second network), 198.19.&lt;subnet&gt;.&lt;index&gt;; null without a second network.</summary>
    public string? Address2 { get; }

    /// <summary>Switch-side veth of eth0 (in the switch namespace); <see cref="NetLab.Cut(LabNode)"/> sets it down.</summary>
    public string SwitchPort { get; }

    /// <summary>Switch-side veth of eth1, or null.</summary>
    public string? SwitchPort2 { get; }

    /// <summary>/tmp/&lt;prefix&gt;/&lt;node&gt;: holds home, root and engine.out.</summary>
    public string NodeDirectory { get; }

    /// <summary>Engine home (<c>--home</c>).</summary>
    public string Home { get; }

    /// <summary>Per-node data root; its sub-folders are bind-mounted at the configured targets.</summary>
    public string Root { get; }

    /// <summary>engine.out: stdout and stderr of every engine started on this node (appended).</summary>
    public string LogPath { get; }

    /// <summary>&lt;home&gt;/log, where the engine writes its NLog files.</summary>
    public string LogDirectory => Path.Combine(Home, "log");

    /// <summary>&lt;home&gt;/run/api.sock, the engine's local control socket.</summary>
    public string ApiSocketPath => Path.Combine(Home, "run", "api.sock");

    /// <summary>"address:port" of the engine's HTTPS API on eth0.</summary>
    public string ApiEndpoint { get; }

    /// <summary>The last engine started on this node (kept after it exits), or null.</summary>
    public Process? EngineProcess { get; internal set; }

    /// <summary>True while <see cref="EngineProcess"/> runs.</summary>
    public bool IsRunning
    {
        get
        {
            try
            {
                return EngineProcess is { } p && !p.HasExited;
            }
            catch (System.InvalidOperationException)
            {
                return false;
            }
        }
    }

    /// <summary>Host path of a file or folder that this node sees at a bind-mounted target, e.g. "srv/x".</summary>
    public string RootPath(string relative) => Path.Combine(Root, relative.TrimStart('/'));

    /// <summary>Mount namespace of the running engine ("mnt:[...]"), learnt once it runs; identifies its children.</summary>
    internal string? EngineMountNamespace { get; set; }

    /// <summary>Active packet loss per network (1, 2) in percent.</summary>
    internal Dictionary<int, int> DropPercents { get; } = new();

    public override string ToString() => $"{Name} ({Namespace}, {Address})";
}

/// <summary>The client namespace of a <see cref="NetLab"/> (first network only).</summary>
public sealed class LabClient
{
    internal LabClient(string prefix, int subnet)
    {
        Namespace = $"{prefix}-cl";
        Address = $"198.18.{subnet}.100";
        SwitchPort = $"{prefix}-cl-p";
    }

    public string Name => "cl";

    /// <summary>Network namespace: "&lt;prefix&gt;-cl".</summary>
    public string Namespace { get; }

    /// <summary>Address of eth0: 198.18.&lt;subnet&gt;.100.</summary>
    public string Address { get; }

    /// <summary>Switch-side veth of the client's eth0.</summary>
    public string SwitchPort { get; }

    public override string ToString() => $"{Name} ({Namespace}, {Address})";
}
