using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>
    /// The last lines of a module's log (transitions, script output) on its nodes, oldest first;
    /// -Follow keeps writing new lines until Ctrl+C.
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "SKLog")]
    [OutputType(typeof(LogLine))]
    public sealed class GetSKLogCommand : SKSingleModuleCommandBase
    {
        private static readonly TimeSpan FollowInterval = TimeSpan.FromMilliseconds(500);
        // The engine serves 1 to 5000 lines per node and call (and 50 for any other count).
        private const int MaxLines = 5000;

        /// <summary>One node of the module; all its nodes when not given.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(NodeNameCompleter))]
        public string? Node { get; set; }

        /// <summary>How many of the last lines to get, per node; 0 with -Follow: only new lines.</summary>
        [Parameter]
        [ValidateRange(0, MaxLines)]
        public int Tail { get; set; } = 50;

        /// <summary>Keep writing new lines as they come, until Ctrl+C.</summary>
        [Parameter]
        public SwitchParameter Follow { get; set; }

        protected override void ProcessRecord()
        {
            var name = Name;
            var node = Node;
            // -Tail 0 still asks for one line per node (the engine has no "0"): to know where new lines start.
            if (!TryCall((client, ct) => client.GetLogAsync(name, node, Math.Max(Tail, 1), null, ct), name, out var lines)) return;
            var last = new Dictionary<string, long>(StringComparer.OrdinalIgnoreCase);
            if (Tail > 0) Write(lines, last);
            else foreach (var line in lines) last[line.Node] = last.TryGetValue(line.Node, out var seen) ? Math.Max(seen, line.Sequence) : line.Sequence;
            if (Follow) FollowLog(name, last);
        }

        /// <summary>Polls each node for the lines after the last one seen there, until Ctrl+C.</summary>
        private void FollowLog(string name, Dictionary<string, long> last)
        {
            List<string> nodes;
            if (Node != null)
            {
                nodes = new List<string> { Node };
            }
            else
            {
                if (!TryCall((client, ct) => client.GetModulesAsync(ct), name, out var modules)) return;
                var module = modules.FirstOrDefault(m => string.Equals(m.Name, name, StringComparison.OrdinalIgnoreCase));
                nodes = module?.Nodes ?? last.Keys.ToList();
            }

            // A node that does not answer gets one error per outage, not one every half second.
            var failing = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            for (bool first = true; ; first = false)
            {
                if (!first) Sleep(FollowInterval);
                foreach (var node in nodes)
                {
                    try
                    {
                        if (last.TryGetValue(node, out var seen))
                        {
                            Write(Client.GetLogAsync(name, node, MaxLines, seen, StopToken).GetAwaiter().GetResult(), last);
                        }
                        else
                        {
                            // No line of this node shown (-Tail 0, or older than the tail): follow from its latest line.
                            var latest = Client.GetLogAsync(name, node, 1, null, StopToken).GetAwaiter().GetResult();
                            last[node] = latest.Count == 0 ? -1 : latest.Max(l => l.Sequence);
                        }
                        failing.Remove(node);
                    }
                    catch (SKApiException e)
                    {
                        if (failing.Add(node)) WriteError(NewErrorRecord(e, node));
                    }
                    catch (OperationCanceledException) when (StopToken.IsCancellationRequested)
                    {
                        throw new PipelineStoppedException();
                    }
                }
            }
        }

        /// <summary>Writes the lines oldest first, each once: a line at or below the last sequence seen on its node is skipped.</summary>
        private void Write(IEnumerable<LogLine> lines, Dictionary<string, long> last)
        {
            var seenBefore = new Dictionary<string, long>(last, StringComparer.OrdinalIgnoreCase);
            foreach (var line in lines.OrderBy(l => l.TimeUtc))
            {
                if (seenBefore.TryGetValue(line.Node, out var seen) && line.Sequence <= seen) continue;
                last[line.Node] = last.TryGetValue(line.Node, out var max) ? Math.Max(max, line.Sequence) : line.Sequence;
                WriteObject(line);
            }
        }
    }
}
