using AdAuctionSim.Evaluation.Statistics;
using MathNet.Numerics.Distributions;

namespace AdAuctionSim.Evaluation.Tests;

/// <summary>Confidence intervals, paired t-tests and the summariser against MathNet and SciPy reference values.</summary>
public sealed class StatisticsTests
{
    private static readonly double[] Values = [0.52, 0.49, 0.55, 0.51, 0.47, 0.50];
    private static readonly double[] Model = [0.712, 0.698, 0.731, 0.705, 0.720];
    private static readonly double[] Baseline = [0.701, 0.690, 0.722, 0.700, 0.709];

    [Fact]
    public void The_t_interval_agrees_with_a_mathnet_reference_and_scipy()
    {
        var (low, high) = MetricStatistics.StudentTInterval(Values);

        var mean = Values.Average();
        var sd = MathNet.Numerics.Statistics.Statistics.StandardDeviation(Values);
        var half = StudentT.InvCDF(0, 1, Values.Length - 1, 0.975) * sd / Math.Sqrt(Values.Length);
        Assert.Equal(mean - half, low, 1e-15);
        Assert.Equal(mean + half, high, 1e-15);
        // scipy.stats.t.ppf(0.975, 5) interval of the same values.
        Assert.Equal(0.477990625764932, low, 1e-9);
        Assert.Equal(0.5353427075684014, high, 1e-9);
        Assert.Equal(2.7764451051977987, StudentT.InvCDF(0, 1, 4, 0.975), 1e-9);
    }

    [Fact]
    public void The_paired_t_test_agrees_with_a_mathnet_reference_and_scipy()
    {
        var differences = Model.Zip(Baseline, (a, b) => a - b).ToArray();

        var p = MetricStatistics.PairedTTest(differences);

        var t = differences.Average() / (MathNet.Numerics.Statistics.Statistics.StandardDeviation(differences) / Math.Sqrt(differences.Length));
        Assert.Equal(2 * (1 - StudentT.CDF(0, 1, differences.Length - 1, Math.Abs(t))), p, 1e-15);
        Assert.Equal(7.902633289178095, t, 1e-9); // scipy.stats.ttest_rel(model, baseline).statistic
        Assert.Equal(0.0013869768405682338, p, 1e-9); // ... .pvalue
    }

    [Fact]
    public void Degenerate_paired_differences_give_1_or_0()
    {
        Assert.Equal(1.0, MetricStatistics.PairedTTest([0.0, 0.0, 0.0]));
        Assert.Equal(0.0, MetricStatistics.PairedTTest([0.5, 0.5]));
    }

    private static MetricRow Row(string model, int repeat, double value, string metric = "bias") =>
        new("", repeat, 100 + repeat, model, "convert", EvaluationSpace.D, metric, value, 1000);

    [Fact]
    public void Summarise_gives_means_intervals_and_paired_tests_against_the_baseline()
    {
        var rows = new List<MetricRow>();
        for (var r = 0; r < Model.Length; r++)
        {
            rows.Add(Row("esmm", r, Model[r]));
            rows.Add(Row("single-task", r, Baseline[r]));
        }
        rows.Add(Row("esmm", 9, double.NaN)); // an undefined figure is left out

        var summaries = MetricStatistics.Summarise(rows, "single-task");

        Assert.Equal(2, summaries.Count);
        var esmm = summaries[0];
        Assert.Equal("esmm", esmm.Model);
        Assert.Equal(Model.Length, esmm.Repeats);
        Assert.Equal(Model.Average(), esmm.Mean, 1e-15);
        Assert.Equal(MetricStatistics.StudentTInterval(Model), (esmm.CiLow, esmm.CiHigh));
        Assert.Equal(MetricStatistics.StudentT, esmm.IntervalMethod);
        Assert.Equal("single-task", esmm.Baseline);
        Assert.Equal(Model.Average() - Baseline.Average(), esmm.MeanDifference, 1e-12);
        Assert.Equal(0.0013869768405682338, esmm.PValue, 1e-9);
        var baseline = summaries[1];
        Assert.True(double.IsNaN(baseline.PValue));
        Assert.True(double.IsNaN(baseline.MeanDifference));
    }

    [Fact]
    public void A_single_repeat_uses_the_bootstrap_interval_when_there_is_one()
    {
        var rows = new List<MetricRow> { Row("esmm", 0, 0.01), Row("esmm", 0, 0.7, "auc_potential"), Row("single-task", 0, 0.02) };
        var interval = new MetricInterval("", 0, "esmm", "convert", EvaluationSpace.D, "bias", 0.005, 0.015, MetricStatistics.BootstrapMethod(200, 1));

        var summaries = MetricStatistics.Summarise(rows, "single-task", [interval]);

        Assert.Equal((0.005, 0.015), (summaries[0].CiLow, summaries[0].CiHigh));
        Assert.Equal("poisson-bootstrap percentile (200 resamples, seed 1)", summaries[0].IntervalMethod);
        Assert.True(double.IsNaN(summaries[0].PValue));
        Assert.Equal(-0.01, summaries[0].MeanDifference, 1e-15);
        Assert.Equal(MetricStatistics.NoInterval, summaries[1].IntervalMethod);
        Assert.True(double.IsNaN(summaries[1].CiLow));
    }

