using System.Globalization;
using AdAuctionSim.Evaluation;
using AdAuctionSim.Reports.Documents;
using ScottPlot;

namespace AdAuctionSim.Reports.Plots;

/// <summary>One rendered figure: where it belongs in the report, its caption, and the image in PNG and SVG.</summary>
/// <param name="Section">Report section (reliability, deciles, sweep, training).</param>
/// <param name="Name">File name without extension, unique within the report.</param>
/// <param name="Caption">What the figure shows.</param>
/// <param name="Png">The PNG image.</param>
/// <param name="Svg">The same figure as SVG text.</param>
public sealed record ReportFigure(string Section, string Name, string Caption, byte[] Png, string Svg);

/// <summary>
/// The report's figures, drawn with ScottPlot (SkiaSharp): reliability diagrams per point × model (one line per stage,
/// on D, bins pooled over repeats), error and bias of each stage against the true-CTR decile (one line per model), every
/// metric on D against the swept dial with 95% bands (one line per model), and validation curves of the training.
/// </summary>
public static class ReportPlots
{
    public const string Reliability = "reliability";
    public const string Deciles = "deciles";
    public const string Sweep = "sweep";
    public const string Training = "training";

    public const int Width = 640;
    public const int Height = 420;

    /// <summary>Metrics plotted against the dial, in this order, where the evaluation produced them.</summary>
    public static IReadOnlyList<string> SweepMetrics { get; } =
        ["bias", "mae", "rmse", "auc_potential", "auc_observed", "log_loss", "ne", "ece", "calibration_ratio"];

