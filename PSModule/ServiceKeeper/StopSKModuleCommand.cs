using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>Stops modules on their nodes (or one node): the application stops and the node is STOP.</summary>
    [Cmdlet(VerbsLifecycle.Stop, "SKModule", SupportsShouldProcess = true)]
    [OutputType(typeof(ModuleState))]
    public sealed class StopSKModuleCommand : SKModuleLifecycleCommandBase
    {
        /// <summary>Farm modules: new connections go to the other nodes and open ones finish before the node stops.</summary>
        [Parameter]
        public SwitchParameter Drain { get; set; }

        protected override string Command => ModuleCommands.Stop;
        protected override string Action => Drain ? "Drain and stop" : "Stop";

        // Whether the module is a farm is the engine's to say (InvalidModuleState for a mirror module).
        protected override ModuleCommandRequest NewRequest()
        {
            var request = base.NewRequest();
            request.Drain = Drain.IsPresent;
            return request;
        }
    }
}
