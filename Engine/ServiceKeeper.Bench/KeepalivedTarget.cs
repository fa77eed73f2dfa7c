// The baseline: keepalived (VRRP) on n1/n2 with the same VIP, and the same python HTTP server running
// on both nodes all the time, so the VIP alone decides who answers. n1 MASTER priority 150, n2
// BACKUP priority 100, preemption on: n1 takes the VIP back by itself once its cable is back.
using System;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;
using ServiceKeeper.Testing;

namespace ServiceKeeper.Bench;

public sealed class KeepalivedTarget : FailoverTarget
{
    private readonly string _keepalived;
    private readonly double _advertInt;
    private readonly int _version;

    public KeepalivedTarget(string prefix, int subnet, bool keepFiles, double advertInt, int version, CancellationToken ct)
        : base(prefix, subnet, keepFiles, ct)
    {
        _keepalived = Tools.Keepalived ?? throw new InvalidOperationException("keepalived was not found: apt-get install keepalived.");
        _advertInt = advertInt;
        _version = version;
    }

    /// <summary>keepalived.conf of one node.</summary>
    public string Config(string node, bool master, string vip)
    {
        var version = _version == 2 ? "" : $"\n    version {_version}";
        return $$"""
            global_defs {
                router_id {{node}}
            }
            vrrp_instance bench {
                state {{(master ? "MASTER" : "BACKUP")}}
                interface eth0
                virtual_router_id 50
                priority {{(master ? 150 : 100)}}
                advert_int {{_advertInt.ToString(CultureInfo.InvariantCulture)}}{{version}}
                virtual_ipaddress {
                    {{vip}}/24 dev eth0
                }
            }

            """;
    }

    /// <summary>Null when keepalived accepts the configuration, else what it said.</summary>
    public string? CheckConfig()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"{Prefix}-check");
        Directory.CreateDirectory(dir);
        try
        {
            var conf = Path.Combine(dir, "keepalived.conf");
            File.WriteAllText(conf, Config("n1", master: true, "198.18.0.50"));
            var r = Run(_keepalived, "-t", "-f", conf);
            var text = (r.StdOut + r.StdErr).Trim();
            // keepalived -t exits 0 on warnings too; a value it rewrites (rounded advert_int) is a refusal here.
            if (r.ExitCode != 0) return text;
            var bad = text.Split('\n').FirstOrDefault(l => l.Contains("advert", StringComparison.OrdinalIgnoreCase) || l.Contains("version", StringComparison.OrdinalIgnoreCase));
            return bad;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    protected override void Start()
    {
        foreach (var node in Lab.Nodes)
        {
            var www = Path.Combine(node.NodeDirectory, "www");
            Directory.CreateDirectory(www);
            File.WriteAllText(Path.Combine(www, "index.html"), node.Name + "\n");
            var conf = Path.Combine(node.NodeDirectory, "keepalived.conf");
            File.WriteAllText(conf, Config(node.Name, node == Primary, Vip));
            Detach(node, $"exec {Tools.Python} -m http.server {AppPort} --directory {www}", Path.Combine(node.NodeDirectory, "http.log"));
            Detach(node, $"exec {_keepalived} -n -l -D -G -P -f {conf} -p {node.NodeDirectory}/keepalived.pid -r {node.NodeDirectory}/vrrp.pid",
                Path.Combine(node.NodeDirectory, "keepalived.log"));
        }
        MakeReady(TimeSpan.FromSeconds(60));
    }

    // A long-running program in the node, its output in a file; the lab's Dispose kills it.
    private void Detach(LabNode node, string command, string log)
    {
        using var p = Lab.StartInNode(node, "/bin/sh", "-c", $"{command} >>{log} 2>&1 </dev/null");
        p.StandardInput.Close();
    }

    public override void MakeReady(TimeSpan timeout) =>
        Tools.WaitFor(() => HasVip(Primary) && !HasVip(Backup), "n1 MASTER (the VIP on n1 only)", timeout, Cancel, Describe);

    // The cut node loses carrier on eth0: FAULT state, VIP removed.
    public override bool PrimaryStoodDown() => !HasVip(Primary);

    public override string Describe() =>
        string.Join("; ", Lab.Nodes.Select(n => $"{n.Name} {(HasVip(n) ? "has" : "lacks")} the VIP, last: {LastLine(n)}"));

    private static string LastLine(LabNode node)
    {
        var log = Path.Combine(node.NodeDirectory, "keepalived.log");
        try
        {
            return File.Exists(log) ? File.ReadLines(log).LastOrDefault(l => l.Contains("STATE", StringComparison.Ordinal)) ?? "-" : "-";
        }
        catch (IOException)
        {
            return "-";
        }
    }

    private static (int ExitCode, string StdOut, string StdErr) Run(string file, params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(30_000)) p.Kill(true);
        p.WaitForExit();
        return (p.ExitCode, o.Result, e.Result);
    }
}
