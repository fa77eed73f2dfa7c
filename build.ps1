#Requires -Version 7.2
<#
.SYNOPSIS
    Builds, tests and demonstrates ServiceKeeper.
.DESCRIPTION
    Build : publishes the engine to out/engine/ (out/engine/servicekeeper) and the PowerShell module
            to out/module/ServiceKeeper/ (Import-Module ./out/module/ServiceKeeper).
    Test  : Build, then every test project (xunit and the Pester suites they host); writes TRX files to
            out/test-results/ and ends with "N passed, N failed, N skipped".
    Demo  : Build, then a small cluster of real engines in network namespaces, driven by the real module,
            with a mirror module whose primary is cut off while you watch the failover.
    Bench : failover time as a client sees it, ServiceKeeper against keepalived on the same namespaces
            (-Trials per scenario; out/bench/failover.md, .csv, .png), then the farm bench (wrk through the
            VIP; farm.md) and the replicated-directory bench (writes, fsync latency and resync against
            libfuse's passthrough and rsync; rfs.md, .csv, .png).
    Installs the Debian packages a task needs when run as root and they are missing.
.EXAMPLE
    dotnet tool restore && dotnet pwsh ./build.ps1 -Task Test
.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Test -Filter 'FullyQualifiedName~Configuration'
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Demo', 'Bench', 'Simulate')]
    [string] $Task = 'Build',
    [string] $Configuration = 'Release',
    # dotnet test --filter expression, for Test.
    [string] $Filter,
    # Keep the demo cluster running until Enter is pressed (default when a terminal is attached).
    [switch] $NoWait,
    # Failover trials per scenario, for Bench (the issue asks for at least 20).
    [int] $Trials = 20,
    # Simulate: replay one seed with its full trace.
    [int] $Seed = -1,
    # Simulate: run this many seeds (default 1000; CI uses about two minutes' worth, a soak many more).
    [int] $Seeds
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
    $command, $arguments = $args | ForEach-Object { $_ }
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
        [xml] $doc = Get-Content -Raw -LiteralPath $trx.FullName
        $counters = $doc.TestRun.ResultSummary.Counters
        $total.Passed += [int] $counters.passed
        $total.Failed += [int] $counters.failed + [int] $counters.error + [int] $counters.timeout + [int] $counters.aborted
        $total.Skipped += [int] $counters.total - [int] $counters.executed   # skipped: neither executed nor notExecuted
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
        $scripts = Join-Path $Out 'demo-scripts'
        New-Item -ItemType Directory -Force $scripts | Out-Null
        # The demo application: a small HTTP server answering with the name of the node it runs on.
        Set-Content (Join-Path $scripts 'start_prim') -Value @'
#!/bin/sh
mkdir -p "$SK_MODULE_DIR/www" && echo "$SK_NODE" > "$SK_MODULE_DIR/www/index.html"
setsid python3 -m http.server 8080 --directory "$SK_MODULE_DIR/www" > /dev/null 2>&1 < /dev/null &
echo $! > "$SK_MODULE_DIR/http.pid"
for i in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:8080/ && break; sleep 0.1; done
'@
        Set-Content (Join-Path $scripts 'stop_prim') -Value @'
#!/bin/sh
[ -f "$SK_MODULE_DIR/http.pid" ] && kill "$(cat "$SK_MODULE_DIR/http.pid")" 2>/dev/null
rm -f "$SK_MODULE_DIR/http.pid"; exit 0
'@
        $env:SK_DEMO_NODES = ($lab.Nodes | ForEach-Object Address) -join ','
        $env:SK_DEMO_KEY = $key
        $env:SK_DEMO_MODULE = Join-Path $Out 'module/ServiceKeeper'
        $env:SK_DEMO_VIP = "198.18.0.50"
        $env:SK_DEMO_WITNESS = $lab.Client.Address
        $env:SK_DEMO_SCRIPTS = $scripts
        $primary = $lab.Nodes[0]
        function Invoke-DemoStep([string] $step) {
            $env:SK_DEMO_STEP = $step
            Invoke-Native ip netns exec $lab.Client.Namespace @(Get-PwshCommand) -NoProfile -File $client
        }

        Write-Host "`n== From the client namespace ($($lab.Client.Address)): a cluster, then a mirror module on n1 and n2"
        Invoke-DemoStep 'create'
        Write-Host "== Cutting the primary n1 off the network (ip -n $($lab.SwitchNamespace) link set $($primary.SwitchPort) down)"
        $lab.Cut($primary, $null)
        Invoke-DemoStep 'watch'
        Write-Host "== n1 is back on the network: it resynchronises and becomes secondary; then a swap makes it primary again"
        $lab.Heal($primary, $null)
        Invoke-DemoStep 'failback'
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

# Failover time as a client sees it: ServiceKeeper (default and tuned heartbeats) against keepalived on the
# same namespace topology; writes out/bench/failover.md, failover.csv and failover.png.
function Invoke-Bench {
    if (-not (Test-Root)) {
        throw 'The bench runs engines and keepalived in network namespaces and needs root. Run it as root: sudo dotnet pwsh ./build.ps1 -Task Bench'
    }
    Install-DebianPackages @($TestPackages + 'keepalived' + 'curl' + 'wrk' | Select-Object -Unique)
    Invoke-Build
    $env:SK_ENGINE = Join-Path $Out 'engine/servicekeeper'
    $count = if ($Trials -gt 0) { $Trials } else { 20 }
    $bench = Join-Path $Root 'Engine/ServiceKeeper.Bench'
    Invoke-Native dotnet run --project $bench -c $Configuration -- failover --trials $count --out (Join-Path $Out 'bench')
    # Farm module with wrk: throughput through the VIP vs direct, imbalance, failed requests on cut/return.
    Invoke-Native dotnet run --project $bench -c $Configuration --no-build -- farm --out (Join-Path $Out 'bench')
    # Replicated directories: dd writes and fsync latency on raw / libfuse's C passthrough / ALONE / sync / sync-disk,
    # resync of a 1% change vs rsync over the lab network (rfs.md, rfs.csv, rfs.png).
    Install-DebianPackages @('rsync', 'gcc', 'pkg-config', 'libfuse3-dev', 'fuse3', 'python3')
    Invoke-Native dotnet run --project $bench -c $Configuration --no-build -- rfs --out (Join-Path $Out 'bench')
}

# Deterministic simulation (Engine/ServiceKeeper.Simulation) of the mirror and farm protocols (the real
# MirrorStateMachine and FarmMachine, simulated network, disks, clocks): each seed runs one mirror and one farm
# schedule. -Seed n replays one seed with its traces, -Seeds n runs many and ends with "<n> seeds, <v> violations".
# More simulator options (--model mirror|farm, --off Protection, --farm-faults Crash,Partition, --witness on|off, ...)
# through SK_SIM_ARGS, e.g. SK_SIM_ARGS='--model farm'.
function Invoke-Simulate {
    $arguments = @('run', '--project', (Join-Path $Root 'Engine/ServiceKeeper.Simulation'), '-c', $Configuration, '--')
    if ($Seed -ge 0) { $arguments += @('--seed', $Seed) }
    else { $arguments += @('--seeds', $(if ($Seeds -gt 0) { $Seeds } else { 1000 })) }
    if ($env:SK_SIM_ARGS) { $arguments += @($env:SK_SIM_ARGS -split '\s+' | Where-Object { $_ }) }
    & dotnet @arguments
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}

# Runs inside the client namespace: the same commands an admin would type.
$DemoClientScript = @'
$ErrorActionPreference = 'Stop'
Import-Module $env:SK_DEMO_MODULE
$cred = [pscredential]::new('admin', (ConvertTo-SecureString $env:SK_DEMO_KEY -AsPlainText -Force))
$nodes = $env:SK_DEMO_NODES -split ','
$vip = $env:SK_DEMO_VIP
# n3 is in the cluster but not in the module: it answers for the whole cluster while n1 is cut off.
Connect-SKCluster -ComputerName $nodes[2] -Credential $cred -SkipCertificateCheck
function Show([string] $command, [scriptblock] $block) {
    Write-Host "PS> $command"
    & $block | Out-String -Width 160 | Write-Host
}
function Ask-Vip { try { (Invoke-WebRequest "http://${vip}:8080/" -TimeoutSec 1).Content.Trim() } catch { 'no answer' } }
switch ($env:SK_DEMO_STEP) {
    'create' {
        Show "New-SKCluster -Name demo -Node $($nodes -join ',')" { New-SKCluster -Name demo -Node $nodes | Format-List Name, Id, Nodes, Networks }
        Show 'Get-SKNode' { Get-SKNode }
        Show 'Test-SKCluster | Where-Object Result -ne Passed' { Test-SKCluster | Where-Object Result -ne 'Passed' }
        Write-Host 'PS> Get-SKNode -Credential (a wrong key)'
        $bad = [pscredential]::new('admin', (ConvertTo-SecureString 'not-the-key' -AsPlainText -Force))
        try { Get-SKNode -ComputerName $nodes[2] -Credential $bad -SkipCertificateCheck -ErrorAction Stop }
        catch { Write-Host "   $($_.FullyQualifiedErrorId): $($_.Exception.Message)`n" }
        Show "Add-SKMirrorModule -Name web -Node n1,n2 -VirtualIP $vip/24 -Witness $env:SK_DEMO_WITNESS -ScriptPath $env:SK_DEMO_SCRIPTS" {
            Add-SKMirrorModule -Name web -Node n1, n2 -VirtualIP "$vip/24" -Witness $env:SK_DEMO_WITNESS -ScriptPath $env:SK_DEMO_SCRIPTS
        }
        Show 'Start-SKModule -Name web -Wait' { Start-SKModule -Name web -Wait -PassThru }
        Write-Host "GET http://${vip}:8080/ answered by: $(Ask-Vip)`n"
    }
    'watch' {
        # The primary has just been cut off: watch the secondary take over, as an admin would.
        $watch = [Diagnostics.Stopwatch]::StartNew()
        $last = ''
        while ($watch.Elapsed.TotalSeconds -lt 30) {
            $states = Get-SKState -Name web -ErrorAction SilentlyContinue
            $line = ($states | ForEach-Object { if ($_.Reachable) { "$($_.Node) $($_.State)$(if (-not $_.Ready) { ' (transient)' })" } else { "$($_.Node) unreachable" } }) -join ', '
            $answer = Ask-Vip
            $now = "$line | VIP answered by $answer"
            if ($now -ne $last) { Write-Host ('{0,6:0.0} s  {1}' -f $watch.Elapsed.TotalSeconds, $now); $last = $now }
            if ($answer -eq 'n2') { break }
            Start-Sleep -Milliseconds 200
        }
        Write-Host ''
        Show 'Get-SKState -Name web' { Get-SKState -Name web }
    }
    'failback' {
        Show 'Wait-SKState -Name web -Node n1 -State SECOND -Timeout 60' { Wait-SKState -Name web -Node n1 -State SECOND -Timeout 60 }
        Show 'Start-SKSwap -Name web -Wait' { Start-SKSwap -Name web -Wait -Confirm:$false -PassThru }
        Write-Host "GET http://${vip}:8080/ answered by: $(Ask-Vip)`n"
        Show 'Get-SKLog -Name web -Node n1 -Tail 12' { Get-SKLog -Name web -Node n1 -Tail 12 }
    }
}
'@

switch ($Task) {
    'Build' { Invoke-Build }
    'Test' { Invoke-Test }
    'Demo' { Invoke-Demo }
    'Bench' { Invoke-Bench }
    'Simulate' { Invoke-Simulate }
}
