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

/// <summary>How one series is drawn. Every series of a figure gets its own combination, so none looks like another.</summary>
/// <param name="Color">Line and marker colour.</param>
/// <param name="Marker">Marker shape.</param>
internal readonly record struct SeriesStyle(Color Color, MarkerShape Marker);

/// <summary>
/// The report's figures, drawn with ScottPlot (SkiaSharp): reliability diagrams per point × model (one line per stage,
/// on D, bins pooled over repeats), error and bias of each stage against the true-CTR decile (one line per model), every
/// metric on D against the swept dial with 95% bands (one line per model), and validation curves of the training.
/// </summary>
public static class ReportPlots
{
    public const string Reliability = "reliability";
    /// <summary>Error and bias of the click stage (stage 1) by true-CTR decile.</summary>
    public const string Deciles = "deciles";
    /// <summary>Error and bias of the post-click stages (k ≥ 2) by true-CTR decile: the counterfactual CVR error.</summary>
    public const string CounterfactualDeciles = "counterfactual-deciles";
    public const string Sweep = "sweep";
    public const string Training = "training";

    public const int Width = 640;
    public const int Height = 420;

    /// <summary>Metrics plotted against the dial, in this order, where the evaluation produced them.</summary>
    public static IReadOnlyList<string> SweepMetrics { get; } =
        ["bias", "mae", "rmse", "auc_potential", "auc_observed", "log_loss", "ne", "ece", "calibration_ratio", "dependence_ratio"];

    /// <summary>The metrics also drawn on O against the dial: where a model that corrects click selection alone is judged.</summary>
    public static IReadOnlyList<string> SweepMetricsOnO { get; } = ["bias", "calibration_ratio", "mae"];

    public static IReadOnlyList<ReportFigure> Draw(RunReportData data) => [.. DrawPlots(data).Select(f => f.Figure)];

