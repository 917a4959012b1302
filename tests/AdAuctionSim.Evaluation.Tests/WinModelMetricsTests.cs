using AdAuctionSim.Evaluation.Metrics;

namespace AdAuctionSim.Evaluation.Tests;

/// <summary>
/// A fitted win model's held-out figures (models.md §14.4): a hand example repeated so that its win selection is well
/// outside its standard error, the undefined share when there is no selection, and the true weights closing the gap
/// within the Hájek estimator's sampling bound.
/// </summary>
public sealed class WinModelMetricsTests
{
    private const double Floor = 0.01;

    private static Dictionary<string, (MetricValue Value, long Rows)> Compute(double[] atBid, double[] policy, bool[] won, double[] trueAtBid,
        double[] truePolicy, double[] reach) =>
        WinModelMetrics.Compute(atBid, policy, won, trueAtBid, truePolicy, reach, Floor).ToDictionary(f => f.Id, f => (f.Value, f.Rows));

    private static T[] Repeat<T>(T[] pattern, int times) => Enumerable.Repeat(pattern, times).SelectMany(p => p).ToArray();

    [Fact]
    public void A_hand_example_gives_the_hand_computed_figures()
    {
        // Six requests, three won; the pattern repeated 1000 times (the figures are means, so the same as for six).
        var truth = Repeat([0.5, 0.5, 0.25, 0.25, 0.8, 0.1], 1000);
        var fitted = Repeat([0.4, 0.5, 0.5, 0.25, 0.8, 0.2], 1000);
        var won = Repeat([true, false, true, false, true, false], 1000);
        var reach = Repeat([0.1, 0.1, 0.3, 0.3, 0.05, 0.4], 1000);

        var f = Compute(truth, fitted, won, truth, truth, reach);

        Assert.Equal(WinModelMetrics.All.Select(m => m.Id), f.Keys);
        // Ŵ at the bid is the truth here: log loss of (0.5, 0.5, 0.25, 0.25, 0.8, 0.1) against (1, 0, 1, 0, 1, 0).
        var logLoss = -(Math.Log(0.5) + Math.Log(0.5) + Math.Log(0.25) + Math.Log(0.75) + Math.Log(0.8) + Math.Log(0.9)) / 6;
        Assert.Equal(logLoss, f[WinModelMetrics.AtBidLogLoss].Value.Value, 12);
        Assert.Equal(0, f[WinModelMetrics.AtBidMae].Value.Value);
        Assert.Equal(6000, f[WinModelMetrics.AtBidMae].Rows);
        // π̂ − π: (−0.1, 0, 0.25, 0, 0, 0.1).
        Assert.Equal(0.25 / 6, f[WinModelMetrics.PolicyBias].Value.Value, 12);
        Assert.Equal(0.45 / 6, f[WinModelMetrics.PolicyMae].Value.Value, 12);
        // The impressions have r = (0.1, 0.3, 0.05): mean 0.15 against 1.25 / 6 over every request.
        var gap = (1.25 / 6) - 0.15;
        Assert.Equal(gap, f[WinModelMetrics.ReachGap].Value.Value, 12);
        Assert.Equal(3000, f[WinModelMetrics.GapRecovered].Rows);
        // True weights (2, 4, 1.25), fitted (2.5, 2, 1.25): Hájek means 1.4625 / 7.25 and 0.9125 / 5.75.
        Assert.Equal(((1.4625 / 7.25) - 0.15) / gap, f[WinModelMetrics.TrueGapRecovered].Value.Value, 12);
        Assert.Equal(((0.9125 / 5.75) - 0.15) / gap, f[WinModelMetrics.GapRecovered].Value.Value, 12);
        Assert.Equal(7.25 * 7.25 / (4 + 16 + 1.5625) / 3, f[WinModelMetrics.TrueEssShare].Value.Value, 12);
        Assert.Equal(5.75 * 5.75 / (6.25 + 4 + 1.5625) / 3, f[WinModelMetrics.EssShare].Value.Value, 12);
        // ln π̂ = ln (0.4, 0.5, 0.8) against ln π = ln (0.5, 0.25, 0.8) on the impressions: a weak positive correlation.
        var x = new[] { Math.Log(0.4), Math.Log(0.5), Math.Log(0.8) };
        var y = new[] { Math.Log(0.5), Math.Log(0.25), Math.Log(0.8) };
        var (mx, my) = (x.Average(), y.Average());
        var r = x.Zip(y, (a, b) => (a - mx) * (b - my)).Sum() / Math.Sqrt(x.Sum(a => (a - mx) * (a - mx)) * y.Sum(b => (b - my) * (b - my)));
        Assert.Equal(r, f[WinModelMetrics.PolicyLogCorrelation].Value.Value, 10);
    }

