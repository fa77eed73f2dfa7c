// Hosts PowerShell in the test process with the published ServiceKeeper module imported.
// Shared by the metadata tests and the end-to-end tests against real engines.
using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Contracts;
using Xunit;

namespace ServiceKeeper.Cmdlets.Tests
{
    /// <summary>
    /// One PowerShell runspace with the published module imported. State persists between
    /// <see cref="Run"/> calls (variables, Connect-SKCluster's default connection), as in one console.
    /// <code>
    /// using var ps = new PowerShellHost();
    /// var r = ps.Run("Get-SKNode -ComputerName $node -Credential $cred",
    ///                new Dictionary&lt;string, object?&gt; { ["node"] = "198.18.0.1", ["cred"] = cred });
    /// Assert.Equal(["NodeUnreachable,ServiceKeeper.Commands.GetSKNodeCommand"], r.ErrorIds);
    /// </code>
    /// Environment variables are process-wide, not per runspace. The cmdlets read SERVICEKEEPER_HOME
    /// (the home, hence the local socket) from the process environment when they run, so a test that
    /// targets a local engine sets it in its script (<c>$env:SERVICEKEEPER_HOME = '...'</c>) or passes
    /// <c>environment:</c>, which this host sets around each Run and restores afterwards. Either way the
    /// whole process sees it while the script runs: such tests belong to the
    /// <see cref="ProcessEnvironmentCollection"/> so xunit never runs two of them at once. Tests that
    /// only use -ComputerName or Connect-SKCluster do not depend on the environment and can run in parallel.
    /// </summary>
    public sealed class PowerShellHost : IDisposable
    {
        /// <summary>xunit collection (not run in parallel) for tests that change process environment variables.</summary>
        public const string ProcessEnvironmentCollection = "Process environment";

        private readonly Runspace _runspace;
        private readonly IReadOnlyDictionary<string, string?> _environment;

        /// <param name="environment">Process environment variables set for the duration of each Run (see the class remarks).</param>
        /// <param name="modulePath">The module to import: a .psd1 or its folder; default <see cref="FindModuleManifest"/>.</param>
        /// <param name="importModule">False for a bare runspace (for example to import Pester only).</param>
        public PowerShellHost(IDictionary<string, string?>? environment = null, string? modulePath = null, bool importModule = true)
        {
            _environment = new Dictionary<string, string?>(environment ?? new Dictionary<string, string?>());
            var iss = InitialSessionState.CreateDefault2();
            if (OperatingSystem.IsWindows())
                iss.ExecutionPolicy = Microsoft.PowerShell.ExecutionPolicy.Bypass;
            if (importModule)
            {
                ModuleManifest = modulePath == null ? FindModuleManifest() : ResolveManifest(modulePath);
                iss.ImportPSModule(ModuleManifest);
            }
            iss.ThrowOnRunspaceOpenError = true;
            _runspace = RunspaceFactory.CreateRunspace(iss);
            _runspace.Open();
        }

        /// <summary>Full path of the imported ServiceKeeper.psd1 (null with importModule: false).</summary>
        public string? ModuleManifest { get; }

        public Runspace Runspace => _runspace;

        /// <summary>
        /// Runs a script in the runspace. <paramref name="variables"/> become global variables first.
        /// Never throws for PowerShell errors: they are in the result.
        /// </summary>
        public PSRunResult Run(string script, IDictionary<string, object?>? variables = null)
        {
            if (variables != null)
                foreach (var (name, value) in variables)
                    _runspace.SessionStateProxy.SetVariable(name, value);

            var saved = _environment.Keys.ToDictionary(k => k, Environment.GetEnvironmentVariable);
            foreach (var (name, value) in _environment) Environment.SetEnvironmentVariable(name, value);
            using var ps = PowerShell.Create();
            ps.Runspace = _runspace;
            ps.AddScript(script);
            var output = new Collection<PSObject>();
            Exception? terminating = null;
            try
            {
                output = ps.Invoke();
            }
            catch (RuntimeException e)
            {
                terminating = e;
            }
            finally
            {
                foreach (var (name, value) in saved) Environment.SetEnvironmentVariable(name, value);
            }
            return new PSRunResult(output, ps.Streams.Error.ToList(), ps.Streams.Warning.Select(w => w.Message).ToList(),
                ps.Streams.Verbose.Select(v => v.Message).ToList(), terminating)
            {
                Progress = ps.Streams.Progress.ToList(),
            };
        }