    /// <summary>The figures with the ScottPlot plots they were rendered from (for tests: ticks, series styles).</summary>
    internal static IReadOnlyList<(ReportFigure Figure, Plot Plot)> DrawPlots(RunReportData data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var figures = new List<(ReportFigure, Plot)>();
        // The run's models, then the evaluator's reference rows (truth, logging) that appear in the figures' data.
        var styles = ModelStyles([.. data.Models, .. data.Deciles.Select(d => d.Model).Concat(data.Reliability.Select(r => r.Model))
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

        // Error and bias against the true-CTR decile: per point and stage, one line per model, on D. The click stage's
        // figures and the post-click stages' (the counterfactual CVR error) go to separate sections.
        var clickStage = FirstStage(data);
        foreach (var byPointStage in data.Deciles.Where(d => d.Space == EvaluationSpace.D)
                     .GroupBy(d => (d.Point, d.Stage)).OrderBy(g => pointIndex.GetValueOrDefault(g.Key.Point)))
        {
            var stage = byPointStage.Key.Stage;
            var postClick = stage != clickStage;
            foreach (var (what, pick) in ((string, Func<DecileError, double>)[])[("bias", d => d.Bias), ("MAE", d => d.Mae)])
            {
                var plot = NewPlot($"{byPointStage.Key.Stage}: {what} by true-CTR decile{Where(byPointStage.Key.Point)} (D)", "true-CTR decile (1 = lowest)",
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
                    var line = plot.Add.Scatter(points.Select(p => p.X).ToArray(), points.Select(p => p.Y).ToArray());
                    Style(line, styles[model.Key], model.Key, 5);
                }
                IntegerTicks(plot);
                if (what == "bias")
                {
                    var zero = plot.Add.HorizontalLine(0);
                    zero.Color = Colors.Gray;
                    zero.LinePattern = LinePattern.Dashed;
                }
                plot.ShowLegend(Edge.Right);
                var measure = what == "bias" ? "Bias" : "Mean absolute error";
                figures.Add(Render(plot, postClick ? CounterfactualDeciles : Deciles,
                    $"decile-{what.ToLowerInvariant()}-{Prefix(byPointStage.Key.Point)}{Slug(stage)}",
                    postClick
                        ? $"{measure} of the {stage} prediction q̂_k against its true conditional rate q_k on D (every request, lost bids and "
                          + $"unclicked impressions included) by decile of the true click-through rate{Where(byPointStage.Key.Point)}: the "
                          + $"counterfactual CVR {(what == "bias" ? "bias" : "error")}, mean over repeats."
                        : $"{measure} of the {stage}-stage prediction q̂_1 against the true click-through rate q_1 on D (every "
                          + $"request, lost bids included) by decile of that rate{Where(byPointStage.Key.Point)}, mean over repeats.", wide: true));
            }
        }

        // Each metric on D against the first swept dial, one line per model with its 95% band; one figure per value of a second
        // dial. Then bias, calibration ratio and MAE on O, where a correction of click selection alone is judged.
        if (data.Dials.Count > 0 && data.Points.Count > 1)
        {
            var secondValues = data.Dials.Count > 1 ? data.Points.Select(p => p.Values[1]).Distinct().ToList() : [double.NaN];
            foreach (var (space, spaceMetrics) in ((EvaluationSpace, IReadOnlyList<string>)[])[(EvaluationSpace.D, SweepMetrics), (EvaluationSpace.O, SweepMetricsOnO)])
            {
                var summaries = data.Summaries.Where(s => s.Space == space).ToList();
                var onO = space == EvaluationSpace.O;
                foreach (var stage in summaries.Select(s => s.Stage).Distinct(StringComparer.Ordinal).ToList())
                {
                    foreach (var metric in spaceMetrics)
                    {
                        foreach (var second in secondValues)
                        {
                            var points = data.Points.Where(p => data.Dials.Count < 2 || p.Values[1].Equals(second)).ToList();
                            var plot = NewPlot($"{metric} of {stage} against {data.Dials[0]}" + (data.Dials.Count > 1 ? $" ({data.Dials[1]} = {Num(second)})" : ""),
                                data.Dials[0], $"{metric} ({(onO ? "O" : "D")})");
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
                                    band.FillStyle.Color = styles[model].Color.WithAlpha(0.18);
                                    band.LineStyle.Width = 0;
                                }
                                var line = plot.Add.Scatter(xs, series.Select(x => x.S!.Mean).ToArray());
                                Style(line, styles[model], model, 6);
                            }
                            if (!any)
                            {
                                continue;
                            }
                            plot.ShowLegend(Edge.Right);
                            var suffix = data.Dials.Count > 1 ? $"-{Slug(data.Dials[1])}-{Slug(Num(second))}" : "";
                            figures.Add(Render(plot, Sweep, $"sweep-{Slug(metric)}-{Slug(stage)}{suffix}{(onO ? "-o" : "")}",
                                $"{metric} of the {stage} prediction on {(onO ? "O (impressions: the entire space of ESMM and ESCM²)" : "D")} against {data.Dials[0]}"
                                + (data.Dials.Count > 1 ? $" with {data.Dials[1]} = {Num(second)}" : "")
                                + ": mean over repeats, shaded 95% confidence band, one line per model.", wide: true));
                        }
                    }
                }
            }
        }

        // The epoch each model kept (repeat 0 of each point), by its validation log loss: ringed in both training figures.
        var keptEpochs = data.Curves.Where(c => c.Repeat == 0 && double.IsFinite(c.ValidationLogLoss)).GroupBy(c => (c.Point, c.Model))
            .ToDictionary(g => g.Key, g => KeptEpoch([.. g.OrderBy(c => c.Epoch)], data.EarlyStopping).Epoch);

        // Validation log loss per epoch, repeat 0 of each point, one line per model.
        foreach (var byPoint in data.Curves.Where(c => c.Repeat == 0).GroupBy(c => c.Point).OrderBy(g => pointIndex.GetValueOrDefault(g.Key)))
        {
            var plot = NewPlot($"Training: validation log loss{Where(byPoint.Key)}", "epoch", "validation log loss (cumulative labels)");
            foreach (var model in byPoint.GroupBy(c => c.Model).OrderBy(g => ModelOrder(data, g.Key)))
            {
                var epochs = model.OrderBy(c => c.Epoch).Where(c => double.IsFinite(c.ValidationLogLoss)).ToList();
                if (epochs.Count == 0)
                {
                    continue;
                }
                var line = plot.Add.Scatter(epochs.Select(c => (double)c.Epoch).ToArray(), epochs.Select(c => c.ValidationLogLoss).ToArray());
                Style(line, styles[model.Key], model.Key, 5);
                var kept = epochs.First(c => c.Epoch == keptEpochs[(byPoint.Key, model.Key)]);
                var ring = plot.Add.Marker(kept.Epoch, kept.ValidationLogLoss, MarkerShape.OpenCircle, 14, styles[model.Key].Color);
                ring.LegendText = "";
            }
            IntegerTicks(plot);
            plot.ShowLegend(Edge.Right);
            var zoom = LaterEpochsRange(byPoint.Where(c => double.IsFinite(c.ValidationLogLoss)).ToList());
            if (zoom is { } range)
            {
                plot.Axes.SetLimitsY(range.Low, range.High);
            }
            figures.Add(Render(plot, Training, $"training-{Prefix(byPoint.Key)}curves".TrimEnd('-'),
                $"Validation log loss after each epoch{Where(byPoint.Key)}, repeat 0: the early-stopping criterion, the mean over stages of the BCE of "
                + "each stage's cumulative label s_k against r̂_k on the validation impressions (not metrics.csv's log_loss, which is conditional and "
                + "on each stage's own space); "
                + (data.EarlyStopping ? "early stopping keeps the best epoch" : "no early stopping: every epoch is trained and the last one kept")
                + ", ringed on each line"
                + (zoom is { } z ? string.Create(CultureInfo.InvariantCulture, $". The axis spans the losses from epoch 2 on; first-epoch losses up to {z.FirstEpochMax:G3} lie above it.") : "."),
                wide: true));
        }

        // The deepest stage's validation calibration per epoch, repeat 0 of each point, one line per model.
        var deepest = data.Stages.Count > 0 ? data.Stages[^1] : "the deepest stage";
        foreach (var byPoint in data.Curves.Where(c => c.Repeat == 0 && double.IsFinite(c.ValidationCalibration)).GroupBy(c => c.Point)
                     .OrderBy(g => pointIndex.GetValueOrDefault(g.Key)))
        {
            var plot = NewPlot($"Training: validation calibration of {deepest}{Where(byPoint.Key)}", "epoch",
                "Σ r̂_K / Σ s_K (validation impressions, log scale)");
            var (low, high) = (0.0, 0.0);   // log₂ of the ratios drawn, with 1 always in range
            foreach (var model in byPoint.GroupBy(c => c.Model).OrderBy(g => ModelOrder(data, g.Key)))
            {
                var epochs = model.Where(c => c.ValidationCalibration > 0).OrderBy(c => c.Epoch).ToList();
                if (epochs.Count == 0)
                {
                    continue;
                }
                var logs = epochs.Select(c => Math.Log2(c.ValidationCalibration)).ToArray();
                (low, high) = (Math.Min(low, logs.Min()), Math.Max(high, logs.Max()));
                var line = plot.Add.Scatter(epochs.Select(c => (double)c.Epoch).ToArray(), logs);
                Style(line, styles[model.Key], model.Key, 5);
                if (keptEpochs.TryGetValue((byPoint.Key, model.Key), out var keptEpoch) && epochs.FirstOrDefault(c => c.Epoch == keptEpoch) is { } at)
                {
                    var ring = plot.Add.Marker(at.Epoch, Math.Log2(at.ValidationCalibration), MarkerShape.OpenCircle, 14, styles[model.Key].Color);
                    ring.LegendText = "";
                }
            }
            var one = plot.Add.HorizontalLine(0);
            one.Color = Colors.Gray;
            one.LinePattern = LinePattern.Dashed;
            plot.Axes.Left.TickGenerator = PowerOfTwoTicks(low, high);
            IntegerTicks(plot);
            plot.ShowLegend(Edge.Right);
            figures.Add(Render(plot, Training, $"training-{Prefix(byPoint.Key)}calibration".TrimEnd('-'),
                $"Calibration of the deepest stage's cumulative prediction after each epoch{Where(byPoint.Key)}, repeat 0: Σ r̂_K over Σ s_K on "
                + "the validation impressions, weighted like the validation log loss, on a log scale (1 = as many predicted as observed; the impressions are O, "
                + "so a model that corrects win selection need not reach 1 here). Rare stages' levels can swing from epoch to epoch by more "
                + "than the gaps between models; the epoch each model kept is ringed.", wide: true));
        }
        return figures;
    }

