using System.Collections.Generic;
using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>The nodes of the cluster as the asked node sees them: reachable, engine version, clock offset.</summary>
    [Cmdlet(VerbsCommon.Get, "SKNode")]
    [OutputType(typeof(NodeStatus))]
    public sealed class GetSKNodeCommand : SKCmdletBase
    {
        private List<NodeStatus>? _nodes;

        [Parameter(Position = 0, ValueFromPipeline = true)]
        [ValidateNotNullOrEmpty]
        [SupportsWildcards]
        public string[]? Name { get; set; }

        protected override void ProcessRecord()
        {
            if (_nodes == null && !TryCall((client, ct) => client.GetNodesAsync(ct), null, out _nodes)) return;
            var selected = NameFilter.Select(_nodes!, n => n.Name, Name, missing =>
                WriteError(ErrorIds.NodeNotFound, $"No node named '{missing}' in the cluster.", missing));
            foreach (var node in selected)
            {
                // The object is written too: its status is the answer; the error lets scripts notice.
                WriteObject(node);
                if (!node.Reachable)
                    WriteError(ErrorIds.NodeUnreachable, $"Node '{node.Name}' is unreachable: {node.Error ?? "no answer"}", node.Name);
            }
        }
    }
}