    [Fact]
    public void A_metric_without_a_value_in_any_repeat_says_so_rather_than_one_repeat()
    {
        var rows = new List<MetricRow> { Row("esmm", 0, double.NaN), Row("esmm", 1, double.NaN), Row("single-task", 0, 0.02) };

        var summaries = MetricStatistics.Summarise(rows, "single-task");

        Assert.Equal(0, summaries[0].Repeats);
        Assert.True(double.IsNaN(summaries[0].Mean));
        Assert.Equal(MetricStatistics.NoValues, summaries[0].IntervalMethod);
        Assert.Equal(MetricStatistics.NoInterval, summaries[1].IntervalMethod);
    }

    [Theory]
    [InlineData("auc_potential", 0.88, 0.995)]          // t interval about [0.21, 1.67]
    [InlineData("ece_cumulative", 0.0141, 0.02)]        // about [−0.02, 0.05]
    [InlineData("mae", 0.002, 0.07)]                    // about [−0.40, 0.47]
    [InlineData("calibration_ratio", 0.6, 1.4)]         // about [−4.1, 6.1]
    [InlineData("log_loss", 0.05, 0.3)]                 // about [−1.41, 1.76]
    [InlineData("bias", -0.2, 0.3)]                     // about [−3.1, 3.2]
    public void Two_repeats_intervals_are_clipped_to_the_metrics_range_and_the_mean_is_not(string metric, double a, double b)
    {
        var rows = new List<MetricRow> { Row("esmm", 0, a, metric), Row("esmm", 1, b, metric) };
        var (low, high) = MetricStatistics.StudentTInterval([a, b]);
        var range = Metrics.MetricIds.RangeOf(metric);
        Assert.True(low < range.Min || high > range.Max, "the raw t interval should leave the range");

        var summary = Assert.Single(MetricStatistics.Summarise(rows, "single-task"));

        Assert.Equal((a + b) / 2, summary.Mean, 1e-15);
        Assert.Equal(Math.Max(low, range.Min), summary.CiLow);
        Assert.Equal(Math.Min(high, range.Max), summary.CiHigh);
        Assert.Equal(MetricStatistics.StudentT, summary.IntervalMethod);
    }

    [Fact]
    public void Every_metric_has_a_range_and_the_cumulative_ones_share_their_conditional_ones()
    {
        Assert.Equal(Metrics.MetricRange.Probability, Metrics.MetricIds.RangeOf("auc_observed"));
        Assert.Equal(Metrics.MetricRange.NonNegative, Metrics.MetricIds.RangeOf("ne"));
        Assert.Equal(Metrics.MetricRange.SignedProbability, Metrics.MetricIds.RangeOf("bias"));
        foreach (var d in Metrics.MetricIds.Cumulative)
        {
            Assert.Equal(Metrics.MetricIds.RangeOf(d.Id[..^Metrics.MetricIds.CumulativeSuffix.Length]), d.Range);
        }
        // A metric the catalog does not list is not clipped.
        var rows = new List<MetricRow> { Row("esmm", 0, 0.1, "zeta"), Row("esmm", 1, 0.9, "zeta") };
        var summary = Assert.Single(MetricStatistics.Summarise(rows, "single-task"));
        Assert.Equal(MetricStatistics.StudentTInterval([0.1, 0.9]), (summary.CiLow, summary.CiHigh));
        Assert.Equal("[0, 1]", Metrics.MetricRange.Probability.ToString());
        Assert.Equal("[0, ∞)", Metrics.MetricRange.NonNegative.ToString());
    }

    [Fact]
    public void A_bootstrap_interval_is_clipped_too()
    {
        var rows = new List<MetricRow> { Row("esmm", 0, 0.001, "mae") };
        var interval = new MetricInterval("", 0, "esmm", "convert", EvaluationSpace.D, "mae", -0.001, 0.003, MetricStatistics.BootstrapMethod(200, 1));

        var summary = Assert.Single(MetricStatistics.Summarise(rows, "single-task", [interval]));

        Assert.Equal((0.0, 0.003), (summary.CiLow, summary.CiHigh));
    }

    [Fact]
    public void The_truth_reference_row_is_not_tested_against_the_baseline_but_the_logging_row_is()
    {
        var rows = new List<MetricRow>();
        for (var r = 0; r < Model.Length; r++)
        {
            rows.Add(Row(Runs.RunEvaluator.TruthModel, r, 0.0001 * r));
            rows.Add(Row(Runs.RunEvaluator.LoggingModel, r, Model[r]));
            rows.Add(Row("single-task", r, Baseline[r]));
        }

        var summaries = MetricStatistics.Summarise(rows, "single-task");

        var truth = summaries.Single(s => s.Model == Runs.RunEvaluator.TruthModel);
        Assert.True(double.IsNaN(truth.PValue));
        Assert.Equal(0.0002 - Baseline.Average(), truth.MeanDifference, 1e-12);
        Assert.Equal(0.0013869768405682338, summaries.Single(s => s.Model == Runs.RunEvaluator.LoggingModel).PValue, 1e-9);
    }

    [Fact]
    public void Two_rows_for_one_repeat_are_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => MetricStatistics.Summarise([Row("esmm", 0, 0.1), Row("esmm", 0, 0.2)], "esmm"));

        Assert.Contains("repeat 0", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Poisson_bootstrap_weights_average_one_and_are_reproducible()
    {
        long total = 0;
        for (var id = 0; id < 100_000; id++)
        {
            total += PoissonBootstrap.Weight(1, id, 3);
        }

        Assert.InRange(total / 100_000.0, 0.99, 1.01);
        Assert.Equal(PoissonBootstrap.Weight(1, 42, 7), PoissonBootstrap.Weight(1, 42, 7));
    }
}