    [Fact]
    public void Without_win_selection_the_share_of_the_gap_closed_is_undefined_and_says_why()
    {
        var random = new Random(3);
        var n = 4000;
        var truth = Enumerable.Range(0, n).Select(_ => 0.2 + (0.6 * random.NextDouble())).ToArray();
        var won = truth.Select(p => random.NextDouble() < p).ToArray();
        var reach = Enumerable.Repeat(0.05, n).ToArray();

        var f = Compute(truth, truth, won, truth, truth, reach);

        Assert.Equal(0, f[WinModelMetrics.ReachGap].Value.Value, 12);
        Assert.True(double.IsNaN(f[WinModelMetrics.GapRecovered].Value.Value));
        Assert.Contains("no win selection to recover", f[WinModelMetrics.GapRecovered].Value.Note, StringComparison.Ordinal);
        Assert.True(double.IsNaN(f[WinModelMetrics.TrueGapRecovered].Value.Value));
        // Perfect scores: no error against the truth, a correlation of 1 and the same weights.
        Assert.Equal(0, f[WinModelMetrics.PolicyMae].Value.Value);
        Assert.Equal(0, f[WinModelMetrics.PolicyEce].Value.Value, 15);
        Assert.Equal(1, f[WinModelMetrics.PolicyLogCorrelation].Value.Value, 12);
        Assert.Equal(f[WinModelMetrics.TrueEssShare].Value.Value, f[WinModelMetrics.EssShare].Value.Value);
    }

    [Fact]
    public void The_true_weights_close_the_gap_within_the_hajek_estimators_sampling_bound()
    {
        // Wins drawn with the true π; the requests that are easy to win reach the last stage less often, so the impressions'
        // mean r_K is below every request's (a positive gap).
        var random = new Random(17);
        var n = 200_000;
        var u = Enumerable.Range(0, n).Select(_ => random.NextDouble()).ToArray();
        var truth = u.Select(v => 0.1 + (0.8 * v)).ToArray();
        var reach = u.Select(v => 0.12 - (0.1 * v)).ToArray();
        var won = truth.Select(p => random.NextDouble() < p).ToArray();
        // A smoothed fit: half-way between π and its mean, which undoes only part of the selection.
        var smooth = truth.Select(p => (p + 0.5) / 2).ToArray();

        var f = Compute(truth, smooth, won, truth, truth, reach);

        // Hájek: μ̂ − μ_D ≈ (1/N) Σ (1{won}/π − 1)(r − μ_D), variance (1/N²) Σ (1 − π)/π (r − μ_D)²; over the gap, four
        // standard deviations bound the share's distance from 1.
        var mean = reach.Average();
        var sd = Math.Sqrt(Enumerable.Range(0, n).Sum(i => (1 - truth[i]) / truth[i] * (reach[i] - mean) * (reach[i] - mean))) / n;
        var gap = f[WinModelMetrics.ReachGap].Value.Value;
        Assert.True(gap > 10 * f[WinModelMetrics.ReachGapStandardError].Value.Value, $"gap {gap}");
        var share = f[WinModelMetrics.TrueGapRecovered].Value.Value;
        Assert.True(Math.Abs(share - 1) < 4 * sd / gap, $"true weights close {share} of the gap; bound 1 ± {4 * sd / gap}");
        // The smoothed weights close clearly less than the true ones, and their ESS share is higher.
        Assert.True(f[WinModelMetrics.GapRecovered].Value.Value < share - (8 * sd / gap), $"smoothed {f[WinModelMetrics.GapRecovered].Value.Value}");
        Assert.True(f[WinModelMetrics.EssShare].Value.Value > f[WinModelMetrics.TrueEssShare].Value.Value);
    }
}
