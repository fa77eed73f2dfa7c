using System;
using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>Checks that a node answers and makes it the default target of the session's SK cmdlets.</summary>
    [Cmdlet(VerbsCommunications.Connect, "SKCluster")]
    [OutputType(typeof(SKConnection))]
    public sealed class ConnectSKClusterCommand : SKCmdletBase
    {
        [Parameter(Mandatory = true, Position = 0)]
        [ValidateNotNullOrEmpty]
        public override string? ComputerName { get; set; }

        [Parameter(Mandatory = true)]
        [Credential]
        public override PSCredential? Credential { get; set; }

        /// <summary>Write the stored connection.</summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        // Connecting replaces the stored connection, so it must not be read from it.
        protected override SKEndpoint ResolveEndpoint() =>
            SKConnection.Resolve(ComputerName, Credential, SkipCertificateCheck.IsPresent, null);

        protected override void ProcessRecord()
        {
            if (!TryCall((client, ct) => client.GetNodeInfoAsync(ct), ComputerName, out var node)) return;
            var connection = new SKConnection(ComputerName!, Credential, SkipCertificateCheck.IsPresent)
            {
                NodeName = node.Name,
                ClusterName = node.ClusterName,
                EngineVersion = node.EngineVersion,
                ConnectedUtc = DateTime.UtcNow,
            };
            SKConnection.Set(SessionState, connection);
            WriteVerbose(node.ClusterName == null
                ? $"Connected to node '{node.Name}' ({ComputerName}), which is in no cluster yet."
                : $"Connected to node '{node.Name}' ({ComputerName}) of cluster '{node.ClusterName}'.");
            if (PassThru) WriteObject(connection);
        }
    }
}