        /// <summary>
        /// The published module: $SK_MODULE (a .psd1 or its folder), else out/module/ServiceKeeper/ServiceKeeper.psd1
        /// in the first folder above the test binaries that has one, else above this source file (the test
        /// binaries are elsewhere when built with --artifacts-path).
        /// </summary>
        public static string FindModuleManifest()
        {
            var fromEnv = Environment.GetEnvironmentVariable("SK_MODULE");
            if (!string.IsNullOrEmpty(fromEnv)) return ResolveManifest(fromEnv);
            foreach (var start in new[] { AppContext.BaseDirectory, Path.GetDirectoryName(SourceFile()) })
            {
                for (var dir = string.IsNullOrEmpty(start) ? null : new DirectoryInfo(start); dir != null; dir = dir.Parent)
                {
                    var candidate = Path.Combine(dir.FullName, "out", "module", "ServiceKeeper", "ServiceKeeper.psd1");
                    if (File.Exists(candidate)) return candidate;
                }
            }
            throw new FileNotFoundException(
                "The published ServiceKeeper module was not found above " + AppContext.BaseDirectory +
                ". Run 'dotnet publish PSModule/ServiceKeeper -c Release -o out/module/ServiceKeeper' first, or set SK_MODULE.");
        }

        private static string SourceFile([System.Runtime.CompilerServices.CallerFilePath] string path = "") => path;

        private static string ResolveManifest(string path)
        {
            var full = Path.GetFullPath(path);
            if (Directory.Exists(full)) full = Path.Combine(full, "ServiceKeeper.psd1");
            if (!File.Exists(full)) throw new FileNotFoundException("No module manifest at " + full, full);
            return full;
        }

        public void Dispose() => _runspace.Dispose();
    }

    /// <summary>What a script wrote. <see cref="ErrorIds"/> has the error stream and the terminating error alike.</summary>
    public sealed class PSRunResult
    {
        public PSRunResult(Collection<PSObject> output, List<ErrorRecord> errors, List<string> warnings, List<string> verbose, Exception? terminating)
        {
            Output = output;
            Errors = errors;
            Warnings = warnings;
            Verbose = verbose;
            Terminating = terminating;
        }

        public Collection<PSObject> Output { get; }
        /// <summary>Non-terminating errors, and statement-terminating ones a script went on after.</summary>
        public List<ErrorRecord> Errors { get; }
        public List<string> Warnings { get; }
        /// <summary>Verbose messages (the script must ask for them, e.g. -Verbose).</summary>
        public List<string> Verbose { get; }
        /// <summary>Progress records (Write-Progress), completed ones included.</summary>
        public List<ProgressRecord> Progress { get; init; } = new List<ProgressRecord>();
        /// <summary>The error that stopped the script (throw, -ErrorAction Stop, a declined confirmation), if any.</summary>
        public Exception? Terminating { get; }

        /// <summary>The terminating error's record, if it has one.</summary>
        public ErrorRecord? TerminatingRecord => (Terminating as IContainsErrorRecord)?.ErrorRecord;

        /// <summary>FullyQualifiedErrorId of every error, the terminating one last.</summary>
        public List<string> ErrorIds =>
            Errors.Select(e => e.FullyQualifiedErrorId)
                .Concat(TerminatingRecord == null ? Enumerable.Empty<string>() : new[] { TerminatingRecord.FullyQualifiedErrorId })
                .ToList();

        public bool Succeeded => Errors.Count == 0 && Terminating == null;

        /// <summary>Base objects of the output, cast (for typed asserts).</summary>
        public List<T> OutputAs<T>() => Output.Select(o => (T)o.BaseObject).ToList();

        /// <summary>Errors and the terminating error as text, for assertion messages.</summary>
        public override string ToString() =>
            string.Join(Environment.NewLine, Errors.Select(e => e.FullyQualifiedErrorId + ": " + e)
                .Concat(Terminating == null ? Enumerable.Empty<string>() : new[] { "terminating: " + Terminating.GetType().Name + ": " + Terminating.Message }));
    }

    [CollectionDefinition(PowerShellHost.ProcessEnvironmentCollection, DisableParallelization = true)]
    public sealed class ProcessEnvironmentCollection
    {
    }

    /// <summary>
    /// A stand-in for an engine's HTTPS API on 127.0.0.1, for cmdlet tests that need answers but no cluster:
    /// it records each request and answers from the routes a test sets. Cmdlets reach it with
    /// <c>-ComputerName $engine.ComputerName -SkipCertificateCheck</c>. Unknown routes answer 404 NotSupported.
    /// <code>
    /// using var engine = new FakeEngine();
    /// engine.On("POST", "/v1/modules/web/command", r => new[] { new ModuleState { Module = "web", Node = "n1", State = "PRIM", Ready = true } });
    /// engine.Fail("POST", "/v1/modules/sql/command", 409, ErrorIds.DataNotUpToDate, "n2 is behind");
    /// </code>
    /// </summary>
    public sealed class FakeEngine : IDisposable
    {
        private static readonly Lazy<X509Certificate2> Certificate = new(CreateCertificate);
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly List<(string Method, string Path, Func<FakeRequest, FakeResponse> Answer)> _routes = new();
        private readonly List<FakeRequest> _requests = new();

        public FakeEngine()
        {
            _listener.Start();
            _ = Task.Run(AcceptLoop);
        }

