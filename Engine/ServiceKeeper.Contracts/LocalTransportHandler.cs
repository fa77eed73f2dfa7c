// HTTP/1.1 over the engine's local unix socket or named pipe.
// netstandard2.0 has no SocketsHttpHandler.ConnectCallback, so this speaks the few lines of
// HTTP the control API needs itself: one request per connection, Connection: close.
using System;
using System.Globalization;
using System.IO;
using System.IO.Pipes;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace ServiceKeeper.Contracts
{
    internal sealed class LocalTransportHandler : HttpMessageHandler
    {
        private readonly string _path;
        private readonly TimeSpan _timeout;

        public LocalTransportHandler(string path, TimeSpan timeout)
        {
            _path = path;
            _timeout = timeout;
        }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            using (var stream = Connect())
            {
                var body = request.Content == null ? new byte[0] : await request.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
                var head = new StringBuilder();
                head.Append(request.Method.Method).Append(' ').Append(request.RequestUri!.PathAndQuery).Append(" HTTP/1.1\r\n");
                head.Append("Host: localhost\r\nConnection: close\r\nAccept: application/json\r\n");
                if (request.Content != null) head.Append("Content-Type: application/json\r\n");
                head.Append("Content-Length: ").Append(body.Length.ToString(CultureInfo.InvariantCulture)).Append("\r\n\r\n");
                var headBytes = Encoding.ASCII.GetBytes(head.ToString());
                await stream.WriteAsync(headBytes, 0, headBytes.Length, cancellationToken).ConfigureAwait(false);
                if (body.Length > 0) await stream.WriteAsync(body, 0, body.Length, cancellationToken).ConfigureAwait(false);
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                return await ReadResponseAsync(stream, request, cancellationToken).ConfigureAwait(false);
            }
        }

        private Stream Connect()
        {
            if (RuntimeInformation.IsOSPlatform(OSPlatform.Windows))
            {
                var pipe = new NamedPipeClientStream(".", _path, PipeDirection.InOut, PipeOptions.Asynchronous);
                pipe.Connect((int)_timeout.TotalMilliseconds);
                return pipe;
            }
            // UnixDomainSocketEndPoint is not in netstandard2.0 but is in every runtime that can
            // reach this branch (PowerShell 7, .NET Core 2.1+); Windows PowerShell takes the pipe branch.
            var endPointType = Type.GetType("System.Net.Sockets.UnixDomainSocketEndPoint, System.Net.Sockets")
                ?? throw new PlatformNotSupportedException("This runtime cannot open unix sockets; use -ComputerName with HTTPS.");
            var endPoint = (EndPoint)Activator.CreateInstance(endPointType, _path)!;
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                socket.SendTimeout = socket.ReceiveTimeout = (int)_timeout.TotalMilliseconds;
                socket.Connect(endPoint);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        private static async Task<HttpResponseMessage> ReadResponseAsync(Stream stream, HttpRequestMessage request, CancellationToken ct)
        {
            var all = new MemoryStream();
            var buffer = new byte[16384];
            int headerEnd = -1;
            while (headerEnd < 0)
            {
                int n = await stream.ReadAsync(buffer, 0, buffer.Length, ct).ConfigureAwait(false);
                if (n == 0) throw new IOException("The engine closed the connection before answering.");
                all.Write(buffer, 0, n);
                headerEnd = IndexOfHeaderEnd(all.GetBuffer(), (int)all.Length);
            }
            var raw = all.GetBuffer();
            var headerText = Encoding.ASCII.GetString(raw, 0, headerEnd);
            var lines = headerText.Split(new[] { "\r\n" }, StringSplitOptions.None);
            var status = lines[0].Split(' ');
            if (status.Length < 2 || !int.TryParse(status[1], out var code))
                throw new IOException("Malformed HTTP status line from the engine: " + lines[0]);

            var response = new HttpResponseMessage((HttpStatusCode)code) { RequestMessage = request };
            long? contentLength = null;
            bool chunked = false;
            string contentType = "application/json";
            for (int i = 1; i < lines.Length; i++)
            {
                int colon = lines[i].IndexOf(':');
                if (colon <= 0) continue;
                var name = lines[i].Substring(0, colon).Trim();
                var value = lines[i].Substring(colon + 1).Trim();
                if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)) contentLength = long.Parse(value, CultureInfo.InvariantCulture);
                else if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase)) chunked = value.IndexOf("chunked", StringComparison.OrdinalIgnoreCase) >= 0;
                else if (name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase)) contentType = value;
                else response.Headers.TryAddWithoutValidation(name, value);
            }

            var body = new MemoryStream();
            body.Write(raw, headerEnd + 4, (int)all.Length - headerEnd - 4);
            // Connection: close, so the body ends where the stream ends.
            int read;
            while ((contentLength == null || body.Length < contentLength) && (read = await stream.ReadAsync(buffer, 0, buffer.Length, ct).ConfigureAwait(false)) > 0)
                body.Write(buffer, 0, read);
            var bytes = chunked ? Dechunk(body.ToArray()) : body.ToArray();
            response.Content = new ByteArrayContent(bytes);
            response.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            return response;
        }

        private static int IndexOfHeaderEnd(byte[] data, int length)
        {
            for (int i = 0; i + 3 < length; i++)
                if (data[i] == '\r' && data[i + 1] == '\n' && data[i + 2] == '\r' && data[i + 3] == '\n') return i;
            return -1;
        }

        private static byte[] Dechunk(byte[] data)
        {
            var result = new MemoryStream();
            int pos = 0;
            while (pos < data.Length)
            {
                int lineEnd = IndexOfCrLf(data, pos);
                if (lineEnd < 0) break;
                var sizeText = Encoding.ASCII.GetString(data, pos, lineEnd - pos).Split(';')[0].Trim();
                int size = int.Parse(sizeText, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                if (size == 0) break;
                result.Write(data, lineEnd + 2, size);
                pos = lineEnd + 2 + size + 2;
            }
            return result.ToArray();
        }

        private static int IndexOfCrLf(byte[] data, int start)
        {
            for (int i = start; i + 1 < data.Length; i++)
                if (data[i] == '\r' && data[i + 1] == '\n') return i;
            return -1;
        }
    }
}
