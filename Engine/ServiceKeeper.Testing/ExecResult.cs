// Outcome of a command run by NetLab.Exec.
using System;

namespace ServiceKeeper.Testing;

/// <summary>Exit code and output of a finished (or timed-out) command.</summary>
public sealed class ExecResult
{
    internal ExecResult(string commandLine, int exitCode, string stdOut, string stdErr, bool timedOut)
    {
        CommandLine = commandLine;
        ExitCode = exitCode;
        StdOut = stdOut;
        StdErr = stdErr;
        TimedOut = timedOut;
    }

    /// <summary>The command as run, for messages.</summary>
    public string CommandLine { get; }

    /// <summary>Exit code; -1 when the command timed out and was killed.</summary>
    public int ExitCode { get; }

    public string StdOut { get; }

    public string StdErr { get; }

    /// <summary>The command did not finish within its time limit and was killed.</summary>
    public bool TimedOut { get; }

    public bool Succeeded => ExitCode == 0 && !TimedOut;

    /// <summary>Throws <see cref="InvalidOperationException"/> with the output unless the command exited with 0.</summary>
    public ExecResult EnsureSuccess()
    {
        if (!Succeeded)
        {
            throw new InvalidOperationException(
                $"'{CommandLine}' {(TimedOut ? "timed out" : $"exited with {ExitCode}")}.\nstdout: {StdOut.Trim()}\nstderr: {StdErr.Trim()}");
        }
        return this;
    }

    public void Deconstruct(out int exitCode, out string stdOut, out string stdErr)
    {
        exitCode = ExitCode;
        stdOut = StdOut;
        stdErr = StdErr;
    }

    public override string ToString() => $"{CommandLine} -> {(TimedOut ? "timeout" : ExitCode.ToString(System.Globalization.CultureInfo.InvariantCulture))}";
}
