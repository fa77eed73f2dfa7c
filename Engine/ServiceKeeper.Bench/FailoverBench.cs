// The failover bench: for each scenario, build a lab, then per trial poll the VIP from the client,
// cut n1's cable, wait for n2 to answer, measure, heal and return to the start state.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;

namespace ServiceKeeper.Bench;

public sealed class FailoverBench
{
    public static readonly IReadOnlyList<string> ScenarioIds = ["sk-default", "sk-tuned", "keepalived-default", "keepalived-tuned"];

    /// <summary>The tuned ServiceKeeper heartbeat: a peer is lost after 250 ms of silence.</summary>
    public const string TunedHeart = "<heart pulse=\"50ms\" timeout=\"250ms\"/>";

    private static readonly TimeSpan FailoverTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan SteadyBeforeCut = TimeSpan.FromSeconds(1);

    private readonly BenchOptions _options;
    private readonly TextWriter _out;
    private readonly CancellationToken _ct;

    public FailoverBench(BenchOptions options, TextWriter output, CancellationToken ct)
    {
        _options = options;
        _out = output;
        _ct = ct;
    }

    private static string Title(string id) => id switch
    {
        "sk-default" => "ServiceKeeper, default heartbeat (no <heart>)",
        "sk-tuned" => "ServiceKeeper, tuned: <heart pulse=\"50ms\" timeout=\"250ms\"/>",
        "keepalived-default" => "keepalived, advert_int 1 (VRRPv2, default)",
        "keepalived-tuned" => "keepalived, advert_int 0.1 (VRRPv3)",
        _ => id,
    };

    /// <summary>Runs every chosen scenario and writes the report; false if a trial or a scenario failed.</summary>
    public bool Run()
    {
        var clock = Stopwatch.StartNew();
        var started = DateTime.UtcNow;
        var results = new List<TrialResult>();
        var notes = new List<string>();
        // "skb" + 3 base-36 digits of the pid + the scenario's letter: 7 characters, unlike EngineLab's test labs.
        var pid = Base36(Environment.ProcessId % (36 * 36 * 36)).PadLeft(3, '0');
        _out.WriteLine($"Failover bench: {_options.Trials} trial(s) per scenario, client polls every {HttpPoller.IntervalMs} ms (timeout {HttpPoller.TimeoutMs} ms).");

        for (int i = 0; i < ScenarioIds.Count; i++)
        {
            var id = ScenarioIds[i];
            if (!_options.Scenarios.Contains(id)) continue;
            var prefix = $"skb{pid}{(char)('a' + i)}";
            var subnet = 61 + i;
            _ct.ThrowIfCancellationRequested();
            using var target = Create(id, prefix, subnet);
            if (target is KeepalivedTarget k && k.CheckConfig() is { } refused)
            {
                notes.Add($"{id}: skipped, keepalived refused the configuration: {refused}");
                _out.WriteLine($"== {id}: skipped ({refused})");
                continue;
            }
            _out.WriteLine($"== {id}: {Title(id)} (lab {prefix}, VIP {target.Vip})");
            RunScenario(id, target, results, notes);
        }

        var elapsed = clock.Elapsed;
        var report = new FailoverReport(results, notes, ScenarioIds.Where(_options.Scenarios.Contains).ToList(), Title, started, elapsed, _options.Trials);
        Directory.CreateDirectory(_options.OutDirectory);
        var md = report.Markdown(KeepalivedVersion());
        File.WriteAllText(Path.Combine(_options.OutDirectory, "failover.md"), md);
        File.WriteAllText(Path.Combine(_options.OutDirectory, "failover.csv"), report.Csv());
        report.Plot(Path.Combine(_options.OutDirectory, "failover.png"));
        _out.WriteLine();
        _out.WriteLine(md);
        _out.WriteLine($"Wrote {Path.Combine(_options.OutDirectory, "failover.md")}, failover.csv, failover.png ({elapsed:mm\\:ss} in all).");
        return results.Count > 0 && results.All(r => r.Ok) && notes.All(n => !n.Contains("failed", StringComparison.Ordinal));
    }

