// A two-node cluster with a mirror module serving a small HTTP application on a virtual IP.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Contracts;
using ServiceKeeper.Testing;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Integration
{
    internal sealed class MirrorLab : IDisposable
    {
        public const string Module = "web";
        public readonly EngineLab Env;
        public readonly string Vip;

        // The application: python's HTTP server answering with the node's name, detached from the script.
        private const string StartPrim = """
            #!/bin/sh
            mkdir -p "$SK_MODULE_DIR/www"
            echo "$SK_NODE" > "$SK_MODULE_DIR/www/index.html"
            setsid python3 -m http.server 8080 --directory "$SK_MODULE_DIR/www" > "$SK_MODULE_DIR/http.log" 2>&1 < /dev/null &
            echo $! > "$SK_MODULE_DIR/http.pid"
            # Ready when it answers: the module is PRIM only once the application serves.
            for i in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:8080/ && break; sleep 0.1; done
            echo "started http server pid $(cat "$SK_MODULE_DIR/http.pid") ($1 -> $2, $3)"
            """;

        private const string StopPrim = """
            #!/bin/sh
            echo "stop_prim $1 $2 $3"
            [ -f "$SK_MODULE_DIR/http.pid" ] && kill -9 "$(cat "$SK_MODULE_DIR/http.pid")" 2>/dev/null
            rm -f "$SK_MODULE_DIR/http.pid"
            exit 0
            """;

        public MirrorLab(ITestOutputHelper output, bool witness = true, bool secondNetwork = false, string? extraConfig = null)
        {
            Env = new EngineLab(output.WriteLine, 2, options: new NetLabOptions { SecondNetwork = secondNetwork });
            Vip = $"198.18.{Env.Lab.Options.Subnet}.50";
            try
            {
                Api.CreateClusterAsync(new CreateClusterRequest { Name = "c1", Nodes = Env.Nodes.Select(n => n.Address).ToList() }).GetAwaiter().GetResult();
                var config = extraConfig == null ? null : $"<service mode=\"mirror\">{extraConfig}</service>";
                Api.AddMirrorModuleAsync(new AddMirrorModuleRequest
                {
                    Name = Module,
                    Nodes = ["n1", "n2"],
                    VirtualIP = Vip + "/24",
                    Witnesses = witness ? [Env.Lab.Client!.Address] : [],
                    UserConfigXml = config,
                    Scripts = new() { ["start_prim"] = Base64(StartPrim), ["stop_prim"] = Base64(StopPrim) },
                }).GetAwaiter().GetResult();
            }
            catch
            {
                Env.Dispose();
                throw;
            }
        }

        public SKApiClient Api => Env.Local(Env.Nodes[0]);
        public SKApiClient ApiOf(int node) => Env.Local(Env.Nodes[node]);
        public LabNode N1 => Env.Nodes[0];
        public LabNode N2 => Env.Nodes[1];

        private static string Base64(string script) => Convert.ToBase64String(Encoding.UTF8.GetBytes(script.Replace("\r", "")));

        public void Start() => Api.SendCommandAsync(Module, new ModuleCommandRequest { Command = ModuleCommands.Start }).GetAwaiter().GetResult();

        /// <summary>The module's state on a node, asked through that node's own socket.</summary>
        public ModuleState? StateOf(LabNode node)
        {
            try { return Env.Local(node).GetLocalStateAsync().GetAwaiter().GetResult().FirstOrDefault(s => s.Module == Module); }
            catch (SKApiException) { return null; }
        }

        public void WaitForState(LabNode node, string state, bool ready = true, int seconds = 60)
        {
            WaitFor(() => StateOf(node) is { } s && s.State == state && s.Ready == ready,
                $"{node.Name} {state}{(ready ? "" : " (transient)")}", seconds, () => Describe());
        }

        public string Describe() =>
            string.Join("; ", Env.Nodes.Select(n => StateOf(n) is { } s ? $"{n.Name} {s.State}{(s.Ready ? "" : "(T)")} {s.Reason} gen {s.DataGeneration}" : $"{n.Name} ?"));

        /// <summary>GET http://VIP:8080/ from the client: the name of the node that answered, or null.</summary>
        public string? Get()
        {
            var r = Env.Lab.Exec(TimeSpan.FromSeconds(5), Env.Lab.Client!.Namespace, "curl", "-s", "-m", "1", $"http://{Vip}:8080/");
            return r.Succeeded ? r.StdOut.Trim() : null;
        }

        public void WaitForAnswer(string node, int seconds = 60) =>
            WaitFor(() => Get() == node, $"the VIP answered by {node}", seconds, () => Describe() + $"; VIP answers {Get() ?? "nothing"}");

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

        /// <summary>Is the VIP configured in a node's namespace?</summary>
        public bool HasVip(LabNode node) => Env.Lab.ExecInNode(node, "ip", "-o", "addr", "show").StdOut.Contains(Vip + "/");

        public void Dispose() => Env.Dispose();
    }
}
