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
