// The connection Connect-SKCluster stores for a session, and where every cmdlet reads it from.
using System;
using System.IO;
using System.Management.Automation;
using System.Runtime.InteropServices;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>
    /// Default target of the cmdlets in one PowerShell session, set by Connect-SKCluster.
    /// Lives in the global variable <c>$SKDefaultConnection</c> of the runspace, not in a static:
    /// one process can host many runspaces (remoting endpoints, tests), each with its own connection.
    /// </summary>
    public sealed class SKConnection
    {
        public const string VariableName = "SKDefaultConnection";
        private const string GlobalVariablePath = "global:" + VariableName;

        public SKConnection(string computerName, PSCredential? credential, bool skipCertificateCheck)
        {
            ComputerName = computerName;
            Credential = credential;
            SkipCertificateCheck = skipCertificateCheck;
        }

        public string ComputerName { get; }
        public PSCredential? Credential { get; }
        public bool SkipCertificateCheck { get; }
        /// <summary>Name of the node that answered Connect-SKCluster.</summary>
        public string NodeName { get; internal set; } = "";
        public string? ClusterName { get; internal set; }
        public string EngineVersion { get; internal set; } = "";
        public DateTime ConnectedUtc { get; internal set; }

        public override string ToString() => ComputerName;

        internal static SKConnection? Get(SessionState sessionState)
        {
            var value = sessionState.PSVariable.GetValue(GlobalVariablePath);
            return (value is PSObject wrapped ? wrapped.BaseObject : value) as SKConnection;
        }

        internal static void Set(SessionState sessionState, SKConnection connection)
        {
            sessionState.PSVariable.Set(GlobalVariablePath, connection);
            var variable = sessionState.PSVariable.Get(GlobalVariablePath);
            if (variable != null)
                variable.Description = "ServiceKeeper node the SK cmdlets use when -ComputerName is not given (Connect-SKCluster).";
        }

        internal static bool Remove(SessionState sessionState)
        {
            if (sessionState.PSVariable.Get(GlobalVariablePath) == null) return false;
            sessionState.PSVariable.Remove(GlobalVariablePath);
            return true;
        }

        /// <summary>
        /// The endpoint a cmdlet talks to: -ComputerName, else the session's connection, else the
        /// local engine. A credential given with -ComputerName is never replaced by the stored one,
        /// so a node's admin key is only ever sent to the node it was given for.
        /// </summary>
        internal static SKEndpoint Resolve(string? computerName, PSCredential? credential, bool skipCertificateCheck, SKConnection? connection)
        {
            if (!string.IsNullOrEmpty(computerName))
                return Remote(computerName!, credential, skipCertificateCheck);
            if (connection != null)
                return Remote(connection.ComputerName, credential ?? connection.Credential, skipCertificateCheck || connection.SkipCertificateCheck);
            return SKEndpoint.Local();
        }

        /// <exception cref="SKApiException">InvalidComputerName when the text is not host, host:port or [v6]:port.</exception>
        internal static SKEndpoint Remote(string computerName, PSCredential? credential, bool skipCertificateCheck)
        {
            if (!SKEndpoint.TryParseHostPort(computerName, out var host, out _, out var error))
                throw Invalid(computerName, error);
            // TryParseHostPort takes any text with several colons for an IPv6 address: check the host as a URI would.
            if (Uri.CheckHostName(host) == UriHostNameType.Unknown)
                throw Invalid(computerName, $"'{host}' is neither a host name nor an IP address.");
            return SKEndpoint.Remote(computerName, AdminKey(credential), skipCertificateCheck);
        }

        private static SKApiException Invalid(string computerName, string error) =>
            new SKApiException(ErrorIds.InvalidComputerName,
                $"'{computerName}' is not a valid computer name: {error} Use a host name, an address, host:port or [IPv6]:port.",
                computerName, 0, new ArgumentException(error, "ComputerName"));

        private static string? AdminKey(PSCredential? credential) =>
            credential == null || credential == PSCredential.Empty ? null : credential.GetNetworkCredential().Password;

        /// <summary>Whether a local engine is listening: its socket file (Linux) or named pipe (Windows) exists.</summary>
        internal static bool LocalEngineExists()
        {
            try
            {
                if (RuntimeInformation.IsOSPlatform(OSPlatform.Windows))
                    return File.Exists(@"\\.\pipe\" + SKEndpoint.PipeName);
                return File.Exists(SKEndpoint.DefaultLocalPath());
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException || e is ArgumentException)
            {
                return false;
            }
        }
    }
}
