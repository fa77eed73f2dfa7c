using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>Creates a cluster of running engines; the engine asked sends the configuration to every node.</summary>
    [Cmdlet(VerbsCommon.New, "SKCluster", SupportsShouldProcess = true)]
    [OutputType(typeof(ClusterInfo))]
    public sealed class NewSKClusterCommand : SKCmdletBase
    {
        [Parameter(Mandatory = true, Position = 0)]
        [ValidateNotNullOrEmpty]
        public string Name { get; set; } = "";

        /// <summary>Each node as host, address or host:port of its engine's API.</summary>
        [Parameter(Mandatory = true, Position = 1)]
        [ValidateNotNullOrEmpty]
        public string[] Node { get; set; } = new string[0];

        // Without -ComputerName, a connection or a local engine, the first node is asked: then
        // New-SKCluster works from an admin workstation that runs no engine.
        protected override SKEndpoint ResolveEndpoint()
        {
            if (string.IsNullOrEmpty(ComputerName) && DefaultConnection == null && !SKConnection.LocalEngineExists())
                return SKConnection.Remote(Node[0], Credential, SkipCertificateCheck.IsPresent);
            return base.ResolveEndpoint();
        }

        protected override void ProcessRecord()
        {
            var target = $"cluster '{Name}' with nodes {string.Join(", ", Node)}";
            if (!ShouldProcess(target, "Create")) return;
            var request = new CreateClusterRequest { Name = Name, Nodes = new System.Collections.Generic.List<string>(Node) };
            if (TryCall((client, ct) => client.CreateClusterAsync(request, ct), Name, out var cluster))
                WriteObject(cluster);
        }
    }
}
