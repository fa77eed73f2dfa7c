namespace ServiceKeeper.Contracts
{
    /// <summary>Stable error ids: the engine answers with them and cmdlets put them in ErrorRecords.</summary>
    public static class ErrorIds
    {
        public const string AuthenticationFailed = "AuthenticationFailed";
        public const string NodeUnreachable = "NodeUnreachable";
        public const string ClusterNotFound = "ClusterNotFound";
        public const string ClusterExists = "ClusterExists";
        public const string InvalidConfiguration = "InvalidConfiguration";
        public const string InvalidArgument = "InvalidArgument";
        public const string ModuleNotFound = "ModuleNotFound";
        public const string ModuleExists = "ModuleExists";
        public const string NotSupported = "NotSupported";
        public const string InternalError = "InternalError";
        /// <summary>Set-SKPrimary on a node whose data is stale or inconsistent, without -Force.</summary>
        public const string DataNotUpToDate = "DataNotUpToDate";
        /// <summary>The command does not fit the module's current state (swap without a ready secondary, ...).</summary>
        public const string InvalidModuleState = "InvalidModuleState";
        /// <summary>Wait-SKState, or Start-SKModule/Start-SKSwap -Wait, ran out of time.</summary>
        public const string WaitTimeout = "WaitTimeout";

        // Raised by the cmdlets themselves, before or after an API call.
        /// <summary>An exact node name given to Get-SKNode (or Get-SKState -Node) matches no node.</summary>
        public const string NodeNotFound = "NodeNotFound";
        /// <summary>-ComputerName (or the -Node used to reach an engine) is not host, host:port or [v6]:port.</summary>
        public const string InvalidComputerName = "InvalidComputerName";
        /// <summary>An exact resource name given to Get-SKResource -Resource is not a resource of the module.</summary>
        public const string ResourceNotFound = "ResourceNotFound";
        /// <summary>Start-SKModule/Start-SKSwap -Wait: the module went back to STOP on a node while it was waited for.</summary>
        public const string ModuleStopped = "ModuleStopped";
    }
}
