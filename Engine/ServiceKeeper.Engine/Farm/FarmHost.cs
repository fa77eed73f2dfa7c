// Runs one farm module on this node: every UP node holds the VIP, and the kernel filter of each
// accepts only the buckets BucketMap gives it for the current membership view (UP nodes and their
// power, from the heartbeats). A node whose application fails leaves the view before anything else.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading;
using System.Threading.Channels;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Heartbeat;
using ServiceKeeper.Engine.Modules;
using ServiceKeeper.Engine.Scripts;

namespace ServiceKeeper.Engine.Farm
{
    public enum FarmStateName { Stop, Wait, Up }

    public sealed partial class FarmHost : IModuleHost
    {
        private static readonly TimeSpan DrainLimit = TimeSpan.FromMinutes(5);
        private readonly ModuleHostContext _ctx;
        private readonly ModuleInfo _info;
        private readonly UserConfig _config;
        private readonly ILogger _log;
        private readonly Channel<Func<Task>> _inbox = Channel.CreateUnbounded<Func<Task>>(new UnboundedChannelOptions { SingleReader = true });
        private readonly CancellationTokenSource _life = new();
        private readonly Dictionary<string, int> _powers;
        private readonly Dictionary<string, FarmStateName> _peers = new(StringComparer.Ordinal);
        private readonly ModuleParts _parts;
        private readonly List<DateTimeOffset> _loops = new();
        private readonly NftablesFilter _filter;
        private readonly IPAddress _vip;
        private readonly int _prefix;
        private readonly string _interface;
        private string?[] _map = new string?[BucketMap.BucketCount];
        private HeartbeatChannel? _heartbeat;
        private CancellationTokenSource? _checkersCts;
        private Task? _loop;
        private FarmStateName _state = FarmStateName.Stop;
        private bool _ready = true;
        private string? _reason;
        private DateTimeOffset _since;
        private bool _inView;
        private bool _filterApplied;
        private int _settleGeneration;
        private bool _checkersEnabled = true, _errdEnabled = true;

        public FarmHost(ModuleHostContext ctx, ModuleInfo info, UserConfig config)
        {
            _ctx = ctx;
            _info = info;
            _config = config;
            _log = ctx.LoggerFactory.CreateLogger("Farm");
            _since = ctx.Time.GetUtcNow();
            var group = config.Vip.LoadBalancing.FirstOrDefault()
                ?? throw new ConfigurationException($"{info.Name}/userconfig.xml", 0, 0, "a farm module needs a <loadbalancing_list> group.");
            _powers = info.Nodes.ToDictionary(n => n, n => group.Hosts.FirstOrDefault(h => h.Name == n)?.Power ?? 1, StringComparer.Ordinal);
            var vip = config.Vip.Interfaces.SelectMany(i => i.Addresses.Select(a => (Interface: i.Name, a.Address, a.PrefixLength))).FirstOrDefault();
            if (vip.Address == null)
                throw new ConfigurationException($"{info.Name}/userconfig.xml", 0, 0, "a farm module needs a virtual address.");
            _vip = vip.Address;
            _prefix = vip.PrefixLength ?? 32;
            _interface = vip.Interface ?? ctx.VirtualIps.ResolveInterface(_vip);
            _filter = new NftablesFilter(new FarmFilterRules(info.Name, [_vip], group.Rules), _interface);
            _parts = new ModuleParts(ctx, info, config);
        }

        public string Name => _info.Name;
        private string Self => _ctx.Options.NodeName;

        public ModuleState State => new()
        {
            Module = Name, Node = Self, Kind = "farm", State = _state.ToString().ToUpperInvariant(), Ready = _ready,
            Reason = _reason, SinceUtc = _since.UtcDateTime, UpToDate = true,
            CheckersEnabled = _checkersEnabled, ErrdEnabled = _errdEnabled, FailoverEnabled = true,
        };

        public IReadOnlyList<ModuleResource> Resources => _parts.Resources;

        public async Task StartAsync()
        {
            // What an engine that died may have left: the filter, the VIP.
            if (!OperatingSystem.IsWindows() && _ctx.VirtualIps.IsPresent(_vip, _interface))
            {
                Log("engine restarted: removing the filter and virtual IP the previous engine left");
                TryRemoveFilterAndVip();
            }
            var farm = _config.Farm!;
            var peers = _info.Nodes.Where(n => n != Self)
                .Select(n => new HeartbeatPeer(n, _ctx.PeerRings(n, farm.Lans))).ToList();
            _heartbeat = _ctx.Heartbeats.OpenChannel(Name, peers, farm.Pulse, farm.Pulse * farm.MasterLostCount, OnHeartbeat);
            Publish();
            _loop = Task.Run(LoopAsync);
            if (_config.Boot && _parts.Started) Post(() => StartCoreAsync());
        }

