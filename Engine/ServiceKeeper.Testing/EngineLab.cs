// A NetLab with real engines sharing one admin key, for tests that drive the engine or the module.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Threading;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Testing;

public sealed class EngineLab : IDisposable
{
    /// <summary>The admin key every engine of the lab gets unless a test gives another.</summary>
    public const string AdminKey = "test-admin-key-0123456789abcdef";
    private static int _counter;
    private readonly Action<string>? _output;

    /// <param name="output">Receives the engines' logs when the lab ends (a test's output).</param>
    public EngineLab(Action<string>? output, int nodes, bool start = true, NetLabOptions? options = null)
    {
        _output = output;
        int n = Interlocked.Increment(ref _counter);
        // Unique per test and per process, so labs of parallel tests never meet: "sk" + 3 + up to 4 base-36 digits.
        var prefix = "sk" + Base36(Environment.ProcessId % (36 * 36 * 36)).PadLeft(3, '0') + Base36(n);
        options ??= new NetLabOptions();
        options.Subnet = (Environment.ProcessId + n * 7) % 250;
        Lab = NetLab.Create(prefix, nodes, options);
        try
        {
            if (start)
                foreach (var node in Lab.Nodes) Start(node);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public NetLab Lab { get; }

    private static string Base36(int value)
    {
        const string digits = "0123456789abcdefghijklmnopqrstuvwxyz";
        var text = "";
        do { text = digits[value % 36] + text; value /= 36; } while (value > 0);
        return text;
    }

    public IReadOnlyList<LabNode> Nodes => Lab.Nodes;

    public void Start(LabNode node, string? adminKey = AdminKey)
    {
        Lab.StartEngine(node, adminKey);
        Lab.WaitForEngine(node, TimeSpan.FromSeconds(60));
    }

    /// <summary>A module script as the API carries it: base64 of its UTF-8 text, without carriage returns.</summary>
    public static string EncodeScript(string script) =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes(script.Replace("\r", "", StringComparison.Ordinal)));

    /// <summary>The node's engine through its local socket (no key), as root on the node would use it.</summary>
    public SKApiClient Local(LabNode node) => new(SKEndpoint.Local(node.ApiSocketPath));

    /// <summary>curl from the client namespace to a node's HTTPS API; returns (HTTP status, body).</summary>
    public (int Status, string Body) Curl(LabNode node, string path, string? key = AdminKey, string method = "GET")
    {
        var args = new List<string> { "-sk", "-m", "10", "-X", method, "-o", "-", "-w", "\n%{http_code}" };
        if (key != null) args.AddRange(["-u", "admin:" + key]);
        args.Add($"https://{node.Address}:{Lab.Options.ApiPort}{path}");
        var text = Lab.Exec(Lab.Client!.Namespace, "curl", args.ToArray()).StdOut.TrimEnd();
        int split = text.LastIndexOf('\n');
        return (int.Parse(text[(split + 1)..]), split < 0 ? "" : text[..split]);
    }

    public void Dispose()
    {
        if (_output != null)
        {
            try
            {
                var writer = new StringWriter();
                Lab.DumpLogsTo(writer);
                _output(writer.ToString());
            }
            catch (InvalidOperationException)
            {
                // The test has ended: nobody to write to.
            }
        }
        Lab.Dispose();
    }
}
