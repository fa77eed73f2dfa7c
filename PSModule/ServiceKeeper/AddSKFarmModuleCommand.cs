using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>
    /// Installs a farm module (one or more nodes, all active, a virtual IP whose connections are shared
    /// among them by weight) on its nodes. Checks here only what is wrong whatever the cluster (the VIP's
    /// syntax, distinct nodes, ports, the weights of -Power, local files that must exist); the engine
    /// validates the rest (InvalidConfiguration).
    /// </summary>
    [Cmdlet(VerbsCommon.Add, "SKFarmModule", SupportsShouldProcess = true)]
    [OutputType(typeof(ModuleInfo))]
    public sealed class AddSKFarmModuleCommand : SKAddModuleCommandBase<AddFarmModuleRequest>
    {
        /// <summary>Ports of the virtual IP whose connections are shared.</summary>
        [Parameter(Mandatory = true)]
        [ValidateNotNullOrEmpty]
        public int[] Port { get; set; } = new int[0];

        [Parameter]
        [ValidateSet("Tcp", "Udp")]
        public string Protocol { get; set; } = "Tcp";

        /// <summary>OnAddress: a client stays on one node (affinity). OnPort: each connection is placed on its own.</summary>
        [Parameter]
        [ValidateSet("OnAddress", "OnPort")]
        public string Rule { get; set; } = "OnAddress";

        /// <summary>Node name = weight (0 = no new traffic); nodes left out weigh 1.</summary>
        [Parameter]
        [ValidateNotNull]
        public Hashtable? Power { get; set; }

        protected override AddFarmModuleRequest BuildRequest()
        {
            var nodes = Nodes();
            var duplicates = nodes.GroupBy(n => n, StringComparer.OrdinalIgnoreCase).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
            if (nodes.Count == 0 || nodes.Any(n => n.Length == 0) || duplicates.Count > 0)
                ThrowInvalidArgument($"A farm module runs on one or more different nodes; -Node has {string.Join(", ", nodes)}.", string.Join(",", nodes));
            var vip = CheckedVirtualIP();
            foreach (var port in Port)
                if (port < 1 || port > 65535)
                    ThrowInvalidArgument($"-Port {port} is not a port from 1 to 65535.", port);
            var power = CheckedPower(nodes);

            var scripts = Scripts();
            var (xml, source) = UserConfig();
            return new AddFarmModuleRequest
            {
                Name = Name,
                Nodes = nodes,
                VirtualIP = vip,
                Interface = Interface,
                Ports = Port.ToList(),
                Protocol = Protocol.ToLowerInvariant(),
                Rule = string.Equals(Rule, "OnPort", StringComparison.OrdinalIgnoreCase) ? "on_port" : "on_addr",
                Power = power,
                Scripts = scripts,
                UserConfigXml = xml,
                UserConfigSource = source,
            };
        }

        /// <summary>-Power keyed by the node's spelling in -Node; each key a node of -Node, each value an integer ≥ 0, not every node 0.</summary>
        private Dictionary<string, int> CheckedPower(List<string> nodes)
        {
            var power = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
            if (Power == null) return power;
            foreach (DictionaryEntry entry in Power)
            {
                var key = entry.Key?.ToString()?.Trim() ?? "";
                var node = nodes.FirstOrDefault(n => string.Equals(n, key, StringComparison.OrdinalIgnoreCase));
                if (node == null)
                    ThrowInvalidArgument($"-Power names '{key}', which is not one of the module's nodes ({string.Join(", ", nodes)}).", key);
                if (!LanguagePrimitives.TryConvertTo<int>(entry.Value, System.Globalization.CultureInfo.InvariantCulture, out var weight) || weight < 0)
                    ThrowInvalidArgument($"-Power of '{key}' is '{entry.Value}': a weight is an integer of 0 or more.", key);
                power[node!] = weight;
            }
            // Nodes left out weigh 1: the farm takes no traffic only if every node is given 0.
            if (nodes.All(n => power.TryGetValue(n, out var w) && w == 0))
                ThrowInvalidArgument($"-Power gives every node a weight of 0: no node would take connections.", string.Join(",", nodes));
            return power.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        }

        protected override string TargetOf(AddFarmModuleRequest request) =>
            $"farm module '{Name}' on nodes {string.Join(", ", request.Nodes)} with virtual IP {request.VirtualIP}, {request.Protocol} port(s) {string.Join(", ", request.Ports)}";

        protected override Task<ModuleInfo> AddAsync(SKApiClient client, AddFarmModuleRequest request, CancellationToken ct) =>
            client.AddFarmModuleAsync(request, ct);
    }
}