        public Task<ModuleState> CommandAsync(ModuleCommandRequest request)
        {
            var done = new TaskCompletionSource<ModuleState>(TaskCreationOptions.RunContinuationsAsynchronously);
            Post(async () =>
            {
                try
                {
                    switch (request.Command)
                    {
                        case ModuleCommands.Start:
                            if (_state != FarmStateName.Stop)
                                throw new SKApiException(ErrorIds.InvalidModuleState, $"{Name} is already started on {Self} ({_state.ToString().ToUpperInvariant()}).", Name);
                            _parts.Started = true;
                            done.SetResult(State);
                            await StartCoreAsync();
                            return;
                        case ModuleCommands.Stop:
                            _parts.Started = false;
                            Enter(FarmStateName.Wait, false, request.Drain ? "draining: new connections go to the other nodes" : "stopping");
                            done.SetResult(State);
                            await StopCoreAsync(request.Drain);
                            return;
                        case ModuleCommands.Restart:
                            done.SetResult(State);
                            await StopCoreAsync(drain: false);
                            await StartCoreAsync();
                            return;
                        default:
                            throw new SKApiException(ErrorIds.InvalidModuleState,
                                $"'{request.Command}' is for mirror modules; {Name} is a farm module (every node serves).", Name);
                    }
                }
                catch (SKApiException ex)
                {
                    done.TrySetException(ex);
                }
            });
            return done.Task;
        }

        public Task<ModuleState> SetMaintenanceAsync(MaintenanceRequest request)
        {
            var done = new TaskCompletionSource<ModuleState>(TaskCreationOptions.RunContinuationsAsynchronously);
            Post(() =>
            {
                if (request.Checkers is { } c) _checkersEnabled = c;
                if (request.Errd is { } e) _errdEnabled = e;
                Log($"maintenance: checkers {(_checkersEnabled ? "on" : "off")}, errd {(_errdEnabled ? "on" : "off")}");
                done.SetResult(State);
                return Task.CompletedTask;
            });
            return done.Task;
        }

        public List<FarmLoad> Load()
        {
            var counts = BucketMap.Counts(_map);
            var connections = _state == FarmStateName.Stop ? (int?)null : CountConnections();
            return
            [
                new FarmLoad
                {
                    Module = Name, Node = Self, State = _state.ToString().ToUpperInvariant(), Power = _powers[Self],
                    Buckets = counts.TryGetValue(Self, out var b) ? b : 0,
                    SharePercent = Math.Round(100.0 * (counts.TryGetValue(Self, out var s) ? s : 0) / BucketMap.BucketCount, 1),
                    Connections = connections,
                },
            ];
        }

        public async Task StopAsync(TimeSpan timeout, bool keepStartedFlag)
        {
            if (_state != FarmStateName.Stop)
            {
                var done = new TaskCompletionSource();
                Post(async () =>
                {
                    await StopCoreAsync(drain: false);
                    done.TrySetResult();
                });
                await Task.WhenAny(done.Task, Task.Delay(timeout));
            }
            _parts.Started = keepStartedFlag && _parts.Started;
        }

        public async ValueTask DisposeAsync()
        {
            _inbox.Writer.TryComplete();
            _life.Cancel();
            StopCheckers();
            _heartbeat?.Dispose();
            if (_loop != null) try { await _loop; } catch (OperationCanceledException) { }
            _life.Dispose();
        }

        // ------------------------------------------------------------------ the loop

        private void Post(Func<Task> work) => _inbox.Writer.TryWrite(work);

        private async Task LoopAsync()
        {
            await foreach (var work in _inbox.Reader.ReadAllAsync(_life.Token))
            {
                try { await work(); }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogFailed(ex, Name);
                    Log("internal error: " + ex.Message);
                }
                Publish();
            }
        }

        private async Task StartCoreAsync()
        {
            _loops.Clear();
            Enter(FarmStateName.Wait, false, "starting: start_both");
            await RunScriptAsync("prestart", "start", _config.User.ForceStopTimeout);
            if (!await StartApplicationAsync())
            {
                Enter(FarmStateName.Wait, false, "the application did not start; see Get-SKLog, then Restart-SKModule");
                return;
            }
            await _ctx.VirtualIps.AddAsync(_vip, _prefix, _interface, _life.Token);
            Log($"virtual IP {_vip}/{_prefix} added on {_interface}");
            StartCheckers();
            JoinView();
        }

