using System.Collections.Generic;
using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>The modules installed in the cluster.</summary>
    [Cmdlet(VerbsCommon.Get, "SKModule")]
    [OutputType(typeof(ModuleInfo))]
    public sealed class GetSKModuleCommand : SKModuleCommandBase
    {
        private List<ModuleInfo>? _modules;

        protected override void ProcessRecord()
        {
            if (_modules == null && !TryCall((client, ct) => client.GetModulesAsync(ct), null, out _modules)) return;
            WriteObject(SelectByName(_modules!, m => m.Name), enumerateCollection: true);
        }
    }
}
