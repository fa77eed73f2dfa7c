#Requires -Version 7.2
<#
.SYNOPSIS
    Builds, tests and demonstrates ServiceKeeper.
.DESCRIPTION
    Build : publishes the engine to out/engine/ (out/engine/servicekeeper) and the PowerShell module
            to out/module/ServiceKeeper/ (Import-Module ./out/module/ServiceKeeper).
    Test  : Build, then every test project (xunit and the Pester suites they host); writes TRX files to
            out/test-results/ and ends with "N passed, N failed, N skipped".
    Demo  : Build, then a small cluster of real engines in network namespaces, driven by the real module.
    Installs the Debian packages a task needs when run as root and they are missing.
.EXAMPLE
    dotnet tool restore && dotnet pwsh ./build.ps1 -Task Test
.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Test -Filter 'FullyQualifiedName~Configuration'
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Demo')]
    [string] $Task = 'Build',
    [string] $Configuration = 'Release',
    # dotnet test --filter expression, for Test.
    [string] $Filter,
    # Keep the demo cluster running until Enter is pressed (default when a terminal is attached).
    [switch] $NoWait
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$Root = $PSScriptRoot
$Out = Join-Path $Root 'out'
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'
$env:DOTNET_NOLOGO = '1'

# What the tests and the demo need on a Debian machine (network namespaces, FUSE, nftables, real apps).
$TestPackages = @(Get-Content (Join-Path $Root '.ci/debian-packages.txt') | Where-Object { $_ -and -not $_.StartsWith('#') })

# Runs a program with the arguments as given (a simple function: "-o" must not bind as a common parameter).
function Invoke-Native {
    $command, $arguments = $args
    & $command @arguments
    if ($LASTEXITCODE -ne 0) { throw "$command $($arguments -join ' ') failed with exit code $LASTEXITCODE" }
}

# This PowerShell, as a command line another process can start (the dotnet tool runs as "dotnet pwsh.dll").
function Get-PwshCommand {
    $process = [Environment]::ProcessPath
    if ([IO.Path]::GetFileNameWithoutExtension($process) -eq 'dotnet') { @($process, (Join-Path $PSHOME 'pwsh.dll')) } else { @($process) }
}

function Test-Root { $IsLinux -and (& id -u) -eq '0' }

function Install-DebianPackages {
    param([string[]] $Packages)
    if (-not $IsLinux -or -not (Get-Command dpkg-query -ErrorAction Ignore)) { return }
    $missing = @($Packages | Where-Object {
        (& dpkg-query -W -f '${Status}' $_ 2>$null) -notmatch 'install ok installed'
    })
    if ($missing.Count -eq 0) { return }
    if (-not (Test-Root)) {
        Write-Warning "Missing Debian packages: $($missing -join ' '). Run as root or install them: apt-get install $($missing -join ' ')"
        return
    }
    Write-Host "Installing $($missing -join ' ')"
    $env:DEBIAN_FRONTEND = 'noninteractive'
    Invoke-Native apt-get update -q
    Invoke-Native apt-get install -y -q --no-install-recommends @missing
}

function Invoke-Build {
    Write-Host "Building ServiceKeeper ($Configuration)"
    Invoke-Native dotnet publish (Join-Path $Root 'Engine/ServiceKeeper.Engine') -c $Configuration -o (Join-Path $Out 'engine') --nologo -v quiet
    $moduleOut = Join-Path $Out 'module/ServiceKeeper'
    if (Test-Path $moduleOut) { Remove-Item -Recurse -Force $moduleOut }
    Invoke-Native dotnet publish (Join-Path $Root 'PSModule/ServiceKeeper') -c $Configuration -o $moduleOut --nologo -v quiet
    # PowerShell ships its own copies of these; the module needs only its own assemblies and data files.
    Get-ChildItem $moduleOut -Filter '*.deps.json' | Remove-Item
    Write-Host "Engine: $(Join-Path $Out 'engine/servicekeeper')"
    Write-Host "Module: $moduleOut"
}

function Get-TestSummary {
    param([string] $ResultsDirectory)
    $total = @{ Passed = 0; Failed = 0; Skipped = 0 }
    foreach ($trx in Get-ChildItem $ResultsDirectory -Filter '*.trx' -ErrorAction Ignore) {
        [xml] $doc = Get-Content -Raw $trx.FullName
        $counters = $doc.TestRun.ResultSummary.Counters
        $total.Passed += [int] $counters.passed
        $total.Failed += [int] $counters.failed + [int] $counters.error + [int] $counters.timeout + [int] $counters.aborted
        $total.Skipped += [int] $counters.notExecuted
    }
    $total
}

function Invoke-Test {
    Install-DebianPackages $TestPackages
    Invoke-Build
    $results = Join-Path $Out 'test-results'
    if (Test-Path $results) { Remove-Item -Recurse -Force $results }
    $arguments = @('test', (Join-Path $Root 'ServiceKeeper.sln'), '-c', $Configuration, '--nologo',
        '--logger', 'trx', '--logger', 'console;verbosity=normal', '--results-directory', $results,
        '--blame-hang-timeout', '10m')
    if ($Filter) { $arguments += @('--filter', $Filter) }
    $env:SK_ENGINE = Join-Path $Out 'engine/servicekeeper'
    $env:SK_MODULE = Join-Path $Out 'module/ServiceKeeper'
    $watch = [Diagnostics.Stopwatch]::StartNew()
    & dotnet @arguments
    $exit = $LASTEXITCODE
    $summary = Get-TestSummary $results
    Write-Host ("Tests took {0:mm\:ss}" -f $watch.Elapsed)
    Write-Host "$($summary.Passed) passed, $($summary.Failed) failed, $($summary.Skipped) skipped"
    if ($exit -ne 0 -or $summary.Failed -gt 0 -or $summary.Passed -eq 0) { exit 1 }
}

