using System.Collections.Generic;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Engine.Scripts
{
    /// <summary>Per-module log on this node: transitions, actions and script output (Get-SKLog).</summary>
    public interface IModuleLog
    {
        void Write(string module, string source, string text);

        /// <summary>The last <paramref name="tail"/> lines, or those after <paramref name="afterSequence"/>.</summary>
        IReadOnlyList<LogLine> Read(string module, int tail, long? afterSequence);
    }
}
