// The module's contract without an engine: parameters, output types, exports, help, error ids of
// failures that need no engine, confirmation, the per-session default connection; then the module
// cmdlets against a fake engine (requests sent, pipeline binding, waiting, following, answers mapped).
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Contracts;
using Xunit;

namespace ServiceKeeper.Cmdlets.Tests
{
    /// <summary>One runspace with the module for a test class (runspaces are not thread-safe; a class runs its tests one by one).</summary>
    public sealed class ModuleFixture : IDisposable
    {
        public PowerShellHost Ps { get; } = new PowerShellHost();
        public void Dispose() => Ps.Dispose();
    }

    public sealed class MetadataTests : IClassFixture<ModuleFixture>
    {
        // A port nothing listens on: a cmdlet that contacts it fails fast with NodeUnreachable, so the
        // absence of that error proves no call was made.
        private const string DeadNode = "127.0.0.1:1";

        private readonly PowerShellHost _ps;

        public MetadataTests(ModuleFixture fixture) => _ps = fixture.Ps;

        public static readonly string[] Cmdlets =
        {
            "Connect-SKCluster", "Disconnect-SKCluster", "New-SKCluster", "Get-SKCluster", "Remove-SKCluster",
            "Get-SKNode", "Test-SKCluster", "Get-SKState", "Get-SKModule", "Remove-SKModule",
            "Add-SKMirrorModule", "Start-SKModule", "Stop-SKModule", "Restart-SKModule", "Start-SKSwap",
            "Set-SKPrimary", "Set-SKSecondary", "Wait-SKState", "Get-SKLog", "Get-SKResource", "Set-SKMaintenance",
            "Add-SKFarmModule", "Get-SKFarmLoad", "Get-SKReplication", "Test-SKReplication",
        };

        /// <summary>The cmdlets that act on modules: -Name takes module names and the Name/Module property of piped objects.</summary>
        public static readonly string[] ModuleCmdlets =
        {
            "Get-SKState", "Get-SKModule", "Remove-SKModule", "Start-SKModule", "Stop-SKModule", "Restart-SKModule",
            "Start-SKSwap", "Set-SKPrimary", "Set-SKSecondary", "Wait-SKState", "Get-SKLog", "Get-SKResource", "Set-SKMaintenance",
            "Get-SKFarmLoad", "Get-SKReplication", "Test-SKReplication",
        };

        public static TheoryData<string> ModuleCmdletNames() => new TheoryData<string>(ModuleCmdlets);

        public static TheoryData<string> CmdletNames() => new TheoryData<string>(Cmdlets);

        private const string Connection = "ComputerName:String|Credential:PSCredential|SkipCertificateCheck:SwitchParameter";
        private const string ShouldProcess = "Confirm:SwitchParameter|WhatIf:SwitchParameter";
        private const string ModuleNames = "Name:String[] mandatory pos0 byValue byProperty";
        private const string ModuleName = "Name:String mandatory pos0 byValue byProperty";
        private const string PassThru = "PassThru:SwitchParameter";

        // name:type [mandatory] [pos N] [byValue] [byProperty], sorted by name, for the default parameter set.
        [Theory]
        [InlineData("Connect-SKCluster", "ComputerName:String mandatory pos0|Credential:PSCredential mandatory|PassThru:SwitchParameter|SkipCertificateCheck:SwitchParameter")]
        [InlineData("Disconnect-SKCluster", "")]
        [InlineData("New-SKCluster", Connection + "|" + ShouldProcess + "|Name:String mandatory pos0|Node:String[] mandatory pos1")]
        [InlineData("Get-SKCluster", Connection)]
        [InlineData("Remove-SKCluster", Connection + "|" + ShouldProcess + "|Force:SwitchParameter")]
        [InlineData("Get-SKNode", Connection + "|Name:String[] pos0 byValue")]
        [InlineData("Test-SKCluster", Connection)]
        [InlineData("Get-SKState", Connection + "|Name:String[] pos0 byValue byProperty|Node:String[]")]
        [InlineData("Get-SKModule", Connection + "|Name:String[] pos0 byValue byProperty")]
        [InlineData("Remove-SKModule", Connection + "|" + ShouldProcess + "|Force:SwitchParameter|Name:String[] mandatory pos0 byValue byProperty")]
        [InlineData("Add-SKMirrorModule", Connection + "|" + ShouldProcess + "|ConfigFile:String|InitialPrimary:String|Interface:String|Name:String mandatory pos0"
                                          + "|Node:String[] mandatory pos1|ReplicatedDirectory:String[]|ScriptPath:String|VirtualIP:String mandatory|Witness:String[]")]
        [InlineData("Start-SKModule", Connection + "|" + ShouldProcess + "|" + ModuleNames + "|Node:String byProperty|" + PassThru + "|Timeout:TimeSpan|Wait:SwitchParameter")]
        [InlineData("Add-SKFarmModule", Connection + "|" + ShouldProcess + "|ConfigFile:String|Interface:String|Name:String mandatory pos0|Node:String[] mandatory pos1"
                                        + "|Port:Int32[] mandatory|Power:Hashtable|Protocol:String|Rule:String|ScriptPath:String|VirtualIP:String mandatory")]
        [InlineData("Get-SKFarmLoad", Connection + "|" + ModuleName)]
        [InlineData("Stop-SKModule", Connection + "|" + ShouldProcess + "|Drain:SwitchParameter|" + ModuleNames + "|Node:String byProperty|" + PassThru)]
        [InlineData("Restart-SKModule", Connection + "|" + ShouldProcess + "|" + ModuleNames + "|Node:String byProperty|" + PassThru)]
        [InlineData("Start-SKSwap", Connection + "|" + ShouldProcess + "|" + ModuleName + "|" + PassThru + "|Timeout:TimeSpan|Wait:SwitchParameter")]
        [InlineData("Set-SKPrimary", Connection + "|" + ShouldProcess + "|Force:SwitchParameter|" + ModuleName + "|Node:String mandatory byProperty|" + PassThru)]
        [InlineData("Set-SKSecondary", Connection + "|" + ShouldProcess + "|FullSync:SwitchParameter|" + ModuleName + "|Node:String mandatory byProperty|" + PassThru)]
        [InlineData("Wait-SKState", Connection + "|" + ModuleName + "|Node:String mandatory byProperty|Ready:SwitchParameter|State:String[] mandatory|Timeout:TimeSpan")]
        [InlineData("Get-SKLog", Connection + "|Follow:SwitchParameter|" + ModuleName + "|Node:String byProperty|Tail:Int32")]
        [InlineData("Get-SKResource", Connection + "|" + ModuleName + "|Node:String byProperty|Resource:String[] pos1")]
        [InlineData("Get-SKReplication", Connection + "|" + ModuleName + "|Node:String byProperty")]
        [InlineData("Test-SKReplication", Connection + "|" + ModuleName + "|Quiet:SwitchParameter")]
        [InlineData("Set-SKMaintenance", Connection + "|" + ShouldProcess + "|Checkers:String|Errd:String|Failover:String|" + ModuleName + "|Node:String byProperty|" + PassThru)]
        public void Cmdlet_HasExactlyTheseParameters_InOneParameterSet(string name, string expected)
        {
            var cmdlet = GetCmdlet(name);
            var set = Assert.Single(cmdlet.ParameterSets);
            Assert.Equal("__AllParameterSets", set.Name);
            var actual = set.Parameters
                .Where(p => !Cmdlet.CommonParameters.Contains(p.Name))
                .Select(p => p.Name + ":" + p.ParameterType.Name
                             + (p.IsMandatory ? " mandatory" : "")
                             + (p.Position >= 0 ? " pos" + p.Position : "")
                             + (p.ValueFromPipeline ? " byValue" : "")
                             + (p.ValueFromPipelineByPropertyName ? " byProperty" : ""))
                .OrderBy(s => s, StringComparer.Ordinal);
            var wanted = expected.Split('|', StringSplitOptions.RemoveEmptyEntries).OrderBy(s => s, StringComparer.Ordinal);
            Assert.Equal(string.Join("|", wanted), string.Join("|", actual));
        }

        [Theory]
        [InlineData("Connect-SKCluster", "ServiceKeeper.Commands.SKConnection")]
        [InlineData("Disconnect-SKCluster", "")]
        [InlineData("New-SKCluster", "ServiceKeeper.Contracts.ClusterInfo")]
        [InlineData("Get-SKCluster", "ServiceKeeper.Contracts.ClusterInfo")]
        [InlineData("Remove-SKCluster", "")]
        [InlineData("Get-SKNode", "ServiceKeeper.Contracts.NodeStatus")]
        [InlineData("Test-SKCluster", "ServiceKeeper.Contracts.ClusterCheck")]
        [InlineData("Get-SKState", "ServiceKeeper.Contracts.ModuleState")]
        [InlineData("Get-SKModule", "ServiceKeeper.Contracts.ModuleInfo")]
        [InlineData("Remove-SKModule", "")]
        [InlineData("Add-SKMirrorModule", "ServiceKeeper.Contracts.ModuleInfo")]
        [InlineData("Add-SKFarmModule", "ServiceKeeper.Contracts.ModuleInfo")]
        [InlineData("Get-SKFarmLoad", "ServiceKeeper.Contracts.FarmLoad")]
        [InlineData("Start-SKModule", "ServiceKeeper.Contracts.ModuleState")]
        [InlineData("Stop-SKModule", "ServiceKeeper.Contracts.ModuleState")]
        [InlineData("Restart-SKModule", "ServiceKeeper.Contracts.ModuleState")]
        [InlineData("Start-SKSwap", "ServiceKeeper.Contracts.ModuleState")]
        [InlineData("Set-SKPrimary", "ServiceKeeper.Contracts.ModuleState")]
        [InlineData("Set-SKSecondary", "ServiceKeeper.Contracts.ModuleState")]
        [InlineData("Wait-SKState", "ServiceKeeper.Contracts.ModuleState")]
        [InlineData("Get-SKLog", "ServiceKeeper.Contracts.LogLine")]
        [InlineData("Get-SKResource", "ServiceKeeper.Contracts.ModuleResource")]
        [InlineData("Set-SKMaintenance", "ServiceKeeper.Contracts.ModuleState")]
        public void Cmdlet_DeclaresItsOutputType(string name, string expected)
        {
            Assert.Equal(expected, string.Join(",", GetCmdlet(name).OutputType.Select(t => t.Name)));
        }

