using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>The resources a module's checkers set (class.ident: init, up or down) on each node, and the action when down.</summary>
    [Cmdlet(VerbsCommon.Get, "SKResource")]
    [OutputType(typeof(ModuleResource))]
    public sealed class GetSKResourceCommand : SKSingleModuleCommandBase
    {
        /// <summary>One node of the module; all its nodes when not given.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(NodeNameCompleter))]
        public string? Node { get; set; }

        /// <summary>Resource names (class.ident); wildcards allowed.</summary>
        [Parameter(Position = 1)]
        [ValidateNotNullOrEmpty]
        [SupportsWildcards]
        public string[]? Resource { get; set; }

        protected override void ProcessRecord()
        {
            var name = Name;
            var node = Node;
            if (!TryCall((client, ct) => client.GetResourcesAsync(name, node, ct), name, out var resources)) return;
            var selected = NameFilter.Select(resources, r => r.Resource, Resource, missing =>
                WriteError(ErrorIds.ResourceNotFound,
                    $"Module '{name}' has no resource '{missing}'{(node == null ? "" : $" on node '{node}'")}.", missing));
            WriteObject(selected, enumerateCollection: true);
        }
    }
}
