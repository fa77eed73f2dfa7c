using System.Linq;
using System.Management.Automation;

namespace ServiceKeeper.Commands
{
    /// <summary>Removes the cluster (and the modules in it) from every node.</summary>
    [Cmdlet(VerbsCommon.Remove, "SKCluster", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    public sealed class RemoveSKClusterCommand : SKCmdletBase
    {
        /// <summary>Remove the cluster from the nodes that answer even when others do not.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        protected override void ProcessRecord()
        {
            // Confirmation first: it names the node asked, and costs no call to an engine that may be down.
            if (!ShouldProcess($"the ServiceKeeper cluster of {Client.Endpoint}, on all its nodes", "Remove")) return;
            if (!TryCall((client, ct) => client.GetClusterAsync(ct), null, out var cluster)) return;
            if (!TryCall((client, ct) => client.RemoveClusterAsync(Force.IsPresent, ct), cluster.Name, out var removedFrom)) return;

            WriteVerbose($"Removed cluster '{cluster.Name}' from {string.Join(", ", removedFrom)}.");
            var left = cluster.Nodes.Select(n => n.Name).Where(n => !removedFrom.Contains(n)).ToList();
            if (left.Count > 0)
                WriteWarning($"Cluster '{cluster.Name}' is still on {string.Join(", ", left)}, which did not answer. " +
                             "When a node is back, run Remove-SKCluster -ComputerName <node> on it.");
        }
    }
}
