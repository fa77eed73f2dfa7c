// What Add-SKMirrorModule and Add-SKFarmModule share: the module's name, nodes, virtual IP, scripts and
// userconfig.xml, and the checks of those that need no engine.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>
    /// Base of the Add-SK*Module cmdlets. The derived cmdlet builds its request in <see cref="BuildRequest"/>,
    /// which runs before the engine is resolved: a bad value needs no engine to be reported (InvalidArgument,
    /// terminating). What depends on the cluster is the engine's to check (InvalidConfiguration).
    /// </summary>
    public abstract class SKAddModuleCommandBase<TRequest> : SKCmdletBase where TRequest : class
    {
        private TRequest? _request;

        [Parameter(Mandatory = true, Position = 0)]
        [ValidateNotNullOrEmpty]
        public string Name { get; set; } = "";

        /// <summary>The nodes of the module.</summary>
        [Parameter(Mandatory = true, Position = 1)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(NodeNameCompleter))]
        public string[] Node { get; set; } = new string[0];

        /// <summary>address/prefix, for example 198.18.0.50/24 or 2001:db8::50/64.</summary>
        [Parameter(Mandatory = true)]
        [ValidateNotNullOrEmpty]
        public string VirtualIP { get; set; } = "";

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? Interface { get; set; }

        /// <summary>Local folder whose files (not its subfolders) become the module's scripts.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? ScriptPath { get; set; }

        /// <summary>Local userconfig.xml with the module's other settings; the parameters win over it.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? ConfigFile { get; set; }

        /// <summary>The request for the engine; calls <see cref="SKCmdletBase.ThrowInvalidArgument"/> for a wrong value.</summary>
        protected abstract TRequest BuildRequest();

        /// <summary>The ShouldProcess target, for example "mirror module 'web' on nodes n1, n2 with virtual IP 198.18.0.50/24".</summary>
        protected abstract string TargetOf(TRequest request);

        /// <summary>Sends the request.</summary>
        protected abstract Task<ModuleInfo> AddAsync(SKApiClient client, TRequest request, CancellationToken ct);

        protected override void BeginProcessing()
        {
            _request = BuildRequest();
            base.BeginProcessing();
        }

        protected override void ProcessRecord()
        {
            var request = _request!;
            if (!ShouldProcess(TargetOf(request), "Add")) return;
            if (TryCall((client, ct) => AddAsync(client, request, ct), Name, out var module))
                WriteObject(module);
        }

        /// <summary>-Node trimmed.</summary>
        protected List<string> Nodes() => Node.Select(n => n.Trim()).ToList();

        /// <summary>-VirtualIP trimmed, or InvalidArgument when it is not address/prefix.</summary>
        protected string CheckedVirtualIP()
        {
            var vip = VirtualIP.Trim();
            if (!TryParseAddressPrefix(vip, out var vipError))
                ThrowInvalidArgument($"-VirtualIP '{VirtualIP}' is not address/prefix (for example 198.18.0.50/24 or 2001:db8::50/64): {vipError}", VirtualIP);
            return vip;
        }

        /// <summary>The scripts of -ScriptPath, by file name as base64; empty without -ScriptPath.</summary>
        protected Dictionary<string, string> Scripts() =>
            ScriptPath == null ? new Dictionary<string, string>() : ReadScripts(ScriptPath);

        /// <summary>The text and full path of -ConfigFile; nulls without -ConfigFile.</summary>
        protected (string? Xml, string? Source) UserConfig()
        {
            if (ConfigFile == null) return (null, null);
            var path = LocalPath(ConfigFile, nameof(ConfigFile));
            if (!File.Exists(path))
                ThrowInvalidArgument($"-ConfigFile '{ConfigFile}' is not a file ({path}).", ConfigFile);
            return (Read(() => File.ReadAllText(path), ConfigFile), path);
        }

        /// <summary>Each file of the folder (not of its subfolders), by name, as base64.</summary>
        private Dictionary<string, string> ReadScripts(string folder)
        {
            var path = LocalPath(folder, nameof(ScriptPath));
            if (!Directory.Exists(path))
                ThrowInvalidArgument($"-ScriptPath '{folder}' is not a folder ({path}).", folder);
            var scripts = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var file in Read(() => Directory.GetFiles(path), folder).OrderBy(f => f, StringComparer.Ordinal))
                scripts[Path.GetFileName(file)] = Convert.ToBase64String(Read(() => File.ReadAllBytes(file), file));
            return scripts;
        }

        /// <summary>A path of this computer, relative to the PowerShell location (not the process's current directory).</summary>
        private string LocalPath(string path, string parameter)
        {
            try
            {
                return SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);
            }
            catch (Exception e) when (e is ItemNotFoundException || e is ProviderNotFoundException || e is System.Management.Automation.DriveNotFoundException
                                      || e is NotSupportedException || e is PSArgumentException)
            {
                ThrowInvalidArgument($"-{parameter} '{path}' is not a path of this computer: {e.Message}", path);
                throw; // not reached: ThrowInvalidArgument throws
            }
        }

        private T Read<T>(Func<T> read, string path)
        {
            try
            {
                return read();
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                ThrowInvalidArgument($"Cannot read '{path}': {e.Message}", path);
                throw; // not reached
            }
        }

        /// <summary>address/prefix: a full IPv4 (four decimal parts) or IPv6 address without zone, and a prefix length 1-32 or 1-128.</summary>
        internal static bool TryParseAddressPrefix(string text, out string error)
        {
            error = "";
            var slash = text.IndexOf('/');
            if (slash < 0) { error = "the /prefix is missing."; return false; }
            var addressText = text.Substring(0, slash);
            var prefixText = text.Substring(slash + 1);
            if (addressText.IndexOf('%') >= 0 || !IPAddress.TryParse(addressText, out var address))
            {
                error = $"'{addressText}' is not an IP address.";
                return false;
            }
            int maxPrefix;
            if (address.AddressFamily == AddressFamily.InterNetwork)
            {
                // IPAddress.TryParse also takes "10.1" and "0x0a.0.0.1": only the dotted-decimal form is an address here.
                if (address.ToString() != addressText) { error = $"'{addressText}' is not an IPv4 address in dotted-decimal form."; return false; }
                maxPrefix = 32;
            }
            else
            {
                maxPrefix = 128;
            }
            if (prefixText.Length == 0 || prefixText.Length > 3 || !prefixText.All(c => c >= '0' && c <= '9')
                || !int.TryParse(prefixText, out var prefix) || prefix < 1 || prefix > maxPrefix)
            {
                error = $"'{prefixText}' is not a prefix length from 1 to {maxPrefix}.";
                return false;
            }
            return true;
        }
    }
}