        [Theory]
        [InlineData("New-SKCluster", "Medium")]
        [InlineData("Remove-SKCluster", "High")]
        [InlineData("Remove-SKModule", "High")]
        [InlineData("Add-SKMirrorModule", "Medium")]
        [InlineData("Add-SKFarmModule", "Medium")]
        [InlineData("Start-SKModule", "Medium")]
        [InlineData("Stop-SKModule", "Medium")]
        [InlineData("Restart-SKModule", "Medium")]
        [InlineData("Start-SKSwap", "Medium")]
        [InlineData("Set-SKPrimary", "Medium")] // High with -Force: see SetSKPrimary_Force_*
        [InlineData("Set-SKSecondary", "Medium")]
        [InlineData("Set-SKMaintenance", "Medium")]
        public void ChangingCmdlet_SupportsShouldProcess_WithItsImpact(string name, string impact)
        {
            var attribute = (CmdletAttribute)Attribute.GetCustomAttribute(GetCmdlet(name).ImplementingType, typeof(CmdletAttribute))!;
            Assert.True(attribute.SupportsShouldProcess);
            Assert.Equal(impact, attribute.ConfirmImpact.ToString());
        }

        [Fact]
        public void Manifest_ExportsExactlyTheCmdletClassesOfTheAssembly()
        {
            var assembly = GetCmdlet("Get-SKNode").ImplementingType.Assembly;
            var classes = assembly.GetExportedTypes()
                .Select(t => (Type: t, Attribute: (CmdletAttribute?)Attribute.GetCustomAttribute(t, typeof(CmdletAttribute))))
                .Where(x => x.Attribute != null)
                .ToList();
            foreach (var (type, attribute) in classes)
            {
                Assert.True(type.IsSealed, type.Name + " should be sealed");
                Assert.Equal("ServiceKeeper.Commands", type.Namespace);
                Assert.Equal(attribute!.VerbName + attribute.NounName + "Command", type.Name);
            }
            var inAssembly = classes.Select(x => x.Attribute!.VerbName + "-" + x.Attribute.NounName).OrderBy(n => n).ToList();

            var manifest = _ps.Run("Import-PowerShellDataFile -Path $path", Vars("path", _ps.ModuleManifest));
            Assert.True(manifest.Succeeded, manifest.ToString());
            var data = (System.Collections.Hashtable)manifest.Output.Single().BaseObject;
            var listed = ((object[])data["CmdletsToExport"]!).Cast<string>().OrderBy(n => n).ToList();
            Assert.Equal(inAssembly, listed);
            Assert.Equal(Cmdlets.OrderBy(n => n), listed);
            foreach (var key in new[] { "FunctionsToExport", "AliasesToExport", "VariablesToExport" })
                Assert.Empty((object[])data[key]!);

            var exported = _ps.Run("(Get-Module ServiceKeeper).ExportedCommands.Keys | Sort-Object");
            Assert.Equal(listed, exported.Output.Select(o => o.ToString()).ToList());
        }

        [Theory]
        [MemberData(nameof(CmdletNames))]
        public void Cmdlet_UsesAnApprovedVerb(string name)
        {
            var verb = name.Split('-')[0];
            var approved = _ps.Run("Get-Verb | ForEach-Object Verb");
            Assert.Contains(verb, approved.Output.Select(o => o.ToString()));
        }

