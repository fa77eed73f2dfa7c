// Request bodies of the control API.
using System.Collections.Generic;

namespace ServiceKeeper.Contracts
{
    public sealed class CreateClusterRequest
    {
        public string Name { get; set; } = "";
        /// <summary>Each node as "host", "address" or "host:port" of a running engine.</summary>
        public List<string> Nodes { get; set; } = new List<string>();
    }

    /// <summary>Sent by the creating engine to every member (internal).</summary>
    public sealed class JoinClusterRequest
    {
        public string ClusterXml { get; set; } = "";
        public string ClusterKey { get; set; } = "";
    }

    public sealed class InstallModuleRequest
    {
        public string Name { get; set; } = "";
        public string UserConfigXml { get; set; } = "";
        /// <summary>Script file name (relative to bin/) to base64 content.</summary>
        public Dictionary<string, string> Scripts { get; set; } = new Dictionary<string, string>();
        /// <summary>Mirror: the node the first start makes primary (default: the first node).</summary>
        public string? InitialPrimary { get; set; }
    }

    /// <summary>Add-SKMirrorModule: parameters win over the same settings in UserConfigXml.</summary>
    public sealed class AddMirrorModuleRequest
    {
        public string Name { get; set; } = "";
        public List<string> Nodes { get; set; } = new List<string>();
        /// <summary>address/prefix, for example 198.18.0.50/24.</summary>
        public string? VirtualIP { get; set; }
        public string? Interface { get; set; }
        public List<string> ReplicatedDirectories { get; set; } = new List<string>();
        public List<string> Witnesses { get; set; } = new List<string>();
        /// <summary>The node the first start makes primary; default the first node.</summary>
        public string? InitialPrimary { get; set; }
        public string? UserConfigXml { get; set; }
        /// <summary>Where UserConfigXml came from (the admin's -ConfigFile path), for error messages.</summary>
        public string? UserConfigSource { get; set; }
        public Dictionary<string, string> Scripts { get; set; } = new Dictionary<string, string>();
    }

    /// <summary>Add-SKFarmModule: parameters win over the same settings in UserConfigXml.</summary>
    public sealed class AddFarmModuleRequest
    {
        public string Name { get; set; } = "";
        public List<string> Nodes { get; set; } = new List<string>();
        /// <summary>address/prefix, for example 198.18.0.60/24.</summary>
        public string? VirtualIP { get; set; }
        public string? Interface { get; set; }
        public List<int> Ports { get; set; } = new List<int>();
        /// <summary>tcp or udp.</summary>
        public string Protocol { get; set; } = "tcp";
        /// <summary>on_addr (client affinity) or on_port (stateless).</summary>
        public string Rule { get; set; } = "on_addr";
        /// <summary>Node name to weight (0 = no traffic); nodes left out weigh 1.</summary>
        public Dictionary<string, int> Power { get; set; } = new Dictionary<string, int>();
        public string? UserConfigXml { get; set; }
        public string? UserConfigSource { get; set; }
        public Dictionary<string, string> Scripts { get; set; } = new Dictionary<string, string>();
    }

    public static class ModuleCommands
    {
        public const string Start = "start";
        public const string Stop = "stop";
        public const string Restart = "restart";
        public const string Swap = "swap";
        public const string Prim = "prim";
        public const string Second = "second";
    }

    /// <summary>An admin command for a module, on one node (Node set) or on all its nodes.</summary>
    public sealed class ModuleCommandRequest
    {
        public string Command { get; set; } = "";
        public string? Node { get; set; }
        /// <summary>prim: start even though the data is not up to date.</summary>
        public bool Force { get; set; }
        /// <summary>second: copy everything instead of what changed.</summary>
        public bool FullSync { get; set; }
        /// <summary>stop (farm): let open connections finish first.</summary>
        public bool Drain { get; set; }
    }

    /// <summary>Set-SKMaintenance: null leaves a switch as it is.</summary>
    public sealed class MaintenanceRequest
    {
        public string? Node { get; set; }
        public bool? Checkers { get; set; }
        public bool? Errd { get; set; }
        public bool? Failover { get; set; }
    }

    /// <summary>Error body of every non-2xx answer.</summary>
    public sealed class ApiError
    {
        public string ErrorId { get; set; } = "";
        public string Message { get; set; } = "";
        public string? Target { get; set; }
    }
}
