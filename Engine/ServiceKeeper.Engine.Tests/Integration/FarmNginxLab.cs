// Three real engines running a farm module "www" whose start_both starts nginx (answers "/" with the
// node name, serves /big = node name + zeros at a limited rate), and a client namespace with many
// source addresses: the helpers the farm traffic tests share.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using ServiceKeeper.Contracts;
using ServiceKeeper.Testing;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Integration
{
    /// <summary>The farm tests that run three engines each share the machine one at a time.</summary>
    [CollectionDefinition(Name)]
    public sealed class FarmEnginesCollection
    {
        public const string Name = "Farm engines";
    }

    internal sealed class FarmNginxLab : IDisposable
    {
        public const string Module = "www";
        public const int BigBytes = NginxFarmApp.DefaultBigBytes;

        // "src answer" per connection (a new source port each time); FAIL when no answer within 5 s
        // (a SYN dropped in a bucket hand-over is retransmitted after 1 s, so that still succeeds).
        private const string AskScript = """
            import socket, sys
            vip, n = sys.argv[1], int(sys.argv[2])
            for src in sys.argv[3:]:
                for i in range(n):
                    s = socket.socket()
                    s.settimeout(5)
                    try:
                        s.bind((src, 0))
                        s.connect((vip, 80))
                        s.sendall(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
                        data = b""
                        while True:
                            chunk = s.recv(4096)
                            if not chunk:
                                break
                            data += chunk
                        body = data.split(b"\r\n\r\n", 1)[1].decode().strip() if b"\r\n\r\n" in data else ""
                        print(src, body or "EMPTY", flush=True)
                    except Exception as e:
                        print(src, "FAIL", flush=True)
                    finally:
                        s.close()
            """;

        private readonly List<Process> _downloads = new();

        public FarmNginxLab(Action<string> output, string rule, Dictionary<string, int>? power = null, string rate = "200k", int sources = 30)
        {
            Output = output;
            Env = new EngineLab(output, 3);
            try
            {
                Vip = $"198.18.{Env.Lab.Options.Subnet}.60";
                Sources = Enumerable.Range(150, sources).Select(i => $"198.18.{Env.Lab.Options.Subnet}.{i}").ToList();
                foreach (var src in Sources) Env.Lab.Exec(Env.Lab.Client!.Namespace, "ip", "addr", "add", src + "/24", "dev", "eth0");
                Directory.CreateDirectory(Dir);
                File.WriteAllText(Path.Combine(Dir, "ask.py"), AskScript);
                var api = Api;
                api.CreateClusterAsync(new CreateClusterRequest { Name = "c1", Nodes = Env.Nodes.Select(n => n.Address).ToList() }).GetAwaiter().GetResult();
                api.AddFarmModuleAsync(new AddFarmModuleRequest
                {
                    Name = Module, Nodes = ["n1", "n2", "n3"], VirtualIP = Vip + "/24", Ports = [80], Rule = rule, Power = power ?? new(),
                    // One connection per request, so a drain ends when the downloads end.
                    Scripts = new NginxFarmApp { OneRequestPerConnection = true, BigRate = rate }.Scripts(),
                }).GetAwaiter().GetResult();
                api.SendCommandAsync(Module, new ModuleCommandRequest { Command = ModuleCommands.Start }).GetAwaiter().GetResult();
                foreach (var node in Env.Nodes) WaitUp(node);
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public Action<string> Output { get; }
        public EngineLab Env { get; }
        public string Vip { get; }
        public List<string> Sources { get; }
        public SKApiClient Api => Env.Local(Env.Nodes[0]);
        public string Dir => Path.Combine(Env.Lab.LabDirectory, "farmtest");

        public LabNode Node(string name) => Env.Nodes.Single(n => n.Name == name);

        public ModuleState? StateOf(LabNode node) =>
            Env.Local(node).GetLocalStateAsync().GetAwaiter().GetResult().SingleOrDefault();

        public void WaitUp(LabNode node, int seconds = 90) =>
            WaitFor(() => StateOf(node) is { State: "UP", Ready: true }, node.Name + " UP", seconds);

        public void WaitFor(Func<bool> condition, string what, int seconds) =>
            MirrorLab.WaitFor(condition, what, seconds, Describe);

        public string Describe() =>
            string.Join("; ", Env.Nodes.Select(n => StateOf(n) is { } s ? $"{n.Name} {s.State}{(s.Ready ? "" : "(T)")} {s.Reason}" : $"{n.Name} ?"));

        /// <summary><paramref name="perSource"/> new connections from each of <paramref name="sources"/>: (source, answer or null).</summary>
        public List<(string Source, string? Answer)> Ask(int perSource, IEnumerable<string>? sources = null)
        {
            var list = (sources ?? Sources).ToList();
            var r = Env.Lab.Exec(TimeSpan.FromSeconds(30 + perSource * list.Count * 6), Env.Lab.Client!.Namespace,
                "python3", [Path.Combine(Dir, "ask.py"), Vip, perSource.ToString(System.Globalization.CultureInfo.InvariantCulture), .. list]);
            return r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => l.Trim().Split(' ', 2))
                .Select(f => (f[0], f.Length < 2 || f[1] is "FAIL" or "EMPTY" ? null : f[1]))
                .ToList();
        }

        public static string Count(IEnumerable<string?> answers) =>
            string.Join(", ", answers.GroupBy(a => a ?? "failed").OrderBy(g => g.Key).Select(g => $"{g.Key} {g.Count()}"));

        public string ModuleLog(LabNode node) =>
            string.Join("\n", Env.Local(node).GetLocalLogAsync(Module, 1000).GetAwaiter().GetResult().Select(l => l.Text));

        // ------------------------------------------------------------------ long downloads

        /// <summary>Starts <paramref name="count"/> downloads of /big through the VIP, each from its own source port.</summary>
        public List<Download> StartDownloads(int count, string tag)
        {
            var list = new List<Download>();
            for (var i = 0; i < count; i++)
            {
                var d = new Download(Path.Combine(Dir, $"{tag}-{i}.bin"), Path.Combine(Dir, $"{tag}-{i}.result"));
                var psi = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardOutput = false, RedirectStandardError = false };
                foreach (var a in new[] { "netns", "exec", Env.Lab.Client!.Namespace, "sh", "-c",
                    $"curl -s --interface {Sources[i % Sources.Count]} -m 300 -o '{d.File}' -w '%{{http_code}} %{{size_download}}' http://{Vip}/big > '{d.Result}.tmp'; echo \" $?\" >> '{d.Result}.tmp'; mv '{d.Result}.tmp' '{d.Result}'" })
                    psi.ArgumentList.Add(a);
                _downloads.Add(Process.Start(psi)!);
                list.Add(d);
            }
            return list;
        }

        /// <summary>Where each download is: node, bytes so far, result.</summary>
        public static string Describe(IEnumerable<Download> downloads) =>
            string.Join(", ", downloads.Select(d => $"{Path.GetFileNameWithoutExtension(d.File)} {d.Node ?? "?"} {d.Bytes} B {(d.Finished ? "[" + System.IO.File.ReadAllText(d.Result).Trim() + "]" : "")}"));

        public void WaitForDownloads(List<Download> downloads, Func<Download, bool> condition, string what, int seconds) =>
            MirrorLab.WaitFor(() => downloads.All(condition), what, seconds, () => Describe() + "; downloads: " + Describe(downloads));

        public sealed record Download(string File, string Result)
        {
            public bool Finished => System.IO.File.Exists(Result);

            /// <summary>The node that serves it (the first line of the body), once it has started.</summary>
            public string? Node
            {
                get
                {
                    if (!System.IO.File.Exists(File)) return null;
                    using var s = System.IO.File.OpenRead(File);
                    var buffer = new byte[16];
                    var n = s.Read(buffer, 0, buffer.Length);
                    var text = Encoding.ASCII.GetString(buffer, 0, n);
                    var nl = text.IndexOf('\n');
                    return nl > 0 ? text[..nl] : null;
                }
            }

            public long Bytes => System.IO.File.Exists(File) ? new FileInfo(File).Length : 0;

            /// <summary>HTTP 200, curl exit 0 and every byte: the connection was never reset.</summary>
            public bool Intact(out string detail)
            {
                detail = Finished ? System.IO.File.ReadAllText(Result).Trim() : "not finished";
                var node = Node;
                return Finished && detail == $"200 {BigBytes + node?.Length + 1} 0" && Bytes == BigBytes + node!.Length + 1;
            }
        }

        /// <summary>Nothing the module installed is left on the node: nft tables, the VIP, the multicast MAC.</summary>
        public void AssertNothingLeft(LabNode node)
        {
            Assert.DoesNotContain("sk_" + Module, Env.Lab.ExecInNode(node, "nft", "list", "tables").StdOut);
            Assert.DoesNotContain(Vip + "/", Env.Lab.ExecInNode(node, "ip", "-o", "addr", "show").StdOut);
            Assert.DoesNotContain("03:00:5e", Env.Lab.ExecInNode(node, "ip", "maddr", "show", "dev", "eth0").StdOut);
        }

        public void Dispose()
        {
            foreach (var p in _downloads)
            {
                try
                {
                    if (!p.HasExited) p.Kill(entireProcessTree: true);
                }
                catch (InvalidOperationException) { }
                p.Dispose();
            }
            Env.Dispose();
        }
    }
}
