// Where and how to reach one engine's control API: the local socket/pipe, or HTTPS with the admin key.
using System;
using System.IO;
using System.Runtime.InteropServices;

namespace ServiceKeeper.Contracts
{
    public sealed class SKEndpoint
    {
        public const int DefaultHttpsPort = 9453;
        public const string HomeVariable = "SERVICEKEEPER_HOME";
        public const string PipeName = "servicekeeper";

        /// <summary>Host or address; null means the local engine through its socket or pipe.</summary>
        public string? Host { get; private set; }
        public int Port { get; private set; } = DefaultHttpsPort;
        public string? AdminKey { get; set; }
        public bool SkipCertificateCheck { get; set; }
        /// <summary>Accept only this certificate (SHA-1 thumbprint, hex), as cluster members pin each other.</summary>
        public string? PinnedThumbprint { get; set; }
        /// <summary>Local socket path (Linux) or pipe name (Windows) when Host is null.</summary>
        public string? LocalPath { get; set; }
        /// <summary>How long a call waits for the engine; the engine answers for unreachable peers much sooner.</summary>
        public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

        public bool IsLocal => Host == null;

        public SKEndpoint() { }

        public SKEndpoint(string host, int port)
        {
            Host = host;
            Port = port;
        }

        public static SKEndpoint Local(string? localPath = null) =>
            new SKEndpoint { LocalPath = localPath ?? DefaultLocalPath() };

        /// <summary>Parses "host", "address", "host:port", "[v6]:port" or a bare IPv6 address.</summary>
        public static SKEndpoint Remote(string computerName, string? adminKey = null, bool skipCertificateCheck = false)
        {
            if (!TryParseHostPort(computerName, out var host, out var port, out var error))
                throw new ArgumentException(error, nameof(computerName));
            return new SKEndpoint { Host = host, Port = port, AdminKey = adminKey, SkipCertificateCheck = skipCertificateCheck };
        }

        public static bool TryParseHostPort(string text, out string host, out int port, out string error)
        {
            host = "";
            port = DefaultHttpsPort;
            error = "";
            var value = (text ?? "").Trim();
            if (value.Length == 0) { error = "The computer name is empty."; return false; }
            string portText = "";
            if (value.StartsWith("[", StringComparison.Ordinal))
            {
                int close = value.IndexOf(']');
                if (close < 0) { error = $"'{text}' has '[' without ']'."; return false; }
                host = value.Substring(1, close - 1);
                var rest = value.Substring(close + 1);
                if (rest.Length > 0)
                {
                    if (!rest.StartsWith(":", StringComparison.Ordinal)) { error = $"'{text}' is not host:port."; return false; }
                    portText = rest.Substring(1);
                }
            }
            else
            {
                int colon = value.LastIndexOf(':');
                if (colon > 0 && value.IndexOf(':') == colon)
                {
                    host = value.Substring(0, colon);
                    portText = value.Substring(colon + 1);
                }
                else
                {
                    host = value; // a name, an IPv4 address or a bare IPv6 address
                }
            }
            if (portText.Length > 0 && (!int.TryParse(portText, out port) || port < 1 || port > 65535))
            {
                error = $"'{portText}' in '{text}' is not a port number (1-65535).";
                return false;
            }
            if (host.Length == 0) { error = $"'{text}' has no host."; return false; }
            return true;
        }

        /// <summary>The engine home: $SERVICEKEEPER_HOME, else the platform default.</summary>
        public static string DefaultHome()
        {
            var fromEnv = Environment.GetEnvironmentVariable(HomeVariable);
            if (!string.IsNullOrEmpty(fromEnv)) return fromEnv!;
            return RuntimeInformation.IsOSPlatform(OSPlatform.Windows)
                ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.CommonApplicationData), "ServiceKeeper")
                : "/var/lib/servicekeeper";
        }

        public static string DefaultLocalPath() =>
            RuntimeInformation.IsOSPlatform(OSPlatform.Windows)
                ? PipeName
                : Path.Combine(DefaultHome(), "run", "api.sock");

        public override string ToString() =>
            IsLocal ? "local engine (" + LocalPath + ")"
                    : (Host!.Contains(":") ? "[" + Host + "]" : Host) + ":" + Port;
    }
}
