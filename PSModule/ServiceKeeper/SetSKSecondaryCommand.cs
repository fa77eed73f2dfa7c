using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>Makes a node the secondary of a mirror module (the engine's "second"); -FullSync copies all data instead of the changes.</summary>
    [Cmdlet(VerbsCommon.Set, "SKSecondary", SupportsShouldProcess = true)]
    [OutputType(typeof(ModuleState))]
    public sealed class SetSKSecondaryCommand : SKSingleModuleCommandBase
    {
        /// <summary>The node to make secondary.</summary>
        [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(NodeNameCompleter))]
        public string Node { get; set; } = "";

        /// <summary>Resynchronise every replicated file, not only what changed.</summary>
        [Parameter]
        public SwitchParameter FullSync { get; set; }

        /// <summary>Write the module's states after the command.</summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        protected override void ProcessRecord()
        {
            if (!ShouldProcess(TargetOf(Node), FullSync ? "Make secondary with a full resynchronisation" : "Make secondary")) return;
            var request = new ModuleCommandRequest { Command = ModuleCommands.Second, Node = Node, FullSync = FullSync.IsPresent };
            if (TryCall((client, ct) => client.SendCommandAsync(Name, request, ct), Name, out var states) && PassThru)
                WriteObject(states, enumerateCollection: true);
        }
    }
}
