using System.Globalization;
using System.Text;
using AdAuctionSim.Evaluation;
using AdAuctionSim.Evaluation.Metrics;
using AdAuctionSim.Evaluation.Statistics;
using AdAuctionSim.Reports.Plots;
using static AdAuctionSim.Reports.Documents.ReportMarkup;

namespace AdAuctionSim.Reports.Documents;

/// <summary>Where the files of a written report are, relative to its folder.</summary>
/// <param name="Html">report.html.</param>
/// <param name="Markdown">report.md.</param>
/// <param name="Metrics">metrics.csv.</param>
/// <param name="Summary">summary.csv.</param>
/// <param name="Plots">Plot images.</param>
/// <param name="Tables">Further CSV files (the off-policy evaluation's, when the run has an <c>ope</c> section).</param>
public sealed record ReportFiles(string Html, string Markdown, string Metrics, string Summary, IReadOnlyList<string> Plots, IReadOnlyList<string>? Tables = null);

/// <summary>
/// Writes a run report into a folder: <c>report.html</c> (self-contained: every plot is embedded as a base64 PNG),
/// <c>report.md</c> (links the images), <c>metrics.csv</c>, <c>summary.csv</c> and <c>plots/*.png|svg</c>. The HTML is
/// written last, so a folder with <c>report.html</c> holds a complete report.
/// </summary>
public static class RunReportWriter
{
    public const string HtmlFile = "report.html";
    public const string MarkdownFile = "report.md";
    public const string PlotsFolder = "plots";
    /// <summary>The id of the main table's element in <c>report.html</c>.</summary>
    public const string MainTableId = "main-table";

    /// <summary>
    /// Metric columns of the main table, in this order, then the same metrics with the <c>_cumulative</c> suffix in the
    /// same order; other metrics follow alphabetically.
    /// </summary>
    public static IReadOnlyList<string> MetricOrder { get; } =
        ["auc_observed", "auc_potential", "log_loss", "ne", "ece", "calibration_ratio", "bias", "mae", "rmse"];

