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
    }

    /// <summary>Error body of every non-2xx answer.</summary>
    public sealed class ApiError
    {
        public string ErrorId { get; set; } = "";
        public string Message { get; set; } = "";
        public string? Target { get; set; }
    }
}
