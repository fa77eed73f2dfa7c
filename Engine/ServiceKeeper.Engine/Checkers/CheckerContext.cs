using System;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using ServiceKeeper.Engine.Scripts;

namespace ServiceKeeper.Engine.Checkers
{
    /// <summary>What checkers of one module on this node may use.</summary>
    public sealed class CheckerContext
    {
        public required string Module { get; init; }
        public required string Node { get; init; }
        /// <summary>&lt;home&gt;/modules/&lt;m&gt;: custom and splitbrain checkers run programs from its bin/.</summary>
        public required string ModuleDirectory { get; init; }
        public required TimeProvider Time { get; init; }
        public required ILoggerFactory LoggerFactory { get; init; }
        public required IProcessTable Processes { get; init; }
        public required IScriptRunner Scripts { get; init; }
        /// <summary>Environment of the module's programs (module, node, variables).</summary>
        public required System.Collections.Generic.IReadOnlyDictionary<string, string> Environment { get; init; }
        /// <summary>Module checker: is module <c>name</c> ready (on the local engine, or at address:port when given)?</summary>
        public required Func<string, string?, int?, CancellationToken, Task<bool>> IsModuleReady { get; init; }
    }
}
