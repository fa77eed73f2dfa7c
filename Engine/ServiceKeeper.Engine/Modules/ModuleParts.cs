// What every kind of module host (mirror, farm) needs on this node: the environment of its programs,
// its checkers and the resources they set, its scripts, and the flag that brings it back after an
// engine restart. The hosts differ in their protocol, not in these.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Scripts;

namespace ServiceKeeper.Engine.Modules
{
    public sealed class ModuleParts
    {
        private readonly ModuleHostContext _ctx;
        private readonly string _module;
        private readonly Dictionary<string, ModuleResource> _resources = new(StringComparer.Ordinal);

        /// <param name="extraEnvironment">what one kind of module adds (a mirror's SK_PEER).</param>
        public ModuleParts(ModuleHostContext ctx, ModuleInfo info, UserConfig config, IReadOnlyDictionary<string, string>? extraEnvironment = null)
        {
            _ctx = ctx;
            _module = info.Name;
            Directory = ctx.Home.ModuleDirectory(info.Name);
            var env = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["SK_MODULE"] = info.Name,
                ["SK_NODE"] = ctx.Options.NodeName,
                ["SK_MODULE_DIR"] = Directory,
                ["SK_VIRTUAL_IPS"] = string.Join(" ", config.Vip.Interfaces.SelectMany(i => i.Addresses).Select(a => a.Address.ToString())),
            };
            foreach (var (name, value) in extraEnvironment ?? new Dictionary<string, string>()) env[name] = value;
            foreach (var v in config.User.Variables) env[v.Name] = v.Value;
            Environment = env;

            Checkers = CheckerFactory.Create(config, new CheckerContext
            {
                Module = info.Name, Node = ctx.Options.NodeName, ModuleDirectory = Directory,
                Time = ctx.Time, LoggerFactory = ctx.LoggerFactory, Processes = ctx.Processes, Scripts = ctx.Scripts,
                Environment = Environment, IsModuleReady = ctx.IsModuleReady,
            }, ctx.VirtualIps);
            foreach (var c in Checkers)
                _resources[c.Resource] = new ModuleResource
                {
                    Module = info.Name, Node = ctx.Options.NodeName, Resource = c.Resource, Value = "init",
                    Action = c.Action.ToString().ToLowerInvariant(), SinceUtc = ctx.Time.GetUtcNow().UtcDateTime,
                };
        }

        /// <summary>&lt;home&gt;/modules/&lt;m&gt;.</summary>
        public string Directory { get; }

        public IReadOnlyDictionary<string, string> Environment { get; }

        public IReadOnlyList<IChecker> Checkers { get; }

        public IReadOnlyList<ModuleResource> Resources
        {
            get { lock (_resources) return _resources.Values.ToList(); }
        }

        /// <summary>Records a checker's flip for Get-SKResource.</summary>
        public void Record(ResourceChange change)
        {
            lock (_resources)
            {
                var r = _resources[change.Resource];
                r.Value = change.Value.ToString().ToLowerInvariant();
                r.Reason = change.Reason;
                r.SinceUtc = change.At.UtcDateTime;
            }
        }

        /// <summary>Checkers that no longer run say so: their resources go back to init.</summary>
        public void ResetResources(Func<IChecker, bool> stopped)
        {
            lock (_resources)
                foreach (var c in Checkers.Where(stopped))
                {
                    var r = _resources[c.Resource];
                    if (r.Value == "init") continue;
                    r.Value = "init";
                    r.SinceUtc = _ctx.Time.GetUtcNow().UtcDateTime;
                }
        }

        /// <summary>Runs a script of the module's bin/ (on Windows also .ps1, .cmd, .bat); output goes to the module log.</summary>
        public Task<ScriptResult> RunScriptAsync(string script, IReadOnlyList<string> args, TimeSpan timeout, CancellationToken ct)
        {
            var path = Path.Combine(Directory, "bin", script);
            if (!File.Exists(path) && OperatingSystem.IsWindows())
                path = new[] { ".ps1", ".cmd", ".bat" }.Select(ext => path + ext).FirstOrDefault(File.Exists) ?? path;
            return _ctx.Scripts.RunAsync(new ScriptInvocation(_module, script, path, args, Environment, timeout), ct);
        }

        private string StartedFile => Path.Combine(Directory, "state", "started");

        /// <summary>The admin started the module here and has not stopped it: an engine restart resumes it.</summary>
        public bool Started
        {
            get => File.Exists(StartedFile);
            set
            {
                System.IO.Directory.CreateDirectory(Path.GetDirectoryName(StartedFile)!);
                if (value) File.WriteAllText(StartedFile, "");
                else File.Delete(StartedFile);
            }
        }
    }
}
