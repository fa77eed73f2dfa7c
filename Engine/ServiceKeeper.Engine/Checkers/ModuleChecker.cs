// module: another module (here or on another engine) must be ready; sets module.<name>.
using System;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using ServiceKeeper.Engine.Configuration;

namespace ServiceKeeper.Engine.Checkers
{
    /// <summary>
    /// Resource module.&lt;name&gt;: asks <see cref="CheckerContext.IsModuleReady"/> every
    /// <see cref="PeriodicCheckerConfig.Interval"/>; no answer within <see cref="PeriodicCheckerConfig.Timeout"/>
    /// or a failure to ask is down.
    /// </summary>
    public sealed partial class ModuleChecker : IChecker
    {
        private readonly ModuleCheckConfig _config;
        private readonly CheckerContext _context;
        private readonly ILogger _logger;

        public ModuleChecker(ModuleCheckConfig config, CheckerContext context)
        {
            _config = config ?? throw new ArgumentNullException(nameof(config));
            _context = context ?? throw new ArgumentNullException(nameof(context));
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(config.Interval, TimeSpan.Zero, nameof(config));
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(config.Timeout, TimeSpan.Zero, nameof(config));
            _logger = context.LoggerFactory.CreateLogger<ModuleChecker>();
        }

        public string Resource => _config.ResourceName;

        public CheckWhen When => _config.When;

        public CheckAction Action => _config.Action;

        private string Target => _config.Address is null
            ? _config.ModuleName
            : $"{_config.ModuleName} at {_config.Address}{(_config.Port is { } port ? ":" + port.ToString(System.Globalization.CultureInfo.InvariantCulture) : "")}";

        public async Task RunAsync(Action<ResourceChange> report, CancellationToken ct)
        {
            ArgumentNullException.ThrowIfNull(report);
            var last = ResourceValue.Init;
            using var timer = new PeriodicTimer(_config.Interval, _context.Time);
            try
            {
                do
                {
                    var (value, reason) = await CheckAsync(ct).ConfigureAwait(false);
                    if (value != last)
                    {
                        last = value;
                        LogFlip(_context.Module, Resource, value, reason);
                        report(new ResourceChange(Resource, value, Action, reason, _context.Time.GetUtcNow()));
                    }
                }
                while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false));
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // Stopped with the module.
            }
        }

        private async Task<(ResourceValue Value, string Reason)> CheckAsync(CancellationToken ct)
        {
            using var timeout = new CancellationTokenSource(_config.Timeout, _context.Time);
            using var probe = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
            try
            {
                // WaitAsync: an answer that ignores its token must not stall the checker either.
                var ready = await _context.IsModuleReady(_config.ModuleName, _config.Address, _config.Port, probe.Token)
                    .WaitAsync(probe.Token).ConfigureAwait(false);
                return ready
                    ? (ResourceValue.Up, $"module {Target} is ready")
                    : (ResourceValue.Down, $"module {Target} is not ready");
            }
            catch (Exception e) when (!ct.IsCancellationRequested && e is OperationCanceledException)
            {
                return (ResourceValue.Down, $"module {Target}: no answer within {_config.Timeout.TotalSeconds:0.###}s");
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                return (ResourceValue.Down, $"module {Target}: {e.Message}");
            }
        }

        [LoggerMessage(Level = LogLevel.Information, Message = "{Module}: {Resource} -> {Value} ({Reason})")]
        private partial void LogFlip(string module, string resource, ResourceValue value, string reason);
    }
}
