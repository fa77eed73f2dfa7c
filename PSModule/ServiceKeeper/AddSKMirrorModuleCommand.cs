using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>
    /// Installs a mirror module (two nodes, primary/secondary, replicated directories, a virtual IP) on its
    /// nodes. Checks here only what is wrong whatever the cluster (the VIP's syntax, two distinct nodes,
    /// the initial primary among them, local files that must exist); the engine validates the rest, with the
    /// file and line of the configuration (InvalidConfiguration).
    /// </summary>
    [Cmdlet(VerbsCommon.Add, "SKMirrorModule", SupportsShouldProcess = true)]
    [OutputType(typeof(ModuleInfo))]
    public sealed class AddSKMirrorModuleCommand : SKAddModuleCommandBase<AddMirrorModuleRequest>
    {
        /// <summary>Directories on the nodes that are replicated from primary to secondary.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[]? ReplicatedDirectory { get; set; }

        /// <summary>Addresses the split-brain checker pings.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[]? Witness { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(NodeNameCompleter))]
        public string? InitialPrimary { get; set; }

        protected override AddMirrorModuleRequest BuildRequest()
        {
            var nodes = Nodes();
            if (nodes.Count != 2 || string.Equals(nodes[0], nodes[1], StringComparison.OrdinalIgnoreCase))
                ThrowInvalidArgument($"A mirror module runs on exactly two different nodes; -Node has {string.Join(", ", nodes)}.", string.Join(",", nodes));
            var vip = CheckedVirtualIP();
            if (InitialPrimary != null && !nodes.Contains(InitialPrimary.Trim(), StringComparer.OrdinalIgnoreCase))
                ThrowInvalidArgument($"-InitialPrimary '{InitialPrimary}' is not one of the module's nodes ({string.Join(", ", nodes)}).", InitialPrimary);

            var scripts = Scripts();
            var (xml, source) = UserConfig();
            return new AddMirrorModuleRequest
            {
                Name = Name,
                Nodes = nodes,
                VirtualIP = vip,
                Interface = Interface,
                ReplicatedDirectories = ReplicatedDirectory?.ToList() ?? new List<string>(),
                Witnesses = Witness?.ToList() ?? new List<string>(),
                InitialPrimary = InitialPrimary?.Trim(),
                Scripts = scripts,
                UserConfigXml = xml,
                UserConfigSource = source,
            };
        }

        protected override string TargetOf(AddMirrorModuleRequest request) =>
            $"mirror module '{Name}' on nodes {string.Join(", ", request.Nodes)} with virtual IP {request.VirtualIP}";

        protected override Task<ModuleInfo> AddAsync(SKApiClient client, AddMirrorModuleRequest request, CancellationToken ct) =>
            client.AddMirrorModuleAsync(request, ct);
    }
}
