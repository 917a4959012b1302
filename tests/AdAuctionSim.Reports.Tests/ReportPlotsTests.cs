using AdAuctionSim.Reports.Documents;
using AdAuctionSim.Reports.Plots;
using ScottPlot;

namespace AdAuctionSim.Reports.Tests;

/// <summary>The figures as a reader sees them: series told apart, whole-number axes where the values are whole numbers.</summary>
public sealed class ReportPlotsTests
{
    /// <summary>The 17 models of the catalog and the truth and logging reference rows.</summary>
    private const int CatalogSeries = 19;

    /// <summary>
    /// The ring on a training curve: with early stopping the first epoch of the lowest validation loss (a later tie does
    /// not replace it, as in the trainer), without it the last epoch whatever its loss.
    /// </summary>
    [Fact]
    public void The_kept_epoch_is_the_first_best_with_early_stopping_and_the_last_without()
    {
        double[] losses = [0.30, 0.21, 0.25, 0.21, 0.27];
        var curve = losses.Select((loss, i) => new TrainingCurvePoint("", 0, "esmm", i + 1, 0.5, loss)).ToList();

        Assert.Equal(2, ReportPlots.KeptEpoch(curve, earlyStopping: true).Epoch);
        Assert.Equal(5, ReportPlots.KeptEpoch(curve, earlyStopping: false).Epoch);
        Assert.Equal(1, ReportPlots.KeptEpoch(curve.Take(1).ToList(), earlyStopping: true).Epoch);
    }

    [Fact]
    public void Nineteen_series_get_colours_that_differ_at_a_glance_and_no_two_of_80_series_look_alike()
    {
        var styles = Enumerable.Range(0, CatalogSeries).Select(ReportPlots.SeriesStyleOf).ToList();

        // Distinct values are not enough: Category20's light blues #aec7e8 and #9edae5 differ, by ΔE 17, and looked the same.
        for (var i = 0; i < styles.Count; i++)
        {
            for (var j = i + 1; j < styles.Count; j++)
            {
                Assert.True(DeltaE(styles[i].Color, styles[j].Color) >= 25,
                    $"series {i} ({styles[i].Color.ToHex()}) and {j} ({styles[j].Color.ToHex()}) differ only by a shade");
            }
        }
        Assert.True(DeltaE(Color.FromHex("#aec7e8"), Color.FromHex("#9edae5")) < 25);
        Assert.Equal(80, Enumerable.Range(0, 80).Select(ReportPlots.SeriesStyleOf).Distinct().Count());
    }

    [Fact]
    public void In_a_nineteen_model_report_every_series_of_a_figure_looks_different()
    {
        var figures = ReportPlots.DrawPlots(SyntheticRun.Create(repeats: 2, models: SyntheticRun.ManyModels(CatalogSeries)));

        var checkedFigures = 0;
        foreach (var (figure, plot) in figures.Where(f => f.Figure.Section is ReportPlots.Deciles or ReportPlots.CounterfactualDeciles
                     or ReportPlots.Training or ReportPlots.Sweep))
        {
            var series = plot.GetPlottables<ScottPlot.Plottables.Scatter>().ToList();
            Assert.Equal(CatalogSeries, series.Count);
            var colours = series.Select(s => s.Color).ToList();
            Assert.True(colours.All(c => colours.Count(d => DeltaE(c, d) < 25) == 1), $"{figure.Name}: two series' colours look alike");
            checkedFigures++;
        }
        Assert.True(checkedFigures >= 4, $"only {checkedFigures} figures checked");
    }

    [Fact]
    public void Epoch_and_decile_axes_have_whole_number_ticks_only()
    {
        var figures = ReportPlots.DrawPlots(SyntheticRun.Create());

        var axes = 0;
        foreach (var (figure, plot) in figures.Where(f => f.Figure.Section is ReportPlots.Training or ReportPlots.Deciles or ReportPlots.CounterfactualDeciles))
        {
            // The ticks of the last render (the SVG, at the figure's size).
            var ticks = plot.Axes.Bottom.TickGenerator.Ticks.Where(t => t.IsMajor && !string.IsNullOrEmpty(t.Label)).ToList();
            Assert.True(ticks.Count >= 2, $"{figure.Name}: {ticks.Count} labelled ticks");
            Assert.All(ticks, t => Assert.True(t.Position == Math.Round(t.Position), $"{figure.Name}: a tick at {t.Position} ({t.Label})"));
            axes++;
        }
        Assert.True(axes > 0);
    }

    [Theory]
    [InlineData(true, "early stopping keeps the best epoch, ringed on each line.")]
    [InlineData(false, "no early stopping: every epoch is trained and the last one kept, ringed on each line.")]
    public void The_training_curve_caption_says_which_epoch_the_models_kept(bool earlyStopping, string says)
    {
        var figures = ReportPlots.DrawPlots(SyntheticRun.Create() with { EarlyStopping = earlyStopping });

        var training = figures.Where(f => f.Figure.Section == ReportPlots.Training && f.Figure.Name.EndsWith("curves", StringComparison.Ordinal))
            .Select(f => f.Figure.Caption).ToList();
        Assert.NotEmpty(training);
        Assert.All(training, caption => Assert.Contains(says.TrimEnd('.'), caption, StringComparison.Ordinal));
        Assert.All(training, caption => Assert.Contains("not metrics.csv's log_loss", caption, StringComparison.Ordinal));
    }

