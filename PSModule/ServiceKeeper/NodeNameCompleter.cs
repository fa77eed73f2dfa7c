using System.Collections.Generic;
using System.Linq;
using System.Threading;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>Completes -Node with the nodes of the cluster (as the asked node holds them: no call to the others).</summary>
    public sealed class NodeNameCompleter : EngineArgumentCompleter
    {
        protected override IEnumerable<KeyValuePair<string, string>> GetNames(SKApiClient client, CancellationToken ct) =>
            client.GetClusterAsync(ct).GetAwaiter().GetResult().Nodes
                .Select(n => new KeyValuePair<string, string>(n.Name, $"node of cluster, API at {n.ApiAddress}"));
    }
}
