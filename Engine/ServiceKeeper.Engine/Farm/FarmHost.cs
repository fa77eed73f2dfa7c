// Runs one farm module on this node: the actor loop around FarmMachine. It feeds the machine its
// events (heartbeats, peers lost, checker and link changes, admin commands, procedure completions, the
// kernel filter read back, ticks) and carries out its actions (filter, VIP, scripts, checkers), then
// gossips the machine's view — always in that order, which is what makes "release before the others
// take" hold (see FarmMachine).
using System;
using System.Collections.Concurrent;
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
    public sealed partial class FarmHost : IModuleHost
    {
        private static readonly TimeSpan TickInterval = TimeSpan.FromMilliseconds(100);
        /// <summary>How often the kernel filter is read back (nft.&lt;module&gt;).</summary>
        public static readonly TimeSpan VerifyInterval = TimeSpan.FromSeconds(2);
        private static readonly TimeSpan DrainTimeout = TimeSpan.FromMinutes(5);

        private readonly ModuleHostContext _ctx;
        private readonly ModuleInfo _info;
        private readonly UserConfig _config;
        private readonly ILogger _log;
        private readonly Channel<object> _inbox = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });
        private readonly CancellationTokenSource _life = new();
        private readonly FarmMachine _machine;
        private readonly ModuleParts _parts;
        private readonly NftablesFilter _filter;
        private readonly IPAddress _vip;
        private readonly int _prefix;
        private readonly string _interface;
        private readonly ConcurrentDictionary<string, byte[]> _lastPeerPayload = new(StringComparer.Ordinal);
        private readonly ModuleResource _nftResource, _linkResource;
        private CancellationTokenSource? _checkers;
        private Task? _loop, _ticker;
        private int _verifying;
        private bool? _linkUp;
        private volatile ModuleState _snapshot;

        private sealed record Command(ModuleCommandRequest Request, TaskCompletionSource<ModuleState> Done);
        private sealed record Maintenance(MaintenanceRequest Request, TaskCompletionSource<ModuleState> Done);
        private sealed record VerifyDue;

        public FarmHost(ModuleHostContext ctx, ModuleInfo info, UserConfig config)
        {
            _ctx = ctx;
            _info = info;
            _config = config;
            _log = ctx.LoggerFactory.CreateLogger("Farm");
            var group = config.Vip.LoadBalancing.FirstOrDefault()
                ?? throw new ConfigurationException($"{info.Name}/userconfig.xml", 0, 0, "a farm module needs a <loadbalancing_list> group.");
            var powers = info.Nodes.ToDictionary(n => n, n => group.Hosts.FirstOrDefault(h => h.Name == n)?.Power ?? 1, StringComparer.Ordinal);
            var vip = config.Vip.Interfaces.SelectMany(i => i.Addresses.Select(a => (Interface: i.Name, a.Address, a.PrefixLength))).FirstOrDefault();
            if (vip.Address == null)
                throw new ConfigurationException($"{info.Name}/userconfig.xml", 0, 0, "a farm module needs a virtual address.");
            _vip = vip.Address;
            _prefix = vip.PrefixLength ?? 32;
            _interface = vip.Interface ?? ctx.VirtualIps.ResolveInterface(_vip);
            _filter = new NftablesFilter(new FarmFilterRules(info.Name, [_vip], group.Rules), _interface);
            _parts = new ModuleParts(ctx, info, config);
            var farm = config.Farm!;
            _machine = new FarmMachine(
                new FarmSettings(info.Name, ctx.Options.NodeName, info.Nodes, powers, farm.Pulse * farm.MasterLostCount,
                    config.MaxLoop, config.LoopInterval, DrainTimeout),
                ctx.Time);
            var now = ctx.Time.GetUtcNow().UtcDateTime;
            _nftResource = new ModuleResource { Module = info.Name, Node = Self, Resource = "nft." + info.Name, Value = "init", Action = "reapply", SinceUtc = now };
            _linkResource = new ModuleResource { Module = info.Name, Node = Self, Resource = "link." + _interface, Value = "init", Action = "wait", SinceUtc = now };
            _snapshot = BuildSnapshot();
        }

        public string Name => _info.Name;
        private string Self => _ctx.Options.NodeName;

        public ModuleState State => _snapshot;

        /// <summary>The checkers' resources, and the host's own: the kernel filter and the VIP's link.</summary>
        public IReadOnlyList<ModuleResource> Resources
        {
            get
            {
                lock (_nftResource) return _parts.Resources.Concat([Copy(_nftResource), Copy(_linkResource)]).ToList();
            }
        }

        /// <summary>The machine, for diagnostics (read-only use from outside the loop).</summary>
        internal FarmMachine Machine => _machine;

        public async Task StartAsync()
        {
            // What an engine that died may have left: the filter, the VIP.
            if (!OperatingSystem.IsWindows() && _ctx.VirtualIps.IsPresent(_vip, _interface))
            {
                ModuleLog("module", "engine restarted: removing the filter and virtual IP the previous engine left");
                await RemoveVipAsync();
                RemoveFilter();
            }
            var farm = _config.Farm!;
            _parts.OpenHeartbeats(_info.Nodes.Where(n => n != Self), farm.Lans, farm.Pulse, farm.Pulse * farm.MasterLostCount, OnHeartbeat);
            Publish();
            _loop = Task.Run(LoopAsync);
            _ticker = Task.Run(TickAsync);
            if (_parts.ResumesAtEngineStart()) _inbox.Writer.TryWrite(new FarmStartCommand());
        }

        public Task<ModuleState> CommandAsync(ModuleCommandRequest request) => _inbox.Writer.AskAsync(Name, done => new Command(request, done));

        public Task<ModuleState> SetMaintenanceAsync(MaintenanceRequest request) => _inbox.Writer.AskAsync(Name, done => new Maintenance(request, done));

        /// <summary>Get-SKFarmLoad on this node: its buckets and share of the current map, live connections.</summary>
        public List<FarmLoad> Load()
        {
            // What the filter accepts now (while joining this is less than the map's share).
            var owned = _machine.OwnedBuckets.Count;
            var state = _machine.State;
            return
            [
                new FarmLoad
                {
                    Module = Name, Node = Self, State = FarmMachine.Name(state), Power = _machine.Settings.PowerOf(Self),
                    Buckets = owned,
                    SharePercent = Math.Round(100.0 * owned / BucketMap.BucketCount, 1),
                    Connections = state == FarmStateName.Stop ? null : CountConnections(),
                },
            ];
        }

        /// <summary>Stops the module here (the engine is stopping or the module is being removed) and waits for STOP.</summary>
        public async Task StopAsync(TimeSpan timeout, bool keepStartedFlag)
        {
            await _inbox.Writer.StopAndWaitAsync(done => new Command(new ModuleCommandRequest { Command = ModuleCommands.Stop }, done),
                () => _machine.State == FarmStateName.Stop && _machine.RunningProcedure == null, _ctx.Time, timeout);
            if (keepStartedFlag) _parts.Started = true;
        }

        public async ValueTask DisposeAsync()
        {
            _inbox.Writer.TryComplete();
            _life.Cancel();
            StopCheckers();
            _parts.CloseHeartbeats();
            foreach (var task in new[] { _loop, _ticker })
                if (task != null) try { await task; } catch (OperationCanceledException) { }
            _life.Dispose();
        }

        // ------------------------------------------------------------------ the loop

        private async Task LoopAsync()
        {
            await foreach (var item in _inbox.Reader.ReadAllAsync(_life.Token))
            {
                try
                {
                    switch (item)
                    {
                        case Command c: await HandleCommandAsync(c); break;
                        case Maintenance m:
                            await ApplyAsync(_machine.Handle(new FarmMaintenanceCommand(m.Request.Checkers, m.Request.Errd)));
                            m.Done.SetResult(BuildSnapshot());
                            break;
                        case VerifyDue: StartVerify(); break;
                        case FarmEvent e: await ApplyAsync(_machine.Handle(e)); break;
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogFailed(ex, Name);
                    ModuleLog("module", "internal error: " + ex.Message);
                }
                _snapshot = BuildSnapshot();
                Publish();
            }
        }

        private async Task HandleCommandAsync(Command c)
        {
            FarmEvent e;
            switch (c.Request.Command)
            {
                case ModuleCommands.Start: e = new FarmStartCommand(); break;
                case ModuleCommands.Stop: e = new FarmStopCommand(c.Request.Drain); break;
                case ModuleCommands.Restart: e = new FarmRestartCommand(); break;
                default:
                    c.Done.SetException(new SKApiException(ErrorIds.InvalidModuleState,
                        $"'{c.Request.Command}' is for mirror modules; {Name} is a farm module (every node serves).", Name));
                    return;
            }
            IReadOnlyList<FarmAction> actions;
            try
            {
                actions = _machine.Handle(e);
            }
            catch (FarmCommandException ex)
            {
                c.Done.SetException(new SKApiException(ex.ErrorId, ex.Message, Name));
                return;
            }
            if (e is FarmStartCommand or FarmRestartCommand) _parts.Started = true;
            if (e is FarmStopCommand) _parts.Started = false;
            // Answer once the actions ran: after Stop-SKModule -Drain returns, the node has left the map.
            try { await ApplyAsync(actions); }
            finally { c.Done.TrySetResult(BuildSnapshot()); }
        }

        private async Task ApplyAsync(IReadOnlyList<FarmAction> actions)
        {
            foreach (var action in actions)
            {
                switch (action)
                {
                    case ApplyFilter f: ApplyFilter(f); break;
                    case Farm.RemoveFilter: RemoveFilter(); break;
                    case AddVip:
                        try
                        {
                            await _ctx.VirtualIps.AddAsync(_vip, _prefix, _interface, _life.Token);
                            ModuleLog("module", $"virtual IP {_vip}/{_prefix} added on {_interface}");
                        }
                        catch (Exception ex) when (ex is not OperationCanceledException)
                        {
                            ModuleLog("module", $"adding the virtual IP failed: {ex.Message}");
                        }
                        break;
                    case RemoveVip: await RemoveVipAsync(); break;
                    case SetCheckers s:
                        if (s.Running) StartCheckers();
                        else StopCheckers();
                        break;
                    case Farm.CountConnections:
                        _ = Task.Run(() => _inbox.Writer.TryWrite(new FarmConnectionsCounted(CountConnections())));
                        break;
                    case SetFilterResource r:
                        lock (_nftResource) SetResource(_nftResource, r.Value, r.Reason);
                        break;
                    case RunFarmProcedure p: StartProcedure(p.Procedure); break;
                    case FarmLog l:
                        ModuleLog("module", l.Text);
                        LogLine(l.Text.StartsWith(Name + ":", StringComparison.Ordinal) ? l.Text : Name + ": " + l.Text);
                        break;
                }
            }
        }

        private async Task TickAsync()
        {
            var nextVerify = _ctx.Time.GetUtcNow() + VerifyInterval;
            try
            {
                while (!_life.IsCancellationRequested)
                {
                    await Task.Delay(TickInterval, _ctx.Time, _life.Token);
                    _inbox.Writer.TryWrite(new FarmTick());
                    WatchLink();
                    if (_ctx.Time.GetUtcNow() >= nextVerify)
                    {
                        nextVerify = _ctx.Time.GetUtcNow() + VerifyInterval;
                        if (_machine.FilterInstalled) _inbox.Writer.TryWrite(new VerifyDue());
                    }
                }
            }
            catch (OperationCanceledException) { }
        }

        // ------------------------------------------------------------------ heartbeats

        /// <summary>On the heartbeat service's threads: hand over at once, never block.</summary>
        private void OnHeartbeat(HeartbeatEvent e)
        {
            switch (e)
            {
                case PeerMessage m:
                    if (_lastPeerPayload.TryGetValue(m.Node, out var last) && last.AsSpan().SequenceEqual(m.Payload)) return;
                    _lastPeerPayload[m.Node] = m.Payload;
                    if (FarmPayload.Decode(m.Node, m.Payload) is { } view) _inbox.Writer.TryWrite(new FarmPeerHeard(view));
                    break;
                case Heartbeat.PeerLost lost:
                    _lastPeerPayload.TryRemove(lost.Node, out _);
                    _inbox.Writer.TryWrite(new FarmPeerLost(lost.Node));
                    break;
            }
        }

        /// <summary>Gossips the machine's view; called after the actions of every event were carried out.</summary>
        private void Publish()
        {
            var payload = FarmPayload.Encode(_machine.View);
            try
            {
                _parts.Publish(payload);
            }
            catch (ArgumentException ex)
            {
                // More members than a heartbeat can name (about 20 with short names): peers keep the last view.
                ModuleLog("module", "the farm view does not fit in a heartbeat: " + ex.Message);
            }
        }

        // ------------------------------------------------------------------ kernel filter, VIP, link

        private void ApplyFilter(ApplyFilter f)
        {
            try
            {
                if (f.Install) _filter.Apply(f.Owned);
                else _filter.UpdateOwned(f.Owned);
            }
            catch (FarmFilterException ex) when (!f.Install)
            {
                // The table is gone or damaged (someone flushed it): write the whole ruleset instead.
                ModuleLog("module", $"updating the owned buckets failed ({ex.Message}): reinstalling the filter");
                try { _filter.Apply(f.Owned); }
                catch (FarmFilterException again) { ModuleLog("module", "installing the filter failed: " + again.Message); }
            }
            catch (FarmFilterException ex)
            {
                ModuleLog("module", "installing the filter failed: " + ex.Message);
            }
        }

        private void RemoveFilter()
        {
            try { _filter.Remove(); }
            catch (FarmFilterException ex) { ModuleLog("module", "removing the filter failed: " + ex.Message); }
        }

        private async Task RemoveVipAsync()
        {
            try
            {
                await _ctx.VirtualIps.RemoveAsync(_vip, _prefix, _interface, CancellationToken.None);
                ModuleLog("module", $"virtual IP {_vip}/{_prefix} removed from {_interface}");
            }
            catch (Exception ex) when (ex is not OutOfMemoryException) { ModuleLog("module", "removing the virtual IP failed: " + ex.Message); }
        }

        /// <summary>Reads the filter back off the loop; the answer names the filter version it checked.</summary>
        private void StartVerify()
        {
            if (!_machine.FilterInstalled || Interlocked.Exchange(ref _verifying, 1) == 1) return;
            var owned = _machine.OwnedBuckets;
            var version = _machine.FilterVersion;
            var vipExpected = _machine.VipAdded;
            _ = Task.Run(() =>
            {
                try
                {
                    var status = _filter.Verify(owned);
                    var vipMissing = vipExpected && !_ctx.VirtualIps.IsPresent(_vip, _interface);
                    _inbox.Writer.TryWrite(new FarmFilterChecked(version, status.Problems, vipMissing));
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    ModuleLog("module", "checking the filter failed: " + ex.Message);
                }
                finally
                {
                    Volatile.Write(ref _verifying, 0);
                }
            });
        }

        /// <summary>
        /// A node whose NIC lost its carrier (cable, switch port) leaves the map (resource link.&lt;if&gt;,
        /// action wait) and comes back through a normal join, owning nothing until the others released its share.
        /// </summary>
        private void WatchLink()
        {
            var up = ReadCarrier(_interface);
            if (up == null) return;
            var changed = up != _linkUp;
            _linkUp = up;
            if (changed)
            {
                var reason = up.Value ? $"{_interface} has a carrier" : $"{_interface} has no carrier (cable or switch port down)";
                lock (_nftResource) SetResource(_linkResource, up.Value ? ResourceValue.Up : ResourceValue.Down, reason);
                ModuleLog(_linkResource.Resource, (up.Value ? "up: " : "down: ") + reason);
                _inbox.Writer.TryWrite(new FarmResourceChanged(_linkResource.Resource, up.Value ? ResourceValue.Up : ResourceValue.Down, CheckAction.Wait, false, reason));
            }
            else if (!up.Value && _machine.InMap)
            {
                // Started (or rejoined) while the link was already down.
                _inbox.Writer.TryWrite(new FarmResourceChanged(_linkResource.Resource, ResourceValue.Down, CheckAction.Wait, false, $"{_interface} has no carrier"));
            }
        }

        private static bool? ReadCarrier(string iface)
        {
            if (!OperatingSystem.IsLinux()) return null;
            try
            {
                return File.ReadAllText($"/sys/class/net/{iface}/carrier").Trim() == "1";
            }
            catch (IOException)
            {
                // EINVAL when the interface is administratively down: no carrier either.
                return File.Exists($"/sys/class/net/{iface}/carrier") ? false : null;
            }
            catch (UnauthorizedAccessException)
            {
                return null;
            }
        }

        // ------------------------------------------------------------------ procedures and checkers

        private void StartProcedure(FarmProcedure procedure)
        {
            var state = FarmMachine.Name(_machine.State);
            _ = Task.Run(async () =>
            {
                bool ok;
                string? detail = null;
                try
                {
                    (ok, detail) = await RunProcedureAsync(procedure, state, _life.Token);
                }
                catch (OperationCanceledException) when (_life.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception ex)
                {
                    (ok, detail) = (false, ex.Message);
                    ModuleLog("module", $"{procedure} failed: {ex.Message}");
                }
                _inbox.Writer.TryWrite(new FarmProcedureDone(procedure, ok, detail));
            });
        }

        private async Task<(bool, string?)> RunProcedureAsync(FarmProcedure procedure, string state, CancellationToken ct)
        {
            switch (procedure)
            {
                case FarmProcedure.Prestart:
                    await _parts.RunScriptAsync("prestart", [state, "UP", "start"], _config.User.ForceStopTimeout, ct);
                    return (true, null);
                case FarmProcedure.StartApplication:
                    var start = await _parts.RunScriptAsync("start_both", [state, "UP", "start"], _config.User.ForceStopTimeout, ct);
                    return start.Succeeded || start.Missing ? (true, null) : (false, Describe("start_both", start));
                case FarmProcedure.StopApplication:
                    var stop = await _parts.RunScriptAsync("stop_both", [state, "STOP", "stop"], _config.User.NiceStopTimeout, ct);
                    if (!stop.Succeeded && !stop.Missing)
                    {
                        ModuleLog("module", Describe("stop_both", stop) + ": stopping with force");
                        await _parts.RunScriptAsync("stop_both", [state, "STOP", "force"], _config.User.ForceStopTimeout, ct);
                    }
                    return (true, null);
                case FarmProcedure.Poststop:
                    await _parts.RunScriptAsync("poststop", [state, "STOP", "stop"], _config.User.ForceStopTimeout, ct);
                    return (true, null);
            }
            return (false, "unknown procedure " + procedure);
        }

        private static string Describe(string script, ScriptResult r) =>
            r.TimedOut ? $"{script} timed out after {r.Duration.TotalSeconds:0} s" : $"{script} exited with {r.ExitCode}";

        private void StartCheckers() => _parts.StartCheckers(ref _checkers, _life.Token, _ => true, OnResource);

        private void StopCheckers() => _parts.StopCheckers(ref _checkers, _ => true);

        /// <summary>On the checker's task, after ModuleParts recorded and logged the flip.</summary>
        private void OnResource(IChecker checker, ResourceChange change) =>
            _inbox.Writer.TryWrite(new FarmResourceChanged(change.Resource, change.Value, change.Action,
                change.Resource.StartsWith("errd.", StringComparison.Ordinal), change.Reason));

        // ------------------------------------------------------------------ helpers

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

        private ModuleState BuildSnapshot() => new()
        {
            Module = Name, Node = Self, Kind = "farm", State = FarmMachine.Name(_machine.State), Ready = _machine.Ready,
            Reason = _machine.Reason, SinceUtc = _machine.Since.UtcDateTime, UpToDate = true,
            CheckersEnabled = _machine.CheckersEnabled, ErrdEnabled = _machine.ErrdEnabled, FailoverEnabled = true,
        };

        private void SetResource(ModuleResource r, ResourceValue value, string reason)
        {
            r.Value = value.ToString().ToLowerInvariant();
            r.Reason = reason;
            r.SinceUtc = _ctx.Time.GetUtcNow().UtcDateTime;
        }

        private static ModuleResource Copy(ModuleResource r) => new()
        {
            Module = r.Module, Node = r.Node, Resource = r.Resource, Value = r.Value, Action = r.Action, Reason = r.Reason, SinceUtc = r.SinceUtc,
        };

        private void ModuleLog(string source, string text) => _ctx.ModuleLog.Write(Name, source, text);

        [LoggerMessage(Level = LogLevel.Information, Message = "{Text}")]
        private partial void LogLine(string text);

        [LoggerMessage(Level = LogLevel.Error, Message = "{Module}: the farm loop failed")]
        private partial void LogFailed(Exception ex, string module);
    }

    /// <summary>The farm heartbeat payload: a FarmView as compact JSON.</summary>
    public static class FarmPayload
    {
        private sealed record Wire(
            [property: JsonPropertyName("s")] FarmStateName State,
            [property: JsonPropertyName("m")] bool InMap,
            [property: JsonPropertyName("e")] long Epoch,
            [property: JsonPropertyName("v")] string[]? Members,
            // Sent only when true; absent (older engines) reads as false, the safe value.
            [property: JsonPropertyName("r"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] bool Settled = false);

        public static byte[] Encode(FarmView view) =>
            JsonSerializer.SerializeToUtf8Bytes(new Wire(view.State, view.InMap, view.Epoch, view.Members.Select(m => m.ToString()).ToArray(), view.Settled));

        /// <summary>The view <paramref name="node"/> sent, or null when the payload is not a farm view.</summary>
        public static FarmView? Decode(string node, byte[] payload)
        {
            try
            {
                var w = JsonSerializer.Deserialize<Wire>(payload);
                if (w == null) return null;
                var members = new List<FarmMember>();
                foreach (var text in w.Members ?? [])
                {
                    var colon = text.LastIndexOf(':');
                    if (colon <= 0 || !long.TryParse(text.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var epoch))
                        return null;
                    members.Add(new FarmMember(text[..colon], epoch));
                }
                return new FarmView(node, w.State, w.InMap, w.Epoch, members) { Settled = w.Settled };
            }
            catch (JsonException)
            {
                return null;
            }
        }
    }
}
