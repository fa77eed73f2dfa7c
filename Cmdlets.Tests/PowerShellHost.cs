// Hosts PowerShell in the test process with the published ServiceKeeper module imported.
// Shared by the metadata tests and the end-to-end tests against real engines.
using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using Xunit;

namespace ServiceKeeper.Cmdlets.Tests
{
    /// <summary>
    /// One PowerShell runspace with the published module imported. State persists between
    /// <see cref="Run"/> calls (variables, Connect-SKCluster's default connection), as in one console.
    /// <code>
    /// using var ps = new PowerShellHost();
    /// var r = ps.Run("Get-SKNode -ComputerName $node -Credential $cred",
    ///                new Dictionary&lt;string, object?&gt; { ["node"] = "198.18.0.1", ["cred"] = cred });
    /// Assert.Equal(["NodeUnreachable,ServiceKeeper.Commands.GetSKNodeCommand"], r.ErrorIds);
    /// </code>
    /// Environment variables are process-wide, not per runspace. The cmdlets read SERVICEKEEPER_HOME
    /// (the home, hence the local socket) from the process environment when they run, so a test that
    /// targets a local engine sets it in its script (<c>$env:SERVICEKEEPER_HOME = '...'</c>) or passes
    /// <c>environment:</c>, which this host sets around each Run and restores afterwards. Either way the
    /// whole process sees it while the script runs: such tests belong to the
    /// <see cref="ProcessEnvironmentCollection"/> so xunit never runs two of them at once. Tests that
    /// only use -ComputerName or Connect-SKCluster do not depend on the environment and can run in parallel.
    /// </summary>
    public sealed class PowerShellHost : IDisposable
    {
        /// <summary>xunit collection (not run in parallel) for tests that change process environment variables.</summary>
        public const string ProcessEnvironmentCollection = "Process environment";

        private readonly Runspace _runspace;
        private readonly IReadOnlyDictionary<string, string?> _environment;

        /// <param name="environment">Process environment variables set for the duration of each Run (see the class remarks).</param>
        /// <param name="modulePath">The module to import: a .psd1 or its folder; default <see cref="FindModuleManifest"/>.</param>
        /// <param name="importModule">False for a bare runspace (for example to import Pester only).</param>
        public PowerShellHost(IDictionary<string, string?>? environment = null, string? modulePath = null, bool importModule = true)
        {
            _environment = new Dictionary<string, string?>(environment ?? new Dictionary<string, string?>());
            var iss = InitialSessionState.CreateDefault2();
            if (OperatingSystem.IsWindows())
                iss.ExecutionPolicy = Microsoft.PowerShell.ExecutionPolicy.Bypass;
            if (importModule)
            {
                ModuleManifest = modulePath == null ? FindModuleManifest() : ResolveManifest(modulePath);
                iss.ImportPSModule(ModuleManifest);
            }
            iss.ThrowOnRunspaceOpenError = true;
            _runspace = RunspaceFactory.CreateRunspace(iss);
            _runspace.Open();
        }

        /// <summary>Full path of the imported ServiceKeeper.psd1 (null with importModule: false).</summary>
        public string? ModuleManifest { get; }

        public Runspace Runspace => _runspace;

        /// <summary>
        /// Runs a script in the runspace. <paramref name="variables"/> become global variables first.
        /// Never throws for PowerShell errors: they are in the result.
        /// </summary>
        public PSRunResult Run(string script, IDictionary<string, object?>? variables = null)
        {
            if (variables != null)
                foreach (var (name, value) in variables)
                    _runspace.SessionStateProxy.SetVariable(name, value);

            var saved = _environment.Keys.ToDictionary(k => k, Environment.GetEnvironmentVariable);
            foreach (var (name, value) in _environment) Environment.SetEnvironmentVariable(name, value);
            using var ps = PowerShell.Create();
            ps.Runspace = _runspace;
            ps.AddScript(script);
            var output = new Collection<PSObject>();
            Exception? terminating = null;
            try
            {
                output = ps.Invoke();
            }
            catch (RuntimeException e)
            {
                terminating = e;
            }
            finally
            {
                foreach (var (name, value) in saved) Environment.SetEnvironmentVariable(name, value);
            }
            return new PSRunResult(output, ps.Streams.Error.ToList(), ps.Streams.Warning.Select(w => w.Message).ToList(),
                ps.Streams.Verbose.Select(v => v.Message).ToList(), terminating)
            {
                Progress = ps.Streams.Progress.ToList(),
            };
        }

