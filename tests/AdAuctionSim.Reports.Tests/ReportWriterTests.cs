using System.Diagnostics;
using System.Text.RegularExpressions;
using AdAuctionSim.Reports.Documents;
using AdAuctionSim.Reports.Plots;

namespace AdAuctionSim.Reports.Tests;

/// <summary>The report files: CSV round trip, figures of every kind, and report.html as a browser renders it.</summary>
public sealed partial class ReportWriterTests
{
    [Fact]
    public void Metrics_csv_round_trips_every_row_and_is_a_pure_function_of_them()
    {
        using var folder = new TempFolder();
        var data = SyntheticRun.Create();
        var a = Path.Combine(folder.Path, "a.csv");
        var b = Path.Combine(folder.Path, "b.csv");
        ReportCsv.WriteMetrics(a, data.Metrics);
        ReportCsv.WriteMetrics(b, data.Metrics.ToList());
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
        var back = ReportCsv.ReadMetrics(a);
        Assert.Equal(data.Metrics.Count, back.Count);
        for (var i = 0; i < back.Count; i++)
        {
            // Records compare doubles with Equals, so NaN equals NaN and every value must be bit-identical.
            Assert.Equal(data.Metrics[i], back[i]);
        }
    }

    [Fact]
    public void Plots_cover_reliability_deciles_sweep_and_training_as_png_and_svg()
    {
        var figures = ReportPlots.Draw(SyntheticRun.Create());
        Assert.Equal(SyntheticRun.Dial.Length * SyntheticRun.Models.Length, figures.Count(f => f.Section == ReportPlots.Reliability));
        // Bias and MAE per point for the click stage, and for the post-click stage in its own section.
        Assert.Equal(2 * SyntheticRun.Dial.Length, figures.Count(f => f.Section == ReportPlots.Deciles));
        Assert.Equal(2 * SyntheticRun.Dial.Length, figures.Count(f => f.Section == ReportPlots.CounterfactualDeciles));
        // bias, auc_potential, log_loss (ece is NaN everywhere: no figure) on D for each stage, and bias on O (of the O metrics,
        // the synthetic run has only bias).
        Assert.Equal(4 * SyntheticRun.Stages.Length, figures.Count(f => f.Section == ReportPlots.Sweep));
        Assert.All(SyntheticRun.Stages, stage => Assert.Contains(figures, f => f.Name == $"sweep-bias-{stage}-o"
            && f.Caption.StartsWith($"bias of the {stage} prediction on O (impressions", StringComparison.Ordinal)));
        // Per point: the validation log loss and the deepest stage's validation calibration.
        Assert.Equal(2 * SyntheticRun.Dial.Length, figures.Count(f => f.Section == ReportPlots.Training));
        Assert.Equal(figures.Count, figures.Select(f => f.Name).Distinct().Count());
        foreach (var f in figures)
        {
            Assert.True(f.Png.AsSpan(0, 8).SequenceEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }), f.Name);
            Assert.Contains("<svg", f.Svg, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Main_table_columns_put_the_cumulative_metrics_in_the_order_of_the_conditional_ones()
    {
        // bias_cumulative sorts before ece_cumulative alphabetically but follows it in the conditional order.
        string[] metrics = ["rmse_cumulative", "zeta", "bias_cumulative", "auc_potential_cumulative", "bias", "auc_potential", "ece_cumulative"];
        var summaries = metrics.Select(m => new Evaluation.MetricSummary("", "esmm", "convert", Evaluation.EvaluationSpace.D, m, 0.1, double.NaN, double.NaN, 1,
            "esmm", double.NaN, double.NaN, "none (one repeat)"));

        Assert.Equal(["auc_potential", "bias", "auc_potential_cumulative", "ece_cumulative", "bias_cumulative", "rmse_cumulative", "zeta"],
            RunReportWriter.MetricColumns(summaries));
    }

    [Fact]
    public void The_main_table_marks_significant_differences_to_the_baseline()
    {
        using var folder = new TempFolder();
        var data = SyntheticRun.Create();
        var files = RunReportWriter.Write(folder.Path, data);
        var html = File.ReadAllText(Path.Combine(folder.Path, files.Html));
        var markdown = File.ReadAllText(Path.Combine(folder.Path, files.Markdown));
        Assert.Contains($"id=\"{RunReportWriter.MainTableId}\"", html, StringComparison.Ordinal);
        Assert.Contains("single-task (baseline)", html, StringComparison.Ordinal);
        // At the strong setting the naive model's bias is 0.04 above the others' in every repeat: p < 0.001.
        var naive = data.Summaries.Single(s => s.Point.EndsWith("0.8", StringComparison.Ordinal) && s.Model == "esmm" && s.Stage == "convert"
            && s.Space == Evaluation.EvaluationSpace.D && s.Metric == "bias");
        Assert.True(naive.PValue < 0.001);
        Assert.Contains(RunReportWriter.Cell(naive), html, StringComparison.Ordinal);
        Assert.EndsWith(" ***", RunReportWriter.Cell(naive), StringComparison.Ordinal);
        Assert.DoesNotContain("src=\"plots/", html, StringComparison.Ordinal);
        foreach (var plot in files.Plots)
        {
            Assert.True(new FileInfo(Path.Combine(folder.Path, plot)).Length > 1000, plot);
            Assert.Contains($"]({plot})", markdown, StringComparison.Ordinal);
        }
        Assert.Contains("Timings", markdown, StringComparison.Ordinal);
        Assert.Contains("clickSelectionRatio[convert]", html, StringComparison.Ordinal);
        // Each stage's D table is followed by its headline figures on O (and C for a post-click stage, when evaluated there).
        Assert.Contains("\n### click at ", markdown, StringComparison.Ordinal);
        Assert.Matches(@"\n### click at [^\n]* on O\n\n\| model \| O bias \| O log_loss \|", markdown);
        Assert.Matches(@"\n### convert at [^\n]* on O\n\n\| model \| O bias \|", markdown);
        Assert.Contains("<h3>convert at ", html, StringComparison.Ordinal);
        // Both forms say which rows the main table covers, and what the spaces and the _cumulative columns are.
        foreach (var text in (string[])["on the held-out test split of D", "D\\O lost bids", "those ending in _cumulative score"])
        {
            Assert.Contains(text, html, StringComparison.Ordinal);
            Assert.Contains(text, markdown, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Every_interval_the_main_table_shows_with_two_repeats_stays_in_its_metrics_range()
    {
        using var folder = new TempFolder();
        var data = SyntheticRun.Create(repeats: 2);
        var files = RunReportWriter.Write(folder.Path, data);
        var markdown = File.ReadAllText(Path.Combine(folder.Path, files.Markdown));

        var cells = MainTableCells(markdown).ToList();
        var intervals = 0;
        var onABound = 0;
        foreach (var (model, metric, cell) in cells)
        {
            var m = IntervalPattern().Match(cell);
            if (!m.Success)
            {
                continue;
            }
            intervals++;
            var (low, high) = (Parse(m.Groups["low"].Value), Parse(m.Groups["high"].Value));
            var range = Evaluation.Metrics.MetricIds.RangeOf(metric);
            Assert.True(low >= range.Min && high <= range.Max, $"{model} {metric}: {cell} leaves {range}");
            onABound += low == range.Min || high == range.Max ? 1 : 0;
        }
        // Two repeats' t interval (t = 12.7) of the truth row's AUC near 1 and calibration ratio near 1 reaches past the
        // range before clipping: the check above must have met clipped ends.
        Assert.True(intervals > 20, $"only {intervals} intervals in the main tables");
        Assert.True(onABound > 0, "no interval reached a bound: the synthetic run no longer tests the clipping");
        // The summaries (summary.csv and the registry read them) hold the same clipped interval, and the means are not clipped.
        var summary = File.ReadAllText(Path.Combine(folder.Path, files.Summary));
        var truthAuc = data.Summaries.First(s => s.Model == SyntheticRun.Truth && s.Metric == "auc_potential" && s.CiHigh == 1);
        Assert.True(truthAuc.Mean < 1);
        Assert.Contains($",{SyntheticRun.Truth},{truthAuc.Stage},D,auc_potential,{truthAuc.Mean.ToString("R", System.Globalization.CultureInfo.InvariantCulture)},"
            + $"{truthAuc.CiLow.ToString("R", System.Globalization.CultureInfo.InvariantCulture)},1,2,", summary, StringComparison.Ordinal);
        // The caption says so.
        Assert.Contains("Intervals are clipped to the metric's range", markdown, StringComparison.Ordinal);
    }

    [Fact]
    public void The_truth_reference_row_carries_no_significance_markers_and_the_legend_says_why()
    {
        using var folder = new TempFolder();
        var data = SyntheticRun.Create();
        var files = RunReportWriter.Write(folder.Path, data);
        var markdown = File.ReadAllText(Path.Combine(folder.Path, files.Markdown));
        var html = File.ReadAllText(Path.Combine(folder.Path, files.Html));

        // At the strong setting the baseline's bias is 0.04 in every repeat and the truth's 0: a paired test would give ***.
        var truthBias = data.Summaries.Single(s => s.Point.EndsWith("0.8", StringComparison.Ordinal) && s.Model == SyntheticRun.Truth
            && s.Stage == "convert" && s.Metric == "bias");
        Assert.True(double.IsNaN(truthBias.PValue));
        Assert.True(truthBias.MeanDifference < -0.03);
        var truthCells = MainTableCells(markdown).Where(c => c.Model.StartsWith(SyntheticRun.Truth, StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(truthCells);
        Assert.All(truthCells, c => Assert.DoesNotContain("*", c.Cell, StringComparison.Ordinal));
        // Models still carry them.
        Assert.Contains(MainTableCells(markdown), c => c.Model == "esmm" && c.Cell.EndsWith("\\*\\*\\*", StringComparison.Ordinal));
        foreach (var text in (string[])["truth (oracle reference, not tested)", "the truth row (the oracle predictions p̂ = q"])
        {
            Assert.Contains(text, markdown, StringComparison.Ordinal);
            Assert.Contains(System.Net.WebUtility.HtmlEncode(text), html, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Each_decile_figure_sits_under_the_heading_of_its_stage()
    {
        using var folder = new TempFolder();
        var files = RunReportWriter.Write(folder.Path, SyntheticRun.Create());
        var markdown = File.ReadAllText(Path.Combine(folder.Path, files.Markdown));

        var click = markdown.IndexOf("## Click-stage error and bias by true-CTR decile", StringComparison.Ordinal);
        var counterfactual = markdown.IndexOf("## Counterfactual CVR error and bias by true-CTR decile", StringComparison.Ordinal);
        var next = markdown.IndexOf("\n## ", counterfactual + 1, StringComparison.Ordinal);
        Assert.True(click >= 0 && counterfactual > click && next > counterfactual, "both decile headings, click first");
        var clickPart = markdown[click..counterfactual];
        var counterfactualPart = markdown[counterfactual..next];
        Assert.Contains("decile-bias-p00-click.png", clickPart, StringComparison.Ordinal);
        Assert.DoesNotContain("convert", clickPart, StringComparison.Ordinal);
        Assert.DoesNotContain("counterfactual", clickPart, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("post-click", clickPart, StringComparison.Ordinal);
        Assert.Contains("decile-bias-p00-convert.png", counterfactualPart, StringComparison.Ordinal);
        Assert.DoesNotContain("-click.png", counterfactualPart, StringComparison.Ordinal);
        Assert.Contains("the counterfactual CVR bias", counterfactualPart, StringComparison.Ordinal);
        Assert.Contains("the counterfactual CVR error", counterfactualPart, StringComparison.Ordinal);
    }

    /// <summary>(row label, metric, cell text) of every cell of the main tables in report.md.</summary>
    private static IEnumerable<(string Model, string Metric, string Cell)> MainTableCells(string markdown)
    {
        var main = markdown[markdown.IndexOf("## Main table", StringComparison.Ordinal)..];
        main = main[..main.IndexOf("\n## ", 1, StringComparison.Ordinal)];
        string[]? columns = null;
        foreach (var line in main.Split('\n'))
        {
            if (!line.StartsWith("| ", StringComparison.Ordinal))
            {
                columns = null;
                continue;
            }
            var cells = line.Trim('|').Split(" | ").Select(c => c.Trim()).ToArray();
            if (cells[0] == "model")
            {
                columns = cells;
                continue;
            }
            if (columns is null || cells[0] == "---")
            {
                continue;
            }
            for (var i = 1; i < cells.Length; i++)
            {
                // The O and C tables head their columns "<space> <metric>".
                yield return (cells[0], columns[i][(columns[i].IndexOf(' ', StringComparison.Ordinal) + 1)..], cells[i]);
            }
        }
    }

    private static double Parse(string text) => double.Parse(text, System.Globalization.CultureInfo.InvariantCulture);

    [GeneratedRegex(@"\[(?<low>[-+0-9.Ee]+), (?<high>[-+0-9.Ee]+)\]")]
    private static partial Regex IntervalPattern();

    /// <summary>
    /// Opens report.html in headless Chromium (Debian's chromium package, which .ci/run installs) inside a page that
    /// checks, once it has loaded, that every image decoded with a non-zero size and that the main table has rows.
    /// </summary>
    [Fact]
    public void Report_html_renders_in_headless_chromium_with_every_plot_loaded()
    {
        using var folder = new TempFolder();
        var files = RunReportWriter.Write(folder.Path, SyntheticRun.Create());
        var result = ChromiumCheck.Run(folder.Path, files.Html);
        var m = ResultPattern().Match(result);
        Assert.True(m.Success, $"no check result in Chromium's DOM dump: {result}");
        Assert.Equal(files.Plots.Count, int.Parse(m.Groups["images"].Value, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("0", m.Groups["broken"].Value);
        Assert.True(int.Parse(m.Groups["rows"].Value, System.Globalization.CultureInfo.InvariantCulture) > SyntheticRun.Models.Length, result);
    }

    [GeneratedRegex(@"images=(?<images>\d+) broken=(?<broken>\d+) \[[^\]]*\] main-table-rows=(?<rows>-?\d+)")]
    private static partial Regex ResultPattern();
}

/// <summary>Runs headless Chromium on a checker page that loads a report in a frame and writes what it finds into its DOM.</summary>
internal static class ChromiumCheck
{
    private const string CheckerPage = """
        <html><body><pre id="result">pending</pre><iframe id="report" src="REPORT" width="1200" height="900"></iframe>
        <script>
        document.getElementById('report').addEventListener('load', () => {
          const d = document.getElementById('report').contentDocument;
          const images = Array.from(d.images);
          const broken = images.filter(i => !(i.complete && i.naturalWidth > 0 && i.naturalHeight > 0)).map(i => i.alt);
          const table = d.getElementById('main-table');
          const rows = table ? table.querySelectorAll('tr').length : -1;
          document.getElementById('result').textContent =
            'images=' + images.length + ' broken=' + broken.length + ' [' + broken.join(';') + '] main-table-rows=' + rows;
        });
        </script></body></html>
        """;

    public static string Run(string folder, string report)
    {
        var chromium = Find() ?? throw new InvalidOperationException(
            "chromium is not installed: the report test needs Debian's chromium package (apt-get install chromium), which .ci/run installs");
        var checker = Path.Combine(folder, "check-report.html");
        File.WriteAllText(checker, CheckerPage.Replace("REPORT", report, StringComparison.Ordinal));
        var profile = Path.Combine(folder, "chromium-profile");
        var start = new ProcessStartInfo(chromium,
        [
            "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files", "--no-first-run",
            $"--user-data-dir={profile}", "--virtual-time-budget=20000", "--dump-dom", new Uri(checker).AbsoluteUri,
        ])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var dom = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(120_000))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("chromium did not finish within 120 s");
        }
        return dom.Length > 0 ? dom : $"(empty DOM; exit {process.ExitCode}; stderr: {stderr.Result})";
    }

    private static string? Find() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .SelectMany(d => (string[])[Path.Combine(d, "chromium"), Path.Combine(d, "chromium-browser")])
            .FirstOrDefault(File.Exists);
}
