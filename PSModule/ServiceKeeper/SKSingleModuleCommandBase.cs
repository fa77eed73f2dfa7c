using System.Management.Automation;

namespace ServiceKeeper.Commands
{
    /// <summary>
    /// Base of the cmdlets that act on one module at a time: -Name (exact, position 0, by value and by
    /// property name, alias Module), so <c>Get-SKModule | Start-SKSwap</c> takes each module and
    /// <c>Get-SKState -Name web | Wait-SKState ...</c> each row's module (and, where the cmdlet has a -Node
    /// taken by property name, its node).
    /// </summary>
    public abstract class SKSingleModuleCommandBase : SKCmdletBase
    {
        /// <summary>Exact module name.</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("Module")]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(ModuleNameCompleter))]
        public string Name { get; set; } = "";

        /// <summary>The ShouldProcess target: "module 'web' on node 'n1'", or "module 'web' on all its nodes".</summary>
        protected string TargetOf(string? node) =>
            node == null ? $"module '{Name}' on all its nodes" : $"module '{Name}' on node '{node}'";
    }
}
