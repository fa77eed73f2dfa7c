@{
    RootModule           = 'ServiceKeeper.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = 'e7df7cfa-a114-40b1-8101-3eac6ebacf4f'
    Author               = 'ServiceKeeper contributors'
    CompanyName          = 'ServiceKeeper'
    Copyright            = 'ServiceKeeper contributors'
    Description          = 'Administers ServiceKeeper high-availability clusters: clusters, nodes, mirror and farm modules and their state.'
    CompatiblePSEditions = @('Desktop', 'Core')
    PowerShellVersion    = '5.1'
    FormatsToProcess     = @('ServiceKeeper.format.ps1xml')
    CmdletsToExport      = @(
        'Add-SKFarmModule'
        'Add-SKMirrorModule'
        'Connect-SKCluster'
        'Disconnect-SKCluster'
        'Get-SKCluster'
        'Get-SKFarmLoad'
        'Get-SKLog'
        'Get-SKModule'
        'Get-SKNode'
        'Get-SKReplication'
        'Get-SKResource'
        'Get-SKState'
        'New-SKCluster'
        'Remove-SKCluster'
        'Remove-SKModule'
        'Restart-SKModule'
        'Set-SKMaintenance'
        'Set-SKPrimary'
        'Set-SKSecondary'
        'Start-SKModule'
        'Start-SKSwap'
        'Stop-SKModule'
        'Test-SKCluster'
        'Test-SKReplication'
        'Wait-SKState'
    )
    FunctionsToExport    = @()
    AliasesToExport      = @()
    VariablesToExport    = @()
    PrivateData          = @{
        PSData = @{
            Tags = @('HighAvailability', 'Cluster', 'Failover', 'Replication', 'Linux', 'Windows')
        }
    }
}
