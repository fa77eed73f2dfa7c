// Cluster-wide module operations: whichever node the admin asks, the command reaches the module's
// nodes (this one directly, the others through their API) and the answers come back together.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Cluster;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Hosting;

namespace ServiceKeeper.Engine.Modules
{
    public sealed class ModuleControl(EngineOptions options, ClusterService cluster, ModuleStore store, ModuleRuntime runtime, PeerClients peers)
    {
        /// <summary>How long a state query waits for one node: an admin watching a failover wants answers, not timeouts.</summary>
        public static readonly TimeSpan StateTimeout = TimeSpan.FromSeconds(1.5);

        /// <summary>Every module on every node (or one module), unreachable nodes reported as such.</summary>
        public async Task<List<ModuleState>> GetStateAsync(string? module, CancellationToken ct)
        {
            var config = cluster.RequireCluster();
            var unreachable = new List<(string Node, string Error)>();
            var perNode = await Task.WhenAll(config.Nodes.Select(async node =>
            {
                if (node.Name == options.NodeName) return runtime.LocalStates();
                using var client = peers.ForMember(node, timeout: StateTimeout);
                try
                {
                    return await client.GetLocalStateAsync(ct);
                }
                catch (SKApiException ex) when (ex.ErrorId is ErrorIds.NodeUnreachable or ErrorIds.AuthenticationFailed)
                {
                    lock (unreachable) unreachable.Add((node.Name, ex.Message));
                    return [];
                }
            }));
            var states = perNode.SelectMany(s => s).Where(s => module == null || s.Module == module).ToList();
            if (unreachable.Count > 0)
            {
                // A node that does not answer still belongs to its modules: show it, as unreachable.
                var modules = states.Select(s => s.Module).Append(module).OfType<string>().Distinct().ToList();
                foreach (var name in modules)
                {
                    List<string> nodes;
                    try { nodes = await ModuleNodesAsync(name, ct); }
                    catch (SKApiException) { continue; }
                    foreach (var (node, error) in unreachable.Where(u => nodes.Contains(u.Node)))
                        states.Add(new ModuleState { Module = name, Node = node, Kind = states.FirstOrDefault(s => s.Module == name)?.Kind ?? "", Reachable = false, Error = error });
                }
            }
            return states.OrderBy(s => s.Module, StringComparer.Ordinal).ThenBy(s => s.Node, StringComparer.Ordinal).ToList();
        }

        /// <summary>Sends an admin command to the module's nodes (or the one named) in the order it needs.</summary>
        public async Task<List<ModuleState>> CommandAsync(string module, ModuleCommandRequest request, CancellationToken ct)
        {
            var nodes = await ModuleNodesAsync(module, ct);
            if (request.Node != null && !nodes.Contains(request.Node))
                throw new SKApiException(ErrorIds.NodeNotFound, $"Module '{module}' does not run on a node named '{request.Node}' (its nodes: {string.Join(", ", nodes)}).", request.Node);
            List<string> targets;
            switch (request.Command)
            {
                case ModuleCommands.Swap:
                    // The primary starts a swap.
                    var states = await GetStateAsync(module, ct);
                    var primary = states.FirstOrDefault(s => s.State == "PRIM")
                        ?? throw new SKApiException(ErrorIds.InvalidModuleState,
                            $"Module '{module}' has no PRIM node to swap with its secondary ({Describe(states)}).", module);
                    targets = [primary.Node];
                    break;
                case ModuleCommands.Prim or ModuleCommands.Second when request.Node == null:
                    throw new SKApiException(ErrorIds.InvalidArgument, $"'{request.Command}' needs the node: -Node.", module);
                case ModuleCommands.Start or ModuleCommands.Stop or ModuleCommands.Restart or ModuleCommands.Prim or ModuleCommands.Second:
                    targets = request.Node != null ? [request.Node] : await OrderForAsync(module, request.Command, nodes, ct);
                    break;
                default:
                    throw new SKApiException(ErrorIds.InvalidArgument, $"Unknown module command '{request.Command}'.", module);
            }

            var results = new List<ModuleState>();
            if (request.Command is ModuleCommands.Stop && targets.Count > 1)
            {
                // The secondary first: the primary then goes on alone and stops last, so it is the one that
                // knows its data is the newest, and either start order afterwards does the right thing.
                foreach (var node in targets)
                {
                    results.Add(await SendAsync(node, module, request, ct));
                    if (node != targets[^1]) await WaitStoppedAsync(module, node, ct);
                }
            }
            else
            {
                results.AddRange(await Task.WhenAll(targets.Select(node => SendAsync(node, module, request, ct))));
            }
            return results;
        }

