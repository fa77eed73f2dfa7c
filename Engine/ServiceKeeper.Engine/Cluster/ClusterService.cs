// Cluster membership as the admin manages it: create on all nodes, join, remove, node status and validation.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Hosting;
using ServiceKeeper.Engine.Node;

namespace ServiceKeeper.Engine.Cluster
{
    public sealed partial class ClusterService(
        EngineOptions options, ClusterState state, PeerClients peers, NodeInfoProvider nodeInfo,
        TlsIdentity tls, TimeProvider time, ILogger<ClusterService> log)
    {
        public const int MaxNodes = 64;
        /// <summary>How long a status probe waits for a peer: short, an unreachable node is the answer to give.</summary>
        private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(3);
        /// <summary>Creating a cluster is not urgent: a busy node must not make it fail.</summary>
        private static readonly TimeSpan CreateTimeout = TimeSpan.FromSeconds(15);
        private readonly SemaphoreSlim _mutex = new(1, 1);

        public NodeInfo LocalInfo() => nodeInfo.GetInfo(state, tls.Thumbprint);

        public ClusterInfo Get() => ToInfo(RequireCluster(), state.ConfigHash!);

        public ClusterConfig RequireCluster() =>
            state.Config ?? throw new SKApiException(ErrorIds.ClusterNotFound,
                $"Node '{options.NodeName}' does not belong to a cluster. Create one with New-SKCluster.", options.NodeName);

        /// <summary>Creates the cluster on every listed engine: probe all, build cluster.xml, push it with a new key.</summary>
        public async Task<ClusterInfo> CreateAsync(CreateClusterRequest request, CancellationToken ct)
        {
            if (string.IsNullOrWhiteSpace(request.Name) || !EngineOptions.IsValidNodeName(request.Name))
                throw new SKApiException(ErrorIds.InvalidArgument, $"'{request.Name}' is not a valid cluster name (letters, digits, '-', '_', '.', at most 63).", request.Name);
            if (request.Nodes.Count == 0 || request.Nodes.Count > MaxNodes)
                throw new SKApiException(ErrorIds.InvalidArgument, $"A cluster has 1 to {MaxNodes} nodes; {request.Nodes.Count} were given.");

            await _mutex.WaitAsync(ct);
            try
            {
                if (state.Config is { } existing)
                    throw new SKApiException(ErrorIds.ClusterExists, $"Node '{options.NodeName}' already belongs to cluster '{existing.Name}'. Remove it first with Remove-SKCluster.", options.NodeName);

                var candidates = await Task.WhenAll(request.Nodes.Select(n => ProbeCandidateAsync(n, ct)));
                try
                {
                    CheckCandidates(candidates);
                    var config = new ClusterConfig
                    {
                        Id = Guid.NewGuid().ToString(),
                        Name = request.Name,
                        CreatedUtc = DateTime.SpecifyKind(time.GetUtcNow().UtcDateTime, DateTimeKind.Utc),
                        Nodes = candidates.Select(c => new ClusterNodeConfig
                        {
                            Name = c.Info.Name,
                            ApiAddress = c.Address.ToString(),
                            ApiPort = c.Port,
                            CertificateThumbprint = c.Thumbprint,
                        }).ToList(),
                        Lans = NetworkPlanner.Plan(candidates.Select(c => (c.Info.Name, c.Address, c.Info.Addresses)).ToList()),
                    };
                    var xml = ClusterConfigFile.ToXml(config);
                    var key = Convert.ToHexString(RandomNumberGenerator.GetBytes(32)).ToLowerInvariant();
                    await PushAsync(config, xml, key, ct);
                    LogClusterCreated(config.Name, config.Id, string.Join(", ", config.Nodes.Select(n => n.Name)));
                    return ToInfo(config, ClusterState.Hash(xml));
                }
                finally
                {
                    foreach (var c in candidates) c.Client.Dispose();
                }
            }
            finally
            {
                _mutex.Release();
            }
        }

        private sealed record Candidate(string Given, IPAddress Address, int Port, NodeInfo Info, string? Thumbprint, SKApiClient Client);

        private async Task<Candidate> ProbeCandidateAsync(string given, CancellationToken ct)
        {
            if (!SKEndpoint.TryParseHostPort(given, out var host, out var port, out var error))
                throw new SKApiException(ErrorIds.InvalidArgument, error, given);
            IPAddress address;
            if (!IPAddress.TryParse(host, out address!))
            {
                try
                {
                    var all = await Dns.GetHostAddressesAsync(host, ct);
                    address = all.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? all.First();
                }
                catch (Exception ex) when (ex is SocketException or InvalidOperationException)
                {
                    throw new SKApiException(ErrorIds.NodeUnreachable, $"Cannot resolve node '{host}': {ex.Message}", given);
                }
            }
            if (IPAddress.IsLoopback(address))
                throw new SKApiException(ErrorIds.InvalidArgument, $"Node '{given}' is a loopback address; give an address the other nodes can reach.", given);

            var client = peers.ForCandidate(address.ToString(), port, CreateTimeout);
            try
            {
                var info = await client.GetNodeInfoAsync(ct);
                return new Candidate(given, address, port, info, client.LastServerThumbprint, client);
            }
            catch (SKApiException ex)
            {
                client.Dispose();
                throw ex.ErrorId == ErrorIds.AuthenticationFailed
                    ? new SKApiException(ErrorIds.AuthenticationFailed,
                        $"Node '{given}' refused the admin key of node '{options.NodeName}': every node of a cluster must have the same admin key (<home>/api/admin.key).", given)
                    : new SKApiException(ex.ErrorId, $"Node '{given}': {ex.Message}", given);
            }
        }

        private static void CheckCandidates(Candidate[] candidates)
        {
            foreach (var group in candidates.GroupBy(c => c.Info.Name, StringComparer.OrdinalIgnoreCase).Where(g => g.Count() > 1))
                throw new SKApiException(ErrorIds.InvalidArgument,
                    $"{string.Join(" and ", group.Select(c => "'" + c.Given + "'"))} are the same node name '{group.Key}': each node needs its own name (servicekeeper run --node-name).", group.Key);
            foreach (var c in candidates.Where(c => c.Info.ClusterId != null))
                throw new SKApiException(ErrorIds.ClusterExists,
                    $"Node '{c.Info.Name}' ({c.Given}) already belongs to cluster '{c.Info.ClusterName}'. Remove it from that cluster first.", c.Info.Name);
        }

        /// <summary>Pushes cluster.xml and the key to every node; undoes it everywhere when one node fails.</summary>
        private async Task PushAsync(ClusterConfig config, string xml, string key, CancellationToken ct)
        {
            var joined = new List<ClusterNodeConfig>();
            var request = new JoinClusterRequest { ClusterXml = xml, ClusterKey = key };
            var failures = new List<SKApiException>();
            await Task.WhenAll(config.Nodes.Select(async node =>
            {
                using var client = peers.ForMember(node, timeout: CreateTimeout);
                try
                {
                    // This engine holds the mutex already: join in place, not through its own API.
                    if (node.Name == options.NodeName) JoinCore(request);
                    else await client.JoinClusterAsync(request, ct);
                    lock (joined) joined.Add(node);
                }
                catch (SKApiException ex)
                {
                    lock (failures) failures.Add(new SKApiException(ex.ErrorId, $"Node '{node.Name}' did not join: {ex.Message}", node.Name));
                }
            }));
            if (failures.Count == 0) return;

            foreach (var node in joined)
            {
                using var client = peers.ForMember(node, timeout: ProbeTimeout);
                try
                {
                    if (node.Name == options.NodeName) LeaveCore(config.Id);
                    else await client.LeaveClusterAsync(config.Id, CancellationToken.None);
                }
                catch (SKApiException ex) { LogRollbackFailed(node.Name, ex.Message); }
            }
            throw failures[0];
        }

        /// <summary>Internal: another engine pushes the cluster to this node.</summary>
        public async Task<NodeInfo> JoinAsync(JoinClusterRequest request, CancellationToken ct)
        {
            await _mutex.WaitAsync(ct);
            try
            {
                JoinCore(request);
                return LocalInfo();
            }
            finally
            {
                _mutex.Release();
            }
        }

        private void JoinCore(JoinClusterRequest request)
        {
            var config = ClusterConfigFile.Parse(request.ClusterXml, "cluster.xml");
            if (request.ClusterKey.Length < 32)
                throw new SKApiException(ErrorIds.InvalidArgument, "The cluster key is too short.");
            if (state.Config is { } existing && existing.Id != config.Id)
                throw new SKApiException(ErrorIds.ClusterExists, $"Node '{options.NodeName}' already belongs to cluster '{existing.Name}'.", options.NodeName);
            state.Save(request.ClusterXml, request.ClusterKey, options.NodeName);
            LogJoined(config.Name, config.Id);
        }

        /// <summary>Internal: forget the cluster on this node (idempotent).</summary>
        public async Task<NodeInfo> LeaveAsync(string clusterId, CancellationToken ct)
        {
            await _mutex.WaitAsync(ct);
            try
            {
                LeaveCore(clusterId);
                return LocalInfo();
            }
            finally
            {
                _mutex.Release();
            }
        }

        private void LeaveCore(string clusterId)
        {
            if (state.Config is not { } current) return;
            if (current.Id != clusterId)
                throw new SKApiException(ErrorIds.ClusterNotFound, $"Node '{options.NodeName}' belongs to another cluster ('{current.Name}').", options.NodeName);
            ClusterRemoved?.Invoke();
            state.Delete();
            LogLeft(current.Name, clusterId);
        }

        /// <summary>Raised on this node before the cluster files are deleted (modules go with the cluster).</summary>
        public event Action? ClusterRemoved;

        /// <summary>Removes the cluster from every node. Without force nothing is removed unless all nodes answer.</summary>
        public async Task<List<string>> RemoveAsync(bool force, CancellationToken ct)
        {
            await _mutex.WaitAsync(ct);
            try
            {
                return await RemoveCoreAsync(force, ct);
            }
            finally
            {
                _mutex.Release();
            }
        }

        private async Task<List<string>> RemoveCoreAsync(bool force, CancellationToken ct)
        {
            var config = RequireCluster();
            var others = config.Nodes.Where(n => n.Name != options.NodeName).ToList();
            var status = await Task.WhenAll(others.Select(n => ProbeMemberAsync(n, ct)));
            var unreachable = status.Where(s => !s.Reachable).ToList();
            if (unreachable.Count > 0 && !force)
                throw new SKApiException(ErrorIds.NodeUnreachable,
                    $"Cannot remove cluster '{config.Name}': {string.Join(", ", unreachable.Select(u => $"node '{u.Name}' does not answer ({u.Error})"))}. " +
                    "Nothing was removed. Bring the node back, or use -Force to remove the cluster from the nodes that answer.",
                    unreachable[0].Name);

            var removed = new List<string>();
            foreach (var node in others.Where(n => status.First(s => s.Name == n.Name).Reachable))
            {
                using var client = peers.ForMember(node, timeout: ProbeTimeout);
                try
                {
                    await client.LeaveClusterAsync(config.Id, ct);
                    removed.Add(node.Name);
                }
                catch (SKApiException ex)
                {
                    LogRemoveFailed(node.Name, ex.Message);
                    if (!force) throw;
                }
            }
            if (config.Nodes.Any(n => n.Name == options.NodeName))
            {
                LeaveCore(config.Id);
                removed.Add(options.NodeName);
            }
            return removed;
        }

        /// <summary>Every node of the cluster as seen from here: reachable, version, clock offset.</summary>
        public async Task<List<NodeStatus>> GetNodesAsync(CancellationToken ct)
        {
            var config = RequireCluster();
            var result = await Task.WhenAll(config.Nodes.Select(n => ProbeMemberAsync(n, ct)));
            return result.Select(r => r.Status).ToList();
        }

        private sealed record MemberProbe(string Name, bool Reachable, string? Error, NodeStatus Status, NodeInfo? Info);

        private async Task<MemberProbe> ProbeMemberAsync(ClusterNodeConfig node, CancellationToken ct)
        {
            var config = state.Config!;
            var status = new NodeStatus
            {
                Name = node.Name,
                ClusterName = config.Name,
                Addresses = config.Lans.SelectMany(l => l.Members).Where(m => m.Node == node.Name).Select(m => m.Address).Distinct().ToList(),
            };
            if (node.Name == options.NodeName)
            {
                var local = LocalInfo();
                status.Reachable = true;
                status.EngineVersion = local.EngineVersion;
                status.ClockOffsetMs = 0;
                return new MemberProbe(node.Name, true, null, status, local);
            }
            string? lastError = null;
            // The API address first, then the node's address on every other network.
            foreach (var address in new[] { node.ApiAddress }.Concat(status.Addresses).Distinct())
            {
                using var client = peers.ForMember(node, address, ProbeTimeout);
                try
                {
                    var before = time.GetUtcNow();
                    var start = time.GetTimestamp();
                    var info = await client.GetNodeInfoAsync(ct);
                    var roundTrip = time.GetElapsedTime(start);
                    var midpoint = before + roundTrip / 2;
                    status.Reachable = true;
                    status.EngineVersion = info.EngineVersion;
                    status.ClockOffsetMs = Math.Round((new DateTimeOffset(DateTime.SpecifyKind(info.UtcTime, DateTimeKind.Utc)) - midpoint).TotalMilliseconds, 1);
                    return new MemberProbe(node.Name, true, null, status, info);
                }
                catch (SKApiException ex)
                {
                    lastError = ex.Message;
                }
            }
            status.Error = lastError;
            return new MemberProbe(node.Name, false, lastError, status, null);
        }

        /// <summary>This node's view of every peer on every network (a TCP connect to its API port).</summary>
        public async Task<List<ClusterCheck>> CheckReachabilityAsync(CancellationToken ct)
        {
            var config = RequireCluster();
            var checks = new List<(LanConfig Lan, LanMember Member, ClusterNodeConfig Node)>();
            foreach (var lan in config.Lans)
                foreach (var member in lan.Members.Where(m => m.Node != options.NodeName))
                    checks.Add((lan, member, config.Nodes.First(n => n.Name == member.Node)));
            var results = await Task.WhenAll(checks.Select(async c =>
            {
                var (ok, detail) = await TcpConnectAsync(c.Member.Address, c.Node.ApiPort, ct);
                return new ClusterCheck
                {
                    Check = "NetworkReachability",
                    Node = $"{options.NodeName} -> {c.Member.Node}",
                    Network = c.Lan.Name,
                    Result = ok ? CheckResult.Passed : CheckResult.Failed,
                    Reason = ok
                        ? $"{options.NodeName} reaches {c.Member.Node} at {c.Member.Address}:{c.Node.ApiPort} in {detail}."
                        : $"{options.NodeName} cannot reach {c.Member.Node} at {c.Member.Address}:{c.Node.ApiPort}: {detail}.",
                };
            }));
            return results.ToList();
        }

        private static async Task<(bool Ok, string Detail)> TcpConnectAsync(string address, int port, CancellationToken ct)
        {
            using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(2));
            var watch = Stopwatch.StartNew();
            try
            {
                await socket.ConnectAsync(IPAddress.Parse(address), port, timeout.Token);
                return (true, $"{watch.Elapsed.TotalMilliseconds:0.0} ms");
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                return (false, "no answer within 2 s");
            }
            catch (SocketException ex)
            {
                return (false, ex.Message);
            }
        }