    /// <summary>
    /// The y range of a training-curve plot from the second epoch on, when some first-epoch loss lies above it (the first
    /// epoch's losses, often several times the later ones, would flatten every later difference): the later epochs'
    /// range with 8% margins. Null when no model trained beyond one epoch or no first-epoch loss exceeds the later ones.
    /// </summary>
    internal static (double Low, double High, double FirstEpochMax)? LaterEpochsRange(IReadOnlyList<TrainingCurvePoint> curves)
    {
        ArgumentNullException.ThrowIfNull(curves);
        var later = curves.Where(c => c.Epoch >= 2).Select(c => c.ValidationLogLoss).ToList();
        var first = curves.Where(c => c.Epoch == 1).Select(c => c.ValidationLogLoss).ToList();
        if (later.Count == 0 || first.Count == 0)
        {
            return null;
        }
        double lo = later.Min(), hi = later.Max(), firstMax = first.Max();
        if (firstMax <= hi)
        {
            return null;
        }
        var margin = 0.08 * Math.Max(hi - lo, 1e-3 * Math.Abs(hi));
        return (lo - margin, hi + margin, firstMax);
    }

    /// <summary>
    /// The epoch whose weights a training kept, from its curve (epochs in order, finite losses): with early stopping the
    /// first epoch of lowest validation log loss (the trainer replaces its best only on a strictly lower loss), else the last.
    /// </summary>
    internal static TrainingCurvePoint KeptEpoch(IReadOnlyList<TrainingCurvePoint> epochs, bool earlyStopping)
    {
        ArgumentNullException.ThrowIfNull(epochs);
        if (epochs.Count == 0)
        {
            throw new ArgumentException("a curve without epochs", nameof(epochs));
        }
        if (!earlyStopping)
        {
            return epochs[^1];
        }
        var best = epochs[0];
        foreach (var epoch in epochs)
        {
            if (epoch.ValidationLogLoss < best.ValidationLogLoss)
            {
                best = epoch;
            }
        }
        return best;
    }

