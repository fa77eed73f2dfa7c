// Shared loop of the checkers that probe on a timer (tcp, ping, intf, ip): interval, per-probe timeout,
// a failure threshold, and a report only when the resource flips.
using System;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using ServiceKeeper.Engine.Configuration;

namespace ServiceKeeper.Engine.Checkers
{
    /// <summary>What one probe found, with the reason in words ("127.0.0.1:5432: Connection refused").</summary>
    public readonly record struct ProbeResult(bool IsUp, string Reason)
    {
        public static ProbeResult Up(string reason) => new(true, reason);

        public static ProbeResult Down(string reason) => new(false, reason);
    }

    /// <summary>
    /// Probes at once, then every <see cref="Interval"/> (start to start; a probe that overruns is
    /// followed at once by the next). A probe gets <see cref="Timeout"/>, then it counts as failed
    /// (its token is cancelled and its result ignored). A probe that throws is a failure whose reason
    /// is the exception's message (after <see cref="Target"/>). The first probe leaves Init whatever it finds; after that an Up
    /// resource goes Down only after <see cref="ConsecutiveFailures"/> failed probes in a row, and any
    /// successful probe brings it Up again. Reports are made only on a flip.
    /// </summary>
    /// <remarks>
    /// The loop does not use ConfigureAwait(false): a caller with a SynchronizationContext keeps every
    /// probe on it. The engine has none; tests use one to pin a checker to a network namespace.
    /// </remarks>
    public abstract partial class PeriodicChecker : IChecker
    {
        private readonly TimeProvider _time;
        private readonly ILogger _logger;
        private readonly string _module;
        private readonly int _consecutiveFailures = 1;
        private int _running;

        protected PeriodicChecker(PeriodicCheckerConfig config, CheckerContext context)
        {
            ArgumentNullException.ThrowIfNull(config);
            ArgumentNullException.ThrowIfNull(context);
            if (config.Interval <= TimeSpan.Zero)
                throw new ArgumentOutOfRangeException(nameof(config), config.Interval, $"{config.ResourceName}: the interval must be positive.");
            if (config.Timeout <= TimeSpan.Zero)
                throw new ArgumentOutOfRangeException(nameof(config), config.Timeout, $"{config.ResourceName}: the timeout must be positive.");
            Resource = config.ResourceName;
            When = config.When;
            Action = config.Action;
            Interval = config.Interval;
            Timeout = config.Timeout;
            _module = context.Module;
            _time = context.Time;
            _logger = context.LoggerFactory.CreateLogger("ServiceKeeper.Checkers");
        }

        public string Resource { get; }

        public CheckWhen When { get; }

        public CheckAction Action { get; }

        public TimeSpan Interval { get; }

        public TimeSpan Timeout { get; }

        /// <summary>
        /// Failed probes in a row that take an Up resource Down (default 1: the first failure). Raise it
        /// so that one slow answer under load does not restart or fail over an application; detection
        /// then takes up to ConsecutiveFailures × Interval (+ Timeout).
        /// </summary>
        public int ConsecutiveFailures
        {
            get => _consecutiveFailures;
            init
            {
                ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
                _consecutiveFailures = value;
            }
        }

        /// <summary>Runs until <paramref name="ct"/> is cancelled, then throws <see cref="OperationCanceledException"/>. One run at a time.</summary>
        public async Task RunAsync(Action<ResourceChange> report, CancellationToken ct)
        {
            ArgumentNullException.ThrowIfNull(report);
            if (Interlocked.Exchange(ref _running, 1) == 1)
                throw new InvalidOperationException($"Checker {Resource} of module {_module} is already running.");
            try
            {
                var state = new ProbeState(ResourceValue.Init, 0);
                while (true)
                {
                    ct.ThrowIfCancellationRequested();
                    var started = _time.GetTimestamp();
                    var result = await ProbeOnceAsync(ct);

                    var (next, flipped) = Next(state, result.IsUp, ConsecutiveFailures);
                    if (flipped)
                    {
                        var reason = !result.IsUp && next.Failures > 1
                            ? $"{result.Reason} ({next.Failures} failed probes in a row)"
                            : result.Reason;
                        Log.Flipped(_logger, _module, Resource, state.Value, next.Value, reason);
                        report(new ResourceChange(Resource, next.Value, Action, reason, _time.GetUtcNow()));
                    }
                    else if (!result.IsUp && next.Value == ResourceValue.Up)
                    {
                        Log.FailureTolerated(_logger, _module, Resource, next.Failures, ConsecutiveFailures, result.Reason);
                    }
                    state = next;

                    var wait = Interval - _time.GetElapsedTime(started);
                    if (wait > TimeSpan.Zero)
                        await Task.Delay(wait, _time, ct);
                }
            }
            finally
            {
                Volatile.Write(ref _running, 0);
            }
        }