        public async Task<List<ModuleState>> SetMaintenanceAsync(string module, MaintenanceRequest request, CancellationToken ct)
        {
            var nodes = await ModuleNodesAsync(module, ct);
            if (request.Node != null && !nodes.Contains(request.Node))
                throw new SKApiException(ErrorIds.NodeNotFound, $"Module '{module}' does not run on a node named '{request.Node}'.", request.Node);
            var targets = request.Node != null ? [request.Node] : nodes;
            return (await Task.WhenAll(targets.Select(async node =>
            {
                if (node == options.NodeName) return await runtime.Get(module).SetMaintenanceAsync(request);
                using var client = Peer(node);
                return await client.SetLocalMaintenanceAsync(module, request, ct);
            }))).ToList();
        }

        public async Task<List<FarmLoad>> GetFarmLoadAsync(string module, CancellationToken ct)
        {
            var nodes = await ModuleNodesAsync(module, ct);
            var all = await Task.WhenAll(nodes.Select(async n =>
            {
                if (n == options.NodeName) return LocalFarmLoad(module);
                using var client = Peer(n);
                try { return await client.GetLocalFarmLoadAsync(module, ct); }
                catch (SKApiException ex) when (ex.ErrorId is ErrorIds.NodeUnreachable or ErrorIds.AuthenticationFailed)
                {
                    return [new FarmLoad { Module = module, Node = n, Reachable = false, Error = ex.Message }];
                }
            }));
            return all.SelectMany(l => l).OrderBy(l => l.Node, StringComparer.Ordinal).ToList();
        }

        public List<FarmLoad> LocalFarmLoad(string module) =>
            runtime.Get(module) is Farm.FarmHost farm ? farm.Load()
                : throw new SKApiException(ErrorIds.InvalidModuleState, $"Module '{module}' is not a farm module.", module);

        public async Task<List<ReplicationStatus>> GetReplicationAsync(string module, string? node, CancellationToken ct)
        {
            var nodes = await ModuleNodesAsync(module, ct);
            if (node != null && !nodes.Contains(node))
                throw new SKApiException(ErrorIds.NodeNotFound, $"Module '{module}' does not run on a node named '{node}'.", node);
            var all = await Task.WhenAll((node != null ? [node] : nodes).Select(async n =>
            {
                if (n == options.NodeName) return LocalReplication(module);
                using var client = Peer(n);
                try { return await client.GetLocalReplicationAsync(module, ct); }
                catch (SKApiException ex) when (ex.ErrorId is ErrorIds.NodeUnreachable or ErrorIds.AuthenticationFailed)
                {
                    return [new ReplicationStatus { Module = module, Node = n, Reachable = false, Error = ex.Message }];
                }
            }));
            return all.SelectMany(r => r).OrderBy(r => r.Node, StringComparer.Ordinal).ThenBy(r => r.Directory, StringComparer.Ordinal).ToList();
        }

        public List<ReplicationStatus> LocalReplication(string module) => Mirror(module).ReplicationStatus().ToList();

        public Task<ReplicationManifest> LocalManifestAsync(string module, ManifestRequest? only, CancellationToken ct) => Mirror(module).BuildManifestAsync(only, ct);

        /// <summary>Comparisons a difference must survive to be reported (see <see cref="TestReplicationAsync"/>).</summary>
        private const int ComparisonPasses = 3;

        /// <summary>
        /// Test-SKReplication: both nodes list their copies by content hash and the serving node's list is
        /// compared with the other's. Refused unless one node serves and the other is its secondary. The paths that
        /// differ are compared again (up to <see cref="ComparisonPasses"/> passes in all, a second apart) and only
        /// what differs in every pass is reported (<see cref="Replication.ManifestComparison.CompareRepeatedlyAsync"/>).
        /// </summary>
        public Task<List<ReplicationDifference>> TestReplicationAsync(string module, CancellationToken ct) =>
            Replication.ManifestComparison.CompareRepeatedlyAsync(
                (only, token) => CompareCopiesAsync(module, only, token), ComparisonPasses, TimeSpan.FromSeconds(1), TimeProvider.System, ct);

        private async Task<List<ReplicationDifference>> CompareCopiesAsync(string module, ManifestRequest? only, CancellationToken ct)
        {
            var states = await GetStateAsync(module, ct);
            var primary = states.FirstOrDefault(s => s.Reachable && s.State is "PRIM" or "ALONE");
            var secondary = states.FirstOrDefault(s => s.Reachable && s.State == "SECOND");
            if (primary == null || secondary == null)
                throw new SKApiException(ErrorIds.InvalidModuleState,
                    $"Module '{module}' needs a primary and a secondary to compare their copies; now: " +
                    string.Join(", ", states.Select(s => s.Node + " " + (s.Reachable ? s.State : "unreachable"))) + ".", module);
            var manifests = await Task.WhenAll(new[] { primary.Node, secondary.Node }.Select(async n =>
            {
                if (n == options.NodeName) return await LocalManifestAsync(module, only, ct);
                using var client = Peer(n);
                return await client.GetLocalManifestAsync(module, only, ct);
            }));
            return Replication.ManifestComparison.Compare(module, manifests[0], manifests[1]);
        }

