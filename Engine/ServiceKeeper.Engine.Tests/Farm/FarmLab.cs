// Helpers for the farm filter's namespace tests: a VIP farm on a NetLab, tiny TCP servers that answer
// with their node name, a many-connection client, and the kernel's jhash to predict each bucket.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Farm;
using ServiceKeeper.Testing;

namespace ServiceKeeper.Engine.Tests.Farm;

internal sealed class FarmLab : IDisposable
{
    public const int Port = 8080;
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";

    // One line in, one line out (the node name); every accepted connection is logged as "addr port".
    private const string ServerScript = """
        import socket, sys, threading
        name, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("0.0.0.0", port))
        srv.listen(1024)
        lock = threading.Lock()
        print("ready", flush=True)
        def handle(c, a):
            with lock:
                with open(log, "a") as f:
                    f.write("%s %d\n" % a)
            try:
                for line in c.makefile("rb"):
                    c.sendall(name.encode() + b"\n")
            except Exception:
                pass
            finally:
                c.close()
        while True:
            c, a = srv.accept()
            threading.Thread(target=handle, args=(c, a), daemon=True).start()
        """;

    // "src sport answer" per connection; answer FAIL:<error> when nobody answered within 3 s.
    private const string ClientScript = """
        import socket, sys
        vip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        for src in sys.argv[4:]:
            for i in range(n):
                s = socket.socket()
                s.settimeout(3)
                sport = 0
                try:
                    s.bind((src, 0))
                    sport = s.getsockname()[1]
                    s.connect((vip, port))
                    s.sendall(b"hi\n")
                    ans = s.makefile().readline().strip() or "EMPTY"
                except Exception as e:
                    ans = "FAIL:" + type(e).__name__
                print(src, sport, ans, flush=True)
                s.close()
        """;

    // Keeps one connection open: "open SRC" connects, "send" talks on it; each prints the answer.
    private const string SessionScript = """
        import socket, sys
        vip, port = sys.argv[1], int(sys.argv[2])
        s = None
        for cmd in sys.stdin:
            cmd = cmd.split()
            try:
                if cmd[0] == "open":
                    s = socket.socket()
                    s.settimeout(3)
                    s.bind((cmd[1], 0))
                    s.connect((vip, port))
                    f = s.makefile()
                s.sendall(b"hi\n")
                print(f.readline().strip() or "EMPTY", flush=True)
            except Exception as e:
                print("FAIL:" + type(e).__name__, flush=True)
        """;

    private readonly List<Process> _processes = new();

    private FarmLab(NetLab lab, FarmFilterRules rules)
    {
        Lab = lab;
        Rules = rules;
        Vip = rules.Vips[0];
        Filters = lab.Nodes.ToDictionary(n => n.Name, n => new NftablesFilter(rules, "eth0", RunIn(lab, n)));
    }

    public NetLab Lab { get; }

    public FarmFilterRules Rules { get; }

    public IPAddress Vip { get; }

    public IReadOnlyDictionary<string, NftablesFilter> Filters { get; }

    public static string NewPrefix() =>
        "skf" + new string(Enumerable.Range(0, 4).Select(_ => Alphabet[Random.Shared.Next(Alphabet.Length)]).ToArray());

    /// <summary>A lab whose nodes hold VIP 198.18.S.50/24 and run the server; filters not applied yet.</summary>
    public static FarmLab Create(int nodes, LoadBalancingFilter filter, Action<string> log, bool servers = true)
    {
        var lab = NetLab.Create(NewPrefix(), nodes, new NetLabOptions { Log = log });
        try
        {
            var vip = IPAddress.Parse($"198.18.{lab.Options.Subnet}.50");
            var rules = new FarmFilterRules("web", new[] { vip }, new[] { new LoadBalancingRule { Port = Port, Filter = filter } });
            var farm = new FarmLab(lab, rules);
            foreach (var node in lab.Nodes)
            {
                lab.ExecInNode(node, "ip", "addr", "add", $"{vip}/24", "dev", "eth0").EnsureSuccess();
                if (servers)
                {
                    farm.StartServer(node);
                }
            }
            return farm;
        }
        catch
        {
            lab.Dispose();
            throw;
        }
    }

    public string ServerLog(LabNode node) => Path.Combine(Lab.LabDirectory, $"accepted-{node.Name}.log");

    /// <summary>Lines each server logged: one per connection it accepted.</summary>
    public int AcceptedBy(LabNode node) => File.Exists(ServerLog(node)) ? File.ReadAllLines(ServerLog(node)).Length : 0;

    /// <summary>Adds 198.18.S.101.. to the client and returns them.</summary>
    public IReadOnlyList<string> AddClientAddresses(int count)
    {
        var addresses = Enumerable.Range(101, count).Select(i => $"198.18.{Lab.Options.Subnet}.{i}").ToList();
        foreach (var a in addresses)
        {
            Lab.Exec(Lab.Client!.Namespace, "ip", "addr", "add", a + "/24", "dev", "eth0").EnsureSuccess();
        }
        return addresses;
    }