    private FailoverTarget Create(string id, string prefix, int subnet) => id switch
    {
        "sk-default" => new ServiceKeeperTarget(prefix, subnet, _options.KeepFiles, heartXml: null, _ct),
        "sk-tuned" => new ServiceKeeperTarget(prefix, subnet, _options.KeepFiles, TunedHeart, _ct),
        "keepalived-default" => new KeepalivedTarget(prefix, subnet, _options.KeepFiles, advertInt: 1, version: 2, _ct),
        "keepalived-tuned" => new KeepalivedTarget(prefix, subnet, _options.KeepFiles, advertInt: 0.1, version: 3, _ct),
        _ => throw new ArgumentException($"Unknown scenario '{id}'.", nameof(id)),
    };

    private void RunScenario(string id, FailoverTarget target, List<TrialResult> results, List<string> notes)
    {
        var setup = Stopwatch.StartNew();
        try
        {
            target.SetUp();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            notes.Add($"{id}: set-up failed: {FirstLine(e.Message)}");
            _out.WriteLine($"   set-up failed: {e.Message}");
            return;
        }
        _out.WriteLine($"   cluster up in {setup.Elapsed.TotalSeconds:0.0} s");

        for (int trial = 1; trial <= _options.Trials; trial++)
        {
            _ct.ThrowIfCancellationRequested();
            var result = RunTrial(id, trial, target);
            results.Add(result);
            _out.WriteLine(result.Ok
                ? $"   #{trial,2}: RTO {result.RtoMs,7:0.0} ms  (cut -> first answer of n2 {result.CutToNewMs:0.0} ms, {result.FailedRequests} failed requests; n1 stood down after {result.CutToStoodDownMs:0} ms; start state restored in {result.ReadyMs / 1000:0.0} s, cut at {result.CutUtc:HH:mm:ss.fff} UTC)"
                : $"   #{trial,2}: FAILED: {result.Note}");
            if (result.Ok) continue;
            // Whatever broke, the next trial starts from a fresh lab.
            try
            {
                target.SetUp();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                notes.Add($"{id}: rebuilding the lab after trial {trial} failed, scenario stopped: {FirstLine(e.Message)}");
                _out.WriteLine($"   rebuilding the lab failed: {e.Message}");
                return;
            }
        }
    }

    private TrialResult RunTrial(string id, int trial, FailoverTarget target)
    {
        var result = new TrialResult { Scenario = id, Trial = trial };
        var ready = Stopwatch.StartNew();
        var cut = false;
        CancellationTokenSource? stopWatching = null;
        try
        {
            target.MakeReady(ReadyTimeout);
            result.ReadyMs = ready.Elapsed.TotalMilliseconds;

            using var poller = HttpPoller.Start(Tools.Python, target.Lab.Client!.Namespace, target.Vip, FailoverTarget.AppPort, TimeSpan.FromSeconds(120));
            var primary = target.Primary.Name;
            var backup = target.Backup.Name;
            Tools.WaitFor(() => ServesSteadily(poller.Snapshot(), primary) || poller.HasExited,
                $"{SteadyBeforeCut.TotalSeconds:0} s of answers from {primary} only", TimeSpan.FromSeconds(15), _ct,
                () => Summary(poller) + "; " + target.Describe());
            if (poller.HasExited) throw new InvalidOperationException($"the poller exited: {poller.Errors}");

            result.CutUtc = DateTime.UtcNow;
            var cutAt = Tools.NowMs();
            target.Lab.Cut(target.Primary);
            cut = true;
            // Meanwhile: when does the cut node stop serving? Until then it still holds the VIP.
            stopWatching = CancellationTokenSource.CreateLinkedTokenSource(_ct);
            var watchToken = stopWatching.Token;
            var stoodDown = Task.Run(() =>
            {
                Tools.WaitFor(target.PrimaryStoodDown, $"{primary} to stop serving", FailoverTimeout, watchToken, target.Describe, pollMs: 50);
                return Tools.NowMs() - cutAt;
            }, watchToken);
            Tools.WaitFor(() => poller.Snapshot().Any(a => a.AtMs > cutAt && a.Node == backup) || poller.HasExited,
                $"an answer from {backup}", FailoverTimeout, _ct, () => Summary(poller) + "; " + target.Describe());

            var answers = poller.Snapshot();
            var firstNew = answers.First(a => a.AtMs > cutAt && a.Node == backup).AtMs;
            var lastOld = answers.Where(a => a.Node == primary && a.AtMs < firstNew).Select(a => a.AtMs).DefaultIfEmpty(double.NaN).Max();
            if (double.IsNaN(lastOld)) throw new InvalidOperationException($"no answer from {primary} before {backup} answered");
            result.RtoMs = firstNew - lastOld;
            result.CutToNewMs = firstNew - cutAt;
            result.LastOldToCutMs = cutAt - lastOld;
            result.FailedRequests = answers.Count(a => a.Node == null && a.AtMs > lastOld && a.AtMs < firstNew);
            // Heal only once n1 stopped serving, or it would return still holding the VIP.
            result.CutToStoodDownMs = stoodDown.GetAwaiter().GetResult();
            result.Ok = true;
        }
        catch (Exception e) when (e is not OperationCanceledException || !_ct.IsCancellationRequested)
        {
            result.Note = FirstLine(e.Message);
            _out.WriteLine($"      {e.Message}");
        }
        finally
        {
            stopWatching?.Cancel();
            stopWatching?.Dispose();
            if (cut)
            {
                try { target.Lab.Heal(target.Primary); }
                catch (Exception e) when (e is not OperationCanceledException) { result.Note ??= "heal failed: " + FirstLine(e.Message); result.Ok = false; }
            }
        }
        return result;
    }

