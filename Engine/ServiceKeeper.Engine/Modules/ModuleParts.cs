// What every kind of module host (mirror, farm) needs on this node: the environment of its programs,
// its checkers (running them, the resources they set), its heartbeat channel, its scripts, and the flag
// that brings it back after an engine restart. The hosts differ in their protocol, not in these.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Heartbeat;
using ServiceKeeper.Engine.Scripts;

namespace ServiceKeeper.Engine.Modules
{
    public sealed class ModuleParts
    {
        private readonly ModuleHostContext _ctx;
        private readonly string _module;
        private readonly bool _boot;
        private readonly Dictionary<string, ModuleResource> _resources = new(StringComparer.Ordinal);
        private HeartbeatChannel? _heartbeat;
        private byte[]? _lastPayload;

        /// <param name="extraEnvironment">what one kind of module adds (a mirror's SK_PEER).</param>
        public ModuleParts(ModuleHostContext ctx, ModuleInfo info, UserConfig config, IReadOnlyDictionary<string, string>? extraEnvironment = null)
        {
            _ctx = ctx;
            _module = info.Name;
            _boot = config.Boot;
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

        /// <summary>
        /// Runs the checkers that <paramref name="which"/> picks, each on its own task, until
        /// <see cref="StopCheckers"/> or <paramref name="life"/> ends them; <paramref name="running"/> is their
        /// cancellation source, and nothing happens while it is set. Each flip is recorded and written to the
        /// module log before <paramref name="changed"/> gets it (on the checker's task: hand over, never block).
        /// </summary>
        public void StartCheckers(ref CancellationTokenSource? running, CancellationToken life, Func<IChecker, bool> which,
            Action<IChecker, ResourceChange> changed)
        {
            if (running != null) return;
            running = CancellationTokenSource.CreateLinkedTokenSource(life);
            var token = running.Token;
            foreach (var checker in Checkers.Where(which))
            {
                var c = checker;
                _ = Task.Run(async () =>
                {
                    try
                    {
                        await c.RunAsync(change =>
                        {
                            Record(change);
                            ModuleLog(change.Resource, $"{change.Value.ToString().ToLowerInvariant()}: {change.Reason}");
                            changed(c, change);
                        }, token);
                    }
                    catch (OperationCanceledException) { }
                    catch (Exception ex) { ModuleLog(c.Resource, "checker failed: " + ex.Message); }
                });
            }
        }

        /// <summary>Stops the checkers <see cref="StartCheckers"/> started under <paramref name="running"/>, then <see cref="ResetResources"/>.</summary>
        public void StopCheckers(ref CancellationTokenSource? running, Func<IChecker, bool> stopped)
        {
            if (running == null) return;
            running.Cancel();
            running.Dispose();
            running = null;
            ResetResources(stopped);
        }

        /// <summary>
        /// Opens the module's heartbeats to <paramref name="peers"/> on their addresses of <paramref name="networks"/>.
        /// A network going down or coming back is only written to the module log; every other event goes to
        /// <paramref name="onEvent"/> (on the heartbeat service's threads: hand over at once, never block).
        /// </summary>
        public void OpenHeartbeats(IEnumerable<string> peers, IReadOnlyList<string> networks, TimeSpan pulse, TimeSpan timeout,
            Action<HeartbeatEvent> onEvent)
        {
            var withRings = peers.Select(p => new HeartbeatPeer(p, _ctx.PeerRings(p, networks))).ToList();
            _heartbeat = _ctx.Heartbeats.OpenChannel(_module, withRings, pulse, timeout, e =>
            {
                switch (e)
                {
                    case RingDown d:
                        ModuleLog("heartbeat", $"no heartbeat from {d.Node} on {_ctx.RingName(d.Ring)}: that network is down, the others carry on");
                        break;
                    case RingUp u:
                        ModuleLog("heartbeat", $"heartbeats from {u.Node} on {_ctx.RingName(u.Ring)} again");
                        break;
                    default:
                        onEvent(e);
                        break;
                }
            });
        }

        /// <summary>
        /// Sends <paramref name="payload"/> with every heartbeat from now on (the host's view of the module);
        /// one equal to the last is not handed over again. Called from the host's loop only.
        /// </summary>
        /// <exception cref="ArgumentException">the payload does not fit in a heartbeat (peers keep the last one).</exception>
        public void Publish(byte[] payload)
        {
            if (_lastPayload != null && _lastPayload.AsSpan().SequenceEqual(payload)) return;
            _lastPayload = payload;
            _heartbeat?.SetPayload(payload);
        }

        public void CloseHeartbeats() => _heartbeat?.Dispose();

        private void ModuleLog(string source, string text) => _ctx.ModuleLog.Write(_module, source, text);

        /// <summary>Runs a script of the module's bin/ (on Windows also .ps1, .cmd, .bat); output goes to the module log.</summary>
        public Task<ScriptResult> RunScriptAsync(string script, IReadOnlyList<string> args, TimeSpan timeout, CancellationToken ct)
        {
            var path = Path.Combine(Directory, "bin", script);
            if (!File.Exists(path) && OperatingSystem.IsWindows())
                path = new[] { ".ps1", ".cmd", ".bat" }.Select(ext => path + ext).FirstOrDefault(File.Exists) ?? path;
            return _ctx.Scripts.RunAsync(new ScriptInvocation(_module, script, path, args, Environment, timeout), ct);
        }

        private string StartedFile => Path.Combine(Directory, "state", "started");

        /// <summary>
        /// At engine start: whether the module starts again (boot is on and the admin had started it here), said in the
        /// module's log when it does.
        /// </summary>
        public bool ResumesAtEngineStart()
        {
            if (!_boot || !Started) return false;
            _ctx.ModuleLog.Write(_module, "module", "engine started: the module was running, starting it again");
            return true;
        }

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