        /// <summary>The validation report of Test-SKCluster, gathered from every node.</summary>
        public async Task<List<ClusterCheck>> TestAsync(CancellationToken ct)
        {
            var config = RequireCluster();
            var probes = await Task.WhenAll(config.Nodes.Select(n => ProbeMemberAsync(n, ct)));
            var report = new List<ClusterCheck>();
            foreach (var probe in probes.Where(p => !p.Reachable))
                report.Add(Failed("NodeReachable", probe.Name, null, $"Node '{probe.Name}' does not answer: {probe.Error}"));

            // Every reachable node checks its paths to every other node on every network.
            var meshes = await Task.WhenAll(probes.Where(p => p.Reachable).Select(async p =>
            {
                if (p.Name == options.NodeName) return await CheckReachabilityAsync(ct);
                using var client = peers.ForMember(config.Nodes.First(n => n.Name == p.Name), timeout: TimeSpan.FromSeconds(8));
                try { return await client.GetReachabilityAsync(ct); }
                catch (SKApiException ex) { return [Failed("NetworkReachability", p.Name, null, $"Node '{p.Name}' could not test its networks: {ex.Message}")]; }
            }));
            report.AddRange(meshes.SelectMany(m => m));

            var versions = probes.Where(p => p.Info != null).Select(p => p.Info!.EngineVersion).Distinct().ToList();
            foreach (var p in probes.Where(p => p.Info != null))
            {
                var info = p.Info!;
                report.Add(info.ClusterConfigHash == state.ConfigHash
                    ? Passed("ClusterConfiguration", p.Name, "cluster.xml is identical to this node's.")
                    : Failed("ClusterConfiguration", p.Name, null, info.ClusterConfigHash == null
                        ? $"Node '{p.Name}' holds no cluster configuration."
                        : $"Node '{p.Name}' holds a different cluster.xml (hash {Short(info.ClusterConfigHash)} vs {Short(state.ConfigHash)})."));

                var offset = Math.Abs(p.Status.ClockOffsetMs ?? 0);
                report.Add(new ClusterCheck
                {
                    Check = "ClockSkew", Node = p.Name,
                    Result = offset < 500 ? CheckResult.Passed : offset < 2000 ? CheckResult.Warning : CheckResult.Failed,
                    Reason = $"Clock offset {p.Status.ClockOffsetMs:0.0} ms from {options.NodeName}" +
                             (offset < 500 ? "." : "; synchronise the clocks (NTP): logs and timeouts compare times across nodes."),
                });

                report.Add(versions.Count == 1
                    ? Passed("EngineVersion", p.Name, $"Engine {info.EngineVersion}, the same on every reachable node.")
                    : new ClusterCheck { Check = "EngineVersion", Node = p.Name, Result = CheckResult.Warning, Reason = $"Engine {info.EngineVersion}; the nodes run {string.Join(", ", versions)}." });

                report.Add(info.Capabilities.PortsInUse.Count == 0
                    ? Passed("Ports", p.Name, $"Heartbeat udp/{NodeInfoProvider.HeartbeatPort} and replication tcp/{NodeInfoProvider.ReplicationPort} are free.")
                    : Failed("Ports", p.Name, null, $"Already in use by another program: {string.Join(", ", info.Capabilities.PortsInUse)}."));

                report.Add(info.Capabilities.Fuse
                    ? Passed("Fuse", p.Name, "FUSE is available for replicated directories.")
                    : new ClusterCheck { Check = "Fuse", Node = p.Name, Result = CheckResult.Warning, Reason = "Mirror modules with replicated directories cannot run here: " + info.Capabilities.FuseReason + "." });

                report.Add(info.Capabilities.Nftables
                    ? Passed("Nftables", p.Name, "nftables is available for farm modules.")
                    : new ClusterCheck { Check = "Nftables", Node = p.Name, Result = CheckResult.Warning, Reason = "Farm modules cannot run here: " + info.Capabilities.NftablesReason + "." });
            }
            return report;
        }