        /// <summary>
        /// The published module: $SK_MODULE (a .psd1 or its folder), else out/module/ServiceKeeper/ServiceKeeper.psd1
        /// in the first folder above the test binaries that has one, else above this source file (the test
        /// binaries are elsewhere when built with --artifacts-path).
        /// </summary>
        public static string FindModuleManifest()
        {
            var fromEnv = Environment.GetEnvironmentVariable("SK_MODULE");
            if (!string.IsNullOrEmpty(fromEnv)) return ResolveManifest(fromEnv);
            foreach (var start in new[] { AppContext.BaseDirectory, Path.GetDirectoryName(SourceFile()) })
            {
                for (var dir = string.IsNullOrEmpty(start) ? null : new DirectoryInfo(start); dir != null; dir = dir.Parent)
                {
                    var candidate = Path.Combine(dir.FullName, "out", "module", "ServiceKeeper", "ServiceKeeper.psd1");
                    if (File.Exists(candidate)) return candidate;
                }
            }
            throw new FileNotFoundException(
                "The published ServiceKeeper module was not found above " + AppContext.BaseDirectory +
                ". Run 'dotnet publish PSModule/ServiceKeeper -c Release -o out/module/ServiceKeeper' first, or set SK_MODULE.");
        }

        private static string SourceFile([System.Runtime.CompilerServices.CallerFilePath] string path = "") => path;

        private static string ResolveManifest(string path)
        {
            var full = Path.GetFullPath(path);
            if (Directory.Exists(full)) full = Path.Combine(full, "ServiceKeeper.psd1");
            if (!File.Exists(full)) throw new FileNotFoundException("No module manifest at " + full, full);
            return full;
        }

        public void Dispose() => _runspace.Dispose();
    }

    /// <summary>What a script wrote. <see cref="ErrorIds"/> has the error stream and the terminating error alike.</summary>
    public sealed class PSRunResult
    {
        public PSRunResult(Collection<PSObject> output, List<ErrorRecord> errors, List<string> warnings, List<string> verbose, Exception? terminating)
        {
            Output = output;
            Errors = errors;
            Warnings = warnings;
            Verbose = verbose;
            Terminating = terminating;
        }

        public Collection<PSObject> Output { get; }
        /// <summary>Non-terminating errors, and statement-terminating ones a script went on after.</summary>
        public List<ErrorRecord> Errors { get; }
        public List<string> Warnings { get; }
        /// <summary>Verbose messages (the script must ask for them, e.g. -Verbose).</summary>
        public List<string> Verbose { get; }
        /// <summary>Progress records (Write-Progress), completed ones included.</summary>
        public List<ProgressRecord> Progress { get; init; } = new List<ProgressRecord>();
        /// <summary>The error that stopped the script (throw, -ErrorAction Stop, a declined confirmation), if any.</summary>
        public Exception? Terminating { get; }

        /// <summary>The terminating error's record, if it has one.</summary>
        public ErrorRecord? TerminatingRecord => (Terminating as IContainsErrorRecord)?.ErrorRecord;

        /// <summary>FullyQualifiedErrorId of every error, the terminating one last.</summary>
        public List<string> ErrorIds =>
            Errors.Select(e => e.FullyQualifiedErrorId)
                .Concat(TerminatingRecord == null ? Enumerable.Empty<string>() : new[] { TerminatingRecord.FullyQualifiedErrorId })
                .ToList();

        public bool Succeeded => Errors.Count == 0 && Terminating == null;

        /// <summary>Base objects of the output, cast (for typed asserts).</summary>
        public List<T> OutputAs<T>() => Output.Select(o => (T)o.BaseObject).ToList();

        /// <summary>Errors and the terminating error as text, for assertion messages.</summary>
        public override string ToString() =>
            string.Join(Environment.NewLine, Errors.Select(e => e.FullyQualifiedErrorId + ": " + e)
                .Concat(Terminating == null ? Enumerable.Empty<string>() : new[] { "terminating: " + Terminating.GetType().Name + ": " + Terminating.Message }));
    }

    [CollectionDefinition(PowerShellHost.ProcessEnvironmentCollection, DisableParallelization = true)]
    public sealed class ProcessEnvironmentCollection
    {
    }

}
