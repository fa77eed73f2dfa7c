// What a module host on this node may use: shared engine services, set up once by ModuleRuntime.
using System;
using System.Collections.Generic;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Heartbeat;
using ServiceKeeper.Engine.Hosting;
using ServiceKeeper.Engine.Network;
using ServiceKeeper.Engine.Scripts;

namespace ServiceKeeper.Engine.Modules
{
    public sealed class ModuleHostContext
    {
        public required EngineOptions Options { get; init; }
        public required EngineHome Home { get; init; }
        public required TimeProvider Time { get; init; }
        public required ILoggerFactory LoggerFactory { get; init; }
        public required IProcessTable Processes { get; init; }
        public required IScriptRunner Scripts { get; init; }
        public required IModuleLog ModuleLog { get; init; }
        public required IVirtualIpManager VirtualIps { get; init; }
        public required HeartbeatService Heartbeats { get; init; }
        /// <summary>The peer's heartbeat address on each of the given networks, by ring index (= cluster network index).</summary>
        public required Func<string, IReadOnlyList<string>, IReadOnlyDictionary<int, IPEndPoint>> PeerRings { get; init; }
        /// <summary>Name of the network of a ring index (LAN1...).</summary>
        public required Func<int, string> RingName { get; init; }
        public required Func<string, string?, int?, CancellationToken, Task<bool>> IsModuleReady { get; init; }
        /// <summary>The cluster's shared secret (heartbeats, replication).</summary>
        public required byte[] ClusterKey { get; init; }
        /// <summary>A node's address on the cluster's first network (LAN1): where its replication listens.</summary>
        public required Func<string, IPAddress> NodeAddress { get; init; }
        /// <summary>Ports this engine holds (the cluster test does not count them as taken by another program).</summary>
        public required EnginePorts Ports { get; init; }
    }
}
