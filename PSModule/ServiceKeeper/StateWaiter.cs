// Waiting for modules to reach a state: the polling loop shared by Wait-SKState, Start-SKModule -Wait
// and Start-SKSwap -Wait, with the progress of resynchronisations, warnings and the timeout.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>
    /// One module waited for, and what each waited-for node must show. The engine decides the states;
    /// a wait only reads them: a node counts when <see cref="IsReached"/> holds for its row.
    /// </summary>
    internal sealed class WaitTarget
    {
        private const string Stop = "STOP";
        private const string Wait = "WAIT";

        private WaitTarget(string module, string? node, string goal, Func<ModuleState, bool> isReached, bool settlesAModule)
        {
            Module = module;
            Node = node;
            Goal = goal;
            IsReached = isReached;
            SettlesAModule = settlesAModule;
        }

        public string Module { get; }
        /// <summary>The node waited for; null: every node of the module that answers when the wait begins.</summary>
        public string? Node { get; }
        /// <summary>What is waited for, as the end of "Waiting until ...".</summary>
        public string Goal { get; }
        public Func<ModuleState, bool> IsReached { get; }
        /// <summary>
        /// After start or swap: WAIT counts as settled (it is stable) but is reported as a warning, and a node
        /// that falls back to STOP after it was seen running fails the wait at once instead of at the timeout.
        /// </summary>
        public bool SettlesAModule { get; }

        /// <summary>The module's rows of the last answer (every node), null before the first.</summary>
        public List<ModuleState>? Last { get; private set; }
        /// <summary>The rows of the waited-for nodes in the last answer.</summary>
        public IEnumerable<ModuleState> LastOfWaitedNodes =>
            (Last ?? new List<ModuleState>()).Where(r => _nodes == null || _nodes.Contains(r.Node));
        public bool Finished { get; private set; }
        public bool Reached { get; private set; }

        internal int ProgressId { get; set; }
        internal string? LastError { get; set; }

        private HashSet<string>? _nodes;
        private readonly HashSet<string> _seenRunning = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        private readonly Dictionary<string, int> _childIds = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        private readonly HashSet<int> _childShown = new HashSet<int>();

        /// <summary>After a start: each node Ready in a state other than STOP (WAIT included).</summary>
        /// <param name="answer">The states the start command answered: the first observation.</param>
        public static WaitTarget Started(string module, string? node, IEnumerable<ModuleState> answer)
        {
            var goal = node == null ? $"module '{module}' is started on its nodes" : $"module '{module}' is started on node '{node}'";
            var target = new WaitTarget(module, node, goal, Settled, settlesAModule: true);
            target.Observe(answer);
            return target;
        }

        /// <summary>After a swap: each node Ready in another state than before the swap (the roles exchanged).</summary>
        public static WaitTarget Swapped(string module, IEnumerable<ModuleState> before, IEnumerable<ModuleState> answer)
        {
            var was = before.Where(r => r.Reachable).GroupBy(r => r.Node, StringComparer.OrdinalIgnoreCase)
                .ToDictionary(g => g.Key, g => g.First().State, StringComparer.OrdinalIgnoreCase);
            var target = new WaitTarget(module, null, $"the primary and secondary of module '{module}' are swapped",
                r => Settled(r) && (!was.TryGetValue(r.Node, out var state) || !string.Equals(state, r.State, StringComparison.OrdinalIgnoreCase)),
                settlesAModule: true);
            foreach (var row in before.Where(IsRunning)) target._seenRunning.Add(row.Node);
            // The swap answers for the primary only; both nodes must be seen exchanged and Ready.
            var answered = answer.ToList();
            target.Observe(before.Where(b => !answered.Any(a => string.Equals(a.Node, b.Node, StringComparison.OrdinalIgnoreCase))).Concat(answered));
            return target;
        }

        /// <summary>Wait-SKState: the node in one of <paramref name="states"/>, and Ready when <paramref name="ready"/>.</summary>
        public static WaitTarget InState(string module, string node, string[] states, bool ready)
        {
            var goal = $"module '{module}' is {string.Join(" or ", states)}{(ready ? " and Ready" : "")} on node '{node}'";
            return new WaitTarget(module, node, goal,
                r => r.Reachable && states.Contains(r.State, StringComparer.OrdinalIgnoreCase) && (!ready || r.Ready),
                settlesAModule: false);
        }

        private static bool Settled(ModuleState r) => r.Reachable && r.Ready && r.State.Length > 0 && !Is(r, Stop);

        private static bool IsRunning(ModuleState r) => r.Reachable && r.State.Length > 0 && !Is(r, Stop);

        private static bool Is(ModuleState r, string state) => string.Equals(r.State, state, StringComparison.OrdinalIgnoreCase);

        internal void Observe(IEnumerable<ModuleState> rows)
        {
            Last = rows.Where(r => string.Equals(r.Module, Module, StringComparison.OrdinalIgnoreCase)).ToList();
            LastError = null;
        }

        internal void Fail() => Finished = true;

        /// <summary>Looks at the last answer: progress, then failure or success. Writes through <paramref name="cmdlet"/>.</summary>
        internal void Evaluate(SKCmdletBase cmdlet, Action<WaitTarget> reached)
        {
            var rows = Last!;
            if (_nodes == null)
            {
                if (rows.Count == 0)
                {
                    // The engine has a row for every node of an installed module (unreachable ones included):
                    // no row at all means no such module.
                    cmdlet.WriteError(ErrorIds.ModuleNotFound, $"No module named '{Module}' is installed in the cluster.", Module);
                    Finished = true;
                    return;
                }
                if (Node != null)
                {
                    if (!rows.Any(r => string.Equals(r.Node, Node, StringComparison.OrdinalIgnoreCase)))
                    {
                        cmdlet.WriteError(ErrorIds.NodeNotFound,
                            $"Module '{Module}' is not on node '{Node}'; its nodes are {string.Join(", ", rows.Select(r => r.Node))}.", Node);
                        Finished = true;
                        return;
                    }
                    _nodes = new HashSet<string>(new[] { Node }, StringComparer.OrdinalIgnoreCase);
                }
                else
                {
                    _nodes = new HashSet<string>(rows.Where(r => r.Reachable).Select(r => r.Node), StringComparer.OrdinalIgnoreCase);
                    foreach (var r in rows.Where(r => !r.Reachable))
                        cmdlet.WriteWarning($"Not waiting for node '{r.Node}' of module '{Module}': it is unreachable ({r.Error ?? "no answer"}).");
                }
            }

            var mine = _nodes.Select(n => rows.FirstOrDefault(r => string.Equals(r.Node, n, StringComparison.OrdinalIgnoreCase))).ToList();
            if (SettlesAModule)
            {
                foreach (var r in mine.Where(r => r != null))
                {
                    if (IsRunning(r!)) _seenRunning.Add(r!.Node);
                    else if (r!.Reachable && r.Ready && Is(r, Stop) && _seenRunning.Contains(r.Node))
                    {
                        CompleteProgress(cmdlet);
                        cmdlet.WriteError(ErrorIds.ModuleStopped,
                            $"Module '{Module}' stopped on node '{r.Node}' while waiting until {Goal}: {r.Reason ?? "no reason given"}.", Module);
                        Finished = true;
                        return;
                    }
                }
            }

            WriteProgress(cmdlet, rows);
            if (!mine.All(r => r != null && IsReached(r))) return;

            CompleteProgress(cmdlet);
            Finished = Reached = true;
            if (SettlesAModule)
                foreach (var r in mine.Where(r => Is(r!, Wait)))
                    cmdlet.WriteWarning($"Module '{Module}' waits on node '{r!.Node}': {r.Reason ?? "no reason given"}.");
            reached(this);
        }

        internal void TimedOut(SKCmdletBase cmdlet, TimeSpan timeout)
        {
            CompleteProgress(cmdlet);
            var seen = Last == null
                ? LastError ?? "no answer from the engine"
                : string.Join("; ", LastOfWaitedNodes.Select(r => Describe(r, detailed: true)).DefaultIfEmpty("no state for the module"));
            cmdlet.WriteError(ErrorIds.WaitTimeout, $"Timed out after {HumanText.Duration(timeout)} waiting until {Goal}. Last seen: {seen}.", Module);
            Finished = true;
        }

        private void WriteProgress(SKCmdletBase cmdlet, List<ModuleState> rows)
        {
            var shown = LastOfWaitedNodes.ToList();
            var status = string.Join("; ", shown.Select(r => Describe(r, detailed: false)).DefaultIfEmpty("no state yet"));
            cmdlet.WriteProgress(new ProgressRecord(ProgressId, "Waiting until " + Goal, status));
            foreach (var r in shown)
            {
                if (!_childIds.TryGetValue(r.Node, out var id))
                    _childIds[r.Node] = id = ProgressId + 1 + _childIds.Count;
                bool resyncing = r.Reachable && string.Equals(r.State, "SECOND", StringComparison.OrdinalIgnoreCase) && !r.Ready
                                 && r.ResyncBytesTotal > 0 && r.ResyncBytesDone != null;
                if (resyncing)
                {
                    var percent = (int)Math.Max(0, Math.Min(100, r.ResyncBytesDone!.Value * 100 / r.ResyncBytesTotal!.Value));
                    cmdlet.WriteProgress(new ProgressRecord(id, $"Resynchronising module '{Module}' on node '{r.Node}'", HumanText.Resync(r))
                    {
                        ParentActivityId = ProgressId,
                        PercentComplete = percent,
                        SecondsRemaining = r.ResyncEtaSeconds == null ? -1 : (int)Math.Min(int.MaxValue, Math.Max(0, r.ResyncEtaSeconds.Value)),
                    });
                    _childShown.Add(id);
                }
                else if (_childShown.Remove(id))
                {
                    cmdlet.WriteProgress(Completed(id, $"Resynchronising module '{Module}' on node '{r.Node}'"));
                }
            }
        }

        private void CompleteProgress(SKCmdletBase cmdlet)
        {
            foreach (var id in _childShown) cmdlet.WriteProgress(Completed(id, "Resynchronising module '" + Module + "'"));
            _childShown.Clear();
            cmdlet.WriteProgress(Completed(ProgressId, "Waiting until " + Goal));
        }

        private static ProgressRecord Completed(int id, string activity) =>
            new ProgressRecord(id, activity, "Done") { RecordType = ProgressRecordType.Completed };

        private static string Describe(ModuleState r, bool detailed)
        {
            if (!r.Reachable) return $"{r.Node} unreachable" + (detailed && r.Error != null ? $" ({r.Error})" : "");
            var text = $"{r.Node} {r.State} {(r.Ready ? "Ready" : "Transient")}";
            if (detailed && r.ResyncBytesTotal > 0 && r.ResyncBytesDone != null) text += ", resynchronising " + HumanText.Resync(r);
            if (r.Reason != null) text += $" ({r.Reason})";
            return text;
        }
    }

    /// <summary>Polls the engine for <see cref="WaitTarget"/>s.</summary>
    internal static class StateWaiter
    {
        internal static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(300);

        /// <summary>
        /// Polls the state of each target's module until every target is reached or has failed, or until
        /// <paramref name="timeout"/> (null: no limit) has passed. Calls <paramref name="reached"/> for each
        /// target reached, as it is reached. Failures and timeouts are non-terminating errors; Ctrl+C stops.
        /// A target with a first observation (the command's answer) is judged on it before any poll.
        /// </summary>
        public static void Run(SKCmdletBase cmdlet, IList<WaitTarget> targets, TimeSpan? timeout, Action<WaitTarget> reached)
        {
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < targets.Count; i++) targets[i].ProgressId = 1 + i * 10;
            var pending = targets.Where(t => !t.Finished).ToList();
            bool first = true;
            while (pending.Count > 0)
            {
                foreach (var target in pending)
                {
                    if ((first && target.Last != null) || Poll(cmdlet, target))
                        target.Evaluate(cmdlet, reached);
                }
                pending.RemoveAll(t => t.Finished);
                if (pending.Count == 0) break;

                var elapsed = clock.Elapsed;
                if (timeout.HasValue && elapsed >= timeout.Value)
                {
                    foreach (var target in pending) target.TimedOut(cmdlet, timeout.Value);
                    break;
                }
                var remaining = timeout.HasValue ? timeout.Value - elapsed : PollInterval;
                cmdlet.Sleep(remaining < PollInterval ? remaining : PollInterval);
                first = false;
            }
        }

        /// <summary>Asks the engine; false when there is no new answer (engine unreachable: try again; other errors end the target).</summary>
        private static bool Poll(SKCmdletBase cmdlet, WaitTarget target)
        {
            try
            {
                target.Observe(cmdlet.Client.GetStateAsync(target.Module, cmdlet.StopToken).GetAwaiter().GetResult());
                return true;
            }
            catch (SKApiException e) when (e.ErrorId == ErrorIds.NodeUnreachable && target.Last != null)
            {
                // The engine answered before: it may be restarting or briefly cut off, so keep asking until the
                // timeout. One that never answered (a wrong -ComputerName) fails at once, below.
                if (target.LastError == null) cmdlet.WriteVerbose(e.Message + " Asking again.");
                target.LastError = e.Message;
                return false;
            }
            catch (SKApiException e)
            {
                cmdlet.WriteError(SKCmdletBase.NewErrorRecord(e, target.Module));
                target.Fail();
                return false;
            }
            catch (OperationCanceledException) when (cmdlet.StopToken.IsCancellationRequested)
            {
                throw new PipelineStoppedException();
            }
        }
    }

    /// <summary>Sizes and durations as people read them.</summary>
    internal static class HumanText
    {
        public static string Bytes(double bytes)
        {
            string[] units = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
            int unit = 0;
            while (Math.Abs(bytes) >= 1024 && unit < units.Length - 1) { bytes /= 1024; unit++; }
            return unit == 0
                ? bytes.ToString("0", CultureInfo.InvariantCulture) + " B"
                : bytes.ToString("0.0", CultureInfo.InvariantCulture) + " " + units[unit];
        }

        public static string Duration(TimeSpan span)
        {
            if (span.TotalSeconds < 60) return span.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture) + " s";
            if (span.TotalHours < 1) return $"{(int)span.TotalMinutes} min {span.Seconds:00} s";
            return $"{(int)span.TotalHours} h {span.Minutes:00} min";
        }

        /// <summary>"12.3 GiB of 100.0 GiB (12 %), 110.0 MiB/s, about 14 min 05 s left".</summary>
        public static string Resync(ModuleState r)
        {
            var done = r.ResyncBytesDone ?? 0;
            var total = r.ResyncBytesTotal ?? 0;
            var text = $"{Bytes(done)} of {Bytes(total)} ({(total > 0 ? done * 100 / total : 0)} %)";
            if (r.ResyncBytesPerSecond != null) text += $", {Bytes(r.ResyncBytesPerSecond.Value)}/s";
            if (r.ResyncEtaSeconds != null && r.ResyncEtaSeconds.Value >= 0 && r.ResyncEtaSeconds.Value < TimeSpan.MaxValue.TotalSeconds)
                text += ", about " + Duration(TimeSpan.FromSeconds(r.ResyncEtaSeconds.Value)) + " left";
            return text;
        }
    }
}
