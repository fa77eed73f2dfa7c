// A two-node cluster with a mirror module serving a small HTTP application on a virtual IP.
using System;
using System.Collections.Generic;
using ServiceKeeper.Testing;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Integration
{
    internal sealed class MirrorLab : MirrorModuleLab
    {
        public const string Module = "web";

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
            : base(output.WriteLine, new MirrorModuleSetup
            {
                ModuleName = Module,
                VipHost = 50,
                Witness = witness,
                UserConfigXml = extraConfig == null ? null : $"<service mode=\"mirror\">{extraConfig}</service>",
                Scripts = new Dictionary<string, string> { ["start_prim"] = StartPrim, ["stop_prim"] = StopPrim },
                LabOptions = new NetLabOptions { SecondNetwork = secondNetwork },
            })
        {
        }

        /// <summary>GET http://VIP:8080/ from the client: the name of the node that answered, or null.</summary>
        public string? Get()
        {
            var r = Env.Lab.Exec(TimeSpan.FromSeconds(5), Env.Lab.Client!.Namespace, "curl", "-s", "-m", "1", $"http://{Vip}:8080/");
            return r.Succeeded ? r.StdOut.Trim() : null;
        }

        public void WaitForAnswer(string node, int seconds = 60) =>
            WaitFor(() => Get() == node, $"the VIP answered by {node}", seconds, () => Describe() + $"; VIP answers {Get() ?? "nothing"}");

        /// <summary>Is the VIP configured in a node's namespace?</summary>
        public bool HasVip(LabNode node) => Env.Lab.ExecInNode(node, "ip", "-o", "addr", "show").StdOut.Contains(Vip + "/");
    }
}
