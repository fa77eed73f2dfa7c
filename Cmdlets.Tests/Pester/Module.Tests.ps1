# The published ServiceKeeper module as a user meets it: manifest, help, formats. Needs no engine.
# Run by PesterSuites.cs, or alone: Invoke-Pester ./Module.Tests.ps1 (module from $env:SK_MODULE_PATH,
# else out/module/ServiceKeeper above this file).
param(
    [string] $ModulePath = $env:SK_MODULE_PATH
)

BeforeDiscovery {
    $script:Commands = @(
        'Connect-SKCluster', 'Disconnect-SKCluster', 'New-SKCluster', 'Get-SKCluster', 'Remove-SKCluster',
        'Get-SKNode', 'Test-SKCluster', 'Get-SKState', 'Get-SKModule', 'Remove-SKModule',
        'Add-SKMirrorModule', 'Start-SKModule', 'Stop-SKModule', 'Restart-SKModule', 'Start-SKSwap',
        'Set-SKPrimary', 'Set-SKSecondary', 'Wait-SKState', 'Get-SKLog', 'Get-SKResource', 'Set-SKMaintenance',
        'Add-SKFarmModule', 'Get-SKFarmLoad', 'Get-SKReplication', 'Test-SKReplication'
    )
    $script:Views = @(
        @{ Type = 'ServiceKeeper.Contracts.ClusterInfo'; View = 'ServiceKeeper.Cluster'; Columns = 'Name', 'Nodes', 'Networks', 'CreatedUtc', 'Id' }
        @{ Type = 'ServiceKeeper.Contracts.NodeStatus'; View = 'ServiceKeeper.Node'; Columns = 'Name', 'Reachable', 'EngineVersion', 'ClockOffsetMs', 'Addresses' }
        @{ Type = 'ServiceKeeper.Contracts.ClusterCheck'; View = 'ServiceKeeper.ClusterCheck'; Columns = 'Check', 'Node', 'Network', 'Result', 'Reason' }
        @{ Type = 'ServiceKeeper.Contracts.ModuleInfo'; View = 'ServiceKeeper.Module'; Columns = 'Name', 'Kind', 'Nodes', 'InstalledUtc', 'Scripts' }
        @{ Type = 'ServiceKeeper.Contracts.ModuleState'; View = 'ServiceKeeper.ModuleState'; Columns = 'Module', 'Node', 'State', 'Status', 'Reason' }
        @{ Type = 'ServiceKeeper.Contracts.FarmLoad'; View = 'ServiceKeeper.FarmLoad'; Columns = 'Node', 'State', 'Power', 'Buckets', 'SharePercent', 'Connections', 'Error' }
        @{ Type = 'ServiceKeeper.Contracts.ModuleResource'; View = 'ServiceKeeper.ModuleResource'; Columns = 'Node', 'Resource', 'Value', 'Action', 'Reason' }
        @{ Type = 'ServiceKeeper.Contracts.LogLine'; View = 'ServiceKeeper.LogLine'; Columns = 'Time', 'Node', 'Source', 'Text' }
        @{ Type = 'ServiceKeeper.Contracts.ReplicationStatus'; View = 'ServiceKeeper.ReplicationStatus'; Columns = 'Node', 'Directory', 'Mode', 'State', 'Pending', 'DirtyMB', 'MB/s', 'AckMs', 'Resync' }
        @{ Type = 'ServiceKeeper.Contracts.ReplicationDifference'; View = 'ServiceKeeper.ReplicationDifference'; Columns = 'Directory', 'Path', 'Kind', 'Primary', 'Secondary' }
        @{ Type = 'ServiceKeeper.Commands.SKConnection'; View = 'ServiceKeeper.Connection'; Columns = 'ComputerName', 'NodeName', 'ClusterName', 'EngineVersion' }
    )
}

