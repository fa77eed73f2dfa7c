// Runs a module's programs as child processes: interpreter choice per platform, output lines to the
// module log, and the whole process tree killed on timeout or cancellation.
using System;
using System.Collections.Generic;
using System.ComponentModel;
using System.Diagnostics;
using System.IO;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ServiceKeeper.Engine.Scripts
{
    /// <summary>
    /// <see cref="IScriptRunner"/> over real processes. <see cref="ScriptInvocation.Path"/> is a full path
    /// (module scripts: see <see cref="ProgramPath.InModule"/>) or a bare command looked up on PATH.
    /// Linux: a file without an execute bit, or one the kernel cannot execute (no #!), runs through
    /// /bin/sh. Windows: .ps1 through pwsh.exe (else powershell.exe), .cmd/.bat through cmd.exe.
    /// Stdin is closed; each line of stdout and stderr goes to the module log under the invocation's source.
    /// </summary>
    /// <remarks>
    /// The result comes back when the program exits, not when its output pipes close: a start script
    /// that leaves a daemon behind (which inherits the pipes) must not hang the module. The daemon's
    /// later output keeps flowing to the module log, and it never gets SIGPIPE from a closed pipe.
    /// Cancellation kills the tree like a timeout and then throws <see cref="OperationCanceledException"/>.
    /// </remarks>
    public sealed partial class ProcessScriptRunner : IScriptRunner
    {
        /// <summary>Shell convention for "command not found", returned with <see cref="ScriptResult.Missing"/>.</summary>
        public const int MissingExitCode = 127;

        /// <summary>Shell convention for "found but cannot execute".</summary>
        public const int CannotExecuteExitCode = 126;

        /// <summary>Exit code reported for a program killed at its timeout.</summary>
        public const int TimedOutExitCode = -1;

        private const int MaxLineChars = 8192;
        private const int ErrnoNoExec = 8; // ENOEXEC: a file without #! (execve refuses, a shell would run it)

        // After the program exits its pipes normally reach EOF at once; a leftover daemon keeps them
        // open, and then the result must not wait for it.
        private static readonly TimeSpan OutputDrainGrace = TimeSpan.FromSeconds(1);
        private static readonly TimeSpan KillWait = TimeSpan.FromSeconds(10);

        private readonly IModuleLog _moduleLog;
        private readonly ILogger _logger;
        private readonly TimeProvider _time;

        public ProcessScriptRunner(IModuleLog moduleLog, ILogger<ProcessScriptRunner>? logger = null, TimeProvider? time = null)
        {
            _moduleLog = moduleLog ?? throw new ArgumentNullException(nameof(moduleLog));
            _logger = logger ?? (ILogger)NullLogger.Instance;
            _time = time ?? TimeProvider.System;
        }

        public async Task<ScriptResult> RunAsync(ScriptInvocation invocation, CancellationToken ct)
        {
            ArgumentNullException.ThrowIfNull(invocation);
            ct.ThrowIfCancellationRequested();
            var startedAt = _time.GetTimestamp();
            TimeSpan Elapsed() => _time.GetElapsedTime(startedAt);

            var program = ProgramPath.Resolve(invocation.Path);
            if (program is null)
            {
                LogMissing(invocation.Module, invocation.Source, invocation.Path);
                return new ScriptResult(MissingExitCode, TimedOut: false, Missing: true, Elapsed());
            }

            Process process;
            try
            {
                process = Start(program, invocation);
            }
            catch (Exception e) when (e is Win32Exception or IOException or InvalidOperationException or UnauthorizedAccessException)
            {
                LogStartFailed(invocation.Module, invocation.Source, program, e.Message);
                WriteModuleLog(invocation.Module, invocation.Source, $"cannot run {program}: {e.Message}");
                return new ScriptResult(CannotExecuteExitCode, TimedOut: false, Missing: false, Elapsed());
            }
            LogStarted(invocation.Module, invocation.Source, process.Id, program);

            try
            {
                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // It exited already and closed its end.
            }
            var output = Task.WhenAll(
                PumpAsync(process.StandardOutput.BaseStream, invocation.Module, invocation.Source),
                PumpAsync(process.StandardError.BaseStream, invocation.Module, invocation.Source));
            try
            {
                var timedOut = false;
                using (var timeout = CreateTimeout(invocation.Timeout))
                using (var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token))
                {
                    try
                    {
                        await process.WaitForExitAsync(linked.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (linked.IsCancellationRequested)
                    {
                        timedOut = !ct.IsCancellationRequested;
                        await KillTreeAsync(process, invocation).ConfigureAwait(false);
                    }
                }

                await Task.WhenAny(output, Task.Delay(OutputDrainGrace, _time, CancellationToken.None)).ConfigureAwait(false);
                ct.ThrowIfCancellationRequested();
                if (timedOut)
                    WriteModuleLog(invocation.Module, invocation.Source, $"timed out after {Format(invocation.Timeout)}: killed with its child processes");

                var exitCode = timedOut || !process.HasExited ? TimedOutExitCode : process.ExitCode;
                var duration = Elapsed();
                LogFinished(invocation.Module, invocation.Source, exitCode, timedOut, duration.TotalMilliseconds);
                return new ScriptResult(exitCode, timedOut, Missing: false, duration);
            }
            finally
            {
                // A daemon the program left behind may hold the pipes for a long time: the pumps own
                // the Process from here and release it when both pipes are closed.
                _ = output.ContinueWith(_ => process.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }

        private CancellationTokenSource CreateTimeout(TimeSpan timeout) =>
            timeout > TimeSpan.Zero ? new CancellationTokenSource(timeout, _time) : new CancellationTokenSource();

        private Process Start(string program, ScriptInvocation invocation)
        {
            var psi = StartInfo(program, invocation.Arguments, viaShell: OperatingSystem.IsLinux() && !ProgramPath.IsExecutable(program));
            Prepare(psi, program, invocation);
            try
            {
                return Process.Start(psi) ?? throw new InvalidOperationException("no process was started");
            }
            catch (Win32Exception e) when (e.NativeErrorCode == ErrnoNoExec && !OperatingSystem.IsWindows() && psi.FileName == program)
            {
                // Executable but not a binary nor #!: what execvp() and every shell do.
                var viaSh = StartInfo(program, invocation.Arguments, viaShell: true);
                Prepare(viaSh, program, invocation);
                return Process.Start(viaSh) ?? throw new InvalidOperationException("no process was started");
            }
        }

        private static void Prepare(ProcessStartInfo psi, string program, ScriptInvocation invocation)
        {
            // Module scripts run in their bin/; commands from PATH where the engine runs.
            if (!ProgramPath.IsBareName(invocation.Path))
                psi.WorkingDirectory = Path.GetDirectoryName(program) ?? "";
            foreach (var (name, value) in invocation.Environment)
                psi.Environment[name] = value;
        }

        /// <summary>The command line that runs <paramref name="program"/>: directly or through its interpreter.</summary>
        internal static ProcessStartInfo StartInfo(string program, IReadOnlyList<string> arguments, bool viaShell)
        {
            var psi = new ProcessStartInfo
            {
                UseShellExecute = false,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                StandardOutputEncoding = Encoding.UTF8,
                StandardErrorEncoding = Encoding.UTF8,
                CreateNoWindow = true,
            };
            var extension = Path.GetExtension(program);
            if (viaShell)
            {
                psi.FileName = "/bin/sh";
                psi.ArgumentList.Add(program);
            }
            else if (extension.Equals(".ps1", StringComparison.OrdinalIgnoreCase) && PowerShell() is { } powershell)
            {
                psi.FileName = powershell;
                foreach (var option in new[] { "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File", program })
                    psi.ArgumentList.Add(option);
            }
            else if (OperatingSystem.IsWindows() &&
                     (extension.Equals(".cmd", StringComparison.OrdinalIgnoreCase) || extension.Equals(".bat", StringComparison.OrdinalIgnoreCase)))
            {
                // cmd.exe has its own quoting: /s strips exactly the outer pair of quotes around the
                // whole command, so the script path and its arguments keep theirs.
                psi.FileName = Environment.GetEnvironmentVariable("ComSpec") ?? "cmd.exe";
                var line = new StringBuilder("/d /s /c \"").Append(CmdQuote(program));
                foreach (var argument in arguments)
                    line.Append(' ').Append(CmdQuote(argument));
                psi.Arguments = line.Append('"').ToString();
                return psi;
            }
            else
            {
                psi.FileName = program;
            }
            foreach (var argument in arguments)
                psi.ArgumentList.Add(argument);
            return psi;
        }

        private static string? PowerShell() =>
            ProgramPath.FindOnPath(OperatingSystem.IsWindows() ? "pwsh.exe" : "pwsh") ??
            (OperatingSystem.IsWindows() ? ProgramPath.FindOnPath("powershell.exe") ?? "powershell.exe" : null);

        private static string CmdQuote(string argument) =>
            argument.Length > 0 && argument.AsSpan().IndexOfAny(" \t\"&|<>^(),;=") < 0
                ? argument
                : "\"" + argument.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

        private async Task KillTreeAsync(Process process, ScriptInvocation invocation)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Exited on its own meanwhile.
            }
            catch (Exception e) when (e is Win32Exception or NotSupportedException or AggregateException)
            {
                LogKillFailed(invocation.Module, invocation.Source, process.Id, e.Message);
            }
            using var wait = new CancellationTokenSource(KillWait, _time);
            try
            {
                await process.WaitForExitAsync(wait.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                LogKillFailed(invocation.Module, invocation.Source, process.Id, $"still running {Format(KillWait)} after the kill");
            }
        }

        /// <summary>Copies lines of one pipe to the module log until EOF; never throws.</summary>
        private async Task PumpAsync(Stream stream, string module, string source)
        {
            var decoder = Encoding.UTF8.GetDecoder();
            var bytes = new byte[4096];
            var chars = new char[Encoding.UTF8.GetMaxCharCount(bytes.Length)];
            var line = new StringBuilder();
            try
            {
                int read;
                while ((read = await stream.ReadAsync(bytes).ConfigureAwait(false)) > 0)
                {
                    var count = decoder.GetChars(bytes, 0, read, chars, 0, flush: false);
                    for (var i = 0; i < count; i++)
                    {
                        var c = chars[i];
                        if (c == '\n')
                        {
                            EmitLine(module, source, line);
                        }
                        else
                        {
                            line.Append(c);
                            if (line.Length >= MaxLineChars)
                                EmitLine(module, source, line); // a runaway line must not eat the engine's memory
                        }
                    }
                }
                if (line.Length > 0)
                    EmitLine(module, source, line);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
            {
                // The pipe broke: nothing more to read.
            }
            finally
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }
        }

        private void EmitLine(string module, string source, StringBuilder line)
        {
            var length = line.Length;
            if (length > 0 && line[length - 1] == '\r')
                length--;
            WriteModuleLog(module, source, line.ToString(0, length));
            line.Clear();
        }

        private void WriteModuleLog(string module, string source, string text)
        {
            try
            {
                _moduleLog.Write(module, source, text);
            }
            catch (Exception e)
            {
                // The program's fate must not depend on the log; the engine log says why lines are missing.
                LogModuleLogFailed(module, source, e);
            }
        }

        private static string Format(TimeSpan span) =>
            span.TotalSeconds >= 1 && span.Milliseconds == 0 ? $"{span.TotalSeconds:0}s" : $"{span.TotalMilliseconds:0}ms";

        [LoggerMessage(Level = LogLevel.Debug, Message = "{Module}: {Source}: started pid {Pid}: {Program}")]
        private partial void LogStarted(string module, string source, int pid, string program);

        [LoggerMessage(Level = LogLevel.Debug, Message = "{Module}: {Source}: exit code {ExitCode} (timed out: {TimedOut}) after {Milliseconds:0} ms")]
        private partial void LogFinished(string module, string source, int exitCode, bool timedOut, double milliseconds);

        [LoggerMessage(Level = LogLevel.Debug, Message = "{Module}: {Source}: {Path} not found")]
        private partial void LogMissing(string module, string source, string path);

        [LoggerMessage(Level = LogLevel.Warning, Message = "{Module}: {Source}: cannot start {Program}: {Error}")]
        private partial void LogStartFailed(string module, string source, string program, string error);

        [LoggerMessage(Level = LogLevel.Error, Message = "{Module}: {Source}: could not kill pid {Pid} and its children: {Error}")]
        private partial void LogKillFailed(string module, string source, int pid, string error);

        [LoggerMessage(Level = LogLevel.Warning, Message = "{Module}: {Source}: module log write failed")]
        private partial void LogModuleLogFailed(string module, string source, Exception exception);
    }
}
