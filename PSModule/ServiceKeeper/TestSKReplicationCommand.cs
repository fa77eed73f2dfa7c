using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>
    /// Compares the primary's and the secondary's copies of a mirror module's replicated directories by
    /// content hash and writes every difference; with -Quiet, $true when they are identical.
    /// </summary>
    [Cmdlet(VerbsDiagnostic.Test, "SKReplication")]
    [OutputType(typeof(ReplicationDifference))]
    [OutputType(typeof(bool))]
    public sealed class TestSKReplicationCommand : SKSingleModuleCommandBase
    {
        /// <summary>Write only $true (identical) or $false.</summary>
        [Parameter]
        public SwitchParameter Quiet { get; set; }

        protected override void ProcessRecord()
        {
            var name = Name;
            if (!TryCall((client, ct) => client.TestReplicationAsync(name, ct), name, out var differences)) return;
            if (Quiet) WriteObject(differences.Count == 0);
            else WriteObject(differences, enumerateCollection: true);
        }
    }
}