BeforeAll {
    if (-not $ModulePath) {
        $dir = $PSScriptRoot
        while ($dir -and -not (Test-Path (Join-Path $dir 'out/module/ServiceKeeper/ServiceKeeper.psd1'))) {
            $dir = Split-Path $dir -Parent
        }
        if (-not $dir) { throw 'Published module not found: run dotnet publish PSModule/ServiceKeeper -c Release -o out/module/ServiceKeeper, or set SK_MODULE_PATH.' }
        $ModulePath = Join-Path $dir 'out/module/ServiceKeeper'
    }
    if ((Test-Path $ModulePath -PathType Container)) { $ModulePath = Join-Path $ModulePath 'ServiceKeeper.psd1' }
    $script:Manifest = $ModulePath
    $script:Module = Import-Module $ModulePath -Force -PassThru
}

Describe 'Manifest' {
    It 'is a valid module manifest' {
        $info = Test-ModuleManifest -Path $Manifest -ErrorAction Stop
        $info.Version | Should -Be ([version]'0.1.0')
        $info.Guid | Should -Be 'e7df7cfa-a114-40b1-8101-3eac6ebacf4f'
        $info.CompatiblePSEditions | Should -Be @('Desktop', 'Core')
        $info.PowerShellVersion | Should -Be ([version]'5.1')
    }

    It 'exports the cmdlets it lists and nothing else' {
        $Module.ExportedCmdlets.Keys | Sort-Object | Should -Be ($Commands | Sort-Object)
        $Module.ExportedFunctions.Count | Should -Be 0
        $Module.ExportedAliases.Count | Should -Be 0
        $Module.ExportedVariables.Count | Should -Be 0
    }
}

Describe 'Help of <_>' -ForEach $Commands {
    BeforeAll {
        $command = Get-Command -Name $_ -Module ServiceKeeper
        $help = Get-Help -Name $_ -Full
        $common = [System.Management.Automation.Cmdlet]::CommonParameters
    }

    It 'has a written synopsis and description' {
        "$($help.Synopsis)" | Should -Not -BeNullOrEmpty
        "$($help.Synopsis)" | Should -Not -BeLike "$_ *"   # the generated one is the syntax line
        ($help.description.Text -join ' ').Length | Should -BeGreaterThan 100
    }

    It 'documents every parameter' {
        $documented = @($help.parameters.parameter | Where-Object { $_ } | ForEach-Object { $_.name })
        foreach ($name in $command.Parameters.Keys | Where-Object { $_ -notin $common }) {
            $name | Should -BeIn $documented -Because "-$name must be documented"
            $text = ($help.parameters.parameter | Where-Object name -EQ $name).description.Text -join ' '
            $text | Should -Not -BeNullOrEmpty -Because "-$name needs a description"
        }
    }

    It 'has at least two examples, one of them a pipeline' {
        $examples = @($help.examples.example)
        $examples.Count | Should -BeGreaterOrEqual 2
        @($examples | Where-Object { $_.code -match '\|' }).Count | Should -BeGreaterOrEqual 1
    }

    It 'has examples that parse and use only parameters that exist' {
        foreach ($example in $help.examples.example) {
            $tokens = $null; $errors = $null
            $ast = [System.Management.Automation.Language.Parser]::ParseInput(($example.code -join "`n"), [ref]$tokens, [ref]$errors)
            $errors | Should -BeNullOrEmpty -Because "example '$($example.title)' must parse"
            $calls = $ast.FindAll({ $args[0] -is [System.Management.Automation.Language.CommandAst] }, $true)
            foreach ($call in $calls | Where-Object { $_.GetCommandName() -like '*-SK*' }) {
                $target = Get-Command -Name $call.GetCommandName() -Module ServiceKeeper -ErrorAction SilentlyContinue
                $target | Should -Not -BeNullOrEmpty -Because "example '$($example.title)' calls $($call.GetCommandName())"
                foreach ($parameter in $call.CommandElements | Where-Object { $_ -is [System.Management.Automation.Language.CommandParameterAst] }) {
                    $target.Parameters.Keys | Should -Contain $parameter.ParameterName -Because "example '$($example.title)' uses -$($parameter.ParameterName)"
                }
            }
        }
    }
}

