using System.Globalization;
using System.Text;
using AdAuctionSim.Evaluation.Metrics;
using AdAuctionSim.Evaluation.OffPolicy;
using AdAuctionSim.Evaluation.Statistics;
using AdAuctionSim.Reports.Plots;
using ScottPlot;
using static AdAuctionSim.Reports.Documents.ReportMarkup;

namespace AdAuctionSim.Reports.Documents;

/// <summary>What the off-policy evaluation section of a report shows.</summary>
/// <param name="Reward">What values are measured in (value or conversions per request).</param>
/// <param name="Split">The requests the policies were valued on.</param>
/// <param name="Points">Sweep point labels in order (one empty label without a sweep).</param>
/// <param name="Estimates">Every estimate of every policy and repeat.</param>
/// <param name="Truths">Every policy's exact value and Monte Carlo cross-check per repeat.</param>
public sealed record OpeReportData(string Reward, string Split, IReadOnlyList<string> Points, IReadOnlyList<OpeEstimateRow> Estimates,
    IReadOnlyList<PolicyTruthRow> Truths)
{
    public IReadOnlyList<OpeSummary> Summaries { get; } = OpeMetaEvaluation.Summarise(Estimates);
}

/// <summary>
/// The off-policy evaluation section of <c>report.html</c> / <c>report.md</c> (its tables and figures) and its CSV files:
/// <c>ope.csv</c> (every estimate), <c>ope_summary.csv</c> (meta-evaluation per point, policy and estimator) and
/// <c>policy_values.csv</c> (true values and the Monte Carlo cross-check).
/// </summary>
public static class OpeReport
{
    public const string Section = "ope";
    public const string EstimatesFile = "ope.csv";
    public const string SummaryFile = "ope_summary.csv";
    public const string TruthFile = "policy_values.csv";

    /// <summary>Writes the three CSV files into <paramref name="directory"/>.</summary>
    public static IReadOnlyList<string> WriteCsv(string directory, OpeReportData data)
    {
        ArgumentNullException.ThrowIfNull(data);
        File.WriteAllText(Path.Combine(directory, EstimatesFile), OpeMetaEvaluation.Csv(data.Estimates), Utf8);
        File.WriteAllText(Path.Combine(directory, SummaryFile), OpeMetaEvaluation.SummaryCsv(data.Summaries), Utf8);
        File.WriteAllText(Path.Combine(directory, TruthFile), OpeMetaEvaluation.TruthCsv(data.Truths), Utf8);
        return [EstimatesFile, SummaryFile, TruthFile];
    }

