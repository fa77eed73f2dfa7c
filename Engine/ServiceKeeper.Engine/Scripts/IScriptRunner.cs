// Runs a module's programs (start_prim, stop_prim, custom checkers...) and keeps their output.
using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace ServiceKeeper.Engine.Scripts
{
    /// <param name="Module">whose log receives the output.</param>
    /// <param name="Source">name shown in the log (the script's name).</param>
    /// <param name="Path">the program: a file of the module's bin/ or a command on PATH.</param>
    public sealed record ScriptInvocation(
        string Module, string Source, string Path, IReadOnlyList<string> Arguments,
        IReadOnlyDictionary<string, string> Environment, TimeSpan Timeout);

    /// <param name="Missing">the program does not exist (a module may leave a script out).</param>
    public sealed record ScriptResult(int ExitCode, bool TimedOut, bool Missing, TimeSpan Duration)
    {
        public bool Succeeded => ExitCode == 0 && !TimedOut && !Missing;
    }

    public interface IScriptRunner
    {
        /// <summary>Runs to completion or timeout (then the whole process tree is killed). Output lines go to the module log.</summary>
        Task<ScriptResult> RunAsync(ScriptInvocation invocation, CancellationToken ct);
    }
}
