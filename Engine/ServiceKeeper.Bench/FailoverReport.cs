// failover.md (summary table and verdicts), failover.csv (every trial) and failover.png (box plot).
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;

namespace ServiceKeeper.Bench;

public sealed class FailoverReport
{
    private readonly IReadOnlyList<TrialResult> _results;
    private readonly IReadOnlyList<string> _notes;
    private readonly IReadOnlyList<string> _scenarios;
    private readonly Func<string, string> _title;
    private readonly DateTime _startedUtc;
    private readonly TimeSpan _elapsed;
    private readonly int _trials;

    public FailoverReport(IReadOnlyList<TrialResult> results, IReadOnlyList<string> notes, IReadOnlyList<string> scenarios,
        Func<string, string> title, DateTime startedUtc, TimeSpan elapsed, int trials)
    {
        _results = results;
        _notes = notes;
        _scenarios = scenarios;
        _title = title;
        _startedUtc = startedUtc;
        _elapsed = elapsed;
        _trials = trials;
    }

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Median (mean of the two middle values for an even count).</summary>
    public static double Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0) return double.NaN;
        var s = values.Order().ToList();
        int m = s.Count / 2;
        return s.Count % 2 == 1 ? s[m] : (s[m - 1] + s[m]) / 2;
    }

    /// <summary>Nearest-rank percentile: the smallest value with at least p% of the values at or below it.</summary>
    public static double Percentile(IReadOnlyList<double> values, double p)
    {
        if (values.Count == 0) return double.NaN;
        var s = values.Order().ToList();
        int rank = (int)Math.Ceiling(p / 100 * s.Count);
        return s[Math.Clamp(rank, 1, s.Count) - 1];
    }

    private List<double> Rtos(string scenario) => _results.Where(r => r.Scenario == scenario && r.Ok).Select(r => r.RtoMs).ToList();

    private static string Ms(double v) => double.IsNaN(v) ? "–" : v.ToString("0", Inv);

    public string Markdown(string keepalivedVersion)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Failover time as a client sees it");
        sb.AppendLine();
        sb.AppendLine(Inv, $"Run {_startedUtc:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, {_trials} trial(s) per scenario, {keepalivedVersion}; took {_elapsed:mm\\:ss}.");
        sb.AppendLine("Two nodes and a client in network namespaces on one bridge. From the client, a new HTTP GET to VIP:8080 every");
        sb.AppendLine(Inv, $"{HttpPoller.IntervalMs} ms (each with a {HttpPoller.TimeoutMs} ms deadline); the application answers with its node's name. n1's cable is cut;");
        sb.AppendLine("**RTO = first answer from n2 − last answer from n1.** p95 is nearest-rank. The last column is how long the cut");
        sb.AppendLine("node went on holding the VIP (keepalived: carrier lost → FAULT; ServiceKeeper: heartbeat timeout, then the witness probe).");
        sb.AppendLine();
        sb.AppendLine("| scenario | trials | median RTO (ms) | p95 (ms) | min (ms) | max (ms) | median cut→n2 answers (ms) | median cut→n1 released the VIP (ms) |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var id in _scenarios)
        {
            var all = _results.Where(r => r.Scenario == id).ToList();
            var rto = Rtos(id);
            var cutToNew = all.Where(r => r.Ok).Select(r => r.CutToNewMs).ToList();
            var stoodDown = all.Where(r => r.Ok).Select(r => r.CutToStoodDownMs).ToList();
            var trials = all.Count == rto.Count ? rto.Count.ToString(Inv) : $"{rto.Count} of {all.Count}";
            sb.AppendLine(Inv, $"| {_title(id).Replace("|", "\\|", StringComparison.Ordinal)} | {trials} | {Ms(Median(rto))} | {Ms(Percentile(rto, 95))} | {Ms(rto.DefaultIfEmpty(double.NaN).Min())} | {Ms(rto.DefaultIfEmpty(double.NaN).Max())} | {Ms(Median(cutToNew))} | {Ms(Median(stoodDown))} |");
        }
        var targets = new List<string>();
        var skDefault = Median(Rtos("sk-default"));
        var kaDefault = Median(Rtos("keepalived-default"));
        if (!double.IsNaN(skDefault) && !double.IsNaN(kaDefault))
            targets.Add($"- default ServiceKeeper below keepalived's default (median {Ms(skDefault)} ms vs {Ms(kaDefault)} ms): **{(skDefault < kaDefault ? "met" : "not met")}**");
        var tuned = Rtos("sk-tuned");
        if (tuned.Count > 0)
        {
            var p95 = Percentile(tuned, 95);
            targets.Add($"- tuned ServiceKeeper under 500 ms (median {Ms(Median(tuned))} ms, p95 {Ms(p95)} ms, max {Ms(tuned.Max())} ms): **{(p95 < 500 ? "met at p95" : Median(tuned) < 500 ? "met at the median only" : "not met")}**");
        }
        if (targets.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("Targets:");
            foreach (var t in targets) sb.AppendLine(t);
        }
        var failed = _results.Where(r => !r.Ok).ToList();
        if (failed.Count > 0 || _notes.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("Problems:");
            foreach (var r in failed) sb.AppendLine(Inv, $"- {r.Scenario} trial {r.Trial}: {r.Note}");
            foreach (var n in _notes) sb.AppendLine(Inv, $"- {n}");
        }
        sb.AppendLine();
        sb.AppendLine("Raw numbers: failover.csv. Plot: failover.png.");
        return sb.ToString();
    }

    public string Csv()
    {
        var sb = new StringBuilder();
        sb.AppendLine("scenario,trial,ok,rto_ms,cut_to_first_new_ms,last_old_to_cut_ms,cut_to_old_stood_down_ms,failed_requests,ready_ms,cut_utc,note");
        foreach (var r in _results)
        {
            var note = (r.Note ?? "").Replace("\"", "\"\"", StringComparison.Ordinal);
            sb.AppendLine(Inv, $"{r.Scenario},{r.Trial},{(r.Ok ? "true" : "false")},{F(r.RtoMs)},{F(r.CutToNewMs)},{F(r.LastOldToCutMs)},{F(r.CutToStoodDownMs)},{r.FailedRequests},{F(r.ReadyMs)},{r.CutUtc:yyyy-MM-ddTHH:mm:ss.fffZ},\"{note}\"");
        }
        return sb.ToString();

        static string F(double v) => double.IsNaN(v) ? "" : v.ToString("0.0", Inv);
    }

    /// <summary>One box per scenario (quartiles, whiskers min..max) with every trial as a dot.</summary>
    public void Plot(string path)
    {
        var plot = new ScottPlot.Plot();
        var ticks = new List<ScottPlot.Tick>();
        var palette = new ScottPlot.Palettes.Category10();
        for (int i = 0; i < _scenarios.Count; i++)
        {
            var id = _scenarios[i];
            var rto = Rtos(id);
            ticks.Add(new ScottPlot.Tick(i, id));
            if (rto.Count == 0) continue;
            var color = palette.GetColor(i);
            var box = plot.Add.Box(new ScottPlot.Box
            {
                Position = i,
                BoxMin = Percentile(rto, 25),
                BoxMax = Percentile(rto, 75),
                BoxMiddle = Median(rto),
                WhiskerMin = rto.Min(),
                WhiskerMax = rto.Max(),
                Width = 0.5,
            });
            box.FillColor = color.WithAlpha(0.35);
            box.LineColor = color;
            var xs = rto.Select((_, k) => i + 0.25 * ((k * 0.618) % 1.0 - 0.5)).ToArray();
            var dots = plot.Add.ScatterPoints(xs, rto.ToArray());
            dots.Color = color;
            dots.MarkerSize = 5;
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.ToArray());
        plot.Axes.SetLimitsX(-0.6, _scenarios.Count - 0.4);
        var all = _results.Where(r => r.Ok).Select(r => r.RtoMs).DefaultIfEmpty(1000).Max();
        plot.Axes.SetLimitsY(0, all * 1.08);
        plot.Title($"Client-side failover time (RTO), {_trials} trials per scenario");
        plot.YLabel("RTO (ms)");
        plot.SavePng(path, 900, 520);
    }
}
