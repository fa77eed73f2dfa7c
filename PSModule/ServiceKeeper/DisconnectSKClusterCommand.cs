using System.Management.Automation;

namespace ServiceKeeper.Commands
{
    /// <summary>Forgets the connection of Connect-SKCluster: the cmdlets use the local engine again.</summary>
    [Cmdlet(VerbsCommunications.Disconnect, "SKCluster")]
    public sealed class DisconnectSKClusterCommand : PSCmdlet
    {
        protected override void EndProcessing()
        {
            var connection = SKConnection.Get(SessionState);
            if (SKConnection.Remove(SessionState) && connection != null)
                WriteVerbose($"Disconnected from {connection.ComputerName}; the SK cmdlets use the local engine unless -ComputerName is given.");
        }
    }
}
