// Two real engines in one cluster "c1" with one mirror module on n1 and n2 behind a virtual IP: the set-up
// the mirror integration tests share. What differs between them (application scripts, replicated
// directories, witness, networks, data laid down before the engines start) is a MirrorModuleSetup.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Testing;

/// <summary>What a <see cref="MirrorModuleLab"/> varies.</summary>
public sealed class MirrorModuleSetup
{
    public required string ModuleName { get; init; }

    /// <summary>Last byte of the virtual IP: 198.18.&lt;subnet&gt;.&lt;VipHost&gt;/24.</summary>
    public required int VipHost { get; init; }

    /// <summary>The client namespace's address is the module's witness. Default true.</summary>
    public bool Witness { get; init; } = true;

    /// <summary>The module's userconfig.xml; null: the defaults.</summary>
    public string? UserConfigXml { get; init; }

    /// <summary>The module's scripts by name (start_prim, stop_prim...), as plain text.</summary>
    public IReadOnlyDictionary<string, string> Scripts { get; init; } = new Dictionary<string, string>();

    /// <summary>How the network lab is built (bind mounts, a second network); null: the defaults.</summary>
    public NetLabOptions? LabOptions { get; init; }

    /// <summary>Runs once the nodes' folders exist and before their engines start: to lay data into them.</summary>
    public Action<EngineLab>? BeforeEnginesStart { get; init; }
}

public class MirrorModuleLab : IDisposable
{
    /// <param name="output">Receives the engines' logs when the lab ends (a test's output).</param>
    public MirrorModuleLab(Action<string>? output, MirrorModuleSetup setup)
    {
        ArgumentNullException.ThrowIfNull(setup);
        ModuleName = setup.ModuleName;
        Env = new EngineLab(output, 2, start: false, options: setup.LabOptions);
        Vip = $"198.18.{Env.Lab.Options.Subnet}.{setup.VipHost}";
        try
        {
            setup.BeforeEnginesStart?.Invoke(Env);
            foreach (var node in Env.Nodes) Env.Start(node);
            Api.CreateClusterAsync(new CreateClusterRequest { Name = "c1", Nodes = Env.Nodes.Select(n => n.Address).ToList() }).GetAwaiter().GetResult();
            Api.AddMirrorModuleAsync(new AddMirrorModuleRequest
            {
                Name = ModuleName,
                Nodes = ["n1", "n2"],
                VirtualIP = Vip + "/24",
                Witnesses = setup.Witness ? [Env.Lab.Client!.Address] : [],
                UserConfigXml = setup.UserConfigXml,
                Scripts = setup.Scripts.ToDictionary(s => s.Key, s => EngineLab.EncodeScript(s.Value)),
            }).GetAwaiter().GetResult();
        }
        catch
        {
            Env.Dispose();
            throw;
        }
    }

    public string ModuleName { get; }
    public EngineLab Env { get; }
    public string Vip { get; }

    /// <summary>The first node's engine through its local socket.</summary>
    public SKApiClient Api => Env.Local(Env.Nodes[0]);
    public SKApiClient ApiOf(int node) => Env.Local(Env.Nodes[node]);
    public LabNode N1 => Env.Nodes[0];
    public LabNode N2 => Env.Nodes[1];
    public LabNode Other(LabNode node) => node == N1 ? N2 : N1;

    /// <summary>A module command (Start-SKModule...) on the whole module, or on one node.</summary>
    public void Command(string command, string? node = null) =>
        Api.SendCommandAsync(ModuleName, new ModuleCommandRequest { Command = command, Node = node }).GetAwaiter().GetResult();

    public void Start() => Command(ModuleCommands.Start);

    /// <summary>The module's state on a node, asked through that node's own socket; null when it does not answer.</summary>
    public ModuleState? StateOf(LabNode node)
    {
        try { return Env.Local(node).GetLocalStateAsync().GetAwaiter().GetResult().FirstOrDefault(s => s.Module == ModuleName); }
        catch (SKApiException) { return null; }
    }

    public void WaitForState(LabNode node, string state, bool ready = true, int seconds = 60) =>
        WaitFor(() => StateOf(node) is { } s && s.State == state && s.Ready == ready,
            $"{node.Name} {state}{(ready ? "" : " (transient)")}", seconds, Describe);

    /// <summary>Each node's state, readiness, reason and data generation, for a failure message.</summary>
    public string Describe() =>
        string.Join("; ", Env.Nodes.Select(n => StateOf(n) is { } s ? $"{n.Name} {s.State}{(s.Ready ? "" : "(T)")} {s.Reason} gen {s.DataGeneration}" : $"{n.Name} ?"));

    /// <summary>Polls <paramref name="condition"/> every 100 ms; after <paramref name="seconds"/> throws, saying <paramref name="state"/>.</summary>
    public static void WaitFor(Func<bool> condition, string what, int seconds, Func<string>? state = null)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.Elapsed > TimeSpan.FromSeconds(seconds))
                throw new TimeoutException($"waited {seconds} s for {what}; now: {state?.Invoke()}");
            Thread.Sleep(100);
        }
    }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Removes the lab (namespaces, processes, files); a derived lab shows what it needs to first.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (disposing) Env.Dispose();
    }
}
