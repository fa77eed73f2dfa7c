// Installed modules: <home>/modules/<m>/ with userconfig.xml, bin/ (scripts), state/ and module.json.
// Installing validates the config once and pushes it, with the scripts, to every node of the module.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Cluster;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Hosting;

namespace ServiceKeeper.Engine.Modules
{
    public sealed partial class ModuleStore(
        EngineOptions options, EngineHome home, ClusterService cluster, ClusterState clusterState,
        PeerClients peers, TimeProvider time, ILogger<ModuleStore> log)
    {
        public const int MaxModules = 32;

        /// <summary>Called after a module's files are written on this node, and before they are deleted.</summary>
        public Func<string, Task>? Installed { get; set; }
        public Func<string, Task>? Removing { get; set; }
        public const int MaxScriptBytes = 1 << 20;
        private const string InfoFile = "module.json";
        private readonly SemaphoreSlim _mutex = new(1, 1);

        /// <summary>Validates every installed module's configuration; a bad file stops the engine at start.</summary>
        public void ValidateInstalled()
        {
            foreach (var dir in ModuleDirectories())
                UserConfigFile.Load(Path.Combine(dir, "userconfig.xml"), clusterState.Config);
        }

        public List<ModuleInfo> List() =>
            ModuleDirectories()
                .Select(dir => Path.Combine(dir, InfoFile))
                .Where(File.Exists)
                .Select(f => SKJson.Deserialize<ModuleInfo>(File.ReadAllText(f)))
                .OrderBy(m => m.Name, StringComparer.Ordinal)
                .ToList();

        public ModuleInfo Get(string name) =>
            List().FirstOrDefault(m => m.Name == name)
            ?? throw new SKApiException(ErrorIds.ModuleNotFound, $"There is no module named '{name}' on node '{options.NodeName}'.", name);

        /// <summary>Installs a new module on all its nodes, or on none of them.</summary>
        public async Task<ModuleInfo> InstallAsync(InstallModuleRequest request, CancellationToken ct)
        {
            var config = cluster.RequireCluster();
            var (info, _) = Validate(request);
            var installed = List();
            if (installed.Count >= MaxModules)
                throw new SKApiException(ErrorIds.InvalidArgument, $"A cluster holds at most {MaxModules} modules.");
            if (installed.Any(m => m.Name == request.Name))
                throw new SKApiException(ErrorIds.ModuleExists, $"Module '{request.Name}' already exists. Remove it first with Remove-SKModule.", request.Name);

            var targets = info.Nodes.Select(n => config.Nodes.First(c => c.Name == n)).ToList();
            var done = new List<ClusterNodeConfig>();
            try
            {
                foreach (var node in targets)
                {
                    if (node.Name == options.NodeName)
                    {
                        await InstallLocalAsync(request, ct);
                    }
                    else
                    {
                        using var client = peers.ForMember(node);
                        var remote = await client.GetModulesAsync(ct);
                        if (remote.Any(m => m.Name == request.Name))
                            throw new SKApiException(ErrorIds.ModuleExists, $"Module '{request.Name}' already exists on node '{node.Name}'.", node.Name);
                        await client.InstallModuleLocalAsync(request, ct);
                    }
                    done.Add(node);
                }
            }
            catch (SKApiException ex)
            {
                foreach (var node in done) await TryRemoveOnAsync(node, request.Name);
                throw new SKApiException(ex.ErrorId, $"Module '{request.Name}' was not installed: {ex.Message}", ex.Target ?? request.Name);
            }
            LogInstalled(request.Name, info.Kind, string.Join(", ", info.Nodes));
            return info;
        }

        /// <summary>Internal: write the module on this node; an existing module's state/ is kept.</summary>
        public async Task<ModuleInfo> InstallLocalAsync(InstallModuleRequest request, CancellationToken ct)
        {
            var (info, scripts) = Validate(request);
            await _mutex.WaitAsync(ct);
            try
            {
                var target = home.ModuleDirectory(request.Name);
                var staging = target + ".new";
                if (Directory.Exists(staging)) Directory.Delete(staging, true);
                Directory.CreateDirectory(Path.Combine(staging, "bin"));
                File.WriteAllText(Path.Combine(staging, "userconfig.xml"), request.UserConfigXml);
                foreach (var (name, bytes) in scripts)
                {
                    var path = Path.Combine(staging, "bin", name);
                    File.WriteAllBytes(path, bytes);
                    if (!OperatingSystem.IsWindows())
                        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                                                   UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
                }
                var stateDir = Path.Combine(target, "state");
                if (Directory.Exists(stateDir)) Directory.Move(stateDir, Path.Combine(staging, "state"));
                else Directory.CreateDirectory(Path.Combine(staging, "state"));
                File.WriteAllText(Path.Combine(staging, InfoFile), SKJson.Serialize(info));
                if (Directory.Exists(target)) Directory.Delete(target, true);
                Directory.Move(staging, target);
            }
            finally
            {
                _mutex.Release();
            }
            if (Installed != null) await Installed(request.Name);
            return info;
        }

        /// <summary>Removes the module from all its nodes. Without force nothing is removed unless all nodes answer.</summary>
        public async Task<List<string>> RemoveAsync(string name, bool force, CancellationToken ct)
        {
            var config = cluster.RequireCluster();
            var info = Get(name);
            var others = info.Nodes.Where(n => n != options.NodeName).Select(n => config.Nodes.First(c => c.Name == n)).ToList();
            if (!force)
            {
                foreach (var node in others)
                {
                    using var client = peers.ForMember(node);
                    try { await client.GetNodeInfoAsync(ct); }
                    catch (SKApiException ex)
                    {
                        throw new SKApiException(ErrorIds.NodeUnreachable,
                            $"Cannot remove module '{name}': node '{node.Name}' does not answer ({ex.Message}). Nothing was removed; use -Force to remove it from the nodes that answer.", node.Name);
                    }
                }
            }
            var removed = new List<string>();
            foreach (var node in others)
                if (await TryRemoveOnAsync(node, name)) removed.Add(node.Name);
            if (info.Nodes.Contains(options.NodeName))
            {
                await RemoveLocalAsync(name);
                removed.Add(options.NodeName);
            }
            LogRemoved(name, string.Join(", ", removed));
            return removed;
        }

        public async Task<ModuleInfo> RemoveLocalAsync(string name)
        {
            var info = Get(name);
            if (Removing != null) await Removing(name);
            Directory.Delete(home.ModuleDirectory(name), true);
            return info;
        }

        /// <summary>The cluster is going: its modules go with it on this node.</summary>
        public void RemoveAllLocal()
        {
            foreach (var dir in ModuleDirectories()) Directory.Delete(dir, true);
        }

        private async Task<bool> TryRemoveOnAsync(ClusterNodeConfig node, string name)
        {
            try
            {
                if (node.Name == options.NodeName) await RemoveLocalAsync(name);
                else
                {
                    using var client = peers.ForMember(node);
                    await client.RemoveModuleLocalAsync(name, CancellationToken.None);
                }
                return true;
            }
            catch (SKApiException ex)
            {
                LogRemoveFailed(name, node.Name, ex.Message);
                return false;
            }
        }

        private (ModuleInfo Info, List<(string Name, byte[] Bytes)> Scripts) Validate(InstallModuleRequest request)
        {
            if (!EngineOptions.IsValidNodeName(request.Name))
                throw new SKApiException(ErrorIds.InvalidArgument, $"'{request.Name}' is not a valid module name (letters, digits, '-', '_', '.', at most 63).", request.Name);
            var config = cluster.RequireCluster();
            UserConfig user;
            try
            {
                user = UserConfigFile.Parse(request.UserConfigXml, $"{request.Name}/userconfig.xml", config);
            }
            catch (ConfigurationException ex)
            {
                throw new SKApiException(ErrorIds.InvalidConfiguration, ex.Message, request.Name);
            }
            var scripts = new List<(string, byte[])>();
            foreach (var (name, base64) in request.Scripts)
            {
                if (name.Length == 0 || name != Path.GetFileName(name) || name.StartsWith('.'))
                    throw new SKApiException(ErrorIds.InvalidArgument, $"Script name '{name}' must be a plain file name in the module's bin/ folder.", name);
                byte[] bytes;
                try { bytes = Convert.FromBase64String(base64); }
                catch (FormatException) { throw new SKApiException(ErrorIds.InvalidArgument, $"Script '{name}' is not valid base64.", name); }
                if (bytes.Length > MaxScriptBytes)
                    throw new SKApiException(ErrorIds.InvalidArgument, $"Script '{name}' is larger than {MaxScriptBytes >> 20} MiB.", name);
                scripts.Add((name, bytes));
            }
            var info = new ModuleInfo
            {
                Name = request.Name,
                Kind = user.Mode.ToString().ToLowerInvariant(),
                Nodes = user.Nodes.ToList(),
                Scripts = scripts.Select(s => s.Item1).OrderBy(s => s, StringComparer.Ordinal).ToList(),
                ConfigHash = ClusterState.Hash(request.UserConfigXml),
                InstalledUtc = time.GetUtcNow().UtcDateTime,
                InitialPrimary = user.Mode == ModuleMode.Mirror ? request.InitialPrimary ?? user.Nodes.FirstOrDefault() : null,
            };
            if (info.InitialPrimary != null && !info.Nodes.Contains(info.InitialPrimary))
                throw new SKApiException(ErrorIds.InvalidArgument, $"The initial primary '{info.InitialPrimary}' is not a node of module '{request.Name}' ({string.Join(", ", info.Nodes)}).", request.Name);
            return (info, scripts);
        }

        private IEnumerable<string> ModuleDirectories() =>
            Directory.Exists(home.ModulesDirectory)
                ? Directory.EnumerateDirectories(home.ModulesDirectory).Where(d => !d.EndsWith(".new", StringComparison.Ordinal))
                : [];

        [LoggerMessage(Level = LogLevel.Information, Message = "{Module}: installed ({Kind}) on {Nodes}")]
        private partial void LogInstalled(string module, string kind, string nodes);

        [LoggerMessage(Level = LogLevel.Information, Message = "{Module}: removed from {Nodes}")]
        private partial void LogRemoved(string module, string nodes);

        [LoggerMessage(Level = LogLevel.Warning, Message = "{Module}: could not remove it from node {Node}: {Error}")]
        private partial void LogRemoveFailed(string module, string node, string error);
    }
}
