// The modules running on this node: one host per installed module, the engine-wide heartbeat service
// they share, and their lifecycle with the engine (start, install, remove, shutdown).
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Cluster;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Heartbeat;
using ServiceKeeper.Engine.Hosting;
using ServiceKeeper.Engine.Mirror;
using ServiceKeeper.Engine.Network;
using ServiceKeeper.Engine.Scripts;

namespace ServiceKeeper.Engine.Modules
{
    public sealed class ModuleRuntime(
        EngineOptions options, EngineHome home, ClusterState cluster, ModuleStore store, PeerClients peers,
        EnginePorts ports, IModuleLog moduleLog, IScriptRunner scripts, IVirtualIpManager vips, IProcessTable processes,
        TimeProvider time, ILoggerFactory loggers) : IAsyncDisposable
    {
        /// <summary>How long the engine waits for a module to stop cleanly when it shuts down.</summary>
        public static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(25);

        private readonly SemaphoreSlim _mutex = new(1, 1);
        private readonly Dictionary<string, IModuleHost> _hosts = new(StringComparer.Ordinal);
        private readonly ILogger _log = loggers.CreateLogger("Modules");
        private HeartbeatService? _heartbeats;

        /// <summary>Starts a host for every installed module (at engine start).</summary>
        public async Task StartAsync()
        {
            foreach (var module in store.List())
                await OnInstalledAsync(module.Name);
        }

        public IModuleHost Get(string name)
        {
            lock (_hosts)
                return _hosts.TryGetValue(name, out var host) ? host
                    : throw new SKApiException(ErrorIds.ModuleNotFound, $"There is no module named '{name}' on node '{options.NodeName}'.", name);
        }

        public List<ModuleState> LocalStates()
        {
            lock (_hosts) return _hosts.Values.Select(h => h.State).OrderBy(s => s.Module, StringComparer.Ordinal).ToList();
        }

        /// <summary>A module was installed (or reinstalled) on this node: (re)start its host.</summary>
        public async Task OnInstalledAsync(string name)
        {
            await _mutex.WaitAsync();
            try
            {
                await RemoveHostAsync(name, keepStartedFlag: true);
                var info = store.Get(name);
                var config = UserConfigFile.Load(Path.Combine(home.ModuleDirectory(name), "userconfig.xml"), cluster.Config);
                IModuleHost host = config.Mode == ModuleMode.Mirror
                    ? new MirrorHost(Context(), info, config)
                    : new Farm.FarmHost(Context(), info, config);
                lock (_hosts) _hosts[name] = host;
                await host.StartAsync();
            }
            finally
            {
                _mutex.Release();
            }
        }

        /// <summary>A module is being removed from this node: stop it here first.</summary>
        public async Task OnRemovingAsync(string name)
        {
            await _mutex.WaitAsync();
            try
            {
                await RemoveHostAsync(name, keepStartedFlag: false);
            }
            finally
            {
                _mutex.Release();
            }
        }

        /// <summary>The cluster is going away (or the engine stops): stop every module, close the heartbeats.</summary>
        public async Task StopAllAsync(bool keepStartedFlags)
        {
            await _mutex.WaitAsync();
            try
            {
                List<string> names;
                lock (_hosts) names = _hosts.Keys.ToList();
                await Task.WhenAll(names.Select(n => RemoveHostAsync(n, keepStartedFlags)));
                _heartbeats?.Dispose();
                _heartbeats = null;
                ports.Release($"udp/{HeartbeatService.DefaultPort}");
            }
            finally
            {
                _mutex.Release();
            }
        }

        public async ValueTask DisposeAsync() => await StopAllAsync(keepStartedFlags: true);

        private async Task RemoveHostAsync(string name, bool keepStartedFlag)
        {
            IModuleHost? host;
            lock (_hosts)
            {
                if (!_hosts.Remove(name, out host)) return;
            }
            await host.StopAsync(ShutdownTimeout, keepStartedFlag);
            await host.DisposeAsync();
        }

        private ModuleHostContext Context()
        {
            var config = cluster.Config ?? throw new SKApiException(ErrorIds.ClusterNotFound, "Modules need a cluster.");
            return new ModuleHostContext
            {
                Options = options, Home = home, Time = time, LoggerFactory = loggers, Processes = processes, Scripts = scripts,
                ModuleLog = moduleLog, VirtualIps = vips, Heartbeats = Heartbeats(config),
                PeerRings = (peer, lans) => lans.ToDictionary(
                    lan => config.Lans.FindIndex(l => l.Name == lan),
                    lan => new IPEndPoint(IPAddress.Parse(config.Lans.First(l => l.Name == lan).AddressOf(peer)!), HeartbeatService.DefaultPort)),
                RingName = ring => ring >= 0 && ring < config.Lans.Count ? config.Lans[ring].Name : "network " + ring,
                IsModuleReady = IsModuleReadyAsync,
                ClusterKey = Convert.FromHexString(cluster.Key!),
                NodeAddress = node => IPAddress.Parse(config.Lans[0].AddressOf(node)
                    ?? throw new InvalidOperationException($"node {node} has no address on {config.Lans[0].Name}")),
                Ports = ports,
            };
        }

        /// <summary>One heartbeat socket per cluster network, shared by every module of this node.</summary>
        private HeartbeatService Heartbeats(ClusterConfig config)
        {
            if (_heartbeats != null) return _heartbeats;
            var addresses = config.Lans.Select(l => IPAddress.Parse(l.AddressOf(options.NodeName)
                ?? throw new InvalidOperationException($"node {options.NodeName} has no address on {l.Name}"))).ToList();
            _heartbeats = new HeartbeatService(Guid.Parse(config.Id), Convert.FromHexString(cluster.Key!), options.NodeName,
                home.NextIncarnation(time), HeartbeatService.DefaultPort, addresses, loggers.CreateLogger("Heartbeat"), time);
            ports.Own($"udp/{HeartbeatService.DefaultPort}");
            return _heartbeats;
        }

        /// <summary>The module checker: is a module ready here, or on the engine at address:port?</summary>
        private async Task<bool> IsModuleReadyAsync(string module, string? address, int? port, CancellationToken ct)
        {
            static bool Serves(ModuleState s) => s.Ready && s.State is "PRIM" or "ALONE" or "SECOND" or "UP";
            if (address == null)
            {
                lock (_hosts) return _hosts.TryGetValue(module, out var host) && Serves(host.State);
            }
            using var client = peers.ForCandidate(address, port ?? SKEndpoint.DefaultHttpsPort);
            try
            {
                return (await client.GetLocalStateAsync(ct)).Any(s => s.Module == module && Serves(s));
            }
            catch (SKApiException)
            {
                return false;
            }
        }
    }
}
