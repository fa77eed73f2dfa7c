// custom: the module's own check program, run on a timer; its exit code sets custom.<ident>.
using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Scripts;

namespace ServiceKeeper.Engine.Checkers
{
    /// <summary>
    /// Resource custom.&lt;ident&gt;: runs <see cref="CustomCheckConfig.Exec"/> (from the module's bin/, else
    /// PATH) with <see cref="CustomCheckConfig.Arguments"/> split as a shell would, with the module's
    /// environment; exit code 0 is up, anything else (or a timeout, or a missing program) is down.
    /// Its output goes to the module log under the resource name.
    /// </summary>
    public sealed partial class CustomChecker : IChecker
    {
        public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(10);
        public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

        private readonly CustomCheckConfig _config;
        private readonly CheckerContext _context;
        private readonly TimeSpan _interval;
        private readonly TimeSpan _timeout;
        private readonly IReadOnlyList<string> _arguments;
        private readonly ILogger _logger;

        /// <param name="interval">time between the starts of two runs; <see cref="DefaultInterval"/> when null.</param>
        /// <param name="timeout">how long one run may take before it is killed and counts as down; <see cref="DefaultTimeout"/> when null.</param>
        public CustomChecker(CustomCheckConfig config, CheckerContext context, TimeSpan? interval = null, TimeSpan? timeout = null)
        {
            _config = config ?? throw new ArgumentNullException(nameof(config));
            _context = context ?? throw new ArgumentNullException(nameof(context));
            _interval = interval ?? DefaultInterval;
            _timeout = timeout ?? DefaultTimeout;
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(_interval, TimeSpan.Zero, nameof(interval));
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(_timeout, TimeSpan.Zero, nameof(timeout));
            _arguments = ShellWords.Split(config.Arguments);
            _logger = context.LoggerFactory.CreateLogger<CustomChecker>();
        }

        public string Resource => _config.ResourceName;

        public CheckWhen When => _config.When;

        public CheckAction Action => _config.Action;

        public Task RunAsync(Action<ResourceChange> report, CancellationToken ct) =>
            CheckerLoop.RunAsync(this, _context, _interval, firstAfterInterval: false,
                CheckAsync, (value, reason) => LogFlip(_context.Module, Resource, value, reason), report, ct);

        private async ValueTask<(ResourceValue Value, string Reason)> CheckAsync(CancellationToken ct)
        {
            var invocation = new ScriptInvocation(
                _context.Module, Resource, ProgramPath.InModule(_context.ModuleDirectory, _config.Exec),
                _arguments, _context.Environment, _timeout);
            ScriptResult result;
            try
            {
                result = await _context.Scripts.RunAsync(invocation, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                return (ResourceValue.Down, $"{_config.Exec}: could not run: {e.Message}");
            }
            return Evaluate(_config.Exec, result, _timeout);
        }

        /// <summary>Exit code 0: up. Otherwise down, saying why.</summary>
        public static (ResourceValue Value, string Reason) Evaluate(string exec, ScriptResult result, TimeSpan timeout)
        {
            ArgumentNullException.ThrowIfNull(result);
            if (result.Missing)
                return (ResourceValue.Down, $"{exec}: not found in the module's bin/ nor on PATH");
            if (result.TimedOut)
                return (ResourceValue.Down, $"{exec}: no answer within {timeout.TotalSeconds:0.###}s");
            return result.ExitCode == 0
                ? (ResourceValue.Up, $"{exec}: exit code 0")
                : (ResourceValue.Down, $"{exec}: exit code {result.ExitCode}");
        }

        [LoggerMessage(Level = LogLevel.Information, Message = "{Module}: {Resource} -> {Value} ({Reason})")]
        private partial void LogFlip(string module, string resource, ResourceValue value, string reason);
    }
}
