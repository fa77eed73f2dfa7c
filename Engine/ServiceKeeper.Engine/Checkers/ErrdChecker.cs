// errd: counts the processes of one <proc> entry on every poll and sets errd.<name> up or down.
using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using ServiceKeeper.Engine.Configuration;

namespace ServiceKeeper.Engine.Checkers
{
    /// <summary>
    /// Resource errd.&lt;name&gt;: up while the number of matching processes lies in [atleast, atmax].
    /// A process matches when its name equals <see cref="ProcessMonitorConfig.Name"/> (or the regular
    /// expression finds a match in it, with regex="on") and, with argregex, the expression finds a match
    /// in its whole command line. Expressions are not anchored: write ^...$ for an exact match.
    /// </summary>
    public sealed partial class ErrdChecker : IChecker
    {
        private static readonly TimeSpan RegexTimeout = TimeSpan.FromSeconds(1);

        private readonly ProcessMonitorConfig _config;
        private readonly TimeSpan _pollInterval;
        private readonly CheckerContext _context;
        private readonly Regex? _name;
        private readonly Regex? _arguments;
        private readonly ILogger _logger;

        /// <param name="pollInterval">errd polltimer.</param>
        /// <exception cref="ArgumentException">an expression does not compile (the config validator rejects those).</exception>
        public ErrdChecker(ProcessMonitorConfig config, TimeSpan pollInterval, CheckerContext context)
        {
            _config = config ?? throw new ArgumentNullException(nameof(config));
            _context = context ?? throw new ArgumentNullException(nameof(context));
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(pollInterval, TimeSpan.Zero);
            _pollInterval = pollInterval;
            _name = config.IsRegex ? new Regex(config.Name, RegexOptions.CultureInvariant, RegexTimeout) : null;
            _arguments = config.ArgumentsRegex is null ? null : new Regex(config.ArgumentsRegex, RegexOptions.CultureInvariant, RegexTimeout);
            _logger = context.LoggerFactory.CreateLogger<ErrdChecker>();
            Resource = "errd." + config.Name;
            When = config.Class == ProcessClass.Prim ? CheckWhen.Prim : CheckWhen.Both;
        }

        public string Resource { get; }

        public CheckWhen When { get; }

        public CheckAction Action => _config.Action;

        // The first look comes one poll interval after the start: the script that started the
        // application has returned, but the process may not have exec'd its final name yet.
        public Task RunAsync(Action<ResourceChange> report, CancellationToken ct) =>
            CheckerLoop.RunAsync(this, _context, _pollInterval, firstAfterInterval: true,
                _ => ValueTask.FromResult(Check()), (value, reason) => LogFlip(_context.Module, Resource, value, reason), report, ct);

        private (ResourceValue Value, string Reason) Check()
        {
            IReadOnlyList<ProcessEntry> processes;
            try
            {
                processes = _context.Processes.Snapshot();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                return (ResourceValue.Down, $"{_config.Name}: cannot read the process table: {e.Message}");
            }
            try
            {
                return Evaluate(Count(processes));
            }
            catch (RegexMatchTimeoutException e)
            {
                return (ResourceValue.Down, $"{_config.Name}: the regular expression took too long: {e.Message}");
            }
        }

        /// <summary>How many of <paramref name="processes"/> this entry matches.</summary>
        public int Count(IReadOnlyList<ProcessEntry> processes)
        {
            var count = 0;
            foreach (var process in processes)
                if (Matches(process))
                    count++;
            return count;
        }

        public bool Matches(ProcessEntry process) =>
            (_name?.IsMatch(process.Name) ?? string.Equals(process.Name, _config.Name, StringComparison.Ordinal)) &&
            (_arguments?.IsMatch(process.CommandLine) ?? true);

        /// <summary>Up inside [atleast, atmax], else Down; the reason names the count and the bound it breaks.</summary>
        public (ResourceValue Value, string Reason) Evaluate(int count)
        {
            if (count < _config.AtLeast)
                return (ResourceValue.Down, $"{_config.Name}: {count} running, at least {_config.AtLeast} expected");
            if (_config.AtMost is { } atMost && count > atMost)
                return (ResourceValue.Down, $"{_config.Name}: {count} running, at most {atMost} expected");
            return (ResourceValue.Up, $"{_config.Name}: {count} running");
        }

        [LoggerMessage(Level = LogLevel.Information, Message = "{Module}: {Resource} -> {Value} ({Reason})")]
        private partial void LogFlip(string module, string resource, ResourceValue value, string reason);
    }
}