        private static string Short(string? hash) => hash == null ? "none" : hash[..12];

        private static ClusterCheck Passed(string check, string node, string reason) =>
            new() { Check = check, Node = node, Result = CheckResult.Passed, Reason = reason };

        private static ClusterCheck Failed(string check, string node, string? network, string reason) =>
            new() { Check = check, Node = node, Network = network, Result = CheckResult.Failed, Reason = reason };

        public static ClusterInfo ToInfo(ClusterConfig config, string hash) => new()
        {
            Id = config.Id,
            Name = config.Name,
            CreatedUtc = config.CreatedUtc,
            ConfigHash = hash,
            Nodes = config.Nodes.Select(n => new ClusterNode
            {
                Name = n.Name, ApiAddress = n.ApiAddress, ApiPort = n.ApiPort, CertificateThumbprint = n.CertificateThumbprint,
            }).ToList(),
            Networks = config.Lans.Select(l => new ClusterNetwork
            {
                Name = l.Name,
                Members = l.Members.Select(m => new ClusterNetworkMember { Node = m.Node, Address = m.Address }).ToList(),
            }).ToList(),
        };

        [LoggerMessage(Level = LogLevel.Information, Message = "cluster {Name} ({Id}) created with nodes {Nodes}")]
        private partial void LogClusterCreated(string name, string id, string nodes);

        [LoggerMessage(Level = LogLevel.Information, Message = "joined cluster {Name} ({Id})")]
        private partial void LogJoined(string name, string id);

        [LoggerMessage(Level = LogLevel.Information, Message = "left cluster {Name} ({Id})")]
        private partial void LogLeft(string name, string id);

        [LoggerMessage(Level = LogLevel.Warning, Message = "could not undo the join on node {Node}: {Error}")]
        private partial void LogRollbackFailed(string node, string error);

        [LoggerMessage(Level = LogLevel.Warning, Message = "could not remove the cluster from node {Node}: {Error}")]
        private partial void LogRemoveFailed(string node, string error);
    }
}
