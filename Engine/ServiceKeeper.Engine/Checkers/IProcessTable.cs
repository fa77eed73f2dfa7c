using System.Collections.Generic;

namespace ServiceKeeper.Engine.Checkers
{
    public sealed record ProcessEntry(int Pid, string Name, string CommandLine);

    /// <summary>The processes of this node that errd watches.</summary>
    public interface IProcessTable
    {
        IReadOnlyList<ProcessEntry> Snapshot();
    }
}
