// A stand-in HTTPS engine for cmdlet logic tests: what a cmdlet sends and how it reads answers.
// The real engine is exercised by the end-to-end tests (ClusterEndToEndTests, MirrorEndToEndTests).
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Cmdlets.Tests
{
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
