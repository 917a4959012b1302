using AdAuctionSim.Evaluation;
using AdAuctionSim.Reports.Statistics;

namespace AdAuctionSim.Reports.Tests;

/// <summary>The Student-t summaries against figures worked out by hand.</summary>
public sealed class StatisticsTests
{
    [Fact]
    public void The_interval_is_the_mean_plus_minus_t_times_the_standard_error()
    {
        // 1, 2, 3: mean 2, s = 1, t(0.975, 2) = 4.302652729749464, half width = 4.3027 / sqrt(3).
        var (mean, low, high, n) = StudentTMetricSummarizer.Interval([1, 2, 3]);
        var half = 4.302652729749464 / Math.Sqrt(3);
        Assert.Equal(3, n);
        Assert.Equal(2, mean, 12);
        Assert.Equal(2 - half, low, 9);
        Assert.Equal(2 + half, high, 9);
    }

    [Fact]
    public void One_value_has_no_interval()
    {
        var (mean, low, high, n) = StudentTMetricSummarizer.Interval([0.5]);
        Assert.Equal((0.5, 1), (mean, n));
        Assert.True(double.IsNaN(low) && double.IsNaN(high));
    }

    [Fact]
    public void The_paired_test_matches_the_t_distribution()
    {
        // Differences 1, 2, 3, 4: mean 2.5, s = 1.29099, t = 3.87298 on 3 degrees of freedom: two-sided p = 0.030466.
        var (difference, p) = StudentTMetricSummarizer.PairedTest([1, 2, 3, 4]);
        Assert.Equal(2.5, difference, 12);
        Assert.Equal(0.030466, p, 5);
        Assert.Equal(1, StudentTMetricSummarizer.PairedTest([0, 0, 0]).PValue);
        Assert.Equal(0, StudentTMetricSummarizer.PairedTest([0.1, 0.1]).PValue);
    }

    [Fact]
    public void Summaries_pair_models_with_the_baseline_by_repeat_and_skip_undefined_values()
    {
        MetricRow Row(string model, int repeat, double value) => new("", repeat, repeat, model, "convert", EvaluationSpace.D, "bias", value, 10);
        var rows = new List<MetricRow>
        {
            Row("base", 0, 1), Row("base", 1, 2), Row("base", 2, 3), Row("base", 3, double.NaN),
            Row("other", 0, 2), Row("other", 1, 4), Row("other", 2, 6), Row("other", 3, 8),
        };
        var summaries = new StudentTMetricSummarizer().Summarize(rows, "base");
        var base_ = Assert.Single(summaries, s => s.Model == "base");
        var other = Assert.Single(summaries, s => s.Model == "other");
        Assert.Equal(3, base_.Repeats);
        Assert.True(double.IsNaN(base_.PValue));
        Assert.Equal(4, other.Repeats);
        Assert.Equal(5, other.Mean, 12);
        // Pairs of repeats 0..2 only (the baseline's repeat 3 is NaN): differences 1, 2, 3.
        Assert.Equal(2, other.MeanDifference, 12);
        Assert.Equal(StudentTMetricSummarizer.PairedTest([1, 2, 3]).PValue, other.PValue, 12);
        Assert.Equal("base", other.Baseline);
    }
}