    /// <summary>
    /// A report of its own (<c>adsim ope</c>): <c>report.html</c> (plots embedded), <c>report.md</c>, the CSV files and
    /// <c>plots/</c>, with the facts, timings and resolved scenario around the section. The HTML is written last.
    /// </summary>
    /// <returns>The files written, relative to <paramref name="directory"/>.</returns>
    public static IReadOnlyList<string> WriteReport(string directory, string title, IReadOnlyList<(string Key, string Value)> facts, OpeReportData data,
        IReadOnlyList<PhaseTiming> timings, string resolvedScenario)
    {
        ArgumentNullException.ThrowIfNull(facts);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(timings);
        Directory.CreateDirectory(Path.Combine(directory, RunReportWriter.PlotsFolder));
        var files = new List<string>(WriteCsv(directory, data));
        var figures = Figures(data);
        foreach (var f in figures)
        {
            File.WriteAllBytes(Path.Combine(directory, RunReportWriter.PlotsFolder, f.Name + ".png"), f.Png);
            File.WriteAllText(Path.Combine(directory, RunReportWriter.PlotsFolder, f.Name + ".svg"), f.Svg, Utf8);
        }
        var m = new StringBuilder("# ").Append(Md(title)).Append("\n\n| | |\n| --- | --- |\n");
        foreach (var (k, v) in facts)
        {
            m.Append("| ").Append(Md(k)).Append(" | ").Append(Md(v)).Append(" |\n");
        }
        m.Append(Markdown(data, figures, RunReportWriter.PlotsFolder));
        m.Append("\n## Timings\n\n| phase | unit | seconds | covers |\n| --- | --- | ---: | --- |\n");
        foreach (var t in timings)
        {
            m.Append("| ").Append(Md(t.Phase)).Append(" | ").Append(Md(t.Unit)).Append(" | ").Append(t.Seconds.ToString("F2", CultureInfo.InvariantCulture))
                .Append(" | ").Append(Md(t.Covers)).Append(" |\n");
        }
        m.Append("\n## Resolved scenario\n\n```json\n").Append(resolvedScenario.TrimEnd()).Append("\n```\n");
        File.WriteAllText(Path.Combine(directory, RunReportWriter.MarkdownFile), m.ToString(), Utf8);

        var h = new StringBuilder("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>").Append(E(title)).Append("</title>\n<style>\n")
            .Append("body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}")
            .Append("table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.9em}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}")
            .Append("th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}")
            .Append("figure{display:inline-block;margin:0.5em;vertical-align:top;max-width:860px}figcaption{font-size:0.85em;color:#555}")
            .Append("pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:0.85em}\n</style>\n</head>\n<body>\n<h1>").Append(E(title)).Append("</h1>\n<table>\n");
        foreach (var (k, v) in facts)
        {
            h.Append("<tr><th>").Append(E(k)).Append("</th><td>").Append(E(v)).Append("</td></tr>\n");
        }
        h.Append("</table>\n").Append(Html(data, figures)).Append("<h2>Timings</h2>\n<table>\n<tr><th>phase</th><th>unit</th><th>seconds</th><th>covers</th></tr>\n");
        foreach (var t in timings)
        {
            h.Append("<tr><td>").Append(E(t.Phase)).Append("</td><td>").Append(E(t.Unit)).Append("</td><td>").Append(t.Seconds.ToString("F2", CultureInfo.InvariantCulture))
                .Append("</td><td>").Append(E(t.Covers)).Append("</td></tr>\n");
        }
        h.Append("</table>\n<h2>Resolved scenario</h2>\n<pre>").Append(E(resolvedScenario)).Append("</pre>\n</body>\n</html>\n");
        File.WriteAllText(Path.Combine(directory, RunReportWriter.HtmlFile), h.ToString(), Utf8);
        files.Add(RunReportWriter.MarkdownFile);
        files.Add(RunReportWriter.HtmlFile);
        return files;
    }