    // The last second of answers all came from the primary (and there were enough of them).
    private static bool ServesSteadily(List<Answer> answers, string primary)
    {
        if (answers.Count == 0) return false;
        var end = answers[^1].AtMs;
        if (end - answers[0].AtMs < SteadyBeforeCut.TotalMilliseconds) return false;
        var recent = answers.Where(a => a.AtMs >= end - SteadyBeforeCut.TotalMilliseconds).ToList();
        return recent.Count >= SteadyBeforeCut.TotalMilliseconds / HttpPoller.IntervalMs / 2 && recent.All(a => a.Node == primary);
    }

    private static string Summary(HttpPoller poller)
    {
        var answers = poller.Snapshot();
        var last = answers.TakeLast(20).Select(a => a.Node ?? "ERR").GroupBy(n => n).Select(g => $"{g.Key} x{g.Count()}");
        return $"poller: {answers.Count} answers, last 20: {string.Join(", ", last)}{(poller.HasExited ? ", exited: " + poller.Errors : "")}";
    }

    private static string FirstLine(string text) => text.Split('\n')[0].Trim();

    private static string Base36(int value)
    {
        const string digits = "0123456789abcdefghijklmnopqrstuvwxyz";
        var text = "";
        do { text = digits[value % 36] + text; value /= 36; } while (value > 0);
        return text;
    }

    private static string KeepalivedVersion()
    {
        var path = Tools.Keepalived;
        if (path == null) return "not installed";
        try
        {
            var psi = new ProcessStartInfo(path, "--version") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            using var p = Process.Start(psi)!;
            var text = p.StandardError.ReadToEnd() + p.StandardOutput.ReadToEnd();
            p.WaitForExit(5000);
            return text.Split('\n').FirstOrDefault(l => l.StartsWith("Keepalived", StringComparison.Ordinal))?.Trim() ?? "unknown";
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return "unknown";
        }
    }
}

/// <summary>One trial: the client-side RTO and where it came from.</summary>
public sealed class TrialResult
{
    public string Scenario { get; init; } = "";
    public int Trial { get; init; }
    public bool Ok { get; set; }

    /// <summary>Last answer from the old primary to the first answer from the new one.</summary>
    public double RtoMs { get; set; } = double.NaN;

    /// <summary>Cut to the first answer from the new primary.</summary>
    public double CutToNewMs { get; set; } = double.NaN;

    /// <summary>Last answer from the old primary to the cut (the poller's resolution).</summary>
    public double LastOldToCutMs { get; set; } = double.NaN;

    /// <summary>Cut to the moment the old primary was seen without the VIP (polled every 20 ms plus a command's time).</summary>
    public double CutToStoodDownMs { get; set; } = double.NaN;

    /// <summary>Requests that failed (timeout, refused) between the two answers.</summary>
    public int FailedRequests { get; set; }

    /// <summary>Time to bring the cluster back to n1 serving before the trial.</summary>
    public double ReadyMs { get; set; } = double.NaN;

    public DateTime CutUtc { get; set; }
    public string? Note { get; set; }
}
