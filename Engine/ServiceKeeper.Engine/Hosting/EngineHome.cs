// The engine's home folder: every file the engine owns, and the secrets it creates on first start.
using System;
using System.IO;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace ServiceKeeper.Engine.Hosting
{
    public sealed class EngineHome
    {
        public EngineHome(string root)
        {
            Root = root;
        }

        public string Root { get; }
        public string ClusterDirectory => Path.Combine(Root, "cluster");
        public string ClusterXml => Path.Combine(ClusterDirectory, "cluster.xml");
        public string ClusterKey => Path.Combine(ClusterDirectory, "cluster.key");
        public string ApiDirectory => Path.Combine(Root, "api");
        public string AdminKeyFile => Path.Combine(ApiDirectory, "admin.key");
        public string TlsCertificateFile => Path.Combine(ApiDirectory, "tls.pfx");
        public string RunDirectory => Path.Combine(Root, "run");
        public string ApiSocket => Path.Combine(RunDirectory, "api.sock");
        public string ModulesDirectory => Path.Combine(Root, "modules");
        public string LogDirectory => Path.Combine(Root, "log");

        public string ModuleDirectory(string module) => Path.Combine(ModulesDirectory, module);
        public string IncarnationFile => Path.Combine(Root, "incarnation");

        /// <summary>
        /// A number that grows at every engine start, so peers tell this run's heartbeats from replays of
        /// earlier ones. Persisted, and never below the wall clock in milliseconds, so it still grows when
        /// the file is lost; a clock that steps back does not make it shrink.
        /// </summary>
        public ulong NextIncarnation(TimeProvider time)
        {
            ulong stored = File.Exists(IncarnationFile) && ulong.TryParse(File.ReadAllText(IncarnationFile).Trim(), out var v) ? v : 0;
            var next = Math.Max(stored + 1, (ulong)time.GetUtcNow().ToUnixTimeMilliseconds());
            WriteAtomic(IncarnationFile, next.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return next;
        }

        public void CreateLayout()
        {
            foreach (var dir in new[] { Root, ClusterDirectory, ApiDirectory, RunDirectory, ModulesDirectory, LogDirectory })
                Directory.CreateDirectory(dir);
            if (!OperatingSystem.IsWindows())
            {
                // Secrets live here: only the engine's user may enter.
                File.SetUnixFileMode(ApiDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                File.SetUnixFileMode(ClusterDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
        }

        /// <summary>Reads the admin key, creating a random one on first start. An existing file is kept as is:
        /// installers and tests put the same key on many nodes that way.</summary>
        public string LoadOrCreateAdminKey()
        {
            if (File.Exists(AdminKeyFile))
            {
                var key = File.ReadAllText(AdminKeyFile).Trim();
                if (key.Length < 16)
                    throw new InvalidOperationException($"{AdminKeyFile}: the admin key must have at least 16 characters.");
                return key;
            }
            var created = Convert.ToHexString(RandomNumberGenerator.GetBytes(24)).ToLowerInvariant();
            WriteSecret(AdminKeyFile, created + "\n");
            return created;
        }

        /// <summary>Loads the TLS certificate, creating a self-signed one for the node on first start.</summary>
        public X509Certificate2 LoadOrCreateCertificate(string nodeName)
        {
            if (File.Exists(TlsCertificateFile))
                return X509CertificateLoader.LoadPkcs12FromFile(TlsCertificateFile, null, X509KeyStorageFlags.Exportable);

            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest($"CN={nodeName}, O=ServiceKeeper", key, HashAlgorithmName.SHA256);
            var san = new SubjectAlternativeNameBuilder();
            san.AddDnsName(nodeName);
            san.AddDnsName("localhost");
            san.AddIpAddress(IPAddress.Loopback);
            request.CertificateExtensions.Add(san.Build());
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
            var now = DateTimeOffset.UtcNow;
            using var certificate = request.CreateSelfSigned(now.AddDays(-1), now.AddYears(10));
            WriteSecret(TlsCertificateFile, certificate.Export(X509ContentType.Pfx));
            return X509CertificateLoader.LoadPkcs12FromFile(TlsCertificateFile, null, X509KeyStorageFlags.Exportable);
        }

        public static void WriteSecret(string path, string text) => WriteSecret(path, Encoding.UTF8.GetBytes(text));

        /// <summary>Writes a file readable by the owner only, atomically (temp file + rename).</summary>
        public static void WriteSecret(string path, byte[] content)
        {
            var temp = path + ".tmp";
            if (OperatingSystem.IsWindows())
            {
                File.WriteAllBytes(temp, content);
            }
            else
            {
                using var stream = new FileStream(temp, new FileStreamOptions
                {
                    Mode = FileMode.Create, Access = FileAccess.Write,
                    UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                });
                stream.Write(content);
                stream.Flush(true);
                File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
            File.Move(temp, path, overwrite: true);
        }

        /// <summary>Atomic replace of a non-secret file.</summary>
        public static void WriteAtomic(string path, string text)
        {
            var temp = path + ".tmp";
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write))
            {
                stream.Write(Encoding.UTF8.GetBytes(text));
                stream.Flush(true);
            }
            File.Move(temp, path, overwrite: true);
        }
    }
}
