using AdAuctionSim.Evaluation.OffPolicy;
using AdAuctionSim.Evaluation.Statistics;
using AdAuctionSim.Reports.Documents;

namespace AdAuctionSim.Reports.Tests;

/// <summary>
/// The off-policy evaluation figure: its interval bars stay within the range a policy value can take (a t interval
/// across two repeats reaches far below 0), the markers keep the estimates, and the caption says so.
/// </summary>
public sealed class OpeReportTests
{
    private static OpeEstimateRow Row(int repeat, string estimator, double estimate, double low, double high, double truth = 0.25, string warnings = "") =>
        new("", repeat, repeat, "greedy", estimator, estimate, low, high, truth, 6000, 0.05, 30, 0, warnings);

    [Fact]
    public void A_t_interval_across_repeats_below_zero_is_clipped_to_the_value_range()
    {
        // Two repeats: the t quantile is 12.7, so the interval of 0.64 and 0.27 reaches about −1.9.
        var rows = new[] { Row(0, EstimatorIds.Ips, 0.64, 0.2, 1.27), Row(1, EstimatorIds.Ips, 0.27, 0.04, 0.57) };
        var (tLow, tHigh) = MetricStatistics.StudentTInterval([0.64, 0.27]);
        Assert.True(tLow < -1, $"the unclipped t interval starts at {tLow}");

        var (mean, low, high) = OpeReport.PlottedInterval(rows, "value");

        Assert.Equal(0.455, mean, 1e-12);
        Assert.Equal(0, low);
        Assert.Equal(tHigh, high, 1e-12);
        var (_, cLow, cHigh) = OpeReport.PlottedInterval(rows, "conversions");
        Assert.Equal((0.0, 1.0), (cLow, cHigh));
    }

    [Fact]
    public void A_single_repeat_keeps_its_csv_interval_inside_the_range_and_an_undefined_one_stays_undefined()
    {
        Assert.Equal((-0.1, 0.0, 0.3), OpeReport.PlottedInterval([Row(0, EstimatorIds.Dr, -0.1, -0.4, 0.3)], "value"));
        var (_, low, high) = OpeReport.PlottedInterval([Row(0, EstimatorIds.Ips, 0, double.NaN, double.NaN)], "value");
        Assert.True(double.IsNaN(low) && double.IsNaN(high), $"[{low}, {high}] should stay undefined");
    }

    [Fact]
    public void The_figure_caption_says_the_bars_are_clipped_and_to_what()
    {
        var rows = EstimatorIds.All.SelectMany(e => new[] { Row(0, e, 0.64, 0.2, 1.27), Row(1, e, 0.27, 0.04, 0.57) }).ToList();
        var data = new OpeReportData("value", "test", [""], rows, []);

        var figure = Assert.Single(OpeReport.Figures(data));

        Assert.Contains("clipped to the range a policy's value per request can take, [0, ∞)", figure.Caption, StringComparison.Ordinal);
        Assert.Contains("ope.csv's per-repeat intervals are not clipped", figure.Caption, StringComparison.Ordinal);
    }

    [Fact]
    public void A_surplus_can_be_negative_so_its_bars_are_not_clipped_and_the_caption_says_so()
    {
        var rows = EstimatorIds.All.SelectMany(e => new[] { Row(0, e, -0.64, -1.2, -0.2, truth: -0.3), Row(1, e, 0.27, 0.04, 0.57, truth: -0.3) }).ToList();
        var (tLow, tHigh) = MetricStatistics.StudentTInterval([-0.64, 0.27]);

        var (mean, low, high) = OpeReport.PlottedInterval(rows.Where(r => r.Estimator == EstimatorIds.Ips).ToList(), "surplus");
        var figure = Assert.Single(OpeReport.Figures(new OpeReportData("surplus", "test", [""], rows, [])));

        Assert.Equal((-0.185, tLow, tHigh), (Math.Round(mean, 12), low, high));
        Assert.Contains("Bars are not clipped: a policy's surplus per request can take either sign", figure.Caption, StringComparison.Ordinal);
        Assert.DoesNotContain("clipped to the range", figure.Caption, StringComparison.Ordinal);
    }

    [Fact]
    public void Rows_warned_for_too_few_rewarded_rounds_count_in_the_warned_share_and_the_report()
    {
        const string warning = "rewarded rounds: none of the 571 rounds the target policy matches";
        var rows = new[] { Row(0, EstimatorIds.Ips, 0, 0, 21, warnings: warning), Row(1, EstimatorIds.Ips, 0.3, 0.1, 0.6) };
        var data = new OpeReportData("value", "test", [""], rows, []);

        Assert.Equal(0.5, Assert.Single(data.Summaries).Warned);
        Assert.Contains(warning, OpeReport.Markdown(data, [], "plots"), StringComparison.Ordinal);
    }
}