    public static IReadOnlyList<ReportFigure> Draw(RunReportData data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var figures = new List<ReportFigure>();
        // The run's models, then the evaluator's reference rows (truth, logging) that appear in the figures' data.
        var colors = ModelColors([.. data.Models, .. data.Deciles.Select(d => d.Model).Concat(data.Reliability.Select(r => r.Model))
            .Concat(data.Curves.Select(c => c.Model)).Distinct(StringComparer.Ordinal).Where(m => !data.Models.Contains(m))]);
        var pointIndex = data.Points.Select((p, i) => (p.Label, i)).ToDictionary(x => x.Label, x => x.i, StringComparer.Ordinal);
        string Prefix(string point) => data.Points.Count > 1 ? $"p{pointIndex.GetValueOrDefault(point):D2}-" : "";
        string Where(string point) => point.Length == 0 ? "" : $" at {point}";

        // Reliability: per point and model, one line per stage on D.
        foreach (var byPointModel in data.Reliability.Where(b => b.Space == EvaluationSpace.D)
                     .GroupBy(b => (b.Point, b.Model)).OrderBy(g => pointIndex.GetValueOrDefault(g.Key.Point)).ThenBy(g => ModelOrder(data, g.Key.Model)))
        {
            var plot = NewPlot($"Reliability: {byPointModel.Key.Model}{Where(byPointModel.Key.Point)} (D)", "mean prediction", "mean true rate");
            var max = 0.0;
            var stageIndex = 0;
            var stagePalette = new ScottPlot.Palettes.Category10();
            foreach (var stage in byPointModel.GroupBy(b => b.Stage))
            {
                var bins = stage.GroupBy(b => b.Bin).OrderBy(g => g.Key)
                    .Select(g => (X: Weighted(g, b => b.MeanPrediction), Y: Weighted(g, b => b.MeanTrueRate)))
                    .Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y)).ToList();
                if (bins.Count == 0)
                {
                    continue;
                }
                var line = plot.Add.Scatter(bins.Select(b => b.X).ToArray(), bins.Select(b => b.Y).ToArray(), stagePalette.GetColor(stageIndex++));
                line.LegendText = stage.Key;
                line.MarkerSize = 5;
                max = Math.Max(max, Math.Max(bins.Max(b => b.X), bins.Max(b => b.Y)));
            }
            var diagonal = plot.Add.Line(0, 0, max * 1.05, max * 1.05);
            diagonal.Color = Colors.Gray;
            diagonal.LinePattern = LinePattern.Dashed;
            diagonal.LegendText = "perfect calibration";
            plot.ShowLegend(Alignment.UpperLeft);
            figures.Add(Render(plot, Reliability, $"reliability-{Prefix(byPointModel.Key.Point)}{Slug(byPointModel.Key.Model)}",
                $"Reliability diagram of {byPointModel.Key.Model}{Where(byPointModel.Key.Point)} on D: mean prediction against the mean "
                + "true rate in 20 equal-mass bins, pooled over repeats; the dashed line is perfect calibration."));
        }

        // Error and bias against the true-CTR decile: per point and stage, one line per model, on D.
        foreach (var byPointStage in data.Deciles.Where(d => d.Space == EvaluationSpace.D)
                     .GroupBy(d => (d.Point, d.Stage)).OrderBy(g => pointIndex.GetValueOrDefault(g.Key.Point)))
        {
            foreach (var (what, pick) in ((string, Func<DecileError, double>)[])[("bias", d => d.Bias), ("MAE", d => d.Mae)])
            {
                var plot = NewPlot($"{byPointStage.Key.Stage}: {what} by true-CTR decile{Where(byPointStage.Key.Point)} (D)", "true-CTR decile",
                    what == "bias" ? "bias = mean(prediction − truth)" : "mean absolute error");
                foreach (var model in byPointStage.GroupBy(d => d.Model).OrderBy(g => ModelOrder(data, g.Key)))
                {
                    var points = model.GroupBy(d => d.Decile).OrderBy(g => g.Key)
                        .Select(g => (X: (double)g.Key + 1, Y: g.Select(pick).Where(double.IsFinite).DefaultIfEmpty(double.NaN).Average()))
                        .Where(p => double.IsFinite(p.Y)).ToList();
                    if (points.Count == 0)
                    {
                        continue;
                    }
                    var line = plot.Add.Scatter(points.Select(p => p.X).ToArray(), points.Select(p => p.Y).ToArray(), colors[model.Key]);
                    line.LegendText = model.Key;
                    line.MarkerSize = 4;
                }
                if (what == "bias")
                {
                    var zero = plot.Add.HorizontalLine(0);
                    zero.Color = Colors.Gray;
                    zero.LinePattern = LinePattern.Dashed;
                }
                plot.ShowLegend(Edge.Right);
                figures.Add(Render(plot, Deciles, $"decile-{what.ToLowerInvariant()}-{Prefix(byPointStage.Key.Point)}{Slug(byPointStage.Key.Stage)}",
                    $"{(what == "bias" ? "Bias" : "Mean absolute error")} of the {byPointStage.Key.Stage} prediction against the truth on D by decile of "
                    + $"the true click-through rate{Where(byPointStage.Key.Point)} (for a post-click stage: the counterfactual CVR error), mean over repeats.", wide: true));
            }
        }

        // Each metric on D against the first swept dial, one line per model with its 95% band; one figure per value of a second dial.
        if (data.Dials.Count > 0 && data.Points.Count > 1)
        {
            var summaries = data.Summaries.Where(s => s.Space == EvaluationSpace.D).ToList();
            var secondValues = data.Dials.Count > 1 ? data.Points.Select(p => p.Values[1]).Distinct().ToList() : [double.NaN];
            foreach (var stage in summaries.Select(s => s.Stage).Distinct(StringComparer.Ordinal).ToList())
            {
                foreach (var metric in SweepMetrics)
                {
                    foreach (var second in secondValues)
                    {
                        var points = data.Points.Where(p => data.Dials.Count < 2 || p.Values[1].Equals(second)).ToList();
                        var plot = NewPlot($"{metric} of {stage} against {data.Dials[0]}" + (data.Dials.Count > 1 ? $" ({data.Dials[1]} = {Num(second)})" : ""),
                            data.Dials[0], $"{metric} (D)");
                        var any = false;
                        foreach (var model in data.Models)
                        {
                            var series = points
                                .Select(p => (X: p.Values[0], S: summaries.FirstOrDefault(s => s.Point == p.Label && s.Model == model && s.Stage == stage && s.Metric == metric)))
                                .Where(x => x.S is not null && double.IsFinite(x.S.Mean)).ToList();
                            if (series.Count == 0)
                            {
                                continue;
                            }
                            any = true;
                            var xs = series.Select(x => x.X).ToArray();
                            var banded = series.Where(x => double.IsFinite(x.S!.CiLow) && double.IsFinite(x.S.CiHigh)).ToList();
                            if (banded.Count > 1)
                            {
                                var band = plot.Add.FillY(banded.Select(x => x.X).ToArray(), banded.Select(x => x.S!.CiLow).ToArray(),
                                    banded.Select(x => x.S!.CiHigh).ToArray());
                                band.FillStyle.Color = colors[model].WithAlpha(0.18);
                                band.LineStyle.Width = 0;
                            }
                            var line = plot.Add.Scatter(xs, series.Select(x => x.S!.Mean).ToArray(), colors[model]);
                            line.LegendText = model;
                            line.MarkerSize = 5;
                        }
                        if (!any)
                        {
                            continue;
                        }
                        plot.ShowLegend(Edge.Right);
                        var suffix = data.Dials.Count > 1 ? $"-{Slug(data.Dials[1])}-{Slug(Num(second))}" : "";
                        figures.Add(Render(plot, Sweep, $"sweep-{Slug(metric)}-{Slug(stage)}{suffix}",
                            $"{metric} of the {stage} prediction on D against {data.Dials[0]}"
                            + (data.Dials.Count > 1 ? $" with {data.Dials[1]} = {Num(second)}" : "")
                            + ": mean over repeats, shaded 95% confidence band, one line per model.", wide: true));
                    }
                }
            }
        }

        // Validation log loss per epoch, repeat 0 of each point, one line per model.
        foreach (var byPoint in data.Curves.Where(c => c.Repeat == 0).GroupBy(c => c.Point).OrderBy(g => pointIndex.GetValueOrDefault(g.Key)))
        {
            var plot = NewPlot($"Training: validation log loss{Where(byPoint.Key)}", "epoch", "validation log loss (impressions)");
            foreach (var model in byPoint.GroupBy(c => c.Model).OrderBy(g => ModelOrder(data, g.Key)))
            {
                var epochs = model.OrderBy(c => c.Epoch).Where(c => double.IsFinite(c.ValidationLogLoss)).ToList();
                if (epochs.Count == 0)
                {
                    continue;
                }
                var line = plot.Add.Scatter(epochs.Select(c => (double)c.Epoch).ToArray(), epochs.Select(c => c.ValidationLogLoss).ToArray(), colors[model.Key]);
                line.LegendText = model.Key;
                line.MarkerSize = 4;
            }
            plot.ShowLegend(Edge.Right);
            figures.Add(Render(plot, Training, $"training-{Prefix(byPoint.Key)}curves".TrimEnd('-'),
                $"Validation log loss (mean over stages, on the validation impressions) after each epoch{Where(byPoint.Key)}, repeat 0; "
                + "early stopping keeps the best epoch.", wide: true));
        }
        return figures;
    }

    /// <summary>A file-name-safe form of a label.</summary>
    public static string Slug(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var chars = text.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' ? c : '_').ToArray();
        return chars.Length == 0 ? "_" : new string(chars);
    }

    private static Dictionary<string, Color> ModelColors(IReadOnlyList<string> models)
    {
        var palette = new ScottPlot.Palettes.Category20();
        return models.Select((m, i) => (m, i)).ToDictionary(x => x.m, x => palette.GetColor(x.i), StringComparer.Ordinal);
    }

    private static int ModelOrder(RunReportData data, string model)
    {
        var i = data.Models.IndexOf(model);
        return i < 0 ? int.MaxValue : i;
    }

    private static Plot NewPlot(string title, string x, string y)
    {
        var plot = new Plot();
        plot.Title(title, 14);
        plot.XLabel(x, 12);
        plot.YLabel(y, 12);
        return plot;
    }

    private static ReportFigure Render(Plot plot, string section, string name, string caption, bool wide = false)
    {
        var width = wide ? Width + 200 : Width;
        var png = plot.GetImageBytes(width, Height, ImageFormat.Png);
        var svg = plot.GetSvgXml(width, Height);
        return new ReportFigure(section, name, caption, png, svg);
    }

    private static double Weighted(IEnumerable<ReliabilityBin> bins, Func<ReliabilityBin, double> value)
    {
        double sum = 0, weight = 0;
        foreach (var b in bins)
        {
            var v = value(b);
            if (double.IsFinite(v) && b.Rows > 0)
            {
                sum += v * b.Rows;
                weight += b.Rows;
            }
        }
        return weight > 0 ? sum / weight : double.NaN;
    }

    private static string Num(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}

internal static class ListExtensions
{
    public static int IndexOf(this IReadOnlyList<string> list, string value)
    {
        for (var i = 0; i < list.Count; i++)
        {
            if (string.Equals(list[i], value, StringComparison.Ordinal))
            {
                return i;
            }
        }
        return -1;
    }
}