    /// <summary>A file-name-safe form of a label.</summary>
    public static string Slug(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var chars = text.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' ? c : '_').ToArray();
        return chars.Length == 0 ? "_" : new string(chars);
    }

    /// <summary>
    /// The style of series <paramref name="index"/>: 20 colours that differ at a glance (CIE76 ΔE ≥ 27 between any two),
    /// filled circles for the first ten series and filled squares for the next ten, then the colours again with other
    /// markers; no two of the first 80 series look alike. The 17 models of the catalog and the two reference rows need
    /// 19: Category20, used before, pairs each colour with a light tint, and its light blues (#aec7e8, #9edae5: ΔE 17)
    /// could not be told apart. Line patterns are not used: Skia's SVG backend draws dashes solid (and logs "Unsupported path effect").
    /// </summary>
    internal static SeriesStyle SeriesStyleOf(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        return new SeriesStyle(SeriesColors[index % SeriesColors.Length], SeriesMarkers[index / 10 % SeriesMarkers.Length]);
    }

    /// <summary>
    /// Category10 (matplotlib, Vega, Tableau), then ten colours chosen greedily, each as far (CIELAB distance) from those
    /// before as possible, from Kelly's 22 colours of maximum contrast and Trubetskoy's 20 distinct colours, leaving out
    /// the very light ones (L* ≥ 75) that vanish on white.
    /// </summary>
    private static readonly Color[] SeriesColors = Color.FromHex(
    [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
        "#000000", "#000075", "#f032e6", "#f99379", "#c2b280", "#008856", "#2b3d26", "#911eb4", "#b3446c", "#800000",
    ]);