        private Mirror.MirrorHost Mirror(string module) =>
            runtime.Get(module) as Mirror.MirrorHost
                ?? throw new SKApiException(ErrorIds.InvalidModuleState, $"Module '{module}' is not a mirror module: it replicates nothing.", module);

        public async Task<List<ModuleResource>> GetResourcesAsync(string module, string? node, CancellationToken ct)
        {
            var nodes = await ModuleNodesAsync(module, ct);
            var targets = node != null ? [node] : nodes;
            var all = await Task.WhenAll(targets.Select(async n =>
            {
                if (n == options.NodeName) return runtime.Get(module).Resources.ToList();
                using var client = Peer(n);
                try { return await client.GetLocalResourcesAsync(module, ct); }
                catch (SKApiException ex) when (ex.ErrorId == ErrorIds.NodeUnreachable && node == null) { return []; }
            }));
            return all.SelectMany(r => r).OrderBy(r => r.Node, StringComparer.Ordinal).ThenBy(r => r.Resource, StringComparer.Ordinal).ToList();
        }

        public async Task<List<LogLine>> GetLogAsync(string module, string? node, int tail, long? after, ModuleLogReader local, CancellationToken ct)
        {
            var nodes = await ModuleNodesAsync(module, ct);
            var targets = node != null ? [node] : nodes;
            var all = await Task.WhenAll(targets.Select(async n =>
            {
                if (n == options.NodeName) return local(module, tail, after).ToList();
                using var client = Peer(n);
                try { return await client.GetLocalLogAsync(module, tail, after, ct); }
                catch (SKApiException ex) when (ex.ErrorId == ErrorIds.NodeUnreachable && node == null) { return []; }
            }));
            return all.SelectMany(l => l).OrderBy(l => l.TimeUtc).ThenBy(l => l.Node, StringComparer.Ordinal).ThenBy(l => l.Sequence).ToList();
        }

        /// <summary>How long a cluster-wide stop waits for one node to stop before it stops the next.</summary>
        public static readonly TimeSpan StopWait = TimeSpan.FromMinutes(2);

        private async Task WaitStoppedAsync(string module, string node, CancellationToken ct)
        {
            var deadline = DateTime.UtcNow + StopWait;
            while (DateTime.UtcNow < deadline)
            {
                var state = (await GetStateAsync(module, ct)).FirstOrDefault(s => s.Node == node);
                if (state == null || !state.Reachable || state.State == "STOP" && state.Ready) return;
                await Task.Delay(100, ct);
            }
            throw new SKApiException(ErrorIds.InvalidModuleState, $"Module '{module}' did not stop on {node} within {StopWait.TotalSeconds:0} s; the other nodes were left running.", module);
        }

        public delegate IReadOnlyList<LogLine> ModuleLogReader(string module, int tail, long? after);

        private async Task<ModuleState> SendAsync(string node, string module, ModuleCommandRequest request, CancellationToken ct)
        {
            var local = new ModuleCommandRequest { Command = request.Command, Force = request.Force, FullSync = request.FullSync, Drain = request.Drain, Node = node };
            if (node == options.NodeName) return await runtime.Get(module).CommandAsync(local);
            using var client = Peer(node);
            return await client.SendLocalCommandAsync(module, local, ct);
        }

        /// <summary>stop: secondaries before the primary; start: all at once.</summary>
        private async Task<List<string>> OrderForAsync(string module, string command, List<string> nodes, CancellationToken ct)
        {
            if (command != ModuleCommands.Stop) return nodes;
            var states = await GetStateAsync(module, ct);
            int Rank(string node) => states.FirstOrDefault(s => s.Node == node)?.State switch
            {
                "PRIM" or "ALONE" => 1,
                _ => 0,
            };
            return nodes.OrderBy(Rank).ToList();
        }

        /// <summary>The module's nodes, from this node's copy or, when it is not one of them, from one that is.</summary>
        private async Task<List<string>> ModuleNodesAsync(string module, CancellationToken ct)
        {
            var local = store.List().FirstOrDefault(m => m.Name == module);
            if (local != null) return local.Nodes;
            var config = cluster.RequireCluster();
            foreach (var node in config.Nodes.Where(n => n.Name != options.NodeName))
            {
                using var client = peers.ForMember(node, timeout: StateTimeout);
                try
                {
                    if ((await client.GetModulesAsync(ct)).FirstOrDefault(m => m.Name == module) is { } info) return info.Nodes;
                }
                catch (SKApiException) { }
            }
            throw new SKApiException(ErrorIds.ModuleNotFound, $"There is no module named '{module}' in cluster '{config.Name}'.", module);
        }

        private Contracts.SKApiClient Peer(string node) =>
            peers.ForMember(cluster.RequireCluster().FindNode(node) ?? throw new SKApiException(ErrorIds.NodeNotFound, $"No node '{node}' in the cluster.", node));

        private static string Describe(List<ModuleState> states) =>
            string.Join(", ", states.Select(s => s.Reachable ? $"{s.Node} {s.State}{(s.Ready ? "" : " (transient)")}" : $"{s.Node} unreachable"));
    }
}
