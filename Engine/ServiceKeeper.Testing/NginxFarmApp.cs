// nginx as the application of a farm module, for the farm tests and the farm bench: start_both writes an
// nginx configuration and starts nginx answering "/" with the node's name (SK_NODE), with everything it
// writes under the module's folder; stop_both stops it.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;

namespace ServiceKeeper.Testing;

public sealed class NginxFarmApp
{
    public const int DefaultBigBytes = 5_000_000;

    public const string StopScript = """
        #!/bin/sh
        d="$SK_MODULE_DIR/nginx"
        [ -f "$d/nginx.pid" ] && kill "$(cat "$d/nginx.pid")" 2>/dev/null
        sleep 0.2; exit 0
        """;

    /// <summary>nginx's worker_connections.</summary>
    public int WorkerConnections { get; init; } = 1024;

    /// <summary>
    /// keepalive_timeout 0: every request is a new connection, so every request is a new flow that the farm
    /// balances, and a drain ends when the downloads end.
    /// </summary>
    public bool OneRequestPerConnection { get; init; }

    /// <summary>The listen backlog of port 80; null: nginx's default.</summary>
    public int? Backlog { get; init; }

    /// <summary>
    /// Also serve /big at this rate (nginx limit_rate, e.g. "200k"): the node's name on a line, then
    /// <see cref="BigBytes"/> zero bytes, for downloads that outlive a change of the map. Null: no /big.
    /// </summary>
    public string? BigRate { get; init; }

    public int BigBytes { get; init; } = DefaultBigBytes;

    /// <summary>The start_both script.</summary>
    public string StartScript
    {
        get
        {
            var big = BigRate != null;
            var lines = new List<string>
            {
                "#!/bin/sh",
                "d=\"$SK_MODULE_DIR/nginx\"; mkdir -p \"$d/tmp\"" + (big ? " \"$d/www\"" : ""),
            };
            if (big) lines.Add(string.Create(CultureInfo.InvariantCulture, $"{{ echo \"$SK_NODE\"; head -c {BigBytes} /dev/zero; }} > \"$d/www/big\""));
            lines.AddRange(
            [
                "cat > \"$d/nginx.conf\" <<CONF",
                "worker_processes 1;",
                "pid $d/nginx.pid;",
                "error_log $d/error.log;",
                string.Create(CultureInfo.InvariantCulture, $"events {{ worker_connections {WorkerConnections}; }}"),
                "http {",
                "  access_log off;",
            ]);
            if (OneRequestPerConnection) lines.Add("  keepalive_timeout 0;");
            lines.Add("  client_body_temp_path $d/tmp; proxy_temp_path $d/tmp; fastcgi_temp_path $d/tmp; uwsgi_temp_path $d/tmp; scgi_temp_path $d/tmp;");
            var listen = Backlog is { } backlog ? string.Create(CultureInfo.InvariantCulture, $"listen 80 backlog={backlog};") : "listen 80;";
            if (big)
            {
                lines.AddRange(
                [
                    "  server {",
                    "    " + listen,
                    """    location = / { return 200 "$SK_NODE\n"; }""",
                    $"    location /big {{ root $d/www; limit_rate {BigRate}; }}",
                    "  }",
                ]);
            }
            else
            {
                lines.Add($$"""  server { {{listen}} location / { return 200 "$SK_NODE\n"; } }""");
            }
            lines.AddRange(["}", "CONF", "nginx -c \"$d/nginx.conf\" -p \"$d\""]);
            return string.Join("\n", lines);
        }
    }

    /// <summary>start_both and stop_both as a module request carries them (base64).</summary>
    public Dictionary<string, string> Scripts() => new()
    {
        ["start_both"] = EngineLab.EncodeScript(StartScript),
        ["stop_both"] = EngineLab.EncodeScript(StopScript),
    };

    /// <summary>nginx's pid file on a node, given the module's folder there (&lt;home&gt;/modules/&lt;module&gt;).</summary>
    public static string PidFile(string moduleDirectory) => Path.Combine(moduleDirectory, "nginx", "nginx.pid");
}
