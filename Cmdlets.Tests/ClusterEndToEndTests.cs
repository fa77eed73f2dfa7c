// The module against real engines in network namespaces: from a client namespace over HTTPS,
// and on a node through the local socket.
using System.Collections.Generic;
using System.IO;
using System.Linq;
using ServiceKeeper.Testing;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Cmdlets.Tests
{
    public class ClusterEndToEndTests(ITestOutputHelper output)
    {
        private static string Prelude(EngineLab env, string key = EngineLab.AdminKey) => $"""
            $ErrorActionPreference = 'Continue'
            $cred = [pscredential]::new('admin', (ConvertTo-SecureString '{key}' -AsPlainText -Force))
            $nodes = @({string.Join(", ", env.Nodes.Select(n => $"'{n.Address}'"))})

            """;

        private static ShellResult Client(EngineLab env, string script) =>
            NamespaceShell.Run(env.Lab.Client!.Namespace, Prelude(env) + script);

        private static string CreateCluster => "New-SKCluster -Name prod -Node $nodes -ComputerName $nodes[0] -Credential $cred -SkipCertificateCheck\n";

        [Fact]
        public void NewSKCluster_FromClientOverHttps_CreatesThreeNodeCluster_GetSKNodeShowsAllReachable()
        {
            using var env = new EngineLab(output.WriteLine, 3);

            var result = Client(env, CreateCluster + """
                Connect-SKCluster -ComputerName $nodes[1] -Credential $cred -SkipCertificateCheck
                Get-SKCluster
                Get-SKNode
                Get-SKState
                """);

            Assert.True(result.ErrorIds.Count == 0 && result.Terminating == null, result.ToString());
            var clusters = result.OfType("ServiceKeeper.Contracts.ClusterInfo");
            Assert.Equal(2, clusters.Count);
            Assert.Equal("prod", clusters[0].Properties["Name"].Value);
            Assert.Equal(clusters[0].Properties["Id"].Value, clusters[1].Properties["Id"].Value);
            var nodes = result.OfType("ServiceKeeper.Contracts.NodeStatus");
            Assert.Equal(["n1", "n2", "n3"], nodes.Select(n => (string)n.Properties["Name"].Value));
            Assert.All(nodes, n => Assert.True((bool)n.Properties["Reachable"].Value));
            Assert.All(nodes, n => Assert.False(string.IsNullOrEmpty(n.Properties["EngineVersion"].Value as string)));
            Assert.Empty(result.OfType("ServiceKeeper.Contracts.ModuleState")); // no modules yet, and no error
        }

        [Fact]
        public void WrongCredential_IsAuthenticationFailed_ForEveryCmdlet()
        {
            using var env = new EngineLab(output.WriteLine, 1);

            var result = NamespaceShell.Run(env.Lab.Client!.Namespace, Prelude(env, key: "not-the-admin-key-000000") + """
                Get-SKNode -ComputerName $nodes[0] -Credential $cred -SkipCertificateCheck
                Get-SKCluster -ComputerName $nodes[0] -Credential $cred -SkipCertificateCheck
                Test-SKCluster -ComputerName $nodes[0] -Credential $cred -SkipCertificateCheck
                Connect-SKCluster -ComputerName $nodes[0] -Credential $cred -SkipCertificateCheck
                """);

            Assert.Equal([
                "AuthenticationFailed,ServiceKeeper.Commands.GetSKNodeCommand",
                "AuthenticationFailed,ServiceKeeper.Commands.GetSKClusterCommand",
                "AuthenticationFailed,ServiceKeeper.Commands.TestSKClusterCommand",
                "AuthenticationFailed,ServiceKeeper.Commands.ConnectSKClusterCommand",
            ], result.ErrorIds);
            Assert.Empty(result.Output);
        }

        [Fact]
        public void NodeCutOff_GetSKNodeReportsNodeUnreachableForIt_AndResultsForTheOthers()
        {
            using var env = new EngineLab(output.WriteLine, 3);
            Assert.True(Client(env, CreateCluster).ErrorIds.Count == 0);
            env.Lab.Cut(env.Nodes[2]);

            var result = Client(env, """
                Get-SKNode -ComputerName $nodes[0] -Credential $cred -SkipCertificateCheck
                Test-SKCluster -ComputerName $nodes[0] -Credential $cred -SkipCertificateCheck | Where-Object Result -eq Failed
                Get-SKNode -ComputerName $nodes[2] -Credential $cred -SkipCertificateCheck
                """);

            Assert.Equal([
                "NodeUnreachable,ServiceKeeper.Commands.GetSKNodeCommand",
                "NodeUnreachable,ServiceKeeper.Commands.GetSKNodeCommand",
            ], result.ErrorIds);
            Assert.Equal("n3", result.ErrorTargets[0]);
            Assert.Contains(env.Nodes[2].Address, result.ErrorMessages[1]);
            var nodes = result.OfType("ServiceKeeper.Contracts.NodeStatus");
            Assert.Equal([("n1", true), ("n2", true), ("n3", false)],
                nodes.Select(n => ((string)n.Properties["Name"].Value, (bool)n.Properties["Reachable"].Value)));
            var failed = result.OfType("ServiceKeeper.Contracts.ClusterCheck");
            Assert.Contains(failed, c => (string)c.Properties["Check"].Value == "NodeReachable" && (string)c.Properties["Node"].Value == "n3");
        }

        [Fact]
        public void RemoveSKCluster_RemovesItFromEveryNode_ThenGetSKClusterIsClusterNotFound()
        {
            using var env = new EngineLab(output.WriteLine, 2);

            var result = Client(env, CreateCluster + """
                Connect-SKCluster -ComputerName $nodes[0] -Credential $cred -SkipCertificateCheck
                Remove-SKCluster -Confirm:$false
                Get-SKCluster
                Get-SKCluster -ComputerName $nodes[1] -Credential $cred -SkipCertificateCheck
                """);

            Assert.Equal([
                "ClusterNotFound,ServiceKeeper.Commands.GetSKClusterCommand",
                "ClusterNotFound,ServiceKeeper.Commands.GetSKClusterCommand",
            ], result.ErrorIds);
            Assert.All(env.Nodes, n => Assert.False(File.Exists(Path.Combine(n.Home, "cluster", "cluster.xml"))));
        }

        [Fact]
        public void NewSKCluster_WithAnUnknownNode_IsNodeUnreachable_AndCreatesNothing()
        {
            using var env = new EngineLab(output.WriteLine, 2);

            var result = Client(env, """
                New-SKCluster -Name prod -Node ($nodes + '198.18.255.254') -ComputerName $nodes[0] -Credential $cred -SkipCertificateCheck
                Get-SKCluster -ComputerName $nodes[0] -Credential $cred -SkipCertificateCheck
                """);

            Assert.Equal([
                "NodeUnreachable,ServiceKeeper.Commands.NewSKClusterCommand",
                "ClusterNotFound,ServiceKeeper.Commands.GetSKClusterCommand",
            ], result.ErrorIds);
            Assert.Contains("198.18.255.254", result.ErrorMessages[0]);
        }
    }

    /// <summary>On a node as root: the local socket, no credential.</summary>
    [Collection(PowerShellHost.ProcessEnvironmentCollection)]
    public class LocalEngineEndToEndTests(ITestOutputHelper output)
    {
        [Fact]
        public void OnTheNode_CmdletsUseTheLocalSocketWithoutAKey()
        {
            using var env = new EngineLab(output.WriteLine, 2);
            using var ps = new PowerShellHost(new Dictionary<string, string?> { ["SERVICEKEEPER_HOME"] = env.Nodes[0].Home });

            var created = ps.Run($"New-SKCluster -Name local -Node {env.Nodes[0].Address},{env.Nodes[1].Address}");
            var nodes = ps.Run("Get-SKNode");
            var tested = ps.Run("Test-SKCluster | Where-Object Result -ne 'Passed'");

            Assert.True(created.Succeeded, created.ToString());
            Assert.Equal("local", ((Contracts.ClusterInfo)created.Output.Single().BaseObject).Name);
            Assert.True(nodes.Succeeded, nodes.ToString());
            Assert.Equal(["n1", "n2"], nodes.OutputAs<Contracts.NodeStatus>().Select(n => n.Name));
            Assert.True(tested.Succeeded, tested.ToString());
            Assert.Empty(tested.Output);
        }
    }
}
