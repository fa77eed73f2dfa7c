// The engine as a process: first start, secrets, transports and authentication, bad configuration, clean stop.
using System;
using System.IO;
using System.Runtime.Versioning;
using System.Threading.Tasks;
using ServiceKeeper.Contracts;
using ServiceKeeper.Testing;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Integration
{
    [SupportedOSPlatform("linux")]
    public class EngineProcessTests(ITestOutputHelper output)
    {
        private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

        [Fact]
        public async Task FirstStart_CreatesOwnerOnlyAdminKeyAndCertificate_AndKeepsThemOnRestart()
        {
            using var env = new EngineLab(output.WriteLine, 1, start: false);
            var node = env.Lab.Nodes[0];
            env.Start(node, adminKey: null);
            var keyFile = Path.Combine(node.Home, "api", "admin.key");
            var certFile = Path.Combine(node.Home, "api", "tls.pfx");
            var key = File.ReadAllText(keyFile).Trim();
            var thumbprint = (await env.Local(node).GetNodeInfoAsync()).CertificateThumbprint;

            Assert.True(key.Length >= 32, $"generated key '{key}' is too short");
            Assert.Equal(OwnerOnly, File.GetUnixFileMode(keyFile));
            Assert.Equal(OwnerOnly, File.GetUnixFileMode(certFile));
            Assert.Equal(200, env.Curl(node, "/v1/node", key).Status);

            env.Lab.StopEngine(node);
            env.Start(node, adminKey: null);
            Assert.Equal(key, File.ReadAllText(keyFile).Trim());
            Assert.Equal(thumbprint, (await env.Local(node).GetNodeInfoAsync()).CertificateThumbprint);
        }

        [Fact]
        public void Https_WithoutOrWithWrongKey_Is401AndLogged_WithRightKeyAnswers()
        {
            using var env = new EngineLab(output.WriteLine, 1);
            var node = env.Lab.Nodes[0];

            var wrong = env.Curl(node, "/v1/node", "wrong-key-wrong-key");
            var none = env.Curl(node, "/v1/node", key: null);
            var right = env.Curl(node, "/v1/node");

            Assert.Equal(401, wrong.Status);
            Assert.Contains("\"errorId\":\"AuthenticationFailed\"", wrong.Body);
            Assert.Equal(401, none.Status);
            Assert.Equal(200, right.Status);
            Assert.Contains("\"name\":\"n1\"", right.Body);
            var log = File.ReadAllText(Path.Combine(node.Home, "log", "engine.log"));
            Assert.Contains($"rejected GET /v1/node from {env.Lab.Client!.Address}", log);
        }

        [Fact]
        public async Task LocalSocket_AnswersWithoutKey_AndIsOwnerOnly()
        {
            using var env = new EngineLab(output.WriteLine, 1);
            var node = env.Lab.Nodes[0];

            var info = await env.Local(node).GetNodeInfoAsync();

            Assert.Equal("n1", info.Name);
            Assert.Contains(info.Addresses, a => a.Address == node.Address && a.PrefixLength == 24);
            Assert.Equal(OwnerOnly, File.GetUnixFileMode(node.ApiSocketPath));
        }

        [Fact]
        public void InvalidClusterXml_EngineRefusesToStart_NamingFileLineAndReason()
        {
            using var env = new EngineLab(output.WriteLine, 1, start: false);
            var node = env.Lab.Nodes[0];
            var clusterXml = Path.Combine(node.Home, "cluster", "cluster.xml");
            Directory.CreateDirectory(Path.GetDirectoryName(clusterXml)!);
            File.WriteAllText(clusterXml, """
                <cluster id="not-a-guid" name="c1" created="2026-11-25T10:00:00Z">
                  <nodes><node name="n1" api="198.18.0.1" port="9453"/></nodes>
                  <lans><lan name="LAN1"><node name="n1" addr="198.18.0.1"/></lan></lans>
                </cluster>
                """);

            var process = env.Lab.StartEngine(node, EngineLab.AdminKey);
            Assert.True(process.WaitForExit(TimeSpan.FromSeconds(60)), "the engine should exit");
            process.WaitForExit();

            Assert.Equal(3, process.ExitCode);
            var outputText = File.ReadAllText(node.LogPath);
            Assert.Contains($"{clusterXml}:1:", outputText);
            Assert.False(File.Exists(node.ApiSocketPath), "nothing may start on a bad configuration");
        }

        [Fact]
        public void Sigterm_StopsCleanly_AndRemovesTheSocket()
        {
            using var env = new EngineLab(output.WriteLine, 1);
            var node = env.Lab.Nodes[0];
            var process = node.EngineProcess!;

            env.Lab.StopEngine(node);

            Assert.True(process.HasExited);
            Assert.Equal(0, process.ExitCode);
            Assert.False(File.Exists(node.ApiSocketPath));
            Assert.Contains("engine stopped", File.ReadAllText(Path.Combine(node.Home, "log", "engine.log")));
        }

        [Fact]
        public void StaleSocketFile_FromAKilledEngine_DoesNotStopTheNextStart()
        {
            using var env = new EngineLab(output.WriteLine, 1);
            var node = env.Lab.Nodes[0];

            env.Lab.KillEngine(node);
            Assert.True(File.Exists(node.ApiSocketPath), "kill -9 leaves the socket file behind");
            env.Start(node);

            Assert.Equal(200, env.Curl(node, "/v1/node").Status);
        }
    }
}