        public string ComputerName => "127.0.0.1:" + ((IPEndPoint)_listener.LocalEndpoint).Port;

        /// <summary>Every request received so far, in order.</summary>
        public List<FakeRequest> Requests
        {
            get { lock (_requests) return _requests.ToList(); }
        }

        /// <summary>Answers <paramref name="method"/> <paramref name="path"/> (without query) with 200 and the JSON of what <paramref name="answer"/> returns. The last route set wins.</summary>
        public void On(string method, string path, Func<FakeRequest, object> answer) =>
            Route(method, path, r => new FakeResponse(200, answer(r)));

        /// <summary>Answers with an API error.</summary>
        public void Fail(string method, string path, int status, string errorId, string message) =>
            Route(method, path, _ => new FakeResponse(status, new ApiError { ErrorId = errorId, Message = message }));

        public void Route(string method, string path, Func<FakeRequest, FakeResponse> answer)
        {
            lock (_routes) _routes.Insert(0, (method, path, answer));
        }

        private async Task AcceptLoop()
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client;
                try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
                catch (Exception) { return; }
                _ = Task.Run(() => Serve(client));
            }
        }

        private async Task Serve(TcpClient client)
        {
            using (client)
            using (var tls = new SslStream(client.GetStream()))
            {
                try
                {
                    await tls.AuthenticateAsServerAsync(Certificate.Value, false, false);
                    var request = await ReadRequest(tls);
                    if (request == null) return;
                    lock (_requests) _requests.Add(request);
                    Func<FakeRequest, FakeResponse>? answer;
                    lock (_routes)
                        answer = _routes.FirstOrDefault(r => r.Method == request.Method && r.Path == request.Path).Answer;
                    var response = answer?.Invoke(request)
                        ?? new FakeResponse(404, new ApiError { ErrorId = "NotSupported", Message = $"The fake engine has no route {request.Method} {request.Path}." });
                    var body = Encoding.UTF8.GetBytes(response.Body == null ? "" : SKJson.Serialize(response.Body));
                    var head = Encoding.ASCII.GetBytes($"HTTP/1.1 {response.Status} X\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
                    await tls.WriteAsync(head);
                    await tls.WriteAsync(body);
                    await tls.FlushAsync();
                }
                catch (Exception) when (_stop.IsCancellationRequested)
                {
                }
                catch (IOException)
                {
                    // The client gave up (Ctrl+C in a test): nothing to answer.
                }
            }
        }

        private static async Task<FakeRequest?> ReadRequest(Stream stream)
        {
            var buffer = new MemoryStream();
            var chunk = new byte[8192];
            int headerEnd;
            while ((headerEnd = IndexOf(buffer.GetBuffer(), (int)buffer.Length, "\r\n\r\n"u8)) < 0)
            {
                int n = await stream.ReadAsync(chunk);
                if (n == 0) return null;
                buffer.Write(chunk, 0, n);
            }
            var lines = Encoding.ASCII.GetString(buffer.GetBuffer(), 0, headerEnd).Split("\r\n");
            var first = lines[0].Split(' ');
            var length = lines.Skip(1).Select(l => l.Split(':', 2)).Where(h => h.Length == 2 && h[0].Trim().Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                .Select(h => int.Parse(h[1].Trim())).FirstOrDefault();
            while (buffer.Length < headerEnd + 4 + length)
            {
                int n = await stream.ReadAsync(chunk);
                if (n == 0) break;
                buffer.Write(chunk, 0, n);
            }
            var body = Encoding.UTF8.GetString(buffer.GetBuffer(), headerEnd + 4, (int)buffer.Length - headerEnd - 4);
            var target = first[1];
            var question = target.IndexOf('?');
            var query = new Dictionary<string, string>();
            if (question >= 0)
                foreach (var pair in target[(question + 1)..].Split('&', StringSplitOptions.RemoveEmptyEntries))
                {
                    var kv = pair.Split('=', 2);
                    query[Uri.UnescapeDataString(kv[0])] = kv.Length > 1 ? Uri.UnescapeDataString(kv[1]) : "";
                }
            return new FakeRequest(first[0], question >= 0 ? target[..question] : target, query, body);
        }

        private static int IndexOf(byte[] data, int length, ReadOnlySpan<byte> what) => data.AsSpan(0, length).IndexOf(what);

        private static X509Certificate2 CreateCertificate()
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256);
            using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
            return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pfx), null);
        }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Stop();
        }
    }

    /// <summary>What a cmdlet sent to the <see cref="FakeEngine"/>.</summary>
    public sealed record FakeRequest(string Method, string Path, IReadOnlyDictionary<string, string> Query, string Body)
    {
        /// <summary>The body as the engine would read it.</summary>
        public T BodyAs<T>() => SKJson.Deserialize<T>(Body);
    }

    public sealed record FakeResponse(int Status, object? Body);
}