        private async Task<bool> StartApplicationAsync()
        {
            var r = await RunScriptAsync("start_both", "start", _config.User.ForceStopTimeout);
            return r.Succeeded || r.Missing;
        }

        private async Task StopApplicationAsync()
        {
            var r = await RunScriptAsync("stop_both", "stop", _config.User.NiceStopTimeout);
            if (!r.Succeeded && !r.Missing) await RunScriptAsync("stop_both", "force", _config.User.ForceStopTimeout);
        }

        private async Task StopCoreAsync(bool drain)
        {
            if (_state == FarmStateName.Stop) return;
            StopCheckers();
            LeaveView(drain ? "draining: new connections go to the other nodes" : "stopping");
            if (drain)
            {
                var watch = Stopwatch.StartNew();
                while (CountConnections() is > 0 and var open && watch.Elapsed < DrainLimit)
                {
                    _reason = $"draining: {open} connection(s) still open";
                    await Task.Delay(500, _life.Token);
                }
                Log($"drained in {watch.Elapsed.TotalSeconds:0.0} s");
            }
            await StopApplicationAsync();
            TryRemoveFilterAndVip();
            await RunScriptAsync("poststop", "stop", _config.User.ForceStopTimeout);
            Enter(FarmStateName.Stop, true, null);
        }

        // ------------------------------------------------------------------ membership and buckets

        private void JoinView()
        {
            _inView = true;
            Enter(FarmStateName.Up, true, null);
            ApplyMap();
        }

        private void LeaveView(string reason)
        {
            _inView = false;
            Enter(FarmStateName.Wait, false, reason);
            Publish();
            ApplyMap();
        }

        /// <summary>
        /// Recomputes the map from the view. Buckets this node loses are released at once; buckets it gains
        /// are taken after a settle delay, when every node has seen the same view (see BucketMap).
        /// </summary>
        private void ApplyMap()
        {
            var view = _peers.Where(p => p.Value == FarmStateName.Up).Select(p => p.Key).ToList();
            if (_inView) view.Add(Self);
            var newMap = BucketMap.Assign(view.Distinct().ToDictionary(n => n, n => _powers.GetValueOrDefault(n, 1), StringComparer.Ordinal));
            var plan = BucketMap.Plan(_map, newMap, Self);
            _map = newMap;
            if (!_inView && !_filterApplied) return;
            if (!_filterApplied)
            {
                _filter.Apply(plan.Interim);
                _filterApplied = true;
            }
            else if (!plan.IsEmpty)
            {
                _filter.UpdateOwned(plan.Interim);
            }
            if (plan.Take.Count > 0)
            {
                var generation = ++_settleGeneration;
                var settle = _config.Farm!.Pulse * 2 + TimeSpan.FromMilliseconds(100);
                _ = Task.Delay(settle, _life.Token).ContinueWith(_ => Post(() =>
                {
                    if (generation == _settleGeneration && _filterApplied) _filter.UpdateOwned(BucketMap.BucketsOf(_map, Self));
                    return Task.CompletedTask;
                }), TaskScheduler.Default);
            }
            Log($"view: {string.Join(", ", view.Distinct().OrderBy(n => n, StringComparer.Ordinal))}; this node owns {BucketMap.BucketsOf(_map, Self).Count} of 256 buckets");
        }

        private void OnHeartbeat(HeartbeatEvent e)
        {
            switch (e)
            {
                case PeerMessage m:
                    var state = DecodeState(m.Payload);
                    if (state == null) return;
                    Post(() =>
                    {
                        if (_peers.TryGetValue(m.Node, out var old) && old == state) return Task.CompletedTask;
                        _peers[m.Node] = state.Value;
                        ApplyMap();
                        return Task.CompletedTask;
                    });
                    break;
                case Heartbeat.PeerLost lost:
                    Post(() =>
                    {
                        if (_peers.Remove(lost.Node))
                        {
                            Log($"{lost.Node} lost on every heartbeat network");
                            ApplyMap();
                        }
                        return Task.CompletedTask;
                    });
                    break;
            }
        }

        private sealed record Payload([property: JsonPropertyName("s")] FarmStateName State);

        private static FarmStateName? DecodeState(byte[] payload)
        {
            try { return JsonSerializer.Deserialize<Payload>(payload)?.State; }
            catch (JsonException) { return null; }
        }

        private void Publish() => _heartbeat?.SetPayload(JsonSerializer.SerializeToUtf8Bytes(new Payload(_inView ? FarmStateName.Up : _state == FarmStateName.Stop ? FarmStateName.Stop : FarmStateName.Wait)));

        // ------------------------------------------------------------------ checkers