    /// <summary>Opens <paramref name="perAddress"/> connections from each address, one after the other.</summary>
    public IReadOnlyList<(string Source, int Port, string Answer)> Connect(IEnumerable<string> sources, int perAddress)
    {
        var src = sources.ToList();
        var args = new[] { "-c", ClientScript, Vip.ToString(), Port.ToString(), perAddress.ToString() }.Concat(src).ToArray();
        var r = Lab.Exec(TimeSpan.FromSeconds(30 + 4 * src.Count * perAddress / 10), Lab.Client!.Namespace, "python3", args).EnsureSuccess();
        return r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' '))
            .Select(f => (f[0], int.Parse(f[1]), f[2]))
            .ToList();
    }

    /// <summary>A client process holding one connection; write "open SRC" / "send", read one answer line each.</summary>
    public Process StartSession()
    {
        var psi = new ProcessStartInfo("ip")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "netns", "exec", Lab.Client!.Namespace, "python3", "-u", "-c", SessionScript, Vip.ToString(), Port.ToString() })
        {
            psi.ArgumentList.Add(a);
        }
        var p = Process.Start(psi) ?? throw new InvalidOperationException("Could not start the session client.");
        _processes.Add(p);
        return p;
    }

    public static string Ask(Process session, string command)
    {
        session.StandardInput.WriteLine(command);
        session.StandardInput.Flush();
        return ReadLine(session, TimeSpan.FromSeconds(10)) ?? "NO-ANSWER";
    }

    /// <summary>The bucket the kernel's <c>jhash ... mod 256 seed S</c> puts a client in.</summary>
    public int BucketOf(string source, int sourcePort, LoadBalancingFilter filter)
    {
        var ip = IPAddress.Parse(source).GetAddressBytes();
        // Concatenations sit in 32-bit registers: the 2-byte port is followed by 2 zero bytes.
        var key = filter == LoadBalancingFilter.OnPort
            ? ip.Concat(new[] { (byte)(sourcePort >> 8), (byte)sourcePort, (byte)0, (byte)0 }).ToArray()
            : ip;
        return (int)(((ulong)KernelJhash(key, Rules.Seed) * BucketMap.BucketCount) >> 32);
    }

    public void Dispose()
    {
        foreach (var p in _processes)
        {
            try
            {
                if (!p.HasExited)
                {
                    p.Kill(entireProcessTree: true);
                    p.WaitForExit(5000);
                }
            }
            catch (InvalidOperationException)
            {
                // Already gone.
            }
            p.Dispose();
        }
        Lab.Dispose();
    }

    private void StartServer(LabNode node)
    {
        var p = Lab.StartInNode(node, "python3", "-u", "-c", ServerScript, node.Name, Port.ToString(), ServerLog(node));
        _processes.Add(p);
        var line = ReadLine(p, TimeSpan.FromSeconds(15));
        if (line != "ready")
        {
            throw new InvalidOperationException($"Server on {node.Name} did not start: '{line}' {(p.HasExited ? p.StandardError.ReadToEnd() : string.Empty)}");
        }
    }

    private static string? ReadLine(Process p, TimeSpan timeout)
    {
        var read = p.StandardOutput.ReadLineAsync();
        return read.Wait(timeout) ? read.Result : null;
    }

    // Runs the filter's commands inside the node's namespace; "nft -f -" reads a file instead of stdin.
    private static FarmCommandRunner RunIn(NetLab lab, LabNode node) => (argv, stdin) =>
    {
        var args = argv.Skip(1).ToArray();
        if (stdin is not null)
        {
            var file = Path.Combine(lab.LabDirectory, $"nft-{node.Name}-{Guid.NewGuid():N}.nft");
            File.WriteAllText(file, stdin);
            args = args.Select(a => a == "-" ? file : a).ToArray();
        }
        var r = lab.ExecInNode(node, argv[0], args);
        return new FarmCommandResult(r.ExitCode, r.StdOut, r.StdErr);
    };

    // Linux include/linux/jhash.h jhash() (Bob Jenkins' lookup3), as nft_jhash_eval calls it.
    private static uint KernelJhash(byte[] k, uint initval)
    {
        uint a, b, c;
        a = b = c = 0xdeadbeef + (uint)k.Length + initval;
        var i = 0;
        var length = k.Length;
        while (length > 12)
        {
            a += BitConverter.ToUInt32(k, i);
            b += BitConverter.ToUInt32(k, i + 4);
            c += BitConverter.ToUInt32(k, i + 8);
            Mix(ref a, ref b, ref c);
            length -= 12;
            i += 12;
        }
        if (length == 0)
        {
            return c;
        }
        uint At(int j) => j < length ? k[i + j] : 0u;
        c += At(8) | At(9) << 8 | At(10) << 16 | At(11) << 24;
        b += At(4) | At(5) << 8 | At(6) << 16 | At(7) << 24;
        a += At(0) | At(1) << 8 | At(2) << 16 | At(3) << 24;
        c ^= b; c -= Rol(b, 14);
        a ^= c; a -= Rol(c, 11);
        b ^= a; b -= Rol(a, 25);
        c ^= b; c -= Rol(b, 16);
        a ^= c; a -= Rol(c, 4);
        b ^= a; b -= Rol(a, 14);
        c ^= b; c -= Rol(b, 24);
        return c;
    }

    private static void Mix(ref uint a, ref uint b, ref uint c)
    {
        a -= c; a ^= Rol(c, 4); c += b;
        b -= a; b ^= Rol(a, 6); a += c;
        c -= b; c ^= Rol(b, 8); b += a;
        a -= c; a ^= Rol(c, 16); c += b;
        b -= a; b ^= Rol(a, 19); a += c;
        c -= b; c ^= Rol(b, 4); b += a;
    }

    private static uint Rol(uint x, int n) => (x << n) | (x >> (32 - n));
}
