using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>How a farm module's traffic is shared: each node's state, weight, buckets, share and live connections.</summary>
    [Cmdlet(VerbsCommon.Get, "SKFarmLoad")]
    [OutputType(typeof(FarmLoad))]
    public sealed class GetSKFarmLoadCommand : SKSingleModuleCommandBase
    {
        protected override void ProcessRecord()
        {
            var name = Name;
            if (TryCall((client, ct) => client.GetFarmLoadAsync(name, ct), name, out var load))
                WriteObject(load, enumerateCollection: true);
        }
    }
}