    /// <summary>
    /// Per point and policy: each estimator's estimate with its interval against the true value (dashed). With several
    /// repeats the marker is the mean estimate and the bar its 95% Student-t interval across repeats; with one repeat,
    /// that repeat's estimate and its interval from ope.csv. Bars are clipped to the range a policy value can take
    /// (<see cref="ValueRange"/>); markers are not. Then, with a sweep, each estimator's relative error against the point,
    /// per policy.
    /// </summary>
    public static IReadOnlyList<ReportFigure> Figures(OpeReportData data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var figures = new List<ReportFigure>();
        var palette = new ScottPlot.Palettes.Category10();
        var estimators = EstimatorIds.All;
        var range = ValueRange(data.Reward);
        for (var pi = 0; pi < data.Points.Count; pi++)
        {
            var point = data.Points[pi];
            foreach (var policy in data.Estimates.Where(e => e.Point == point).Select(e => e.Policy).Distinct(StringComparer.Ordinal))
            {
                var rows = data.Estimates.Where(e => e.Point == point && e.Policy == policy).ToList();
                var truth = rows.Select(r => r.Truth).Average();
                var plot = new Plot();
                // The full point and what is plotted are in the caption; the title keeps to the plot's width.
                plot.Title($"{policy}{Where(ShortPoint(point))}", 13);
                plot.YLabel($"policy {data.Reward} per request", 12);
                for (var e = 0; e < estimators.Count; e++)
                {
                    var mine = rows.Where(r => r.Estimator == estimators[e] && double.IsFinite(r.Estimate)).ToList();
                    if (mine.Count == 0)
                    {
                        continue;
                    }
                    var (mean, low, high) = PlottedInterval(mine, data.Reward);
                    var color = palette.GetColor(e);
                    if (double.IsFinite(low) && double.IsFinite(high))
                    {
                        var bar = plot.Add.Line(e, low, e, high);
                        bar.Color = color;
                        bar.LineWidth = 2;
                    }
                    var marker = plot.Add.Scatter(new[] { (double)e }, new[] { mean }, color);
                    marker.MarkerSize = 9;
                    marker.LineWidth = 0;
                }
                var line = plot.Add.HorizontalLine(truth);
                line.Color = Colors.Black;
                line.LinePattern = LinePattern.Dashed;
                line.LegendText = "true value";
                plot.Axes.Bottom.SetTicks([.. Enumerable.Range(0, estimators.Count).Select(i => (double)i)], [.. estimators]);
                plot.ShowLegend(Alignment.UpperRight);
                var repeats = rows.Select(r => r.Repeat).Distinct().Count();
                figures.Add(Render(plot, $"ope-{(data.Points.Count > 1 ? $"p{pi:D2}-" : "")}{ReportPlots.Slug(policy)}",
                    $"Off-policy estimates of {policy}{Where(point)} ({data.Reward} per request on the {data.Split} split) against its true value (dashed): "
                    + (repeats > 1 ? $"mean over {repeats} repeats with the 95% Student-t interval across repeats" : "the estimate with its 95% interval as in ope.csv")
                    + (range == MetricRange.Unbounded
                        ? $". Bars are not clipped: a policy's {data.Reward} per request can take either sign"
                            + (repeats > 1 ? "." : "; an estimate without a defined interval has no bar.")
                        : $". Bars are clipped to the range a policy's {data.Reward} per request can take, {range}"
                            + (repeats > 1 ? " (a t interval across few repeats can reach beyond it); markers and ope.csv's per-repeat intervals are not clipped."
                                : "; markers and ope.csv's intervals are not clipped, and an estimate without a defined interval has no bar."))));
            }
        }
        if (data.Points.Count > 1)
        {
            foreach (var policy in data.Summaries.Select(s => s.Policy).Distinct(StringComparer.Ordinal).Where(p => p != "logging"))
            {
                var plot = new Plot();
                plot.Title($"{policy}: relative error by sweep point", 14);
                plot.XLabel("sweep point", 12);
                plot.YLabel("mean |estimate − truth| / |truth|", 12);
                for (var e = 0; e < estimators.Count; e++)
                {
                    var ys = data.Points.Select(p => data.Summaries.FirstOrDefault(s => s.Point == p && s.Policy == policy && s.Estimator == estimators[e])?.RelativeError ?? double.NaN).ToArray();
                    var line = plot.Add.Scatter([.. Enumerable.Range(0, ys.Length).Select(i => (double)i)], ys, palette.GetColor(e));
                    line.LegendText = estimators[e];
                    line.MarkerSize = 5;
                }
                plot.Axes.Bottom.SetTicks([.. Enumerable.Range(0, data.Points.Count).Select(i => (double)i)],
                    [.. Enumerable.Range(0, data.Points.Count).Select(i => $"p{i:D2}")]);
                plot.ShowLegend(Edge.Right);
                figures.Add(Render(plot, $"ope-relative-error-{ReportPlots.Slug(policy)}",
                    $"Mean relative error of each estimator for {policy} at each sweep point (meta-evaluation across repeats; ope_summary.csv): "
                    + string.Join("; ", data.Points.Select((p, i) => $"p{i:D2} = {p}")) + ".", wide: true));
            }
        }
        return figures;
    }

    /// <summary>
    /// The values a policy can have per request: [0, 1] conversions (one ad shown per request at most), [0, ∞) conversion
    /// value; unbounded for any other reward (a surplus can be negative).
    /// </summary>
    internal static MetricRange ValueRange(string reward) => reward switch
    {
        "conversions" => MetricRange.Probability,
        "value" => MetricRange.NonNegative,
        _ => MetricRange.Unbounded,
    };