        private void StartCheckers()
        {
            if (_checkersCts != null) return;
            _checkersCts = CancellationTokenSource.CreateLinkedTokenSource(_life.Token);
            var token = _checkersCts.Token;
            foreach (var checker in _parts.Checkers)
            {
                var c = checker;
                _ = Task.Run(async () =>
                {
                    try { await c.RunAsync(change => OnResource(change), token); }
                    catch (OperationCanceledException) { }
                });
            }
        }

        private void StopCheckers()
        {
            _checkersCts?.Cancel();
            _checkersCts?.Dispose();
            _checkersCts = null;
        }

        private void OnResource(ResourceChange change)
        {
            _parts.Record(change);
            Log($"{change.Resource} {change.Value.ToString().ToLowerInvariant()}: {change.Reason}");
            if (change.Value != ResourceValue.Down) return;
            Post(async () =>
            {
                var errd = change.Resource.StartsWith("errd.", StringComparison.Ordinal);
                if ((errd ? !_errdEnabled : !_checkersEnabled) || _state != FarmStateName.Up) return;
                // The node leaves the map before anything else: its buckets go to the others at once.
                LeaveView($"{change.Resource} is down: out of the map");
                var now = _ctx.Time.GetUtcNow();
                _loops.RemoveAll(t => now - t > _config.LoopInterval);
                if (change.Action is CheckAction.Stop || _loops.Count >= _config.MaxLoop)
                {
                    Log(change.Action is CheckAction.Stop ? "action stop" : $"more than {_config.MaxLoop} restarts within {_config.LoopInterval}: stopping here");
                    _parts.Started = false;
                    await StopCoreAsync(drain: false);
                    return;
                }
                if (change.Action is CheckAction.Wait or CheckAction.NoAction) return;
                _loops.Add(now);
                StopCheckers();
                Log($"restarting the application ({change.Action.ToString().ToLowerInvariant()})");
                await StopApplicationAsync();
                if (await StartApplicationAsync())
                {
                    StartCheckers();
                    JoinView();
                }
                else
                {
                    Enter(FarmStateName.Wait, false, "the application did not restart; see Get-SKLog");
                }
            });
        }

        // ------------------------------------------------------------------ helpers

        /// <summary>A script with the farm's arguments: current state, next state, action.</summary>
        private Task<ScriptResult> RunScriptAsync(string script, string action, TimeSpan timeout) =>
            _parts.RunScriptAsync(script, [_state.ToString().ToUpperInvariant(), action == "start" ? "UP" : "STOP", action], timeout, _life.Token);

        /// <summary>Established TCP connections to the VIP this node holds (local sockets), via ss.</summary>
        private int? CountConnections()
        {
            try
            {
                using var ss = Process.Start(new ProcessStartInfo("ss", ["-Htn", "state", "established", "src", _vip.ToString()])
                {
                    RedirectStandardOutput = true, RedirectStandardError = true,
                })!;
                var text = ss.StandardOutput.ReadToEnd();
                ss.WaitForExit();
                return ss.ExitCode == 0 ? text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length : null;
            }
            catch (System.ComponentModel.Win32Exception)
            {
                return null;
            }
        }

        private void TryRemoveFilterAndVip()
        {
            try { _filter.Remove(); }
            catch (FarmFilterException ex) { Log("removing the filter failed: " + ex.Message); }
            _filterApplied = false;
            try
            {
                _ctx.VirtualIps.RemoveAsync(_vip, _prefix, _interface, CancellationToken.None).GetAwaiter().GetResult();
                Log($"virtual IP {_vip}/{_prefix} removed from {_interface}");
            }
            catch (Exception ex) when (ex is not OutOfMemoryException) { Log("removing the virtual IP failed: " + ex.Message); }
        }

        private void Enter(FarmStateName state, bool ready, string? reason)
        {
            if (state != _state || ready != _ready)
            {
                Log($"{Name}: {_state.ToString().ToUpperInvariant()}{(_ready ? "" : " (transient)")} -> {state.ToString().ToUpperInvariant()}{(ready ? "" : " (transient)")}{(reason == null ? "" : " (" + reason + ")")}");
                _since = _ctx.Time.GetUtcNow();
            }
            _state = state;
            _ready = ready;
            _reason = reason;
        }

        private void Log(string text)
        {
            _ctx.ModuleLog.Write(Name, "module", text);
            LogLine(text.StartsWith(Name + ":", StringComparison.Ordinal) ? text : Name + ": " + text);
        }

        [LoggerMessage(Level = LogLevel.Information, Message = "{Text}")]
        private partial void LogLine(string text);

        [LoggerMessage(Level = LogLevel.Error, Message = "{Module}: the farm loop failed")]
        private partial void LogFailed(Exception ex, string module);
    }
}
