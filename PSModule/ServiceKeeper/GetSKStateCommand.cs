using System.Collections.Generic;
using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>State of each module on each node (STOP, WAIT, ALONE, PRIM, SECOND, UP).</summary>
    [Cmdlet(VerbsCommon.Get, "SKState")]
    [OutputType(typeof(ModuleState))]
    public sealed class GetSKStateCommand : SKModuleCommandBase
    {
        private List<ModuleState>? _states;

        protected override void ProcessRecord()
        {
            if (_states == null && !TryCall((client, ct) => client.GetStateAsync(ct), null, out _states)) return;
            WriteObject(SelectByName(_states!, s => s.Module), enumerateCollection: true);
        }
    }
}