Describe 'Format view <View>' -ForEach $Views {
    It 'is the default table view of <Type>, with its columns' {
        $data = Get-FormatData -TypeName $Type
        $data | Should -Not -BeNullOrEmpty
        $definition = $data.FormatViewDefinition | Select-Object -First 1
        $definition.Name | Should -Be $View
        $definition.Control | Should -BeOfType ([System.Management.Automation.TableControl])
        $definition.Control.Headers.Label | Should -Be $Columns
    }
}

Describe 'Rendering' {
    It 'formats module states without errors' {
        $states = 'STOP', 'WAIT', 'ALONE', 'PRIM', 'SECOND', 'UP' | ForEach-Object {
            $s = [ServiceKeeper.Contracts.ModuleState]::new()
            $s.Module = 'sql'; $s.Node = 'n1'; $s.State = $_; $s.Ready = $true
            $s
        }
        $text = $states | Format-Table | Out-String -Width 200
        foreach ($state in 'STOP', 'WAIT', 'ALONE', 'PRIM', 'SECOND', 'UP') { $text | Should -Match $state }
    }

    It 'shows Ready or Transient, and the resynchronisation progress in the reason' {
        $s = [ServiceKeeper.Contracts.ModuleState]::new()
        $s.Module = 'sql'; $s.Node = 'n2'; $s.State = 'SECOND'; $s.Ready = $false; $s.Reason = 'resynchronising'
        $s.ResyncBytesDone = 30; $s.ResyncBytesTotal = 120
        $r = [ServiceKeeper.Contracts.ModuleState]::new()
        $r.Module = 'sql'; $r.Node = 'n1'; $r.State = 'PRIM'; $r.Ready = $true
        $text = $r, $s | Format-Table | Out-String -Width 200
        $text | Should -Match 'n1\s+PRIM\s+Ready'
        $text | Should -Match 'n2\s+SECOND\s+Transient\s+resynchronising, resync 25 %'
    }

    It 'shows an unreachable node as unreachable, with the error' {
        $s = [ServiceKeeper.Contracts.ModuleState]::new()
        $s.Module = 'sql'; $s.Node = 'n2'; $s.Reachable = $false; $s.Error = 'connection refused'
        $s | Format-Table | Out-String -Width 200 | Should -Match 'n2\s+unreachable\s+connection refused'
    }

    It 'colours states as REFERENCE.md says when the host renders colours' {
        # The view's colour code as a host that renders colours runs it (its host test made true): the escape code it writes.
        $view = (Get-FormatData -TypeName ServiceKeeper.Contracts.ModuleState).FormatViewDefinition[0].Control.Rows[0].Columns[2].DisplayEntry.Value
        $code = $view -replace 'if \(\$Host\.UI\.SupportsVirtualTerminal[^{]*\{', 'if ($true) {'
        $code | Should -Not -Be $view
        $colour = {
            param($State, $Ready)
            $row = [ServiceKeeper.Contracts.ModuleState]::new(); $row.State = $State; $row.Ready = $Ready
            $text = $row | ForEach-Object ([scriptblock]::Create($code))
            if ($text -match '\[([0-9;]+)m') { $Matches[1] } else { 'none' }
        }
        $red = '31'; $green = '32'; $orange = '38;5;208'
        & $colour STOP $true | Should -Be $red
        & $colour WAIT $false | Should -Be $orange
        & $colour WAIT $true | Should -Be $red
        & $colour ALONE $false | Should -Be $orange
        & $colour ALONE $true | Should -Be $green
        & $colour PRIM $false | Should -Be $green
        & $colour PRIM $true | Should -Be $green
        & $colour SECOND $false | Should -Be $orange
        & $colour SECOND $true | Should -Be $green
        & $colour UP $true | Should -Be $green
    }

    It 'formats farm load with the share in percent, and an unreachable node with its error' {
        $up = [ServiceKeeper.Contracts.FarmLoad]::new()
        $up.Module = 'web'; $up.Node = 'n1'; $up.State = 'UP'; $up.Power = 2; $up.Buckets = 86; $up.SharePercent = 86 * 100 / 256; $up.Connections = 12
        $down = [ServiceKeeper.Contracts.FarmLoad]::new()
        $down.Module = 'web'; $down.Node = 'n2'; $down.Reachable = $false; $down.Error = 'connection refused'
        $text = $up, $down | Format-Table | Out-String -Width 200
        $text | Should -Match 'n1\s+UP\s+2\s+86\s+33[.,]6 %\s+12'
        $text | Should -Match 'n2\s+unreachable\s+connection refused'
    }

    It 'colours farm states like module states when the host renders colours' {
        $view = (Get-FormatData -TypeName ServiceKeeper.Contracts.FarmLoad).FormatViewDefinition[0].Control.Rows[0].Columns[1].DisplayEntry.Value
        $code = $view -replace 'if \(\$Host\.UI\.SupportsVirtualTerminal[^{]*\{', 'if ($true) {'
        $code | Should -Not -Be $view
        $colour = {
            param($State, $Reachable = $true)
            $row = [ServiceKeeper.Contracts.FarmLoad]::new(); $row.State = $State; $row.Reachable = $Reachable
            $text = $row | ForEach-Object ([scriptblock]::Create($code))
            if ($text -match '\[([0-9;]+)m') { $Matches[1] } else { 'none' }
        }
        & $colour UP | Should -Be '32'
        & $colour WAIT | Should -Be '38;5;208'
        & $colour STOP | Should -Be '31'
        & $colour UP $false | Should -Be '31'
    }

    It 'formats resources with their value' {
        $r = [ServiceKeeper.Contracts.ModuleResource]::new()
        $r.Module = 'sql'; $r.Node = 'n1'; $r.Resource = 'tcp.db'; $r.Value = 'down'; $r.Action = 'restart'; $r.Reason = 'refused'
        $r | Format-Table | Out-String -Width 200 | Should -Match 'n1\s+tcp\.db\s+down\s+restart\s+refused'
    }

    It 'formats log lines in local time' {
        $l = [ServiceKeeper.Contracts.LogLine]::new()
        $l.Module = 'sql'; $l.Node = 'n1'; $l.Source = 'module'; $l.Text = 'sql: SECOND -> ALONE'
        $l.TimeUtc = [datetime]::SpecifyKind([datetime]'2030-01-02 03:04:05.678', 'Utc')
        $local = $l.TimeUtc.ToLocalTime().ToString('yyyy-MM-dd HH:mm:ss.fff')
        $l | Format-Table | Out-String -Width 200 | Should -Match ([regex]::Escape($local) + '\s+n1\s+module\s+sql: SECOND -> ALONE')
    }

    It 'formats cluster checks without errors' {
        $check = [ServiceKeeper.Contracts.ClusterCheck]::new()
        $check.Check = 'Clock'; $check.Node = 'n2'; $check.Result = 'Failed'; $check.Reason = 'offset 3 s'
        $check | Format-Table | Out-String -Width 200 | Should -Match 'Failed'
    }

    It 'formats nodes with their addresses joined' {
        $node = [ServiceKeeper.Contracts.NodeStatus]::new()
        $node.Name = 'n1'; $node.Reachable = $true; $node.ClockOffsetMs = 1.25
        $node.Addresses.Add('198.18.0.1'); $node.Addresses.Add('198.19.0.1')
        $node | Format-Table | Out-String -Width 200 | Should -Match '198\.18\.0\.1, 198\.19\.0\.1'
    }
}