    public static ReportFiles Write(string directory, RunReportData data)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(data);
        Directory.CreateDirectory(Path.Combine(directory, PlotsFolder));
        ReportCsv.WriteMetrics(Path.Combine(directory, ReportCsv.MetricsFile), data.Metrics);
        ReportCsv.WriteSummary(Path.Combine(directory, ReportCsv.SummaryFile), data.Summaries);
        IReadOnlyList<string> tables = data.Ope is { } ope ? OpeReport.WriteCsv(directory, ope) : [];
        IReadOnlyList<ReportFigure> figures = [.. ReportPlots.Draw(data), .. data.Ope is { } o ? OpeReport.Figures(o) : []];
        var plots = new List<string>();
        foreach (var f in figures)
        {
            var png = $"{PlotsFolder}/{f.Name}.png";
            File.WriteAllBytes(Path.Combine(directory, png), f.Png);
            File.WriteAllText(Path.Combine(directory, PlotsFolder, f.Name + ".svg"), f.Svg, Utf8);
            plots.Add(png);
        }
        File.WriteAllText(Path.Combine(directory, MarkdownFile), Markdown(data, figures), Utf8);
        File.WriteAllText(Path.Combine(directory, HtmlFile), Html(data, figures), Utf8);
        return new ReportFiles(HtmlFile, MarkdownFile, ReportCsv.MetricsFile, ReportCsv.SummaryFile, plots, tables);
    }

    /// <summary>The main table's metric columns: the preferred ones present, then the rest alphabetically.</summary>
    public static IReadOnlyList<string> MetricColumns(IEnumerable<MetricSummary> summaries)
    {
        var present = summaries.Select(s => s.Metric).Distinct(StringComparer.Ordinal).ToList();
        List<string> ordered = [.. MetricOrder.Where(present.Contains), .. MetricOrder.Select(m => m + "_cumulative").Where(present.Contains)];
        return [.. ordered, .. present.Where(m => !ordered.Contains(m)).Order(StringComparer.Ordinal)];
    }

    /// <summary>A summary cell: mean [95% CI] and the paired-test marker (* p &lt; 0.05, ** p &lt; 0.01, *** p &lt; 0.001).</summary>
    public static string Cell(MetricSummary s)
    {
        ArgumentNullException.ThrowIfNull(s);
        var text = N(s.Mean);
        if (double.IsFinite(s.CiLow))
        {
            text += $" [{N(s.CiLow)}, {N(s.CiHigh)}]";
        }
        return text + Marker(s.PValue);
    }

    public static string Marker(double p) => !double.IsFinite(p) ? "" : p < 0.001 ? " ***" : p < 0.01 ? " **" : p < 0.05 ? " *" : "";

    private static readonly UTF8Encoding Utf8 = new(false);

    private static string N(double v) => double.IsNaN(v) ? "n/a" : v.ToString("G4", CultureInfo.InvariantCulture);

    private static string S(double seconds) => double.IsFinite(seconds) ? seconds.ToString("F2", CultureInfo.InvariantCulture) : "n/a";

    /// <summary>One table of the main section: its title, column headings, model rows and the summary behind each cell.</summary>
    private sealed record MainTable(string Title, IReadOnlyList<string> Columns, IReadOnlyList<string> Models,
        IReadOnlyDictionary<(string Model, string Column), MetricSummary> Cells);

    /// <summary>The metrics of the O and C tables: the truth-scored ones first, then what papers report on observed labels.</summary>
    private static readonly string[] SpaceColumns = ["bias", "calibration_ratio", "mae", "auc_observed", "log_loss"];

    /// <summary>
    /// The main tables, per sweep point and stage: every metric on D, then the headline metrics on O (every impression:
    /// the "entire space" of ESMM and ESCM²) and, for a post-click stage, on C (the impressions that reached the stage
    /// before it, where click-space models train).
    /// </summary>
    private static IEnumerable<MainTable> MainTables(RunReportData data)
    {
        foreach (var point in data.Points)
        {
            var stages = data.Summaries.Where(s => s.Point == point.Label).Select(s => s.Stage).Distinct(StringComparer.Ordinal).ToList();
            foreach (var stage in stages)
            {
                var here = data.Summaries.Where(s => s.Point == point.Label && s.Stage == stage).ToList();
                var onD = here.Where(s => s.Space == EvaluationSpace.D).ToList();
                if (onD.Count > 0)
                {
                    yield return new MainTable(stage + PointTitle(point.Label), MetricColumns(onD), Models(onD),
                        onD.GroupBy(s => (s.Model, s.Metric)).ToDictionary(g => g.Key, g => g.First()));
                }
                EvaluationSpace[] spaces = stage == stages[0] ? [EvaluationSpace.O] : [EvaluationSpace.O, EvaluationSpace.C];
                var cells = new Dictionary<(string Model, string Column), MetricSummary>();
                var columns = new List<string>();
                foreach (var space in spaces)
                {
                    foreach (var metric in SpaceColumns)
                    {
                        var column = $"{MetricsCsv.SpaceName(space)} {metric}";
                        foreach (var summary in here.Where(s => s.Space == space && s.Metric == metric && double.IsFinite(s.Mean)))
                        {
                            cells.TryAdd((summary.Model, column), summary);
                        }
                        if (cells.Keys.Any(k => k.Column == column))
                        {
                            columns.Add(column);
                        }
                    }
                }
                if (columns.Count > 0)
                {
                    var models = Models(here).Where(m => cells.Keys.Any(k => k.Model == m)).ToList();
                    var shown = spaces.Select(MetricsCsv.SpaceName).Where(name => columns.Any(c => c.StartsWith(name + " ", StringComparison.Ordinal)));
                    yield return new MainTable($"{stage}{PointTitle(point.Label)} on {string.Join(" and ", shown)}", columns, models, cells);
                }
            }
        }

        static List<string> Models(IEnumerable<MetricSummary> rows) => rows.Select(r => r.Model).Distinct(StringComparer.Ordinal).ToList();
    }

    private static IEnumerable<(string Key, string Value)> Facts(RunReportData data)
    {
        yield return ("run id", data.RunId);
        yield return ("status", data.Status);
        yield return ("scenario", $"{data.ScenarioName} ({data.ScenarioFile})");
        yield return ("code version", data.CodeVersion);
        yield return ("device", data.Device);
        yield return ("threads", data.Threads.ToString(CultureInfo.InvariantCulture));
        yield return ("started", data.Started.ToString("u", CultureInfo.InvariantCulture));
        yield return ("finished", data.Finished.ToString("u", CultureInfo.InvariantCulture));
        yield return ("models", string.Join(", ", data.Models));
        yield return ("baseline of the paired tests", data.Baseline);
        yield return ("repeats", data.Seeds.Select(s => s.Repeat).Distinct().Count().ToString(CultureInfo.InvariantCulture));
        yield return ("sweep", data.Dials.Count == 0 ? "none" : $"{string.Join(" × ", data.Dials)} ({data.Points.Count} points)");
    }

    /// <summary>Timings summed by phase (reused phases count with the time they took when they ran).</summary>
    private static IEnumerable<(string Phase, double Seconds, int Units, string Covers)> PhaseTotals(RunReportData data) =>
        data.Timings.GroupBy(t => t.Phase).Select(g => (g.Key, g.Sum(t => t.Seconds), g.Count(), g.First().Covers));

    private const string BiasCaption = "From each simulation's manifest, mean over repeats; [k] names a stage, [j] a slot (0 is the top). "
        + "Compare loggedRate (what the logs show) and loggedParentMeanQ (the true rate over the logged population) with "
        + "entireSpaceMeanQ (close to the target; for a post-click stage it is the rate among the requests whose potential "
        + "outcomes reach the stage before, itself a selected population) and "
        + "counterfactualMeanQ (the rate over all of D that a debiased model should recover, against which the D tables score).";

    /// <summary>The meaning of a realised-bias figure: its name before any "[…]" looked up in the run's glossary.</summary>
    private static string Meaning(RunReportData data, string name)
    {
        var bracket = name.IndexOf('[', StringComparison.Ordinal);
        return data.RealisedBiasMeanings.TryGetValue(bracket < 0 ? name : name[..bracket], out var meaning) ? meaning : "";
    }

    private static IEnumerable<(string Point, string Name, double Mean)> BiasMeans(RunReportData data) =>
        data.RealisedBias.GroupBy(b => (b.Point, b.Name)).Select(g => (g.Key.Point, g.Key.Name, g.Select(b => b.Value).Average()));

    /// <summary>A main-table row's label: the model id, marked when it is the baseline or the (untested) oracle reference row.</summary>
    private static string RowLabel(RunReportData data, string model) =>
        model + (model == data.Baseline ? " (baseline)" : MetricStatistics.IsOracle(model) ? " (oracle reference, not tested)" : "");

    private static string PointTitle(string point) => point.Length == 0 ? "" : $" at {point}";

    // ---------------------------------------------------------------- HTML

    private static string Html(RunReportData data, IReadOnlyList<ReportFigure> figures)
    {
        var h = new StringBuilder();
        h.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
            .Append("<title>").Append(E($"adsim run {data.RunId}: {data.ScenarioName}")).Append("</title>\n<style>\n")
            .Append("body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}")
            .Append("table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.9em}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}")
            .Append("th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}td.meaning{text-align:left;font-size:0.9em;color:#444}div.wide{overflow-x:auto}table.main td{white-space:nowrap}tr.baseline td{background:#fbf8e8}")
            .Append("figure{display:inline-block;margin:0.5em;vertical-align:top;max-width:860px}figcaption{font-size:0.85em;color:#555}")
            .Append("pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:0.85em}\n</style>\n</head>\n<body>\n");
        h.Append("<h1>").Append(E($"Run {data.RunId}: {data.ScenarioName}")).Append("</h1>\n");

        h.Append("<h2>Run</h2>\n<table>\n");
        foreach (var (k, v) in Facts(data))
        {
            h.Append("<tr><th>").Append(E(k)).Append("</th><td>").Append(E(v)).Append("</td></tr>\n");
        }
        h.Append("</table>\n");

        h.Append("<h2>Main table</h2>\n<p>").Append(E(MainTableCaption(data.Baseline))).Append("</p>\n");
        h.Append("<div id=\"").Append(MainTableId).Append("\">\n");
        foreach (var table in MainTables(data))
        {
            h.Append("<h3>").Append(E(table.Title)).Append("</h3>\n<div class=\"wide\"><table class=\"main\">\n<tr><th>model</th>");
            foreach (var c in table.Columns)
            {
                h.Append("<th>").Append(E(c)).Append("</th>");
            }
            h.Append("</tr>\n");
            foreach (var model in table.Models)
            {
                var baseline = model == data.Baseline;
                h.Append(baseline ? "<tr class=\"baseline\">" : "<tr>").Append("<td>").Append(E(RowLabel(data, model))).Append("</td>");
                foreach (var c in table.Columns)
                {
                    var s = table.Cells.GetValueOrDefault((model, c));
                    h.Append("<td");
                    if (s is not null && double.IsFinite(s.PValue))
                    {
                        h.Append(" title=\"").Append(E($"difference to {data.Baseline}: {N(s.MeanDifference)}, p = {N(s.PValue)}")).Append('"');
                    }
                    h.Append('>').Append(E(s is null ? "" : Cell(s))).Append("</td>");
                }
                h.Append("</tr>\n");
            }
            h.Append("</table></div>\n");
        }
        h.Append("</div>\n");

        foreach (var (section, title) in FigureSections)
        {
            AppendFigures(h, figures, section, title);
        }

        if (data.Ope is { } ope)
        {
            h.Append(OpeReport.Html(ope, figures));
        }
        h.Append("<h2>Realised bias dials</h2>\n<p>").Append(E(BiasCaption)).Append("</p>\n<table>\n<tr><th>figure</th>");
        var biasPoints = data.Points.Select(p => p.Label).ToList();
        foreach (var p in biasPoints)
        {
            h.Append("<th>").Append(E(p.Length == 0 ? "value" : p)).Append("</th>");
        }
        h.Append("<th>meaning</th></tr>\n");
        var means = BiasMeans(data).ToList();
        foreach (var name in means.Select(m => m.Name).Distinct(StringComparer.Ordinal))
        {
            h.Append("<tr><td>").Append(E(name)).Append("</td>");
            foreach (var p in biasPoints)
            {
                var m = means.FirstOrDefault(x => x.Point == p && x.Name == name);
                h.Append("<td>").Append(m.Name is null ? "" : E(N(m.Mean))).Append("</td>");
            }
            h.Append("<td class=\"meaning\">").Append(E(Meaning(data, name))).Append("</td></tr>\n");
        }
        h.Append("</table>\n");

        h.Append("<h2>Timings</h2>\n<table>\n<tr><th>phase</th><th>units</th><th>seconds</th><th>covers</th></tr>\n");
        foreach (var (phase, seconds, units, covers) in PhaseTotals(data))
        {
            h.Append("<tr><td>").Append(E(phase)).Append("</td><td>").Append(units).Append("</td><td>").Append(S(seconds)).Append("</td><td>")
                .Append(E(covers)).Append("</td></tr>\n");
        }
        h.Append("</table>\n<details><summary>Every phase</summary>\n<table>\n<tr><th>phase</th><th>unit</th><th>seconds</th><th>covers</th><th>reused</th></tr>\n");
        foreach (var t in data.Timings)
        {
            h.Append("<tr><td>").Append(E(t.Phase)).Append("</td><td>").Append(E(t.Unit)).Append("</td><td>").Append(S(t.Seconds)).Append("</td><td>")
                .Append(E(t.Covers)).Append("</td><td>").Append(t.Reused ? "yes" : "").Append("</td></tr>\n");
        }
        h.Append("</table>\n</details>\n");

        h.Append("<h2>Seeds</h2>\n<table>\n<tr><th>point</th><th>repeat</th><th>world seed</th><th>training seed</th></tr>\n");
        foreach (var s in data.Seeds)
        {
            h.Append("<tr><td>").Append(E(s.Point.Length == 0 ? "-" : s.Point)).Append("</td><td>").Append(s.Repeat).Append("</td><td>")
                .Append(s.WorldSeed).Append("</td><td>").Append(s.TrainingSeed).Append("</td></tr>\n");
        }
        h.Append("</table>\n");

        h.Append("<h2>Every space</h2>\n<details><summary>Summaries on D, O, C, O\\C and D\\O (also in summary.csv)</summary>\n<table>\n")
            .Append("<tr><th>point</th><th>model</th><th>stage</th><th>space</th><th>metric</th><th>mean [95% CI]</th><th>p vs baseline</th></tr>\n");
        foreach (var s in data.Summaries)
        {
            h.Append("<tr><td>").Append(E(s.Point)).Append("</td><td>").Append(E(s.Model)).Append("</td><td>").Append(E(s.Stage)).Append("</td><td>")
                .Append(E(ReportCsv.SpaceName(s.Space))).Append("</td><td>").Append(E(s.Metric)).Append("</td><td>").Append(E(Cell(s))).Append("</td><td>")
                .Append(E(N(s.PValue))).Append("</td></tr>\n");
        }
        h.Append("</table>\n</details>\n");

        h.Append("<h2>Resolved scenario</h2>\n<pre>").Append(E(data.ResolvedScenario)).Append("</pre>\n</body>\n</html>\n");
        return h.ToString();
    }

    private static void AppendFigures(StringBuilder h, IReadOnlyList<ReportFigure> figures, string section, string title)
    {
        var chosen = figures.Where(f => f.Section == section).ToList();
        if (chosen.Count == 0)
        {
            return;
        }
        h.Append("<h2>").Append(E(title)).Append("</h2>\n");
        foreach (var f in chosen)
        {
            HtmlFigure(h, f);
        }
    }

    /// <summary>The figure sections in report order, with their headings (both report forms).</summary>
    private static readonly (string Section, string Title)[] FigureSections =
    [
        (ReportPlots.Sweep, "Metrics against the dial"),
        (ReportPlots.Deciles, "Click-stage error and bias by true-CTR decile"),
        (ReportPlots.CounterfactualDeciles, "Counterfactual CVR error and bias by true-CTR decile (post-click stages)"),
        (ReportPlots.Reliability, "Reliability diagrams"),
        (ReportPlots.Training, "Training curves"),
    ];

    /// <summary>The ranges intervals are clipped to, from the metric catalog: "auc_observed, … to [0, 1]; …".</summary>
    private static string IntervalRanges() =>
        string.Join("; ", MetricIds.Conditional.Append(MetricIds.Dependence).GroupBy(d => d.Range).Select(g => $"{string.Join(", ", g.Select(d => d.Id))} to {g.Key}"));

    /// <summary>What the main table shows, for both report forms: rows, intervals, markers, columns and spaces.</summary>
    private static string MainTableCaption(string baseline) =>
        "Mean over repeats with its 95% confidence interval, on the held-out test split of D (every bid request: impressions "
        + "and lost bids). The interval is Student t across repeats; with a single repeat it is a Poisson bootstrap over "
        + "requests for auc_potential, bias, mae and rmse, and there is none for the other metrics (summary.csv's interval "
        + "column says which). A bootstrap interval covers only the sampling of the test requests: it says nothing of how "
        + "much a model's figure would move with another training seed or another world, which can be far more, so a "
        + "ranking of models needs repeats (evaluation.repeats ≥ 3). Intervals are clipped to the metric's range (" + IntervalRanges() + "; the _cumulative ones "
        + "alike), so with few repeats an end may sit on a bound; the means are not clipped. "
        + $"Markers give the paired t-test against the baseline {baseline} over the same repeats (none "
        + "with a single repeat): * p < 0.05, ** p < 0.01, *** p < 0.001; the truth row (the oracle predictions p̂ = q, the "
        + "reference every model is scored against, not a contender) is not tested and carries none. Columns score the conditional q̂_k against the true "
        + "q_k; those ending in _cumulative score r̂_k = P̂(stage k | x) against r_k = q_1⋯q_k. Bias, MAE and RMSE are "
        + "against the true rates; for post-click stages on D they are the counterfactual CVR error. Bias is signed, so its "
        + "paired test asks whether two models err by different amounts in the same direction; compare accuracy with mae "
        + "(a model that over-corrects shows a negative bias, not a better one). ece equals |bias| whenever every bin errs in "
        + "the same direction, as a model whose output is shifted as a whole does. dependence_ratio (post-click stages) is "
        + "the model's selection ratio over the truth's: calibration_ratio_cumulative = the parent stage's "
        + "calibration_ratio_cumulative (the click stage's calibration_ratio) × calibration_ratio × dependence_ratio on D, O "
        + "and D\\O. Spaces (every space's "
        + "summaries are in summary.csv): D every request, O impressions, C impressions that reached stage k − 1, O\\C "
        + "impressions that did not, D\\O lost bids. Each stage's second table gives the headline figures on O, the \"entire "
        + "space\" of ESMM and ESCM² (the population their click-selection corrections target), and for a post-click stage on C, "
        + "where click-space models train and where papers report AUC and log loss on observed labels: a model that corrects "
        + "click selection but not win selection can look right on D, which mixes won and lost requests, while erring on O.";

    // ---------------------------------------------------------------- Markdown

    private static string Markdown(RunReportData data, IReadOnlyList<ReportFigure> figures)
    {
        var m = new StringBuilder();
        m.Append("# Run ").Append(data.RunId).Append(": ").Append(data.ScenarioName).Append("\n\n| | |\n| --- | --- |\n");
        foreach (var (k, v) in Facts(data))
        {
            m.Append("| ").Append(k).Append(" | ").Append(Md(v)).Append(" |\n");
        }
        m.Append("\n## Main table\n\n").Append(Md(MainTableCaption(data.Baseline))).Append('\n');
        foreach (var table in MainTables(data))
        {
            m.Append("\n### ").Append(Md(table.Title)).Append("\n\n| model | ").Append(string.Join(" | ", table.Columns)).Append(" |\n| --- |")
                .Append(string.Concat(table.Columns.Select(_ => " ---: |"))).Append('\n');
            foreach (var model in table.Models)
            {
                m.Append("| ").Append(Md(RowLabel(data, model)));
                foreach (var c in table.Columns)
                {
                    var s = table.Cells.GetValueOrDefault((model, c));
                    m.Append(" | ").Append(s is null ? "" : Md(Cell(s)));
                }
                m.Append(" |\n");
            }
        }
        foreach (var (section, title) in FigureSections)
        {
            var chosen = figures.Where(f => f.Section == section).ToList();
            if (chosen.Count == 0)
            {
                continue;
            }
            m.Append("\n## ").Append(title).Append("\n\n");
            foreach (var f in chosen)
            {
                MarkdownFigure(m, f, PlotsFolder);
            }
        }
        if (data.Ope is { } ope)
        {
            m.Append(OpeReport.Markdown(ope, figures, PlotsFolder));
        }
        m.Append("\n## Realised bias dials\n\n").Append(Md(BiasCaption)).Append("\n\n| point | figure | mean over repeats | meaning |\n| --- | --- | ---: | --- |\n");
        foreach (var (point, name, mean) in BiasMeans(data))
        {
            m.Append("| ").Append(Md(point.Length == 0 ? "-" : point)).Append(" | ").Append(Md(name)).Append(" | ").Append(N(mean)).Append(" | ")
                .Append(Md(Meaning(data, name))).Append(" |\n");
        }
        m.Append("\n## Timings\n\n| phase | units | seconds | covers |\n| --- | ---: | ---: | --- |\n");
        foreach (var (phase, seconds, units, covers) in PhaseTotals(data))
        {
            m.Append("| ").Append(phase).Append(" | ").Append(units).Append(" | ").Append(S(seconds)).Append(" | ").Append(Md(covers)).Append(" |\n");
        }
        m.Append("\n| phase | unit | seconds | covers | reused |\n| --- | --- | ---: | --- | --- |\n");
        foreach (var t in data.Timings)
        {
            m.Append("| ").Append(t.Phase).Append(" | ").Append(Md(t.Unit)).Append(" | ").Append(S(t.Seconds)).Append(" | ").Append(Md(t.Covers)).Append(" | ")
                .Append(t.Reused ? "yes" : "").Append(" |\n");
        }
        m.Append("\n## Seeds\n\n| point | repeat | world seed | training seed |\n| --- | ---: | ---: | ---: |\n");
        foreach (var s in data.Seeds)
        {
            m.Append("| ").Append(Md(s.Point.Length == 0 ? "-" : s.Point)).Append(" | ").Append(s.Repeat).Append(" | ").Append(s.WorldSeed).Append(" | ")
                .Append(s.TrainingSeed).Append(" |\n");
        }
        m.Append("\nEvery space (D, O, C, O\\C, D\\O) is in `summary.csv`; every repeat in `metrics.csv`.\n\n## Resolved scenario\n\n```json\n")
            .Append(data.ResolvedScenario.TrimEnd()).Append("\n```\n");
        return m.ToString();
    }
}
