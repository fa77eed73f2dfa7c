// Runs every Pester suite in the output Pester folder as one xunit case.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Cmdlets.Tests
{
    public sealed class PesterSuites
    {
        private readonly ITestOutputHelper _output;

        public PesterSuites(ITestOutputHelper output) => _output = output;

        public static TheoryData<string> Suites()
        {
            var data = new TheoryData<string>();
            foreach (var file in Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Pester"), "*.Tests.ps1").OrderBy(f => f, StringComparer.Ordinal))
                data.Add(Path.GetFileName(file));
            return data;
        }

        [Theory]
        [MemberData(nameof(Suites))]
        public void Suite_Passes(string suite)
        {
            var path = Path.Combine(AppContext.BaseDirectory, "Pester", suite);
            // A bare runspace: the suite imports the module itself, as a user would.
            using var ps = new PowerShellHost(importModule: false);
            var result = ps.Run(@"
                $ErrorActionPreference = 'Stop'
                Import-Module -Name $pester -Force
                $config = New-PesterConfiguration
                $config.Run.Container = New-PesterContainer -Path $path -Data @{ ModulePath = $module }
                $config.Run.PassThru = $true
                $config.Output.Verbosity = 'Detailed'
                $config.Output.RenderMode = 'Plaintext'
                $run = Invoke-Pester -Configuration $config 6>&1 | ForEach-Object {
                    if ($_ -is [System.Management.Automation.InformationRecord]) { ""$($_.MessageData)"" } else { $_ }
                }
                $run", new Dictionary<string, object?>
            {
                ["pester"] = PesterManifest(),
                ["path"] = path,
                ["module"] = PowerShellHost.FindModuleManifest(),
            });

            foreach (var line in result.Output.Where(o => o.BaseObject is string)) _output.WriteLine((string)line.BaseObject);
            Assert.True(result.Terminating == null && result.Errors.Count == 0, result.ToString());

            dynamic run = result.Output.Single(o => o.BaseObject is not string);
            var failed = ((IEnumerable<object>)run.Failed).Select(t => (string)((dynamic)t).ExpandedPath).ToList();
            Assert.True(failed.Count == 0, $"{failed.Count} failed:{Environment.NewLine}{string.Join(Environment.NewLine, failed)}");
            Assert.True((int)run.PassedCount > 0, "the suite ran no test");
            Assert.Equal(0, (int)run.FailedContainersCount);
        }

        /// <summary>Pester from the NuGet package the test project downloads: $NUGET_PACKAGES, else ~/.nuget/packages.</summary>
        private static string PesterManifest()
        {
            var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
            if (string.IsNullOrEmpty(packages))
                packages = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            var manifest = Path.Combine(packages, "pester", "6.2.0", "tools", "Pester.psd1");
            if (!File.Exists(manifest))
                throw new FileNotFoundException("Pester 6.2.0 not found; 'dotnet restore Cmdlets.Tests' downloads it.", manifest);
            return manifest;
        }
    }
}
