using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>Validates the cluster (nodes reachable, same configuration, clocks, networks, capabilities).</summary>
    [Cmdlet(VerbsDiagnostic.Test, "SKCluster")]
    [OutputType(typeof(ClusterCheck))]
    public sealed class TestSKClusterCommand : SKCmdletBase
    {
        protected override void ProcessRecord()
        {
            if (TryCall((client, ct) => client.TestClusterAsync(ct), null, out var checks))
                WriteObject(checks, enumerateCollection: true);
        }
    }
}
