using System.Collections.Generic;
using System.Linq;
using System.Threading;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>Completes -Name of the module cmdlets with the modules the engine knows.</summary>
    public sealed class ModuleNameCompleter : EngineArgumentCompleter
    {
        protected override IEnumerable<KeyValuePair<string, string>> GetNames(SKApiClient client, CancellationToken ct) =>
            client.GetModulesAsync(ct).GetAwaiter().GetResult()
                .Select(m => new KeyValuePair<string, string>(m.Name, $"{m.Kind} module on {string.Join(", ", m.Nodes)}"));
    }
}
