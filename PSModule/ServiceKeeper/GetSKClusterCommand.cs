using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>The cluster the node belongs to: name, id, nodes, networks.</summary>
    [Cmdlet(VerbsCommon.Get, "SKCluster")]
    [OutputType(typeof(ClusterInfo))]
    public sealed class GetSKClusterCommand : SKCmdletBase
    {
        protected override void ProcessRecord()
        {
            if (TryCall((client, ct) => client.GetClusterAsync(ct), null, out var cluster))
                WriteObject(cluster);
        }
    }
}