        [Theory]
        [MemberData(nameof(CmdletNames))]
        public void Cmdlet_HasFullHelp_ForItselfAndEveryParameter(string name)
        {
            var help = _ps.Run(@"
                $h = Get-Help -Name $name -Full
                [pscustomobject]@{
                    Synopsis    = ""$($h.Synopsis)"".Trim()
                    Description = (@($h.description) | ForEach-Object { $_.Text }) -join ' '
                    Examples    = @(@($h.examples.example) | ForEach-Object { ($_.code -join ""`n"") + '#REMARKS#' + ((@($_.remarks) | ForEach-Object { $_.Text }) -join ' ') })
                    Parameters  = @(@($h.parameters.parameter) | Where-Object { $_ } | ForEach-Object { $_.name + '=' + ((@($_.description) | ForEach-Object { $_.Text }) -join ' ') })
                }", Vars("name", name));
            Assert.True(help.Succeeded, help.ToString());
            var h = help.Output.Single();

            var synopsis = (string)h.Properties["Synopsis"].Value;
            Assert.False(string.IsNullOrWhiteSpace(synopsis), "no synopsis");
            Assert.False(synopsis.StartsWith(name, StringComparison.OrdinalIgnoreCase), "synopsis is the generated syntax line: the help file was not found");
            Assert.True(((string)h.Properties["Description"].Value).Length > 100, "description too short to say when to use the cmdlet");

            var examples = ((object[])h.Properties["Examples"].Value).Cast<string>().ToList();
            Assert.True(examples.Count >= 2, $"{examples.Count} example(s)");
            Assert.All(examples, e => Assert.Contains(name, e.Split("#REMARKS#")[0]));
            Assert.All(examples, e => Assert.False(string.IsNullOrWhiteSpace(e.Split("#REMARKS#")[1]), "example without remarks"));
            Assert.Contains(examples, e => e.Split("#REMARKS#")[0].Contains('|'));

            var documented = ((object[])h.Properties["Parameters"].Value).Cast<string>()
                .Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1], StringComparer.OrdinalIgnoreCase);
            var parameters = GetCmdlet(name).Parameters.Keys.Where(p => !Cmdlet.CommonParameters.Contains(p)).ToList();
            Assert.All(parameters, p =>
            {
                Assert.True(documented.TryGetValue(p, out var text), $"-{p} has no help");
                Assert.True(text!.Length > 20, $"-{p} help is too short: '{text}'");
            });
            Assert.Empty(documented.Keys.Except(parameters, StringComparer.OrdinalIgnoreCase));
        }

        [Theory]
        [InlineData("bad:port:x")]
        [InlineData("host:99999")]
        [InlineData("host:0")]
        [InlineData("[::1")]
        [InlineData("[::1]x")]
        public void BadComputerName_IsTerminating_InvalidComputerName(string computerName)
        {
            var result = _ps.Run("Get-SKNode -ComputerName $c; 'next statement'", Vars("c", computerName));

            var error = Assert.Single(result.Errors);
            Assert.Equal("InvalidComputerName,ServiceKeeper.Commands.GetSKNodeCommand", error.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.InvalidArgument, error.CategoryInfo.Category);
            Assert.Equal(computerName, error.TargetObject);
            // Statement-terminating: nothing from Get-SKNode, and the script goes on.
            Assert.Equal(new[] { "next statement" }, result.Output.Select(o => o.ToString()));
        }

        [Fact]
        public void BadComputerName_IsCaughtByTryCatch()
        {
            var result = _ps.Run("try { Get-SKModule -ComputerName 'bad:port:x'; 'not reached' } catch { $_.FullyQualifiedErrorId }");
            Assert.True(result.Succeeded, result.ToString());
            Assert.Equal(new[] { "InvalidComputerName,ServiceKeeper.Commands.GetSKModuleCommand" }, result.Output.Select(o => o.ToString()));
        }

        [Theory]
        [InlineData("Get-SKCluster", "GetSKClusterCommand")]
        [InlineData("Get-SKNode", "GetSKNodeCommand")]
        [InlineData("Test-SKCluster", "TestSKClusterCommand")]
        [InlineData("Get-SKState", "GetSKStateCommand")]
        [InlineData("Get-SKModule -Name sql", "GetSKModuleCommand")]
        [InlineData("Remove-SKModule -Name sql -Confirm:$false", "RemoveSKModuleCommand")]
        [InlineData("Remove-SKModule -Name sql -Force -Confirm:$false", "RemoveSKModuleCommand")]
        [InlineData("Remove-SKCluster -Force -Confirm:$false", "RemoveSKClusterCommand")]
        [InlineData("Remove-SKCluster -Confirm:$false", "RemoveSKClusterCommand")]
        [InlineData("New-SKCluster -Name c -Node n1, n2 -Confirm:$false", "NewSKClusterCommand")]
        [InlineData("Add-SKMirrorModule -Name web -Node n1, n2 -VirtualIP 198.18.0.50/24 -Confirm:$false", "AddSKMirrorModuleCommand")]
        [InlineData("Start-SKModule -Name web -Confirm:$false", "StartSKModuleCommand")]
        [InlineData("Start-SKModule -Name web -Node n1 -Wait -Confirm:$false", "StartSKModuleCommand")]
        [InlineData("Stop-SKModule -Name web -Node n1 -Confirm:$false", "StopSKModuleCommand")]
        [InlineData("Stop-SKModule -Name web -Node n1 -Drain -Confirm:$false", "StopSKModuleCommand")]
        [InlineData("Add-SKFarmModule -Name web -Node n1, n2 -VirtualIP 198.18.0.60/24 -Port 80 -Confirm:$false", "AddSKFarmModuleCommand")]
        [InlineData("Get-SKFarmLoad -Name web", "GetSKFarmLoadCommand")]
        [InlineData("Restart-SKModule -Name web -Confirm:$false", "RestartSKModuleCommand")]
        [InlineData("Start-SKSwap -Name web -Confirm:$false", "StartSKSwapCommand")]
        [InlineData("Start-SKSwap -Name web -Wait -Confirm:$false", "StartSKSwapCommand")]
        [InlineData("Set-SKPrimary -Name web -Node n1 -Confirm:$false", "SetSKPrimaryCommand")]
        [InlineData("Set-SKPrimary -Name web -Node n1 -Force -Confirm:$false", "SetSKPrimaryCommand")]
        [InlineData("Set-SKSecondary -Name web -Node n1 -FullSync -Confirm:$false", "SetSKSecondaryCommand")]
        [InlineData("Set-SKMaintenance -Name web -Checkers Off -Confirm:$false", "SetSKMaintenanceCommand")]
        [InlineData("Wait-SKState -Name web -Node n1 -State PRIM", "WaitSKStateCommand")]
        [InlineData("Get-SKLog -Name web", "GetSKLogCommand")]
        [InlineData("Get-SKLog -Name web -Follow", "GetSKLogCommand")]
        [InlineData("Get-SKResource -Name web", "GetSKResourceCommand")]
        public void UnreachableNode_IsANonTerminatingNodeUnreachable(string command, string className)
        {
            var result = _ps.Run(command + " -ComputerName $node; 'next statement'", Vars("node", DeadNode));

            var error = Assert.Single(result.Errors);
            Assert.Equal("NodeUnreachable,ServiceKeeper.Commands." + className, error.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.ConnectionError, error.CategoryInfo.Category);
            Assert.Contains(DeadNode, error.Exception.Message);
            Assert.Equal(new[] { "next statement" }, result.Output.Select(o => o.ToString()));
        }

        [Fact]
        public void ConnectSKCluster_ToUnreachableNode_FailsAndStoresNothing()
        {
            var result = _ps.Run(@"
                Remove-Variable -Name SKDefaultConnection -Scope Global -ErrorAction Ignore
                $key = ConvertTo-SecureString 'k' -AsPlainText -Force
                Connect-SKCluster -ComputerName $node -Credential ([pscredential]::new('admin', $key)) -PassThru
                $null -eq (Get-Variable -Name SKDefaultConnection -Scope Global -ErrorAction Ignore)", Vars("node", DeadNode));

            Assert.Equal(new[] { "NodeUnreachable,ServiceKeeper.Commands.ConnectSKClusterCommand" }, result.ErrorIds);
            Assert.Equal(new object[] { true }, result.Output.Select(o => o.BaseObject));
        }

        [Fact]
        public void DefaultConnection_IsUsedWithoutComputerName_AndClearedByDisconnect()
        {
            try
            {
                var connected = _ps.Run(@"
                    $global:SKDefaultConnection = [ServiceKeeper.Commands.SKConnection]::new($node, $null, $false)
                    Get-SKModule");
                var error = Assert.Single(connected.Errors);
                Assert.Equal("NodeUnreachable,ServiceKeeper.Commands.GetSKModuleCommand", error.FullyQualifiedErrorId);
                Assert.Contains(DeadNode, error.Exception.Message);

                // -ComputerName wins over the connection.
                var explicitNode = _ps.Run("Get-SKModule -ComputerName 127.0.0.1:2");
                Assert.Contains("127.0.0.1:2", Assert.Single(explicitNode.Errors).Exception.Message);

                var disconnected = _ps.Run("Disconnect-SKCluster; Get-Variable -Name SKDefaultConnection -Scope Global -ErrorAction Ignore");
                Assert.True(disconnected.Succeeded, disconnected.ToString());
                Assert.Empty(disconnected.Output);

                var again = _ps.Run("Disconnect-SKCluster");
                Assert.True(again.Succeeded, "Disconnect without a connection is silent: " + again);
            }
            finally
            {
                _ps.Run("Remove-Variable -Name SKDefaultConnection -Scope Global -ErrorAction Ignore");
            }
        }

        [Fact]
        public void DefaultConnection_BelongsToOneRunspace()
        {
            try
            {
                _ps.Run("$global:SKDefaultConnection = [ServiceKeeper.Commands.SKConnection]::new('127.0.0.1:1', $null, $false)");
                using var other = new PowerShellHost();
                var result = other.Run("$null -eq $global:SKDefaultConnection");
                Assert.Equal(new object[] { true }, result.Output.Select(o => o.BaseObject));
            }
            finally
            {
                _ps.Run("Remove-Variable -Name SKDefaultConnection -Scope Global -ErrorAction Ignore");
            }
        }

        [Theory]
        [InlineData("Remove-SKCluster", "RemoveSKClusterCommand")]
        [InlineData("Remove-SKCluster -Force", "RemoveSKClusterCommand")]
        [InlineData("Remove-SKModule -Name sql", "RemoveSKModuleCommand")]
        public void HighImpactCmdlet_WithoutConfirmFalse_InANonInteractiveHost_FailsBeforeCallingTheEngine(string command, string className)
        {
            var result = _ps.Run(command + " -ComputerName $node", Vars("node", DeadNode));

            // The confirmation prompt fails (no interactive host) and no call is made: no NodeUnreachable.
            Assert.Equal(new[] { "HostFunctionNotImplemented,ServiceKeeper.Commands." + className }, result.ErrorIds);
        }

        [Theory]
        [InlineData("Remove-SKCluster -WhatIf")]
        [InlineData("Remove-SKCluster -Force -WhatIf")]
        [InlineData("Remove-SKModule -Name sql, web -WhatIf")]
        [InlineData("Remove-SKModule -Name sql -Force -WhatIf")]
        [InlineData("New-SKCluster -Name c -Node n1, n2 -WhatIf")]
        [InlineData("Add-SKMirrorModule -Name web -Node n1, n2 -VirtualIP 198.18.0.50/24 -WhatIf")]
        [InlineData("Start-SKModule -Name web, sql -Wait -WhatIf")]
        [InlineData("Stop-SKModule -Name web -Node n1 -WhatIf")]
        [InlineData("Stop-SKModule -Name web -Node n1 -Drain -WhatIf")]
        [InlineData("Add-SKFarmModule -Name web -Node n1, n2, n3 -VirtualIP 198.18.0.60/24 -Port 80, 443 -Power @{ n3 = 0 } -WhatIf")]
        [InlineData("Restart-SKModule -Name web -WhatIf")]
        [InlineData("Start-SKSwap -Name web -Wait -WhatIf")]
        [InlineData("Set-SKPrimary -Name web -Node n1 -WhatIf")]
        [InlineData("Set-SKPrimary -Name web -Node n1 -Force -WhatIf")]
        [InlineData("Set-SKSecondary -Name web -Node n1 -FullSync -WhatIf")]
        [InlineData("Set-SKMaintenance -Name web -Failover Off -WhatIf")]
        public void WhatIf_DoesNotCallTheEngine(string command)
        {
            var result = _ps.Run(command + " -ComputerName $node", Vars("node", DeadNode));
            Assert.True(result.Succeeded, result.ToString());
            Assert.Empty(result.Output);
        }

        [Theory]
        [MemberData(nameof(ModuleCmdletNames))]
        public void ModuleName_IsTabCompletedByTheModuleNameCompleter(string name)
        {
            var attribute = GetCmdlet(name).Parameters["Name"].Attributes.OfType<ArgumentCompleterAttribute>().Single();
            Assert.Equal("ServiceKeeper.Commands.ModuleNameCompleter", attribute.Type!.FullName);
        }

        [Theory]
        [MemberData(nameof(ModuleCmdletNames))]
        public void ModuleName_HasTheAliasModule_SoRowsOfGetSKStateBind(string name)
        {
            Assert.Equal(new[] { "Module" }, GetCmdlet(name).Parameters["Name"].Aliases);
        }

        [Theory]
        [InlineData("Get-SKState", "Node")]
        [InlineData("Add-SKMirrorModule", "Node")]
        [InlineData("Add-SKMirrorModule", "InitialPrimary")]
        [InlineData("Add-SKFarmModule", "Node")]
        [InlineData("Start-SKModule", "Node")]
        [InlineData("Stop-SKModule", "Node")]
        [InlineData("Restart-SKModule", "Node")]
        [InlineData("Set-SKPrimary", "Node")]
        [InlineData("Set-SKSecondary", "Node")]
        [InlineData("Wait-SKState", "Node")]
        [InlineData("Get-SKLog", "Node")]
        [InlineData("Get-SKResource", "Node")]
        [InlineData("Set-SKMaintenance", "Node")]
        public void NodeName_IsTabCompletedByTheNodeNameCompleter(string name, string parameter)
        {
            var attribute = GetCmdlet(name).Parameters[parameter].Attributes.OfType<ArgumentCompleterAttribute>().Single();
            Assert.Equal("ServiceKeeper.Commands.NodeNameCompleter", attribute.Type!.FullName);
        }

        [Theory]
        [InlineData("Wait-SKState", "State", "STOP,WAIT,ALONE,PRIM,SECOND,UP")]
        [InlineData("Set-SKMaintenance", "Checkers", "On,Off")]
        [InlineData("Set-SKMaintenance", "Errd", "On,Off")]
        [InlineData("Set-SKMaintenance", "Failover", "On,Off")]
        [InlineData("Add-SKFarmModule", "Protocol", "Tcp,Udp")]
        [InlineData("Add-SKFarmModule", "Rule", "OnAddress,OnPort")]
        public void Parameter_AcceptsOnlyTheseValues(string name, string parameter, string values)
        {
            var set = GetCmdlet(name).Parameters[parameter].Attributes.OfType<ValidateSetAttribute>().Single();
            Assert.Equal(values, string.Join(",", set.ValidValues));
        }

        [Fact]
        public void ModuleNameCompletion_WhenTheEngineIsUnreachable_OffersNothingAndFailsSilently()
        {
            const string line = "Get-SKModule -ComputerName 127.0.0.1:1 -Name s";
            var result = _ps.Run("(TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.Count",
                Vars("line", line));
            Assert.True(result.Succeeded, result.ToString());
            Assert.Equal(new object[] { 0 }, result.Output.Select(o => o.BaseObject));
        }

        [Fact]
        public async Task CtrlC_WhileWaitingForTheEngine_StopsWithoutWaitingForTheTimeout()
        {
            // Accepts the TCP connection and never answers the TLS handshake: the call waits for its 30 s timeout.
            var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
            silent.Start();
            try
            {
                var port = ((System.Net.IPEndPoint)silent.LocalEndpoint).Port;
                using var ps = PowerShell.Create();
                ps.Runspace = _ps.Runspace;
                ps.AddScript($"Get-SKNode -ComputerName 127.0.0.1:{port}; 'after'");
                var clock = System.Diagnostics.Stopwatch.StartNew();
                var running = ps.BeginInvoke();
                // The cmdlet is now waiting for the engine: connected, handshake unanswered.
                var accept = silent.AcceptTcpClientAsync();
                Assert.True(await Task.WhenAny(accept, Task.Delay(TimeSpan.FromSeconds(5))) == accept, "Get-SKNode did not connect");
                using var connection = await accept;
                ps.Stop();
                Assert.Throws<PipelineStoppedException>(() => ps.EndInvoke(running));
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"stopping took {clock.Elapsed}");
                Assert.Equal(PSInvocationState.Stopped, ps.InvocationStateInfo.State);
            }
            finally
            {
                silent.Stop();
            }
        }

        private const string TwoNodes = "-Node n1, n2";
        private const string Vip = "-VirtualIP 198.18.0.50/24";

        [Theory]
        [InlineData(TwoNodes + " -VirtualIP 198.18.0.50", "198.18.0.50")]
        [InlineData(TwoNodes + " -VirtualIP 198.18.0.50/33", "198.18.0.50/33")]
        [InlineData(TwoNodes + " -VirtualIP 198.18.0.50/0", "198.18.0.50/0")]
        [InlineData(TwoNodes + " -VirtualIP 198.18.0.50/", "198.18.0.50/")]
        [InlineData(TwoNodes + " -VirtualIP 198.18.0.50/24x", "198.18.0.50/24x")]
        [InlineData(TwoNodes + " -VirtualIP 198.18.0.256/24", "198.18.0.256/24")]
        [InlineData(TwoNodes + " -VirtualIP 10.1/8", "10.1/8")]
        [InlineData(TwoNodes + " -VirtualIP 0x0a.0.0.1/8", "0x0a.0.0.1/8")]
        [InlineData(TwoNodes + " -VirtualIP web.example.com/24", "web.example.com/24")]
        [InlineData(TwoNodes + " -VirtualIP 2001:db8::50/129", "2001:db8::50/129")]
        [InlineData(TwoNodes + " -VirtualIP fe80::1%eth0/64", "fe80::1%eth0/64")]
        [InlineData("-Node n1, n2, n3 " + Vip, "n1,n2,n3")]
        [InlineData("-Node n1 " + Vip, "n1")]
        [InlineData("-Node n1, N1 " + Vip, "n1,N1")]
        [InlineData(TwoNodes + " " + Vip + " -InitialPrimary n3", "n3")]
        [InlineData(TwoNodes + " " + Vip + " -ConfigFile ./no-such-userconfig.xml", "./no-such-userconfig.xml")]
        [InlineData(TwoNodes + " " + Vip + " -ScriptPath ./no-such-folder", "./no-such-folder")]
        public void AddSKMirrorModule_WrongParameter_IsTerminatingInvalidArgument_WithoutAnEngine(string parameters, string target)
        {
            var result = _ps.Run($"Add-SKMirrorModule -Name web {parameters} -ComputerName $node -Confirm:$false; 'next statement'", Vars("node", DeadNode));

            // InvalidArgument and not NodeUnreachable: the engine was not contacted.
            var error = Assert.Single(result.Errors);
            Assert.Equal("InvalidArgument,ServiceKeeper.Commands.AddSKMirrorModuleCommand", error.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.InvalidArgument, error.CategoryInfo.Category);
            Assert.Equal(target, error.TargetObject);
            Assert.Equal(new[] { "next statement" }, result.Output.Select(o => o.ToString()));
        }

        [Fact]
        public void AddSKMirrorModule_ConfigFileThatIsAFolder_OrScriptPathThatIsAFile_IsInvalidArgument_WithoutAnEngine()
        {
            var folder = Directory.CreateTempSubdirectory("sk-add-").FullName;
            try
            {
                var file = Path.Combine(folder, "userconfig.xml");
                File.WriteAllText(file, "<service/>");
                var result = _ps.Run(@"
                    Add-SKMirrorModule -Name web -Node n1, n2 -VirtualIP 198.18.0.50/24 -ConfigFile $folder -ComputerName $node -Confirm:$false
                    Add-SKMirrorModule -Name web -Node n1, n2 -VirtualIP 198.18.0.50/24 -ScriptPath $file -ComputerName $node -Confirm:$false",
                    new Dictionary<string, object?> { ["folder"] = folder, ["file"] = file, ["node"] = DeadNode });

                Assert.Equal(new[]
                {
                    "InvalidArgument,ServiceKeeper.Commands.AddSKMirrorModuleCommand",
                    "InvalidArgument,ServiceKeeper.Commands.AddSKMirrorModuleCommand",
                }, result.ErrorIds);
                Assert.Contains("-ConfigFile", result.Errors[0].Exception.Message);
                Assert.Contains("-ScriptPath", result.Errors[1].Exception.Message);
            }
            finally
            {
                Directory.Delete(folder, recursive: true);
            }
        }

        [Theory]
        [InlineData(TwoNodes + " -VirtualIP 198.18.0.50/24")]
        [InlineData(TwoNodes + " -VirtualIP 10.0.0.1/32 -InitialPrimary N2")]
        [InlineData(TwoNodes + " -VirtualIP 2001:db8::50/64 -Witness 198.18.0.254, 198.18.0.253")]
        [InlineData(TwoNodes + " -VirtualIP ' 198.18.0.50/24 ' -ReplicatedDirectory /var/www -Interface eth0")]
        public void AddSKMirrorModule_ValidParameters_ReachTheEngine(string parameters)
        {
            var result = _ps.Run($"Add-SKMirrorModule -Name web {parameters} -ComputerName $node -Confirm:$false", Vars("node", DeadNode));
            Assert.Equal(new[] { "NodeUnreachable,ServiceKeeper.Commands.AddSKMirrorModuleCommand" }, result.ErrorIds);
        }

        private const string FarmNodes = "-Node n1, n2";
        private const string FarmVip = "-VirtualIP 198.18.0.60/24";
        private const string FarmPort = "-Port 80";

        [Theory]
        [InlineData(FarmNodes + " -VirtualIP 198.18.0.60 " + FarmPort, "198.18.0.60")]
        [InlineData(FarmNodes + " -VirtualIP 198.18.0.60/33 " + FarmPort, "198.18.0.60/33")]
        [InlineData(FarmNodes + " -VirtualIP fe80::1%eth0/64 " + FarmPort, "fe80::1%eth0/64")]
        [InlineData("-Node n1, n2, N1 " + FarmVip + " " + FarmPort, "n1,n2,N1")]
        [InlineData("-Node n1, ' ' " + FarmVip + " " + FarmPort, "n1,")]
        [InlineData(FarmNodes + " " + FarmVip + " -Port 80, 0", "0")]
        [InlineData(FarmNodes + " " + FarmVip + " -Port 65536", "65536")]
        [InlineData(FarmNodes + " " + FarmVip + " -Port -1", "-1")]
        [InlineData(FarmNodes + " " + FarmVip + " " + FarmPort + " -Power @{ n3 = 1 }", "n3")]
        [InlineData(FarmNodes + " " + FarmVip + " " + FarmPort + " -Power @{ n1 = -1 }", "n1")]
        [InlineData(FarmNodes + " " + FarmVip + " " + FarmPort + " -Power @{ n2 = 'heavy' }", "n2")]
        [InlineData(FarmNodes + " " + FarmVip + " " + FarmPort + " -Power @{ n1 = 0; N2 = 0 }", "n1,n2")]
        [InlineData("-Node n1 " + FarmVip + " " + FarmPort + " -Power @{ n1 = 0 }", "n1")]
        [InlineData(FarmNodes + " " + FarmVip + " " + FarmPort + " -ConfigFile ./no-such-userconfig.xml", "./no-such-userconfig.xml")]
        [InlineData(FarmNodes + " " + FarmVip + " " + FarmPort + " -ScriptPath ./no-such-folder", "./no-such-folder")]
        public void AddSKFarmModule_WrongParameter_IsTerminatingInvalidArgument_WithoutAnEngine(string parameters, string target)
        {
            var result = _ps.Run($"Add-SKFarmModule -Name web {parameters} -ComputerName $node -Confirm:$false; 'next statement'", Vars("node", DeadNode));

            // InvalidArgument and not NodeUnreachable: the engine was not contacted.
            var error = Assert.Single(result.Errors);
            Assert.Equal("InvalidArgument,ServiceKeeper.Commands.AddSKFarmModuleCommand", error.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.InvalidArgument, error.CategoryInfo.Category);
            Assert.Equal(target, error.TargetObject?.ToString());
            Assert.Equal(new[] { "next statement" }, result.Output.Select(o => o.ToString()));
        }

        [Theory]
        [InlineData("-Node n1 " + FarmVip + " " + FarmPort)]
        [InlineData("-Node n1, n2, n3 -VirtualIP 2001:db8::60/64 -Port 1, 65535 -Protocol udp -Rule OnPort")]
        [InlineData(FarmNodes + " " + FarmVip + " " + FarmPort + " -Power @{ N1 = 0; n2 = '3' }")]
        [InlineData(FarmNodes + " " + FarmVip + " " + FarmPort + " -Power @{ n1 = 0 }")]
        public void AddSKFarmModule_ValidParameters_ReachTheEngine(string parameters)
        {
            var result = _ps.Run($"Add-SKFarmModule -Name web {parameters} -ComputerName $node -Confirm:$false", Vars("node", DeadNode));
            Assert.Equal(new[] { "NodeUnreachable,ServiceKeeper.Commands.AddSKFarmModuleCommand" }, result.ErrorIds);
        }

        [Theory]
        [InlineData("Set-SKMaintenance -Name web")]
        [InlineData("Set-SKMaintenance -Name web -Node n1 -PassThru")]
        [InlineData("'web', 'sql' | Set-SKMaintenance")]
        public void SetSKMaintenance_WithoutASwitch_IsTerminatingInvalidArgument_WithoutAnEngine(string command)
        {
            var result = _ps.Run(command + " -ComputerName $node -Confirm:$false; 'next statement'", Vars("node", DeadNode));

            var error = Assert.Single(result.Errors);
            Assert.Equal("InvalidArgument,ServiceKeeper.Commands.SetSKMaintenanceCommand", error.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.InvalidArgument, error.CategoryInfo.Category);
            Assert.Equal(new[] { "next statement" }, result.Output.Select(o => o.ToString()));
        }

        [Theory]
        [InlineData("abc")]
        [InlineData("-1")]
        [InlineData("'-00:00:01'")]
        public void Timeout_ThatIsNeitherSecondsNorADuration_IsRefusedBeforeCallingTheEngine(string timeout)
        {
            var result = _ps.Run($"Wait-SKState -Name web -Node n1 -State PRIM -Timeout {timeout} -ComputerName $node", Vars("node", DeadNode));
            Assert.Equal(new[] { "ParameterArgumentTransformationError,ServiceKeeper.Commands.WaitSKStateCommand" }, result.ErrorIds);
        }

        [Fact]
        public void SetSKPrimary_Force_AsksForConfirmationAsAHighImpactChange_BeforeCallingTheEngine()
        {
            // ConfirmImpact is Medium (no prompt without -Force, see UnreachableNode_*); -Force prompts, and in a
            // host that cannot prompt that fails before any call: no NodeUnreachable.
            var result = _ps.Run("Set-SKPrimary -Name web -Node n2 -Force -ComputerName $node", Vars("node", DeadNode));
            Assert.Equal(new[] { "HostFunctionNotImplemented,ServiceKeeper.Commands.SetSKPrimaryCommand" }, result.ErrorIds);

            var plain = _ps.Run("Set-SKPrimary -Name web -Node n2 -ComputerName $node", Vars("node", DeadNode));
            Assert.Equal(new[] { "NodeUnreachable,ServiceKeeper.Commands.SetSKPrimaryCommand" }, plain.ErrorIds);
        }

        [Fact]
        public void SetSKPrimary_Force_WithConfirmPreferenceNone_DoesNotAsk()
        {
            var result = _ps.Run("& { $ConfirmPreference = 'None'; Set-SKPrimary -Name web -Node n2 -Force -ComputerName $node }", Vars("node", DeadNode));
            Assert.Equal(new[] { "NodeUnreachable,ServiceKeeper.Commands.SetSKPrimaryCommand" }, result.ErrorIds);
        }

        private CmdletInfo GetCmdlet(string name)
        {
            var result = _ps.Run("Get-Command -Name $name -Module ServiceKeeper", Vars("name", name));
            Assert.True(result.Succeeded, result.ToString());
            return (CmdletInfo)result.Output.Single().BaseObject;
        }

        private static Dictionary<string, object?> Vars(string name, object? value) => new Dictionary<string, object?> { [name] = value };
    }

    /// <summary>The local engine is found through $env:SERVICEKEEPER_HOME, which is process-wide: not in parallel.</summary>
    [Collection(PowerShellHost.ProcessEnvironmentCollection)]
    public sealed class MetadataLocalEngineTests : IDisposable
    {
        private readonly string _emptyHome = Directory.CreateTempSubdirectory("sk-home-").FullName;

        [Fact]
        public void NoLocalEngine_GetSKCluster_IsNodeUnreachable()
        {
            using var ps = new PowerShellHost(environment: new Dictionary<string, string?> { ["SERVICEKEEPER_HOME"] = _emptyHome });
            var result = ps.Run("Get-SKCluster");

            var error = Assert.Single(result.Errors);
            Assert.Equal("NodeUnreachable,ServiceKeeper.Commands.GetSKClusterCommand", error.FullyQualifiedErrorId);
            Assert.Contains(Path.Combine(_emptyHome, "run", "api.sock"), error.Exception.Message);
        }

        [Fact]
        public void NoLocalEngine_SetInTheScript_GetSKState_IsNodeUnreachable()
        {
            var before = Environment.GetEnvironmentVariable("SERVICEKEEPER_HOME");
            using var ps = new PowerShellHost();
            try
            {
                var result = ps.Run("$env:SERVICEKEEPER_HOME = $home_; Get-SKState", new Dictionary<string, object?> { ["home_"] = _emptyHome });
                Assert.Equal(new[] { "NodeUnreachable,ServiceKeeper.Commands.GetSKStateCommand" }, result.ErrorIds);
            }
            finally
            {
                Environment.SetEnvironmentVariable("SERVICEKEEPER_HOME", before);
            }
        }

        [Fact]
        public void NewSKCluster_WithoutLocalEngineOrConnection_AsksTheFirstNode()
        {
            using var ps = new PowerShellHost(environment: new Dictionary<string, string?> { ["SERVICEKEEPER_HOME"] = _emptyHome });
            var result = ps.Run("New-SKCluster -Name c -Node 127.0.0.1:1, 127.0.0.1:2 -Confirm:$false");

            var error = Assert.Single(result.Errors);
            Assert.Equal("NodeUnreachable,ServiceKeeper.Commands.NewSKClusterCommand", error.FullyQualifiedErrorId);
            Assert.Contains("127.0.0.1:1", error.Exception.Message);
        }

        public void Dispose() => Directory.Delete(_emptyHome, recursive: true);
    }

    /// <summary>
    /// The module cmdlets against a <see cref="FakeEngine"/>: what each sends, how it binds pipeline input,
    /// waits, follows and reports the engine's answers. No cluster; the real engine's effects are in the
    /// end-to-end tests.
    /// </summary>
    public sealed class MetadataFakeEngineTests : IClassFixture<ModuleFixture>, IDisposable
    {
        private readonly PowerShellHost _ps;
        private readonly FakeEngine _engine = new();

        public MetadataFakeEngineTests(ModuleFixture fixture) => _ps = fixture.Ps;

        public void Dispose() => _engine.Dispose();

        /// <summary>Runs <paramref name="script"/> with every SK cmdlet pointed at the fake engine, without prompts.</summary>
        private PSRunResult Run(string script, Dictionary<string, object?>? variables = null) =>
            _ps.Run(Prelude + script, variables);

        private string Prelude => $$"""
            $PSDefaultParameterValues = @{
                '*-SK*:ComputerName' = '{{_engine.ComputerName}}'
                '*-SK*:SkipCertificateCheck' = $true
                '*-SK*:Confirm' = $false
            }

            """;

        private static ModuleState S(string node, string state, bool ready, string module = "web", string? reason = null) =>
            new() { Module = module, Node = node, Kind = "mirror", State = state, Ready = ready, Reason = reason, SinceUtc = DateTime.UtcNow };

        private static ModuleInfo M(string name) => new() { Name = name, Kind = "mirror", Nodes = new List<string> { "n1", "n2" } };

        /// <summary>Answers GET /v1/state?module=... with the next of <paramref name="answers"/>, then the last one forever.</summary>
        private void StateSequence(params ModuleState[][] answers)
        {
            int next = 0;
            _engine.On("GET", "/v1/state", _ => answers[Math.Min(Interlocked.Increment(ref next) - 1, answers.Length - 1)]);
        }

        private List<FakeRequest> Commands(string module) =>
            _engine.Requests.Where(r => r.Method == "POST" && r.Path == $"/v1/modules/{module}/command").ToList();

        [Fact]
        public void GetSKModule_PipedToStartSKModule_StartsEachModuleByName()
        {
            _engine.On("GET", "/v1/modules", _ => new[] { M("web"), M("sql") });
            _engine.On("POST", "/v1/modules/web/command", _ => new[] { S("n1", "ALONE", false) });
            _engine.On("POST", "/v1/modules/sql/command", _ => new[] { S("n1", "ALONE", false, "sql") });

            var result = Run("Get-SKModule | Start-SKModule");

            Assert.True(result.Succeeded, result.ToString());
            Assert.Empty(result.Output);
            foreach (var module in new[] { "web", "sql" })
            {
                var request = Assert.Single(Commands(module)).BodyAs<ModuleCommandRequest>();
                Assert.Equal(ModuleCommands.Start, request.Command);
                Assert.Null(request.Node);
            }
        }

        [Fact]
        public void GetSKModule_PipedToRemoveSKModule_RemovesEachModuleByName()
        {
            _engine.On("GET", "/v1/modules", _ => new[] { M("web"), M("sql") });
            _engine.On("DELETE", "/v1/modules/web", _ => new[] { "n1", "n2" });
            _engine.On("DELETE", "/v1/modules/sql", _ => new[] { "n1", "n2" });

            var result = Run("Get-SKModule | Remove-SKModule");

            Assert.True(result.Succeeded, result.ToString());
            Assert.Equal(new[] { "/v1/modules/web", "/v1/modules/sql" }, _engine.Requests.Where(r => r.Method == "DELETE").Select(r => r.Path));
        }

        [Fact]
        public void StopSKModule_WithNodeAndPassThru_SendsStopForThatNode_AndWritesTheAnsweredStates()
        {
            _engine.On("POST", "/v1/modules/web/command", _ => new[] { S("n1", "STOP", false), S("n2", "ALONE", false) });

            var result = Run("Stop-SKModule -Name web -Node n1 -PassThru");

            Assert.True(result.Succeeded, result.ToString());
            var request = Assert.Single(Commands("web")).BodyAs<ModuleCommandRequest>();
            Assert.Equal((ModuleCommands.Stop, "n1"), (request.Command, request.Node));
            Assert.Equal(new[] { "n1 STOP", "n2 ALONE" }, result.OutputAs<ModuleState>().Select(s => s.Node + " " + s.State));
        }

        [Fact]
        public void GetSKStateRows_PipedToRestartSKModule_RestartTheModuleOnEachRowsNode()
        {
            _engine.On("GET", "/v1/state", _ => new[] { S("n1", "PRIM", true), S("n2", "SECOND", true) });
            _engine.On("POST", "/v1/modules/web/command", _ => new[] { S("n1", "PRIM", false) });

            var result = Run("Get-SKState -Name web | Restart-SKModule");

            Assert.True(result.Succeeded, result.ToString());
            Assert.Equal(new[] { "restart n1", "restart n2" },
                Commands("web").Select(r => r.BodyAs<ModuleCommandRequest>()).Select(c => c.Command + " " + c.Node));
        }

        [Fact]
        public void StartSKModule_Wait_EndsWhenEveryNodeIsSettled_WarnsAboutWait_AndPassesTheFinalStatesThrough()
        {
            _engine.On("POST", "/v1/modules/web/command", _ => new[] { S("n1", "STOP", true), S("n2", "STOP", true) });
            StateSequence(
                new[] { S("n1", "ALONE", false), S("n2", "WAIT", false, reason: "waiting for the peer") },
                new[] { S("n1", "PRIM", true), S("n2", "WAIT", true, reason: "data not up to date") });

            var result = Run("Start-SKModule -Name web -Wait -PassThru");

            Assert.True(result.Succeeded, result.ToString());
            Assert.Equal(new[] { "n1 PRIM", "n2 WAIT" }, result.OutputAs<ModuleState>().Select(s => s.Node + " " + s.State));
            var warning = Assert.Single(result.Warnings);
            Assert.Contains("'n2'", warning);
            Assert.Contains("data not up to date", warning);
        }

        [Fact]
        public void StartSKModule_Wait_WhenANodeFallsBackToStop_IsModuleStopped_WithItsReason()
        {
            _engine.On("POST", "/v1/modules/web/command", _ => new[] { S("n1", "STOP", true) });
            StateSequence(
                new[] { S("n1", "ALONE", false) },
                new[] { S("n1", "STOP", true, reason: "start_prim failed (exit code 1)") });

            var result = Run("Start-SKModule -Name web -Node n1 -Wait -PassThru; 'next statement'");

            var error = Assert.Single(result.Errors);
            Assert.Equal("ModuleStopped,ServiceKeeper.Commands.StartSKModuleCommand", error.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.OperationStopped, error.CategoryInfo.Category);
            Assert.Contains("start_prim failed (exit code 1)", error.Exception.Message);
            Assert.Equal(new[] { "next statement" }, result.Output.Select(o => o.ToString()));
        }

        [Fact]
        public void StartSKModule_Timeout_ImpliesWait_AndEndsInWaitTimeout()
        {
            _engine.On("POST", "/v1/modules/web/command", _ => new[] { S("n1", "STOP", true) });
            StateSequence(new[] { S("n1", "STOP", true) });

            var clock = System.Diagnostics.Stopwatch.StartNew();
            var result = Run("Start-SKModule -Name web -Timeout 1");

            Assert.Equal(new[] { "WaitTimeout,ServiceKeeper.Commands.StartSKModuleCommand" }, result.ErrorIds);
            Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10));
            Assert.Contains(_engine.Requests, r => r.Path == "/v1/state" && r.Query["module"] == "web");
        }

        [Fact]
        public void StartSKSwap_SendsSwap_WithoutAskingTheStateFirst()
        {
            _engine.On("POST", "/v1/modules/web/command", _ => new[] { S("n1", "PRIM", false), S("n2", "SECOND", true) });

            var result = Run("Start-SKSwap -Name web");

            Assert.True(result.Succeeded, result.ToString());
            Assert.Empty(result.Output);
            Assert.Equal(ModuleCommands.Swap, Assert.Single(_engine.Requests).BodyAs<ModuleCommandRequest>().Command);
        }

        [Fact]
        public void StartSKSwap_Wait_WaitsUntilTheRolesAreExchangedAndReady()
        {
            _engine.On("GET", "/v1/modules", _ => new[] { M("web") });
            _engine.On("POST", "/v1/modules/web/command", _ => new[] { S("n1", "PRIM", false), S("n2", "SECOND", true) });
            StateSequence(
                new[] { S("n1", "PRIM", true), S("n2", "SECOND", true) },    // before the swap
                new[] { S("n1", "SECOND", false), S("n2", "PRIM", false) },
                new[] { S("n1", "SECOND", true), S("n2", "PRIM", false) },
                new[] { S("n1", "SECOND", true), S("n2", "PRIM", true) });

            var result = Run("Get-SKModule -Name web | Start-SKSwap -Wait -PassThru", null);

            Assert.True(result.Succeeded, result.ToString());
            Assert.Equal(new[] { "n1 SECOND True", "n2 PRIM True" }, result.OutputAs<ModuleState>().Select(s => $"{s.Node} {s.State} {s.Ready}"));
            var order = _engine.Requests.Select(r => r.Method + " " + r.Path).ToList();
            Assert.Equal("GET /v1/state", order[order.IndexOf("POST /v1/modules/web/command") - 1]);
        }

        [Fact]
        public void SetSKPrimary_Force_SendsPrimWithForce()
        {
            _engine.On("POST", "/v1/modules/sql/command", _ => new[] { S("n2", "ALONE", false, "sql") });

            var result = Run("Set-SKPrimary -Name sql -Node n2 -Force");

            Assert.True(result.Succeeded, result.ToString());
            var request = Assert.Single(Commands("sql")).BodyAs<ModuleCommandRequest>();
            Assert.Equal((ModuleCommands.Prim, "n2", true), (request.Command, request.Node, request.Force));
        }

        [Fact]
        public void SetSKPrimary_WhenTheEngineAnswersDataNotUpToDate_IsAnInvalidOperation_WithWhatToDo()
        {
            _engine.Fail("POST", "/v1/modules/sql/command", 409, ErrorIds.DataNotUpToDate, "Node 'n2' is not up to date: n1 has newer data.");

            var result = Run("Set-SKPrimary -Name sql -Node n2 -PassThru; 'next statement'");

            var error = Assert.Single(result.Errors);
            Assert.Equal("DataNotUpToDate,ServiceKeeper.Commands.SetSKPrimaryCommand", error.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.InvalidOperation, error.CategoryInfo.Category);
            Assert.Equal("Node 'n2' is not up to date: n1 has newer data.", error.Exception.Message);
            Assert.Contains("-Force", error.ErrorDetails.RecommendedAction);
            Assert.False(Assert.Single(Commands("sql")).BodyAs<ModuleCommandRequest>().Force);
            Assert.Equal(new[] { "next statement" }, result.Output.Select(o => o.ToString()));
        }

        [Fact]
        public void SetSKSecondary_FullSync_SendsSecondWithFullSync()
        {
            _engine.On("POST", "/v1/modules/web/command", _ => new[] { S("n2", "SECOND", false) });

            var result = Run("Set-SKSecondary -Name web -Node n2 -FullSync -PassThru");

            Assert.True(result.Succeeded, result.ToString());
            var request = Assert.Single(Commands("web")).BodyAs<ModuleCommandRequest>();
            Assert.Equal((ModuleCommands.Second, "n2", true), (request.Command, request.Node, request.FullSync));
            Assert.Equal("n2", Assert.Single(result.OutputAs<ModuleState>()).Node);
        }

        [Fact]
        public void SetSKMaintenance_SendsOnlyTheSwitchesGiven()
        {
            _engine.On("POST", "/v1/modules/web/maintenance", _ => new[] { S("n1", "PRIM", true) });

            var result = Run("Set-SKMaintenance -Name web -Node n1 -Checkers Off -Failover on");

            Assert.True(result.Succeeded, result.ToString());
            var sent = Assert.Single(_engine.Requests);
            var request = sent.BodyAs<MaintenanceRequest>();
            Assert.Equal(("n1", (bool?)false, (bool?)null, (bool?)true), (request.Node, request.Checkers, request.Errd, request.Failover));
            Assert.DoesNotContain("errd", sent.Body);
        }

        [Fact]
        public void AddSKMirrorModule_SendsTheParameters_TheScriptFolderAndTheConfigFile_RelativeToTheLocation()
        {
            var folder = Directory.CreateTempSubdirectory("sk-add-").FullName;
            try
            {
                Directory.CreateDirectory(Path.Combine(folder, "bin", "old"));
                File.WriteAllBytes(Path.Combine(folder, "bin", "start_prim"), new byte[] { 0x23, 0x21, 0x00, 0xff });
                File.WriteAllText(Path.Combine(folder, "bin", "stop_prim.ps1"), "Stop-Service web");
                File.WriteAllText(Path.Combine(folder, "bin", "old", "ignored"), "not sent");
                File.WriteAllText(Path.Combine(folder, "userconfig.xml"), "<service mode=\"mirror\"/>");
                _engine.On("POST", "/v1/modules/mirror", _ => new ModuleInfo { Name = "web", Kind = "mirror", Nodes = new List<string> { "n1", "n2" } });

                var result = Run(@"
                    Push-Location $folder
                    try {
                        Add-SKMirrorModule web n1, n2 -VirtualIP 198.18.0.50/24 -Interface eth0 -ScriptPath bin -ReplicatedDirectory /var/www, /etc/web `
                            -Witness 198.18.0.254 -InitialPrimary n2 -ConfigFile userconfig.xml
                    } finally { Pop-Location }", new Dictionary<string, object?> { ["folder"] = folder });

                Assert.True(result.Succeeded, result.ToString());
                Assert.Equal("web", Assert.Single(result.OutputAs<ModuleInfo>()).Name);
                var request = Assert.Single(_engine.Requests).BodyAs<AddMirrorModuleRequest>();
                Assert.Equal("web", request.Name);
                Assert.Equal(new[] { "n1", "n2" }, request.Nodes);
                Assert.Equal(("198.18.0.50/24", "eth0", "n2"), (request.VirtualIP, request.Interface, request.InitialPrimary));
                Assert.Equal(new[] { "/var/www", "/etc/web" }, request.ReplicatedDirectories);
                Assert.Equal(new[] { "198.18.0.254" }, request.Witnesses);
                Assert.Equal(new[] { "start_prim", "stop_prim.ps1" }, request.Scripts.Keys.OrderBy(k => k, StringComparer.Ordinal));
                Assert.Equal(new byte[] { 0x23, 0x21, 0x00, 0xff }, Convert.FromBase64String(request.Scripts["start_prim"]));
                Assert.Equal("Stop-Service web", System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(request.Scripts["stop_prim.ps1"])));
                Assert.Equal("<service mode=\"mirror\"/>", request.UserConfigXml);
                Assert.Equal(Path.Combine(folder, "userconfig.xml"), request.UserConfigSource);
            }
            finally
            {
                Directory.Delete(folder, recursive: true);
            }
        }

        [Fact]
        public void AddSKMirrorModule_WhenTheEngineRefusesTheConfiguration_IsInvalidConfiguration_WithFileAndLine()
        {
            _engine.Fail("POST", "/v1/modules/mirror", 400, ErrorIds.InvalidConfiguration, "/home/admin/userconfig.xml:12: <heart> needs two heartbeats.");

            var result = Run("Add-SKMirrorModule -Name web -Node n1, n2 -VirtualIP 198.18.0.50/24");

            var error = Assert.Single(result.Errors);
            Assert.Equal("InvalidConfiguration,ServiceKeeper.Commands.AddSKMirrorModuleCommand", error.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.InvalidData, error.CategoryInfo.Category);
            Assert.Contains("userconfig.xml:12:", error.Exception.Message);
        }

        [Fact]
        public void AddSKFarmModule_SendsTheParameters_AsTheEngineReadsThem()
        {
            var folder = Directory.CreateTempSubdirectory("sk-farm-").FullName;
            try
            {
                Directory.CreateDirectory(Path.Combine(folder, "bin"));
                File.WriteAllText(Path.Combine(folder, "bin", "start_prim"), "nginx");
                File.WriteAllText(Path.Combine(folder, "userconfig.xml"), "<service mode=\"farm\"/>");
                _engine.On("POST", "/v1/modules/farm", _ => new ModuleInfo { Name = "webfarm", Kind = "farm", Nodes = new List<string> { "n1", "n2", "n3" } });

                var result = Run(@"
                    Push-Location $folder
                    try {
                        Add-SKFarmModule webfarm n1, n2, n3 -VirtualIP ' 198.18.0.60/24 ' -Interface eth0 -Port 80, 443 -Protocol udp -Rule OnPort `
                            -Power @{ N1 = 3; n3 = 0 } -ScriptPath bin -ConfigFile userconfig.xml
                    } finally { Pop-Location }", new Dictionary<string, object?> { ["folder"] = folder });

                Assert.True(result.Succeeded, result.ToString());
                Assert.Equal("webfarm", Assert.Single(result.OutputAs<ModuleInfo>()).Name);
                var sent = Assert.Single(_engine.Requests);
                Assert.Equal(("POST", "/v1/modules/farm"), (sent.Method, sent.Path));
                // The JSON fields the engine reads, by their wire names.
                var json = Newtonsoft.Json.Linq.JObject.Parse(sent.Body);
                Assert.Equal("webfarm", (string?)json["name"]);
                Assert.Equal(new[] { "n1", "n2", "n3" }, json["nodes"]!.Values<string>());
                Assert.Equal("198.18.0.60/24", (string?)json["virtualIP"]);
                Assert.Equal("eth0", (string?)json["interface"]);
                Assert.Equal(new[] { 80, 443 }, json["ports"]!.Values<int>());
                Assert.Equal("udp", (string?)json["protocol"]);
                Assert.Equal("on_port", (string?)json["rule"]);
                // Keys take the node's spelling in -Node; n2, left out, weighs 1 on the engine's side.
                Assert.Equal(new[] { ("n1", 3), ("n3", 0) },
                    ((Newtonsoft.Json.Linq.JObject)json["power"]!).Properties().Select(p => (p.Name, (int)p.Value)).OrderBy(p => p.Name));
                Assert.Equal("nginx", System.Text.Encoding.UTF8.GetString(Convert.FromBase64String((string)json["scripts"]!["start_prim"]!)));
                Assert.Equal("<service mode=\"farm\"/>", (string?)json["userConfigXml"]);
                Assert.Equal(Path.Combine(folder, "userconfig.xml"), (string?)json["userConfigSource"]);
            }
            finally
            {
                Directory.Delete(folder, recursive: true);
            }
        }

        [Fact]
        public void AddSKFarmModule_ByDefault_SendsTcpOnAddress_AndNoWeights()
        {
            _engine.On("POST", "/v1/modules/farm", _ => new ModuleInfo { Name = "webfarm", Kind = "farm" });

            var result = Run("Add-SKFarmModule -Name webfarm -Node n1 -VirtualIP 198.18.0.60/24 -Port 80");

            Assert.True(result.Succeeded, result.ToString());
            var request = Assert.Single(_engine.Requests).BodyAs<AddFarmModuleRequest>();
            Assert.Equal(("tcp", "on_addr"), (request.Protocol, request.Rule));
            Assert.Empty(request.Power);
            Assert.Empty(request.Scripts);
            Assert.Null(request.UserConfigXml);
        }

        private static FarmLoad L(string node, string state, int power, int buckets, int? connections, string module = "webfarm") =>
            new() { Module = module, Node = node, State = state, Power = power, Buckets = buckets, SharePercent = buckets * 100.0 / 256, Connections = connections };

        [Fact]
        public void GetSKFarmLoad_WritesTheRowsOfEachPipedModule_AndTheTableShowsTheShare()
        {
            _engine.On("GET", "/v1/modules/webfarm/farmload", _ => new[]
            {
                L("n1", "UP", 2, 172, 40),
                L("n2", "UP", 1, 84, null),
                new FarmLoad { Module = "webfarm", Node = "n3", State = "STOP", Reachable = false, Error = "connection refused" },
            });
            _engine.On("GET", "/v1/modules/api/farmload", _ => new[] { L("n1", "WAIT", 1, 0, 0, "api") });

            var rows = Run("'webfarm' | Get-SKFarmLoad; [pscustomobject]@{ Name = 'api' } | Get-SKFarmLoad");

            Assert.True(rows.Succeeded, rows.ToString());
            Assert.Equal(new[] { "webfarm n1 172 40", "webfarm n2 84 ", "webfarm n3 0 ", "api n1 0 0" },
                rows.OutputAs<FarmLoad>().Select(l => $"{l.Module} {l.Node} {l.Buckets} {l.Connections}"));
            Assert.Equal(new[] { "/v1/modules/webfarm/farmload", "/v1/modules/api/farmload" }, _engine.Requests.Select(r => r.Path));

            var table = Run("Get-SKFarmLoad -Name webfarm | Out-String -Width 200");
            var text = (string)table.Output.Single().BaseObject;
            Assert.Matches(@"Node\s+State\s+Power\s+Buckets\s+SharePercent\s+Connections", text);
            Assert.Matches(@"n1\s+UP\s+2\s+172\s+67[.,]2 %\s+40", text);
            Assert.Matches(@"n2\s+UP\s+1\s+84\s+32[.,]8 %\s*\r?\n", text);
            Assert.Matches(@"n3\s+unreachable\s+connection refused", text);
        }

        [Fact]
        public void GetSKFarmLoad_ModuleNotInstalled_IsModuleNotFound_AndTheNextModuleIsRead()
        {
            _engine.Fail("GET", "/v1/modules/nope/farmload", 404, ErrorIds.ModuleNotFound, "No module named 'nope'.");
            _engine.On("GET", "/v1/modules/webfarm/farmload", _ => new[] { L("n1", "UP", 1, 256, 3) });

            var result = Run("'nope', 'webfarm' | Get-SKFarmLoad");

            var error = Assert.Single(result.Errors);
            Assert.Equal("ModuleNotFound,ServiceKeeper.Commands.GetSKFarmLoadCommand", error.FullyQualifiedErrorId);
            Assert.Equal("nope", error.TargetObject);
            Assert.Equal("n1", Assert.Single(result.OutputAs<FarmLoad>()).Node);
        }

        [Fact]
        public void StopSKModule_Drain_SendsStopWithDrain_AndWithoutItDoesNot()
        {
            _engine.On("POST", "/v1/modules/webfarm/command", _ => new[] { S("n1", "UP", false, "webfarm") });

            var result = Run("Stop-SKModule -Name webfarm -Node n1 -Drain; Stop-SKModule -Name webfarm -Node n2");

            Assert.True(result.Succeeded, result.ToString());
            var sent = Commands("webfarm");
            Assert.Equal(new[] { "stop n1 True", "stop n2 False" },
                sent.Select(r => r.BodyAs<ModuleCommandRequest>()).Select(c => $"{c.Command} {c.Node} {c.Drain}"));
            Assert.Equal(true, (bool?)Newtonsoft.Json.Linq.JObject.Parse(sent[0].Body)["drain"]);
        }

        [Fact]
        public void StopSKModule_Drain_OnAMirrorModule_IsTheEnginesInvalidModuleState()
        {
            _engine.Fail("POST", "/v1/modules/web/command", 409, ErrorIds.InvalidModuleState, "Module 'web' is a mirror module: -Drain is for farm modules.");

            var result = Run("Stop-SKModule -Name web -Drain; 'next statement'");

            var error = Assert.Single(result.Errors);
            Assert.Equal("InvalidModuleState,ServiceKeeper.Commands.StopSKModuleCommand", error.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.InvalidOperation, error.CategoryInfo.Category);
            Assert.Equal(new[] { "next statement" }, result.Output.Select(o => o.ToString()));
        }

        [Fact]
        public void GetSKState_Node_KeepsTheRowsOfThoseNodes_AndAnExactNodeWithNoRowIsNodeNotFound()
        {
            _engine.On("GET", "/v1/state", _ => new[] { S("n1", "PRIM", true), S("n2", "SECOND", true), S("n1", "STOP", true, "sql"), S("n2", "STOP", true, "sql") });

            var result = Run("Get-SKState -Node n2, n9, 'x*'");

            Assert.Equal(new[] { "web n2", "sql n2" }, result.OutputAs<ModuleState>().Select(s => s.Module + " " + s.Node));
            var error = Assert.Single(result.Errors);
            Assert.Equal("NodeNotFound,ServiceKeeper.Commands.GetSKStateCommand", error.FullyQualifiedErrorId);
            Assert.Equal("n9", error.TargetObject);
        }

        [Fact]
        public void GetSKState_Node_FromSeveralPipedModules_IsNodeNotFoundOnlyIfNoModuleIsOnIt()
        {
            _engine.On("GET", "/v1/state", _ => new[] { S("n1", "PRIM", true), S("n3", "PRIM", true, "sql") });

            var result = Run("'web', 'sql' | Get-SKState -Node n3");

            Assert.True(result.Succeeded, result.ToString());
            Assert.Equal(new[] { "sql n3" }, result.OutputAs<ModuleState>().Select(s => s.Module + " " + s.Node));
        }

        [Fact]
        public void GetSKState_UnreachableNode_IsARowThatSaysSo_NotAnError()
        {
            _engine.On("GET", "/v1/state", _ => new[]
            {
                S("n1", "ALONE", true, reason: "peer lost"),
                new ModuleState { Module = "web", Node = "n2", Reachable = false, Error = "connection refused" },
            });

            var result = Run("Get-SKState | Out-String -Width 200");

            Assert.True(result.Succeeded, result.ToString());
            var table = (string)result.Output.Single().BaseObject;
            Assert.Matches(@"web\s+n1\s+ALONE\s+Ready\s+peer lost", table);
            Assert.Matches(@"web\s+n2\s+unreachable\s+connection refused", table);
        }

        [Theory]
        [InlineData("30")]
        [InlineData("00:00:30")]
        [InlineData("(New-TimeSpan -Seconds 30)")]
        public void WaitSKState_ShowsTheResynchronisation_AndWritesTheStateOnceReached(string timeout)
        {
            ModuleState Resync(long done, bool ready) => new()
            {
                Module = "web", Node = "n2", State = "SECOND", Ready = ready, Reason = ready ? null : "resynchronising",
                ResyncBytesDone = done, ResyncBytesTotal = 4L << 30, ResyncBytesPerSecond = 100 << 20, ResyncEtaSeconds = ((4L << 30) - done) / (100 << 20),
            };
            StateSequence(
                new[] { S("n1", "PRIM", true), Resync(1L << 30, false) },
                new[] { S("n1", "PRIM", true), Resync(3L << 30, false) },
                new[] { S("n1", "PRIM", true), Resync(4L << 30, true) });

            var result = Run($"Wait-SKState -Name web -Node n2 -State SECOND -Ready -Timeout {timeout}");

            Assert.True(result.Succeeded, result.ToString());
            var state = Assert.Single(result.OutputAs<ModuleState>());
            Assert.Equal(("n2", "SECOND", true), (state.Node, state.State, state.Ready));
            var resync = result.Progress.Where(p => p.Activity.Contains("Resynchronising") && p.RecordType == ProgressRecordType.Processing).ToList();
            Assert.Equal(new[] { 25, 75 }, resync.Select(p => p.PercentComplete));
            Assert.Equal("1.0 GiB of 4.0 GiB (25 %), 100.0 MiB/s, about 30 s left", resync[0].StatusDescription);
            Assert.Equal(30, resync[0].SecondsRemaining);
            Assert.All(resync, p => Assert.Equal(result.Progress[0].ActivityId, p.ParentActivityId));
            Assert.Equal(ProgressRecordType.Completed, result.Progress.Last().RecordType);
        }

        [Theory]
        [InlineData("1")]
        [InlineData("1.5")]
        [InlineData("00:00:01")]
        public void WaitSKState_Timeout_IsInSeconds_AndANonTerminatingWaitTimeout_WithTheLastStateSeen(string timeout)
        {
            StateSequence(new[] { S("n1", "PRIM", true), S("n2", "SECOND", false, reason: "resynchronising") });

            var clock = System.Diagnostics.Stopwatch.StartNew();
            var result = Run($"Wait-SKState -Name web -Node n2 -State SECOND -Ready -Timeout {timeout}; 'next statement'");

            var error = Assert.Single(result.Errors);
            Assert.Equal("WaitTimeout,ServiceKeeper.Commands.WaitSKStateCommand", error.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.OperationTimeout, error.CategoryInfo.Category);
            Assert.Contains("n2 SECOND Transient (resynchronising)", error.Exception.Message);
            Assert.DoesNotContain("n1", error.Exception.Message);
            Assert.Equal(new[] { "next statement" }, result.Output.Select(o => o.ToString()));
            Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10));
        }

        [Fact]
        public void GetSKStateRows_PipedToWaitSKState_WaitForEachRowsNode_Together()
        {
            StateSequence(
                new[] { S("n1", "PRIM", true), S("n2", "SECOND", false) },
                new[] { S("n1", "PRIM", true), S("n2", "SECOND", false) },
                new[] { S("n1", "PRIM", true), S("n2", "SECOND", true) });

            var result = Run("Get-SKState -Name web | Wait-SKState -State PRIM, SECOND -Ready -Timeout 30");

            Assert.True(result.Succeeded, result.ToString());
            Assert.Equal(new[] { "n1 PRIM", "n2 SECOND" }, result.OutputAs<ModuleState>().Select(s => s.Node + " " + s.State));
        }

        [Fact]
        public void WaitSKState_NodeTheModuleIsNotOn_IsNodeNotFound_AtOnce()
        {
            StateSequence(new[] { S("n1", "PRIM", true), S("n2", "SECOND", true) });

            var result = Run("Wait-SKState -Name web -Node n9 -State PRIM");

            Assert.Equal(new[] { "NodeNotFound,ServiceKeeper.Commands.WaitSKStateCommand" }, result.ErrorIds);
            Assert.Single(_engine.Requests);
        }

        [Theory]
        [InlineData(false)] // the engine's answer: no state rows for a module it does not have
        [InlineData(true)]  // an engine that says ModuleNotFound
        public void WaitSKState_ModuleNotInstalled_IsModuleNotFound_AtOnce(bool engineSaysNotFound)
        {
            if (engineSaysNotFound) _engine.Fail("GET", "/v1/state", 404, ErrorIds.ModuleNotFound, "No module named 'nope'.");
            else _engine.On("GET", "/v1/state", _ => Array.Empty<ModuleState>());

            var result = Run("Wait-SKState -Name nope -Node n1 -State PRIM -Timeout 30");

            Assert.Equal(new[] { "ModuleNotFound,ServiceKeeper.Commands.WaitSKStateCommand" }, result.ErrorIds);
            Assert.Single(_engine.Requests);
        }

        [Fact]
        public void GetSKLog_TailZero_AsksForOneLinePerNode_AndWritesNone()
        {
            _engine.On("GET", "/v1/modules/web/log", _ => new[] { new LogLine { Module = "web", Node = "n1", Sequence = 9, Text = "old" } });

            var result = Run("Get-SKLog -Name web -Tail 0");

            Assert.True(result.Succeeded, result.ToString());
            Assert.Empty(result.Output);
            Assert.Equal("1", Assert.Single(_engine.Requests).Query["tail"]);
        }

        [Fact]
        public void GetSKResource_NodeAndWildcards_SelectResources_AnExactMissingOneIsResourceNotFound()
        {
            var resources = new[] { "tcp.db", "tcp.web", "ping.gw" }
                .Select(r => new ModuleResource { Module = "web", Node = "n1", Resource = r, Value = "up", Action = "restart" }).ToArray();
            _engine.On("GET", "/v1/modules/web/resources", _ => resources);

            var result = Run("Get-SKResource web 'tcp.*', errd.nginx -Node n1");

            Assert.Equal(new[] { "tcp.db", "tcp.web" }, result.OutputAs<ModuleResource>().Select(r => r.Resource));
            var error = Assert.Single(result.Errors);
            Assert.Equal("ResourceNotFound,ServiceKeeper.Commands.GetSKResourceCommand", error.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.ObjectNotFound, error.CategoryInfo.Category);
            Assert.Equal("n1", Assert.Single(_engine.Requests).Query["node"]);
        }

        [Fact]
        public void GetSKLog_SendsTail_AndWritesTheLinesOldestFirst()
        {
            var t0 = DateTime.UtcNow;
            _engine.On("GET", "/v1/modules/web/log", _ => new[]
            {
                new LogLine { Module = "web", Node = "n2", Sequence = 7, TimeUtc = t0.AddSeconds(2), Source = "module", Text = "web: SECOND" },
                new LogLine { Module = "web", Node = "n1", Sequence = 40, TimeUtc = t0.AddSeconds(1), Source = "start_prim", Text = "started" },
            });

            var result = Run("Get-SKLog -Name web -Tail 2");

            Assert.True(result.Succeeded, result.ToString());
            Assert.Equal(new[] { "started", "web: SECOND" }, result.OutputAs<LogLine>().Select(l => l.Text));
            var query = Assert.Single(_engine.Requests).Query;
            Assert.Equal("2", query["tail"]);
            Assert.False(query.ContainsKey("node"));
        }

        [Fact]
        public void GetSKLog_Follow_WritesTheNewLinesOfEachNodeOnce_UntilCtrlC()
        {
            // Each node's log grows by one line every time it is asked for lines after a sequence.
            var logs = new Dictionary<string, List<LogLine>>
            {
                ["n1"] = new() { new LogLine { Module = "web", Node = "n1", Sequence = 1, TimeUtc = DateTime.UtcNow, Text = "n1 #1" } },
                ["n2"] = new(),
            };
            _engine.On("GET", "/v1/modules", _ => new[] { M("web") });
            _engine.On("GET", "/v1/modules/web/log", r =>
            {
                lock (logs)
                {
                    var nodes = r.Query.TryGetValue("node", out var node) ? new[] { node } : logs.Keys.ToArray();
                    if (r.Query.ContainsKey("after"))
                        foreach (var n in nodes)
                            logs[n].Add(new LogLine { Module = "web", Node = n, Sequence = logs[n].Count + 1, TimeUtc = DateTime.UtcNow, Text = $"{n} #{logs[n].Count + 1}" });
                    // As the engine pages: the last `tail` lines, or the first `tail` lines after `after`.
                    var tail = int.Parse(r.Query["tail"]);
                    return nodes.SelectMany(n => r.Query.TryGetValue("after", out var a)
                        ? logs[n].Where(l => l.Sequence > long.Parse(a)).Take(tail)
                        : logs[n].TakeLast(tail)).ToList();
                }
            });

            using var ps = PowerShell.Create();
            ps.Runspace = _ps.Runspace;
            ps.AddScript(Prelude + "Get-SKLog -Name web -Follow");
            var output = new PSDataCollection<PSObject>();
            var running = ps.BeginInvoke<PSObject, PSObject>(null, output);
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (_engine.Requests.Count(r => r.Query.ContainsKey("after")) < 6 && DateTime.UtcNow < deadline) Thread.Sleep(50);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            ps.Stop();
            Assert.Throws<PipelineStoppedException>(() => ps.EndInvoke(running));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"stopping took {clock.Elapsed}");

            var lines = output.Select(o => (LogLine)o.BaseObject).ToList();
            Assert.Equal("n1 #1", lines[0].Text);
            foreach (var node in new[] { "n1", "n2" })
            {
                var sequences = lines.Where(l => l.Node == node).Select(l => l.Sequence).ToList();
                Assert.Equal(Enumerable.Range(1, sequences.Count).Select(i => (long)i), sequences); // each line once, none lost
                Assert.True(sequences.Count >= 2, $"{node}: {sequences.Count} line(s)");
            }
            // Each poll of a node asks for what follows the last line seen there, as many as the engine serves.
            Assert.All(_engine.Requests, r => Assert.InRange(int.Parse(r.Query.GetValueOrDefault("tail", "1")), 1, 5000));
            var n1Polls = _engine.Requests.Where(r => r.Query.TryGetValue("node", out var n) && n == "n1" && r.Query.ContainsKey("after")).ToList();
            Assert.Equal("1", n1Polls[0].Query["after"]);
            Assert.Equal("2", n1Polls[1].Query["after"]);
        }
    }
}
