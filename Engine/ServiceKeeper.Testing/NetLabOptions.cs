// Settings of a NetLab. A plain settable class so PowerShell (build.ps1 -Task Demo) can fill it.
using System;
using System.Collections.Generic;
using System.Linq;

namespace ServiceKeeper.Testing;

/// <summary>How a <see cref="NetLab"/> is built. Every property has a usable default.</summary>
public sealed class NetLabOptions
{
    /// <summary>Third byte of every address: nodes are 198.18.&lt;Subnet&gt;.i, the client .100 (0..255, default 0).</summary>
    public int Subnet { get; set; }

    /// <summary>Create the client namespace <c>&lt;prefix&gt;-cl</c> (198.18.&lt;Subnet&gt;.100). Default true.</summary>
    public bool CreateClient { get; set; } = true;

    /// <summary>
    /// Add a second network: bridge br1 in the switch namespace, eth1 in every node with
    /// 198.19.&lt;Subnet&gt;.i/24 (the product runs heartbeats on several networks). Default false.
    /// </summary>
    public bool SecondNetwork { get; set; }

    /// <summary>
    /// Folders bind-mounted into each node's private mount namespace when a process is started
    /// with <see cref="NetLab.StartEngine"/> or <see cref="NetLab.StartInNode"/>:
    /// <c>&lt;node root&gt;/&lt;SourceSubdir&gt;</c> appears at <c>Target</c> for that node only.
    /// The source folders are created with the lab; a missing <c>Target</c> folder is created on the
    /// host (mkdir -p, the mount namespace does not isolate files), so prefer existing ones like /srv.
    /// </summary>
    public IList<BindMount> BindMounts { get; } = new List<BindMount>();

    /// <summary>Leave /tmp/&lt;prefix&gt; on disk at Dispose (namespaces and processes are still removed).</summary>
    public bool KeepFiles { get; set; }

    /// <summary>Engine executable. Null: env SK_ENGINE, else out/engine/servicekeeper found upward.</summary>
    public string? EnginePath { get; set; }

    /// <summary>Port of the engine's HTTPS API, passed as <c>--listen &lt;eth0 address&gt;:&lt;ApiPort&gt;</c>. Default 9453.</summary>
    public int ApiPort { get; set; } = 9453;

    /// <summary>Default time limit of <see cref="NetLab.Exec(string?, string, string[])"/> and of the lab's own commands.</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Receives one line per action of the lab (commands run, cleanup problems). Null: silent.</summary>
    public Action<string>? Log { get; set; }

    /// <summary>Adds a bind mount and returns the options, for one-line set-up from PowerShell.</summary>
    public NetLabOptions AddBindMount(string sourceSubdir, string target)
    {
        BindMounts.Add(new BindMount(sourceSubdir, target));
        return this;
    }
}

/// <summary>One per-node bind mount: <c>&lt;node root&gt;/SourceSubdir</c> → <c>Target</c>.</summary>
public sealed class BindMount
{
    public BindMount(string sourceSubdir, string target)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(sourceSubdir);
        ArgumentException.ThrowIfNullOrWhiteSpace(target);
        if (sourceSubdir.StartsWith('/') || sourceSubdir.Split('/').Contains(".."))
        {
            throw new ArgumentException($"Bind mount source '{sourceSubdir}' must be a relative folder under the node root.", nameof(sourceSubdir));
        }
        if (!target.StartsWith('/'))
        {
            throw new ArgumentException($"Bind mount target '{target}' must be an absolute path.", nameof(target));
        }
        SourceSubdir = sourceSubdir.Trim('/');
        Target = target.Length > 1 ? target.TrimEnd('/') : target;
    }

    public string SourceSubdir { get; }

    public string Target { get; }

    public override string ToString() => $"{SourceSubdir} -> {Target}";
}