        /// <summary>
        /// One probe. <paramref name="ct"/> is cancelled at the timeout or when the checker stops. Start
        /// the real work (open sockets...) before the first await: the probe then runs where the caller runs.
        /// </summary>
        protected abstract Task<ProbeResult> ProbeAsync(CancellationToken ct);

        /// <summary>What is probed, in words ("127.0.0.1:5432"): the start of the reason of a timeout or an exception.</summary>
        protected abstract string Target { get; }

        /// <summary>The resource's value and the failed probes in a row behind it.</summary>
        internal readonly record struct ProbeState(ResourceValue Value, int Failures);

        /// <summary>The decision after one probe, without I/O: the next state and whether it is a flip to report.</summary>
        internal static (ProbeState Next, bool Flipped) Next(ProbeState current, bool probeUp, int consecutiveFailures)
        {
            if (probeUp)
                return (new ProbeState(ResourceValue.Up, 0), current.Value != ResourceValue.Up);
            var failures = current.Failures + 1;
            return current.Value switch
            {
                // Nothing to protect yet: a resource stuck in Init would hold the module, so the first probe decides.
                ResourceValue.Init => (new ProbeState(ResourceValue.Down, failures), true),
                ResourceValue.Up when failures < consecutiveFailures => (new ProbeState(ResourceValue.Up, failures), false),
                ResourceValue.Up => (new ProbeState(ResourceValue.Down, failures), true),
                _ => (new ProbeState(ResourceValue.Down, failures), false),
            };
        }

        private async Task<ProbeResult> ProbeOnceAsync(CancellationToken ct)
        {
            using var timeout = new CancellationTokenSource(Timeout, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
            Task<ProbeResult> probe;
            try
            {
                probe = ProbeAsync(linked.Token);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e)
            {
                return ProbeResult.Down($"{Target}: {e.Message}");
            }

            try
            {
                // WaitAsync also covers a probe that ignores its token.
                return await probe.WaitAsync(Timeout, _time, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                Observe(probe);
                throw;
            }
            catch (Exception e) when (e is TimeoutException || (e is OperationCanceledException && timeout.IsCancellationRequested))
            {
                Observe(probe);
                return ProbeResult.Down($"{Target}: no answer within {Format(Timeout)}");
            }
            catch (Exception e)
            {
                return ProbeResult.Down($"{Target}: {e.Message}");
            }
        }

        // A probe abandoned at its timeout may still fail later; nobody waits for it any more.
        private static void Observe(Task task) =>
            task.ContinueWith(t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

        private protected static string Format(TimeSpan span) =>
            span.TotalSeconds >= 1 && span.Milliseconds == 0 ? $"{span.TotalSeconds:0} s" : $"{span.TotalMilliseconds:0} ms";

        private static partial class Log
        {
            [LoggerMessage(1, LogLevel.Information, "{Module}: {Resource} {From} -> {To} ({Reason})")]
            public static partial void Flipped(ILogger logger, string module, string resource, ResourceValue from, ResourceValue to, string reason);

            [LoggerMessage(2, LogLevel.Debug, "{Module}: {Resource} probe failed ({Failures} of {Threshold} before down): {Reason}")]
            public static partial void FailureTolerated(ILogger logger, string module, string resource, int failures, int threshold, string reason);
        }
    }
}
