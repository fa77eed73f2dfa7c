// A ServiceKeeper mirror module "web" on n1/n2 with the client as witness; its start_prim runs a
// python HTTP server that answers with the node's name (as the integration tests' MirrorLab).
using System;
using System.Linq;
using System.Text;
using System.Threading;
using ServiceKeeper.Contracts;
using ServiceKeeper.Testing;

namespace ServiceKeeper.Bench;

public sealed class ServiceKeeperTarget : FailoverTarget
{
    public const string Module = "web";
    private readonly string? _heartXml;
    private SKApiClient? _api1;
    private SKApiClient? _api2;

    /// <param name="heartXml">A &lt;heart .../&gt; element for userconfig.xml, or null for the engine's defaults.</param>
    public ServiceKeeperTarget(string prefix, int subnet, bool keepFiles, string? heartXml, CancellationToken ct)
        : base(prefix, subnet, keepFiles, ct)
    {
        _heartXml = heartXml;
    }

    private static string StartPrim => $$"""
        #!/bin/sh
        mkdir -p "$SK_MODULE_DIR/www"
        echo "$SK_NODE" > "$SK_MODULE_DIR/www/index.html"
        setsid {{Tools.Python}} -m http.server {{AppPort}} --directory "$SK_MODULE_DIR/www" > "$SK_MODULE_DIR/http.log" 2>&1 < /dev/null &
        echo $! > "$SK_MODULE_DIR/http.pid"
        echo "started http server pid $(cat "$SK_MODULE_DIR/http.pid") ($1 -> $2, $3)"
        """;

    private const string StopPrim = """
        #!/bin/sh
        echo "stop_prim $1 $2 $3"
        [ -f "$SK_MODULE_DIR/http.pid" ] && kill -9 "$(cat "$SK_MODULE_DIR/http.pid")" 2>/dev/null
        rm -f "$SK_MODULE_DIR/http.pid"
        exit 0
        """;

    protected override void Start()
    {
        foreach (var node in Lab.Nodes) Lab.StartEngine(node, EngineLab.AdminKey);
        foreach (var node in Lab.Nodes) Lab.WaitForEngine(node, TimeSpan.FromSeconds(60));
        _api1?.Dispose();
        _api2?.Dispose();
        _api1 = Client(Primary);
        _api2 = Client(Backup);
        _api1.CreateClusterAsync(new CreateClusterRequest { Name = "bench", Nodes = Lab.Nodes.Select(n => n.Address).ToList() }, Cancel)
            .GetAwaiter().GetResult();
        _api1.AddMirrorModuleAsync(new AddMirrorModuleRequest
        {
            Name = Module,
            Nodes = [Primary.Name, Backup.Name],
            VirtualIP = Vip + "/24",
            Witnesses = [Lab.Client!.Address],
            UserConfigXml = _heartXml == null ? null : $"<service mode=\"mirror\">{_heartXml}</service>",
            Scripts = new() { ["start_prim"] = Base64(StartPrim), ["stop_prim"] = Base64(StopPrim) },
        }, Cancel).GetAwaiter().GetResult();
        _api1.SendCommandAsync(Module, new ModuleCommandRequest { Command = ModuleCommands.Start }, Cancel).GetAwaiter().GetResult();
        WaitForRoles(Primary, Backup, TimeSpan.FromSeconds(60));
    }

    public override void MakeReady(TimeSpan timeout)
    {
        if (Is(Primary, "PRIM") && Is(Backup, "SECOND")) return;
        // After a trial: n1 returns as SECOND under n2; swap gives the roles back.
        WaitForRoles(Backup, Primary, timeout);
        _api1!.SendCommandAsync(Module, new ModuleCommandRequest { Command = ModuleCommands.Swap }, Cancel).GetAwaiter().GetResult();
        WaitForRoles(Primary, Backup, timeout);
    }

    // The cut node sees its peer lost, finds no witness and stops serving: WAIT "isolated".
    public override bool PrimaryStoodDown() => StateOf(Primary) is { State: "WAIT" } && !HasVip(Primary);

    private void WaitForRoles(LabNode prim, LabNode second, TimeSpan timeout) =>
        Tools.WaitFor(() => Is(prim, "PRIM") && Is(second, "SECOND"), $"{prim.Name} PRIM and {second.Name} SECOND", timeout, Cancel, Describe);

    private bool Is(LabNode node, string state) => StateOf(node) is { } s && s.State == state && s.Ready;

    private ModuleState? StateOf(LabNode node)
    {
        try
        {
            var api = node == Primary ? _api1 : _api2;
            return api?.GetLocalStateAsync(Cancel).GetAwaiter().GetResult().FirstOrDefault(s => s.Module == Module);
        }
        catch (Exception) when (!Cancel.IsCancellationRequested)
        {
            // Engine busy or restarting: unknown for now, the caller asks again.
            return null;
        }
    }

    public override string Describe() =>
        string.Join("; ", Lab.Nodes.Select(n => StateOf(n) is { } s ? $"{n.Name} {s.State}{(s.Ready ? "" : "(T)")} {s.Reason}" : $"{n.Name} ?"));

    private static SKApiClient Client(LabNode node)
    {
        var endpoint = SKEndpoint.Local(node.ApiSocketPath);
        endpoint.Timeout = TimeSpan.FromSeconds(5);
        return new SKApiClient(endpoint);
    }

    private static string Base64(string script) => Convert.ToBase64String(Encoding.UTF8.GetBytes(script.Replace("\r", "", StringComparison.Ordinal)));

    public override void Dispose()
    {
        _api1?.Dispose();
        _api2?.Dispose();
        base.Dispose();
    }
}