function Invoke-Demo {
    if (-not (Test-Root)) {
        throw 'The demo runs engines in network namespaces and needs root (ip netns, mount namespaces). Run it as root: sudo dotnet pwsh ./build.ps1 -Task Demo'
    }
    Install-DebianPackages $TestPackages
    Invoke-Build
    Invoke-Native dotnet build (Join-Path $Root 'Engine/ServiceKeeper.Testing') -c $Configuration -o (Join-Path $Out 'testing') --nologo -v quiet
    Add-Type -Path (Join-Path $Out 'testing/ServiceKeeper.Testing.dll')
    $env:SK_ENGINE = Join-Path $Out 'engine/servicekeeper'

    $key = [Convert]::ToHexString([Security.Cryptography.RandomNumberGenerator]::GetBytes(24)).ToLowerInvariant()
    $lab = [ServiceKeeper.Testing.NetLab]::Create('skdemo', 3, $null)
    try {
        Write-Host "`n== Three nodes in network namespaces on one bridge, and a client namespace"
        foreach ($node in $lab.Nodes) {
            $lab.StartEngine($node, $key, [string[]]::new(0)) | Out-Null
            $lab.WaitForEngine($node, [TimeSpan]::FromSeconds(30))
            Write-Host ("   {0}: engine running in namespace {1} at {2}, home {3}" -f $node.Name, $node.Namespace, $node.Address, $node.Home)
        }
        $client = Join-Path $Out 'demo-client.ps1'
        Set-Content -Path $client -Value $DemoClientScript
        Write-Host "`n== From the client namespace ($($lab.Client.Address)), with the module and the admin key:"
        $nodes = ($lab.Nodes | ForEach-Object Address) -join ','
        $cut = $lab.Nodes[2]
        $env:SK_DEMO_NODES = $nodes
        $env:SK_DEMO_KEY = $key
        $env:SK_DEMO_MODULE = Join-Path $Out 'module/ServiceKeeper'
        $env:SK_DEMO_STEP = 'create'
        Invoke-Native ip netns exec $lab.Client.Namespace @(Get-PwshCommand) -NoProfile -File $client
        Write-Host "`n== Cutting $($cut.Name) off the network (ip -n $($lab.SwitchNamespace) link set ... down)"
        $lab.Cut($cut, $null)
        $env:SK_DEMO_STEP = 'cut'
        Invoke-Native ip netns exec $lab.Client.Namespace @(Get-PwshCommand) -NoProfile -File $client
        $lab.Heal($cut, $null)
        Write-Host "`n== $($cut.Name) is back on the network."
        $interactive = -not $NoWait -and -not [Console]::IsInputRedirected -and -not $env:CI
        Write-Host @"

What to type next, in another terminal (the cluster stays up until you press Enter here):
  cd $Root && ip netns exec $($lab.Client.Namespace) dotnet pwsh -NoProfile
  Import-Module $($env:SK_DEMO_MODULE)
  `$cred = [pscredential]::new('admin', (ConvertTo-SecureString '$key' -AsPlainText -Force))
  Connect-SKCluster -ComputerName $($lab.Nodes[0].Address) -Credential `$cred -SkipCertificateCheck
  Get-SKNode; Test-SKCluster; Get-SKCluster | Format-List
  Engine logs: $($lab.Nodes[0].Home)/log/engine.log
"@
        if ($interactive) { Read-Host 'Press Enter to stop the demo and remove everything it made' | Out-Null }
    }
    finally {
        $lab.Dispose()
        Remove-Item Env:SK_DEMO_* -ErrorAction Ignore
        Write-Host 'Demo cluster removed: engines stopped, namespaces and files deleted.'
    }
}

# Runs inside the client namespace: the same commands an admin would type.
$DemoClientScript = @'
$ErrorActionPreference = 'Stop'
Import-Module $env:SK_DEMO_MODULE
$cred = [pscredential]::new('admin', (ConvertTo-SecureString $env:SK_DEMO_KEY -AsPlainText -Force))
$nodes = $env:SK_DEMO_NODES -split ','
Connect-SKCluster -ComputerName $nodes[0] -Credential $cred -SkipCertificateCheck
if ($env:SK_DEMO_STEP -eq 'create') {
    Write-Host "PS> New-SKCluster -Name demo -Node $($nodes -join ',')"
    New-SKCluster -Name demo -Node $nodes | Format-List | Out-String | Write-Host
    Write-Host 'PS> Get-SKNode'
    Get-SKNode | Format-Table | Out-String | Write-Host
    Write-Host 'PS> Test-SKCluster | Where-Object Result -ne Passed'
    Test-SKCluster | Where-Object Result -ne 'Passed' | Format-Table | Out-String | Write-Host
    Write-Host 'PS> Get-SKNode -Credential (wrong key)'
    $bad = [pscredential]::new('admin', (ConvertTo-SecureString 'not-the-key' -AsPlainText -Force))
    try { Get-SKNode -ComputerName $nodes[0] -Credential $bad -SkipCertificateCheck -ErrorAction Stop }
    catch { Write-Host "   $($_.FullyQualifiedErrorId): $($_.Exception.Message)" }
}
else {
    Write-Host 'PS> Get-SKNode'
    Get-SKNode -ErrorAction SilentlyContinue -ErrorVariable unreachable | Format-Table | Out-String | Write-Host
    $unreachable | ForEach-Object { Write-Host "   $($_.FullyQualifiedErrorId): $($_.Exception.Message)" }
}
'@

switch ($Task) {
    'Build' { Invoke-Build }
    'Test' { Invoke-Test }
    'Demo' { Invoke-Demo }
}
