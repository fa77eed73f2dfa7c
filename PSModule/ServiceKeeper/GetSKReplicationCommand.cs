using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>
    /// The replication of a mirror module's directories on each node: mode, state, what is in flight, what
    /// the journal holds for the next resync, rates, the last sync point and a running resync's progress.
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "SKReplication")]
    [OutputType(typeof(ReplicationStatus))]
    public sealed class GetSKReplicationCommand : SKSingleModuleCommandBase
    {
        /// <summary>One node of the module; both when not given.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(NodeNameCompleter))]
        public string? Node { get; set; }

        protected override void ProcessRecord()
        {
            var name = Name;
            var node = Node;
            if (TryCall((client, ct) => client.GetReplicationAsync(name, node, ct), name, out var status))
                WriteObject(status, enumerateCollection: true);
        }
    }
}
