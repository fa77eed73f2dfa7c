using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>Stops modules on their nodes (or one node): the application stops and the node is STOP.</summary>
    [Cmdlet(VerbsLifecycle.Stop, "SKModule", SupportsShouldProcess = true)]
    [OutputType(typeof(ModuleState))]
    public sealed class StopSKModuleCommand : SKModuleLifecycleCommandBase
    {
        protected override string Command => ModuleCommands.Stop;
        protected override string Action => "Stop";
    }
}