    private static readonly MarkerShape[] SeriesMarkers =
    [
        MarkerShape.FilledCircle, MarkerShape.FilledSquare, MarkerShape.FilledTriangleUp, MarkerShape.FilledDiamond,
        MarkerShape.OpenCircle, MarkerShape.OpenSquare, MarkerShape.OpenTriangleUp, MarkerShape.OpenDiamond,
    ];

    private static Dictionary<string, SeriesStyle> ModelStyles(IReadOnlyList<string> models) =>
        models.Select((m, i) => (m, i)).ToDictionary(x => x.m, x => SeriesStyleOf(x.i), StringComparer.Ordinal);

    private static void Style(ScottPlot.Plottables.Scatter line, SeriesStyle style, string legend, float markerSize)
    {
        line.Color = style.Color;
        line.MarkerShape = style.Marker;
        line.MarkerSize = markerSize;
        line.LegendText = legend;
    }

    /// <summary>
    /// Ticks for an axis that shows log₂ of a ratio: one at each power of two from ⌊low⌋ to ⌈high⌉ (every second one past 8
    /// of them), labelled with the ratio itself (1/4, 1/2, 1, 2, 4, …).
    /// </summary>
    internal static ScottPlot.TickGenerators.NumericManual PowerOfTwoTicks(double low, double high)
    {
        var (first, last) = ((int)Math.Floor(low), (int)Math.Ceiling(high));
        var step = last - first > 8 ? 2 : 1;
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (var k = first - (((first % step) + step) % step); k <= last; k += step)
        {
            ticks.AddMajor(k, k >= 0 ? Math.Pow(2, k).ToString(CultureInfo.InvariantCulture) : string.Create(CultureInfo.InvariantCulture, $"1/{Math.Pow(2, -k)}"));
        }
        return ticks;
    }

    /// <summary>Labelled ticks on whole numbers only (epochs, deciles): never 1.5 or 2.5.</summary>
    private static void IntegerTicks(Plot plot) =>
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };

    /// <summary>
    /// The click stage (stage 1): the first of <see cref="RunReportData.Stages"/>, or, without them, the first stage in
    /// the metrics (the evaluator writes each model's stages in funnel order), then in the deciles.
    /// </summary>
    private static string? FirstStage(RunReportData data) =>
        data.Stages.Count > 0 ? data.Stages[0]
            : data.Metrics.Select(m => m.Stage).Concat(data.Summaries.Select(s => s.Stage)).Concat(data.Deciles.Select(d => d.Stage)).FirstOrDefault();

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

    private static (ReportFigure, Plot) Render(Plot plot, string section, string name, string caption, bool wide = false)
    {
        var width = wide ? Width + 200 : Width;
        var png = plot.GetImageBytes(width, Height, ImageFormat.Png);
        var svg = plot.GetSvgXml(width, Height);
        return (new ReportFigure(section, name, caption, png, svg), plot);
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
