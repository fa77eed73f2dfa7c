// splitbrain: can this node reach a witness? An isolated node must not go ALONE; sets splitbrain.<ident>.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.NetworkInformation;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Scripts;

namespace ServiceKeeper.Engine.Checkers
{
    /// <summary>
    /// Resource splitbrain.&lt;ident&gt;: up while at least one witness answers, down when none does.
    /// With exec="ping" the witnesses are the addresses of <see cref="SplitBrainCheckConfig.Arguments"/>
    /// and each probe is one ICMP echo; with another exec, the program (module bin/, else PATH) runs
    /// once per witness address with it as its only argument and exit code 0 means reachable.
    /// All witnesses are probed at once and a round ends at the first answer.
    /// </summary>
    /// <remarks>
    /// It has to be fast: when the peer's heartbeats stop, the module asks this resource whether the
    /// node may go ALONE, and a stale "up" from before an isolation would let both sides run.
    /// </remarks>
    public sealed partial class SplitBrainChecker : IChecker
    {
        public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(1);
        public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(1);

        // A prober that ignores its timeout still ends its round here.
        private static readonly TimeSpan ProbeGrace = TimeSpan.FromMilliseconds(500);

        private readonly SplitBrainCheckConfig _config;
        private readonly CheckerContext _context;
        private readonly TimeSpan _interval;
        private readonly TimeSpan _timeout;
        private readonly Func<IPAddress, TimeSpan, CancellationToken, Task<bool>> _prober;
        private readonly ILogger _logger;

        /// <param name="interval">time between two rounds; <see cref="DefaultInterval"/> when null.</param>
        /// <param name="timeout">how long a witness has to answer; <see cref="DefaultTimeout"/> when null.</param>
        /// <param name="prober">answers "does this witness answer within the timeout?"; by default ICMP
        /// or the exec program, as the configuration says.</param>
        public SplitBrainChecker(SplitBrainCheckConfig config, CheckerContext context, TimeSpan? interval = null, TimeSpan? timeout = null,
            Func<IPAddress, TimeSpan, CancellationToken, Task<bool>>? prober = null)
        {
            _config = config ?? throw new ArgumentNullException(nameof(config));
            _context = context ?? throw new ArgumentNullException(nameof(context));
            _interval = interval ?? DefaultInterval;
            _timeout = timeout ?? DefaultTimeout;
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(_interval, TimeSpan.Zero, nameof(interval));
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(_timeout, TimeSpan.Zero, nameof(timeout));
            Witnesses = WitnessesOf(config);
            _prober = prober ?? (config.Exec == SplitBrainCheckConfig.PingExec ? PingAsync : RunExecAsync);
            _logger = context.LoggerFactory.CreateLogger<SplitBrainChecker>();
        }

        public string Resource => _config.ResourceName;

        public CheckWhen When => _config.When;

        public CheckAction Action => _config.Action;

        /// <summary>The addresses probed, in configuration order.</summary>
        public IReadOnlyList<IPAddress> Witnesses { get; }

        public Task RunAsync(Action<ResourceChange> report, CancellationToken ct) =>
            CheckerLoop.RunAsync(this, _context, _interval, firstAfterInterval: false,
                CheckAsync, (value, reason) => LogFlip(_context.Module, Resource, value, reason), report, ct);

        private async ValueTask<(ResourceValue Value, string Reason)> CheckAsync(CancellationToken ct)
        {
            if (Witnesses.Count == 0)
                return (ResourceValue.Down, $"no witness address in \"{_config.Arguments}\"");
            var answering = await FirstAnsweringAsync(ct).ConfigureAwait(false);
            return answering is null
                ? (ResourceValue.Down, $"no witness answers ({string.Join(", ", Witnesses)})")
                : (ResourceValue.Up, $"witness {answering} answers");
        }

        private async Task<IPAddress?> FirstAnsweringAsync(CancellationToken ct)
        {
            using var round = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var pending = Witnesses.Select(w => ProbeAsync(w, round.Token)).ToList();
            try
            {
                while (pending.Count > 0)
                {
                    var done = await Task.WhenAny(pending).ConfigureAwait(false);
                    pending.Remove(done);
                    if (await done.ConfigureAwait(false) is { } answering)
                        return answering;
                }
                ct.ThrowIfCancellationRequested();
                return null;
            }
            finally
            {
                round.Cancel(); // the others need not finish
            }
        }

        /// <summary>The witness when it answered in time; null otherwise. Never throws.</summary>
        private async Task<IPAddress?> ProbeAsync(IPAddress witness, CancellationToken ct)
        {
            try
            {
                using var timeout = new CancellationTokenSource(_timeout + ProbeGrace, _context.Time);
                using var probe = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
                var answered = await _prober(witness, _timeout, probe.Token).WaitAsync(probe.Token).ConfigureAwait(false);
                return answered ? witness : null;
            }
            catch (Exception)
            {
                return null; // timeout, unreachable network, cancelled round...
            }
        }

        private static IReadOnlyList<IPAddress> WitnessesOf(SplitBrainCheckConfig config)
        {
            if (config.Exec == SplitBrainCheckConfig.PingExec)
                return config.Witnesses;
            var witnesses = new List<IPAddress>();
            foreach (var word in ShellWords.Split(config.Arguments))
                if (ConfigSyntax.TryParseIp(word, out var address))
                    witnesses.Add(address);
            return witnesses;
        }

        private static async Task<bool> PingAsync(IPAddress witness, TimeSpan timeout, CancellationToken ct)
        {
            using var ping = new Ping();
            var reply = await ping.SendPingAsync(witness, timeout, cancellationToken: ct).ConfigureAwait(false);
            return reply.Status == IPStatus.Success;
        }

        private async Task<bool> RunExecAsync(IPAddress witness, TimeSpan timeout, CancellationToken ct)
        {
            var invocation = new ScriptInvocation(
                _context.Module, Resource, ProgramPath.InModule(_context.ModuleDirectory, _config.Exec),
                new[] { witness.ToString() }, _context.Environment, timeout);
            var result = await _context.Scripts.RunAsync(invocation, ct).ConfigureAwait(false);
            return result.Succeeded;
        }

        [LoggerMessage(Level = LogLevel.Information, Message = "{Module}: {Resource} -> {Value} ({Reason})")]
        private partial void LogFlip(string module, string resource, ResourceValue value, string reason);
    }
}
