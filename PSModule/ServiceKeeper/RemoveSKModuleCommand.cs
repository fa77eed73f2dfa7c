using System.Management.Automation;

namespace ServiceKeeper.Commands
{
    /// <summary>Removes a module from every node of the cluster.</summary>
    [Cmdlet(VerbsCommon.Remove, "SKModule", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    public sealed class RemoveSKModuleCommand : SKModuleCommandBase
    {
        /// <summary>Exact module names: removal takes no wildcards.</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("Module")]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(ModuleNameCompleter))]
        public override string[]? Name { get; set; }

        /// <summary>Remove the module from the nodes that answer even when others do not.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        protected override void ProcessRecord()
        {
            foreach (var name in Name!)
            {
                if (!ShouldProcess($"module '{name}' on every node of the cluster", "Remove")) continue;
                if (TryCall((client, ct) => client.RemoveModuleAsync(name, Force.IsPresent, ct), name, out var nodes))
                    WriteVerbose($"Removed module '{name}' from {string.Join(", ", nodes)}.");
            }
        }
    }
}