    /// <summary>
    /// The deepest stage's validation calibration gets one figure per point (repeat 0, one line per model, at the values
    /// of the curves, log₂ on an axis labelled in powers of two) when the curves carry it, and none when they do not (curves files written before the column).
    /// </summary>
    [Fact]
    public void The_validation_calibration_figure_draws_the_curves_values_on_a_log_scale_and_only_when_they_exist()
    {
        var data = SyntheticRun.Create();
        var figures = ReportPlots.DrawPlots(data);

        var calibration = figures.Where(f => f.Figure.Name.EndsWith("calibration", StringComparison.Ordinal)).ToList();
        Assert.Equal(data.Points.Count, calibration.Count);
        Assert.All(calibration, f => Assert.Equal(ReportPlots.Training, f.Figure.Section));
        var (figure, plot) = calibration[0];
        Assert.Contains(data.Stages[^1], plot.Axes.Title.Label.Text, StringComparison.Ordinal);
        var expected = data.Curves.Where(c => c.Repeat == 0 && c.Point == data.Points[0].Label && c.Model == data.Models[0]).OrderBy(c => c.Epoch)
            .Select(c => Math.Log2(c.ValidationCalibration)).ToArray();
        var drawn = plot.GetPlottables().OfType<ScottPlot.Plottables.Scatter>().First(s => s.LegendText == data.Models[0]);
        Assert.Equal(expected, drawn.Data.GetScatterPoints().Select(p => p.Y).ToArray());

        // A log scale: ticks at powers of two, labelled with the ratio.
        var axis = new ScottPlot.Plot();
        axis.Axes.Left.TickGenerator = ReportPlots.PowerOfTwoTicks(-1.3, 5.5);
        axis.Axes.SetLimits(0, 1, -3, 7);
        axis.GetImageBytes(300, 400, ScottPlot.ImageFormat.Png);
        var ticks = axis.Axes.Left.TickGenerator.Ticks.Where(t => t.IsMajor).Select(t => (t.Position, t.Label)).ToList();
        Assert.Equal([(-2.0, "1/4"), (-1.0, "1/2"), (0.0, "1"), (1.0, "2"), (2.0, "4"), (3.0, "8"), (4.0, "16"), (5.0, "32"), (6.0, "64")], ticks);

        var without = data with { Curves = [.. data.Curves.Select(c => c with { ValidationCalibration = double.NaN })] };
        Assert.DoesNotContain(ReportPlots.DrawPlots(without), f => f.Figure.Name.EndsWith("calibration", StringComparison.Ordinal));
    }

    /// <summary>
    /// A first epoch far above the rest would flatten the later differences: the axis then spans the later epochs with
    /// margins, and says how high the first ones went. Without such an epoch, or with one epoch only, it is left alone.
    /// </summary>
    [Fact]
    public void The_training_curve_axis_spans_the_later_epochs_when_the_first_lies_far_above_them()
    {
        static List<TrainingCurvePoint> Curve(params double[][] losses) =>
            [.. losses.SelectMany((model, m) => model.Select((loss, e) => new TrainingCurvePoint("", 0, $"m{m}", e + 1, 0.5, loss)))];

        var range = ReportPlots.LaterEpochsRange(Curve([0.62, 0.15, 0.14], [0.40, 0.145, 0.139]));
        Assert.NotNull(range);
        var (low, high, first) = range.Value;
        Assert.Equal(0.62, first);
        Assert.InRange(low, 0.139 - 0.002, 0.139 - 0.0008);
        Assert.InRange(high, 0.15 + 0.0008, 0.15 + 0.002);
        Assert.Null(ReportPlots.LaterEpochsRange(Curve([0.14, 0.15, 0.16])));
        Assert.Null(ReportPlots.LaterEpochsRange(Curve([0.62], [0.40])));
    }

    /// <summary>CIE76 colour difference: Euclidean distance in CIELAB (sRGB, D65).</summary>
    private static double DeltaE(Color a, Color b)
    {
        var (l1, a1, b1) = Lab(a);
        var (l2, a2, b2) = Lab(b);
        return Math.Sqrt(((l1 - l2) * (l1 - l2)) + ((a1 - a2) * (a1 - a2)) + ((b1 - b2) * (b1 - b2)));
    }

    private static (double L, double A, double B) Lab(Color c)
    {
        static double Linear(byte v)
        {
            var x = v / 255.0;
            return x <= 0.04045 ? x / 12.92 : Math.Pow((x + 0.055) / 1.055, 2.4);
        }
        static double F(double t) => t > 0.008856 ? Math.Cbrt(t) : (7.787 * t) + (16.0 / 116);
        var (r, g, b) = (Linear(c.R), Linear(c.G), Linear(c.B));
        var x = ((0.4124 * r) + (0.3576 * g) + (0.1805 * b)) / 0.95047;
        var y = (0.2126 * r) + (0.7152 * g) + (0.0722 * b);
        var z = ((0.0193 * r) + (0.1192 * g) + (0.9505 * b)) / 1.08883;
        return ((116 * F(y)) - 16, 500 * (F(x) - F(y)), 200 * (F(y) - F(z)));
    }
}
