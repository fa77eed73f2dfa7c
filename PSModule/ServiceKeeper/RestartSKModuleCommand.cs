using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>Stops and starts modules on their nodes (or one node), as the engine does it for the module's state.</summary>
    [Cmdlet(VerbsLifecycle.Restart, "SKModule", SupportsShouldProcess = true)]
    [OutputType(typeof(ModuleState))]
    public sealed class RestartSKModuleCommand : SKModuleLifecycleCommandBase
    {
        protected override string Command => ModuleCommands.Restart;
        protected override string Action => "Restart";
    }
}
