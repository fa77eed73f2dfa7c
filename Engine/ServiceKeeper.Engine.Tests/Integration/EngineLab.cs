// A NetLab with real engines sharing one admin key, whose logs go to the test output when it ends.
using System;
using System.Threading;
using ServiceKeeper.Contracts;
using ServiceKeeper.Testing;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Integration
{
    public sealed class EngineLab : IDisposable
    {
        private static int _counter;
        private readonly ITestOutputHelper _output;

        public EngineLab(ITestOutputHelper output, int nodes, bool start = true, NetLabOptions? options = null)
        {
            _output = output;
            // Unique per test and per process, so labs of parallel tests never meet.
            var prefix = $"ske{Environment.ProcessId % 1000}{Interlocked.Increment(ref _counter)}";
            options ??= new NetLabOptions();
            options.Subnet = (Environment.ProcessId + _counter * 7) % 250;
            Lab = NetLab.Create(prefix, nodes, options);
            if (start)
                foreach (var node in Lab.Nodes) Start(node);
        }

        public const string AdminKey = "test-admin-key-0123456789abcdef";

        public NetLab Lab { get; }

        public void Start(LabNode node, string? adminKey = AdminKey)
        {
            Lab.StartEngine(node, adminKey);
            Lab.WaitForEngine(node, TimeSpan.FromSeconds(60));
        }

        /// <summary>The node's engine through its local socket (no key), as root on the node would use it.</summary>
        public SKApiClient Local(LabNode node) => new(SKEndpoint.Local(node.ApiSocketPath));

        /// <summary>curl from the client namespace to a node's HTTPS API; returns (HTTP status, body).</summary>
        public (int Status, string Body) Curl(LabNode node, string path, string? key = AdminKey, string method = "GET")
        {
            var args = new System.Collections.Generic.List<string> { "-sk", "-m", "10", "-X", method, "-o", "-", "-w", "\n%{http_code}" };
            if (key != null) args.AddRange(["-u", "admin:" + key]);
            args.Add($"https://{node.Address}:9453{path}");
            var result = Lab.Exec(Lab.Client!.Namespace, "curl", args.ToArray());
            var text = result.StdOut.TrimEnd();
            int split = text.LastIndexOf('\n');
            return (int.Parse(text[(split + 1)..]), split < 0 ? "" : text[..split]);
        }

        public void Dispose()
        {
            try { Lab.DumpLogsTo(new OutputWriter(_output)); }
            catch (InvalidOperationException) { /* no test is running to write to */ }
            Lab.Dispose();
        }

        private sealed class OutputWriter(ITestOutputHelper output) : System.IO.StringWriter
        {
            public override void WriteLine(string? value) => output.WriteLine(value ?? "");
            public override void Write(string? value) => output.WriteLine(value ?? "");
        }
    }
}
