using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>
    /// State of each module on each node (STOP, WAIT, ALONE, PRIM, SECOND, UP). A node that does not
    /// answer has a row with Reachable false and its Error: the answer is still the cluster's state, so it
    /// is not an error of the command (Get-SKNode reports unreachable nodes).
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "SKState")]
    [OutputType(typeof(ModuleState))]
    public sealed class GetSKStateCommand : SKModuleCommandBase
    {
        private List<ModuleState>? _states;
        // -Node names that matched a row in some input: an exact one that never did is NodeNotFound at the end.
        private readonly HashSet<string> _nodesMatched = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        private bool _anyRows;

        /// <summary>Node names; wildcards allowed.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        [SupportsWildcards]
        [ArgumentCompleter(typeof(NodeNameCompleter))]
        public string[]? Node { get; set; }

        protected override void ProcessRecord()
        {
            if (_states == null && !TryCall((client, ct) => client.GetStateAsync(ct), null, out _states)) return;
            var rows = SelectByName(_states!, s => s.Module);
            if (Node != null && rows.Count > 0)
            {
                _anyRows = true;
                var missing = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
                rows = NameFilter.Select(rows, s => s.Node, Node, m => missing.Add(m));
                _nodesMatched.UnionWith(Node.Where(n => !missing.Contains(n)));
            }
            WriteObject(rows, enumerateCollection: true);
        }

        protected override void EndProcessing()
        {
            if (Node == null || !_anyRows) return;
            foreach (var node in Node.Where(n => !WildcardPattern.ContainsWildcardCharacters(n) && !_nodesMatched.Contains(n))
                                     .Distinct(StringComparer.OrdinalIgnoreCase))
                WriteError(ErrorIds.NodeNotFound, $"None of the selected modules is on a node named '{node}'.", node);
        }
    }
}
