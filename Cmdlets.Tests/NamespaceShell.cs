// Runs PowerShell with the real module in another network namespace (a lab's client), as an admin's
// workstation would: a separate pwsh process, its output and errors brought back as CliXml.
// The test process itself stays in the root namespace, where the lab's addresses are not routed.
using System;
using System.Collections;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Management.Automation;

namespace ServiceKeeper.Cmdlets.Tests
{
    public static class NamespaceShell
    {
        private const string Wrapper = """
            param([string] $ScriptFile, [string] $ResultFile, [string] $ModulePath)
            $ErrorActionPreference = 'Continue'
            $ProgressPreference = 'SilentlyContinue'
            Import-Module $ModulePath
            $errors = [System.Collections.Generic.List[object]]::new()
            $terminating = $null
            $output = @(try {
                & ([scriptblock]::Create((Get-Content -Raw $ScriptFile))) 2>&1 | ForEach-Object {
                    if ($_ -is [System.Management.Automation.ErrorRecord]) { $errors.Add($_) } else { $_ }
                }
            } catch { $terminating = $_ })
            $result = @{
                Output = $output
                ErrorIds = @($errors | ForEach-Object FullyQualifiedErrorId)
                ErrorMessages = @($errors | ForEach-Object { $_.Exception.Message })
                ErrorTargets = @($errors | ForEach-Object { "$($_.TargetObject)" })
                Terminating = if ($terminating) { "$($terminating.FullyQualifiedErrorId): $($terminating.Exception.Message)" } else { $null }
            }
            [System.Management.Automation.PSSerializer]::Serialize($result, 4) | Set-Content -LiteralPath $ResultFile
            """;

        /// <summary>Runs <paramref name="script"/> in <paramref name="netns"/> with the module imported.</summary>
        public static ShellResult Run(string netns, string script, TimeSpan? timeout = null)
        {
            var dir = Directory.CreateTempSubdirectory("sk-shell-");
            try
            {
                var wrapper = Path.Combine(dir.FullName, "wrapper.ps1");
                var scriptFile = Path.Combine(dir.FullName, "script.ps1");
                var resultFile = Path.Combine(dir.FullName, "result.xml");
                File.WriteAllText(wrapper, Wrapper);
                File.WriteAllText(scriptFile, script);
                var psi = new ProcessStartInfo("ip")
                {
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                    UseShellExecute = false,
                    WorkingDirectory = RepositoryRoot(),
                };
                foreach (var arg in new[] { "netns", "exec", netns, "dotnet", "pwsh", "-NoProfile", "-NonInteractive", "-File", wrapper,
                                            "-ScriptFile", scriptFile, "-ResultFile", resultFile, "-ModulePath", PowerShellHost.FindModuleManifest() })
                    psi.ArgumentList.Add(arg);
                using var process = Process.Start(psi)!;
                var stdout = process.StandardOutput.ReadToEndAsync();
                var stderr = process.StandardError.ReadToEndAsync();
                if (!process.WaitForExit(timeout ?? TimeSpan.FromMinutes(2)))
                {
                    process.Kill(entireProcessTree: true);
                    throw new TimeoutException($"pwsh in {netns} did not finish:\n{script}");
                }
                process.WaitForExit();
                if (!File.Exists(resultFile))
                    throw new InvalidOperationException($"pwsh in {netns} exited with {process.ExitCode} without a result.\nstdout: {stdout.Result}\nstderr: {stderr.Result}");
                var table = (Hashtable)((PSObject)PSSerializer.Deserialize(File.ReadAllText(resultFile))).BaseObject;
                return new ShellResult(
                    Items(table["Output"]).ToList(),
                    Items(table["ErrorIds"]).Select(o => o.ToString()).ToList(),
                    Items(table["ErrorMessages"]).Select(o => o.ToString()).ToList(),
                    Items(table["ErrorTargets"]).Select(o => o.ToString()).ToList(),
                    table["Terminating"] as string,
                    stdout.Result + stderr.Result);
            }
            finally
            {
                dir.Delete(recursive: true);
            }
        }

        private static IEnumerable<PSObject> Items(object? value) => value switch
        {
            null => [],
            PSObject { BaseObject: IEnumerable list } when list is not string => list.Cast<object>().Select(PSObject.AsPSObject),
            IEnumerable list when list is not string => list.Cast<object>().Select(PSObject.AsPSObject),
            _ => [PSObject.AsPSObject(value)],
        };

        /// <summary>The folder with dotnet-tools.json, where `dotnet pwsh` resolves.</summary>
        private static string RepositoryRoot()
        {
            foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory(), Path.GetDirectoryName(PowerShellHost.FindModuleManifest())! })
                for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
                    if (File.Exists(Path.Combine(dir.FullName, "dotnet-tools.json"))) return dir.FullName;
            throw new InvalidOperationException("dotnet-tools.json not found above " + AppContext.BaseDirectory + "; run `dotnet tool restore` in the repository.");
        }
    }

    public sealed record ShellResult(
        List<PSObject> Output, List<string> ErrorIds, List<string> ErrorMessages, List<string> ErrorTargets, string? Terminating, string ProcessOutput)
    {
        /// <summary>Output objects whose type (before serialization) is <paramref name="typeName"/>.</summary>
        public List<PSObject> OfType(string typeName) =>
            Output.Where(o => o.TypeNames.Contains("Deserialized." + typeName) || o.TypeNames.Contains(typeName)).ToList();

        public override string ToString() =>
            $"output: {Output.Count} object(s)\nerrors: {string.Join("\n  ", ErrorIds.Zip(ErrorMessages, (i, m) => i + ": " + m))}\n" +
            $"terminating: {Terminating}\nprocess: {ProcessOutput}";
    }
}