    /// <summary>
    /// What the figure draws for one estimator: the mean estimate, unclipped, and its interval (<see cref="Interval"/>)
    /// clipped to <see cref="ValueRange"/>: a t interval across few repeats, or a DR-type bootstrap interval, can reach
    /// values no policy can have (a negative conversion value). NaN ends stay NaN (no bar).
    /// </summary>
    internal static (double Mean, double Low, double High) PlottedInterval(IReadOnlyList<OpeEstimateRow> rows, string reward)
    {
        var (mean, low, high) = Interval(rows);
        var (clippedLow, clippedHigh) = ValueRange(reward).Clip(low, high);
        return (mean, clippedLow, clippedHigh);
    }

    /// <summary>Mean estimate and its interval: Student t across repeats, or the ope.csv interval of a single repeat.</summary>
    private static (double Mean, double Low, double High) Interval(IReadOnlyList<OpeEstimateRow> rows)
    {
        if (rows.Count >= 2)
        {
            var values = rows.Select(r => r.Estimate).ToArray();
            var (low, high) = MetricStatistics.StudentTInterval(values);
            return (values.Average(), low, high);
        }
        return (rows[0].Estimate, rows[0].Low, rows[0].High);
    }

    /// <summary>The section in HTML: figures, the meta-evaluation table per point and the policies' true values.</summary>
    public static string Html(OpeReportData data, IReadOnlyList<ReportFigure> figures)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(figures);
        var h = new StringBuilder();
        h.Append("<h2 id=\"ope\">Off-policy evaluation</h2>\n<p>").Append(E(Intro(data))).Append("</p>\n");
        foreach (var point in data.Points)
        {
            h.Append("<h3>Estimators against the truth").Append(E(Where(point))).Append("</h3>\n");
            HtmlTable(h, Columns, Rows(data, point));
        }
        h.Append("<h3>True policy values</h3>\n");
        HtmlTable(h, TruthColumns, TruthRows(data));
        var warnings = Warnings(data).ToList();
        if (warnings.Count > 0)
        {
            h.Append("<h3>Warnings</h3>\n<ul>\n");
            foreach (var w in warnings)
            {
                h.Append("<li>").Append(E(w)).Append("</li>\n");
            }
            h.Append("</ul>\n");
        }
        foreach (var f in figures.Where(f => f.Section == Section))
        {
            HtmlFigure(h, f);
        }
        return h.ToString();
    }

    /// <summary>The section in Markdown (images linked from <paramref name="plotsFolder"/>).</summary>
    public static string Markdown(OpeReportData data, IReadOnlyList<ReportFigure> figures, string plotsFolder)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(figures);
        var m = new StringBuilder();
        m.Append("\n## Off-policy evaluation\n\n").Append(Md(Intro(data))).Append('\n');
        foreach (var point in data.Points)
        {
            m.Append("\n### Estimators against the truth").Append(Md(Where(point))).Append("\n\n");
            MarkdownTable(m, Columns, Rows(data, point), textColumns: 2);
        }
        m.Append("\n### True policy values\n\n");
        MarkdownTable(m, TruthColumns, TruthRows(data), textColumns: 3);
        var warnings = Warnings(data).ToList();
        if (warnings.Count > 0)
        {
            m.Append("\n### Warnings\n\n");
            foreach (var w in warnings)
            {
                m.Append("* ").Append(Md(w)).Append('\n');
            }
        }
        m.Append('\n');
        foreach (var f in figures.Where(f => f.Section == Section))
        {
            MarkdownFigure(m, f, plotsFolder);
        }
        return m.ToString();
    }

    private static string Intro(OpeReportData data) =>
        $"Each target policy's value ({data.Reward} per request on the {data.Split} split, lost bids included as reward 0) estimated from the logs, "
        + "against its exact true value from the simulator's probabilities on the same requests. Bias is the mean of estimate − truth with its 95% "
        + "t interval across repeats; MSE and relative error are Open Bandit Pipeline's meta-evaluation figures; coverage is the share of repeats "
        + "whose interval holds the truth; warned is the share of repeats with a diagnostic warning (ESS, maximum weight, support, too few rewarded "
        + "matched rounds). Every estimate "
        + "is in ope.csv, these summaries in ope_summary.csv, the true values and their Monte Carlo cross-check in policy_values.csv."
        + (data.Reward == "surplus"
            ? " Relative error is |estimate − truth| ÷ |truth|, and a policy's surplus can be near 0 (a policy that pays about what it buys), "
                + "where the relative error grows without bound: compare such policies by bias and MSE."
            : "");

    private static readonly string[] Columns =
        ["policy", "estimator", "repeats", "mean estimate", "truth", "bias [95% CI]", "MSE", "relative error", "coverage", "warned"];

    private static IEnumerable<string[]> Rows(OpeReportData data, string point) =>
        data.Summaries.Where(s => s.Point == point).Select(s => new[]
        {
            s.Policy, s.Estimator, s.Repeats.ToString(CultureInfo.InvariantCulture), N(s.MeanEstimate), N(s.MeanTruth),
            N(s.Bias) + (double.IsFinite(s.BiasLow) ? $" [{N(s.BiasLow)}, {N(s.BiasHigh)}]" : ""), N(s.SquaredError), N(s.RelativeError),
            P(s.Coverage), P(s.Warned),
        });

    private static readonly string[] TruthColumns =
        ["point", "policy", "repeats", "wins", "conversions", "value", "cost", "truth", "Monte Carlo", "MC agrees"];

    private static IEnumerable<string[]> TruthRows(OpeReportData data) =>
        data.Truths.GroupBy(t => (t.Point, t.Policy)).Select(g => new[]
        {
            g.Key.Point.Length == 0 ? "-" : g.Key.Point, g.Key.Policy, g.Count().ToString(CultureInfo.InvariantCulture),
            N(g.Average(t => t.Wins)), N(g.Average(t => t.Conversions)), N(g.Average(t => t.Value)), N(g.Average(t => t.Cost)),
            N(g.Average(t => t.Truth)), N(g.Average(t => t.MonteCarlo)) + " ± " + N(g.Average(t => t.MonteCarloHalfWidth)),
            $"{g.Count(t => t.Agrees)}/{g.Count()}",
        });

    private static IEnumerable<string> Warnings(OpeReportData data) =>
        data.Estimates.Where(e => e.Warnings.Length > 0).GroupBy(e => (e.Point, e.Policy, e.Repeat)).Select(g => g.First())
            .SelectMany(e => e.Warnings.Split(" | ").Select(w => $"{e.Policy}{Where(e.Point)}, repeat {e.Repeat}: {w}")).Distinct();

    private static string Where(string point) => point.Length == 0 ? "" : $" at {point}";

    /// <summary>A point label without the dial paths' section prefixes (<c>bias.winValueCorrelation=0</c> → <c>winValueCorrelation=0</c>, <c>funnel.stages[1].rate=0.1</c> → <c>stages[1].rate=0.1</c>).</summary>
    private static string ShortPoint(string point) => string.Join(", ", point.Split(", ").Select(part =>
    {
        var equals = part.IndexOf('=', StringComparison.Ordinal);
        var dot = part.IndexOf('.', StringComparison.Ordinal);
        dot = dot < equals ? dot : -1;
        return dot < 0 ? part : part[(dot + 1)..];
    }));

    private static ReportFigure Render(Plot plot, string name, string caption, bool wide = false)
    {
        var width = wide ? ReportPlots.Width + 200 : ReportPlots.Width;
        return new ReportFigure(Section, name, caption, plot.GetImageBytes(width, ReportPlots.Height, ImageFormat.Png), plot.GetSvgXml(width, ReportPlots.Height));
    }

    private static readonly UTF8Encoding Utf8 = new(false);

    private static string N(double v) => double.IsNaN(v) ? "n/a" : v.ToString("G4", CultureInfo.InvariantCulture);

    private static string P(double v) => double.IsNaN(v) ? "n/a" : v.ToString("P0", CultureInfo.InvariantCulture);

}
