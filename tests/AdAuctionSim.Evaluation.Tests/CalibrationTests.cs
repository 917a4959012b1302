using AdAuctionSim.Evaluation.Metrics;

namespace AdAuctionSim.Evaluation.Tests;

/// <summary>Error against the truth and ECE: perfect predictions, a constant shift, sampling bounds, tie-order independence.</summary>
public sealed class CalibrationTests
{
    /// <summary>True rates that are dyadic rationals k/1024 in [1/4, 1/2), so q + 1/64 is exact in binary floating point.</summary>
    private static double[] DyadicRates(int n, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (256 + random.Next(256)) / 1024.0).ToArray();
    }

    [Fact]
    public void Perfect_predictions_have_zero_bias_mae_rmse_and_ece_against_the_truth()
    {
        var q = DyadicRates(10_000, 1);

        var error = BinaryMetrics.ErrorAgainstTruth(q, q);
        var ece = BinaryMetrics.Ece(q, q);

        Assert.Equal(0.0, error.Bias.Value);
        Assert.Equal(0.0, error.Mae.Value);
        Assert.Equal(0.0, error.Rmse.Value);
        Assert.Equal(1.0, error.CalibrationRatio.Value);
        Assert.Equal(0.0, ece.Value, 1e-15);
    }

    [Fact]
    public void Perfect_predictions_have_an_ece_against_labels_within_its_sampling_bound()
    {
        var random = new Random(5);
        var n = 200_000;
        var q = Enumerable.Range(0, n).Select(_ => 1 / (1 + Math.Exp(-(random.NextDouble() * 6 - 4)))).ToArray();
        var labels = q.Select(p => random.NextDouble() < p ? 1.0 : 0.0).ToArray();

        var ece = BinaryMetrics.Ece(q, labels);

        // Bin b's label mean deviates from its mean q by about √(Σ q(1−q)) / n_b; four of those per bin bound the sum.
        var sorted = q.Order().ToArray();
        var bound = 0.0;
        for (var b = 0; b < BinaryMetrics.CalibrationBins; b++)
        {
            var from = ScoreRanking.BinEdge(b, n, BinaryMetrics.CalibrationBins);
            var to = ScoreRanking.BinEdge(b + 1, n, BinaryMetrics.CalibrationBins);
            var variance = 0.0;
            for (var i = from; i < to; i++)
            {
                variance += sorted[i] * (1 - sorted[i]);
            }
            bound += 4 * Math.Sqrt(variance) / n;
        }
        Assert.True(ece.Value < bound, $"ECE {ece.Value} exceeds its sampling bound {bound}");
        Assert.True(ece.Value > 0);
    }

    [Fact]
    public void A_constant_shift_gives_exactly_that_bias_mae_and_rmse()
    {
        const double shift = 1.0 / 64;
        var q = DyadicRates(4096, 2);
        var p = q.Select(v => v + shift).ToArray();

        var error = BinaryMetrics.ErrorAgainstTruth(p, q);
        var down = BinaryMetrics.ErrorAgainstTruth(q, p);

        Assert.Equal(shift, error.Bias.Value);
        Assert.Equal(shift, error.Mae.Value);
        Assert.Equal(shift, error.Rmse.Value);
        Assert.Equal(-shift, down.Bias.Value);
        Assert.Equal(shift, down.Mae.Value);
        Assert.Equal(p.Sum() / q.Sum(), error.CalibrationRatio.Value, 1e-14);
        Assert.Equal(shift, BinaryMetrics.Ece(p, q).Value, 1e-14);
    }

    [Fact]
    public void Ece_does_not_depend_on_the_order_of_tied_rows()
    {
        var random = new Random(9);
        var n = 1003; // bin edges fall inside tie groups
        var p = Enumerable.Range(0, n).Select(_ => random.Next(7) / 10.0).ToArray();
        var t = Enumerable.Range(0, n).Select(_ => random.NextDouble()).ToArray();
        var permutation = Enumerable.Range(0, n).OrderBy(_ => random.Next()).ToArray();

        var ece = BinaryMetrics.Ece(p, t);
        var shuffled = BinaryMetrics.Ece(permutation.Select(i => p[i]).ToArray(), permutation.Select(i => t[i]).ToArray());

        Assert.Equal(ece.Value, shuffled.Value, 1e-14);
    }

    [Fact]
    public void Ece_with_one_row_per_bin_is_the_mean_absolute_error()
    {
        double[] p = [0.1, 0.2, 0.3, 0.4];
        double[] t = [0.0, 1.0, 0.5, 0.4];

        Assert.Equal((0.1 + 0.8 + 0.2 + 0.0) / 4, BinaryMetrics.Ece(p, t, bins: 4).Value, 1e-15);
    }

    [Fact]
    public void Calibration_ratio_is_undefined_when_the_truth_sums_to_zero()
    {
        var error = BinaryMetrics.ErrorAgainstTruth([0.1, 0.2], [0.0, 0.0]);

        Assert.False(error.CalibrationRatio.IsDefined);
        Assert.Contains("sum to 0", error.CalibrationRatio.Note, StringComparison.Ordinal);
        Assert.Equal(0.15, error.Bias.Value, 1e-15);
    }

    /// <summary>
    /// The dependence ratio closes the cumulative calibration ratio: Σr̂_2/Σr_2 = (Σr̂_1/Σr_1)·(Σq̂_2/Σq_2)·ratio, for
    /// any predictions; the truth scores exactly 1 against itself.
    /// </summary>
    [Fact]
    public void The_dependence_ratio_closes_the_cumulative_calibration_ratio_and_is_1_for_the_truth()
    {
        var random = new Random(5);
        const int n = 5_000;
        // True click rates and conversion rates that rise with them (a click–conversion correlation), and a model whose
        // stage-2 prediction is noisy and only partly follows the click rate.
        var q1 = Enumerable.Range(0, n).Select(_ => 0.01 + (0.2 * random.NextDouble())).ToArray();
        var q2 = q1.Select(c => 0.05 + c + (0.1 * random.NextDouble())).ToArray();
        var r2 = q1.Zip(q2, (a, b) => a * b).ToArray();
        var p1 = q1.Select(c => c * (0.8 + (0.4 * random.NextDouble()))).ToArray();
        var p2 = q2.Select(c => (0.5 * c) + 0.1 + (0.05 * random.NextDouble())).ToArray();
        var pr2 = p1.Zip(p2, (a, b) => a * b).ToArray();

        var ratio = BinaryMetrics.DependenceRatio(p1, p2, pr2, q1, q2, r2);

        var cumulative = BinaryMetrics.ErrorAgainstTruth(pr2, r2).CalibrationRatio.Value;
        var parent = BinaryMetrics.ErrorAgainstTruth(p1, q1).CalibrationRatio.Value;
        var stage = BinaryMetrics.ErrorAgainstTruth(p2, q2).CalibrationRatio.Value;
        Assert.Equal(cumulative, parent * stage * ratio.Value, 1e-12);
        // The model's q̂_2 follows the click rate at half the truth's slope, so it under-states the dependence.
        Assert.InRange(ratio.Value, 0.9, 0.999);
        Assert.Equal(1.0, BinaryMetrics.DependenceRatio(q1, q2, r2, q1, q2, r2).Value, 1e-15);
    }

    /// <summary>
    /// A q̂_2 that ignores the click rate has a selection ratio of exactly 1, so its dependence ratio is 1 over the truth's
    /// selection ratio Σr_2 ÷ (Σq_1 · mean q_2).
    /// </summary>
    [Fact]
    public void A_stage_prediction_independent_of_the_parent_scores_the_inverse_of_the_true_selection_ratio()
    {
        double[] q1 = [0.1, 0.3, 0.05, 0.2];
        double[] q2 = [0.2, 0.5, 0.1, 0.3];
        var r2 = q1.Zip(q2, (a, b) => a * b).ToArray();
        double[] p2 = [0.25, 0.25, 0.25, 0.25];
        var pr2 = q1.Zip(p2, (a, b) => a * b).ToArray();
        var trueSelection = r2.Sum() / (q1.Sum() * q2.Average());

        var ratio = BinaryMetrics.DependenceRatio(q1, p2, pr2, q1, q2, r2);

        Assert.True(trueSelection > 1.2, $"the example's true selection ratio is {trueSelection}");
        Assert.Equal(1 / trueSelection, ratio.Value, 1e-12);
    }

    [Fact]
    public void The_dependence_ratio_is_undefined_without_rows_or_with_zero_sums_and_says_why()
    {
        Assert.Equal(MetricValue.NoRows, BinaryMetrics.DependenceRatio([], [], [], [], [], []).Note);
        var noTruth = BinaryMetrics.DependenceRatio([0.1], [0.2], [0.02], [0.1], [0.0], [0.0]);
        Assert.True(double.IsNaN(noTruth.Value));
        Assert.Contains("true cumulative rates sum to 0", noTruth.Note, StringComparison.Ordinal);
        Assert.Contains("model's parent-stage or stage predictions sum to 0", BinaryMetrics.DependenceRatio([0.0], [0.2], [0.0], [0.1], [0.2], [0.02]).Note,
            StringComparison.Ordinal);
    }

    [Fact]
    public void Log_loss_and_normalised_entropy_match_their_definitions()
    {
        double[] p = [0.2, 0.7, 0.9, 0.4];
        bool[] s = [false, true, true, false];
        var expected = -(Math.Log(0.8) + Math.Log(0.7) + Math.Log(0.9) + Math.Log(0.6)) / 4;

        Assert.Equal(expected, BinaryMetrics.LogLoss(p, s).Value, 1e-15);
        Assert.Equal(expected / Math.Log(2), BinaryMetrics.NormalisedEntropy(p, s).Value, 1e-14);
    }

    [Fact]
    public void Space_metrics_on_a_space_without_observations_write_nan_with_the_reason()
    {
        double[] p = [0.2, 0.4, 0.6];
        double[] q = [0.25, 0.35, 0.5];
        bool[] y = [false, true, true];

        var figures = SpaceMetrics.Compute(new ScoreRanking(), p, q, y, [false, false, false], labelled: true, "label is 0 by construction");
        var unlabelled = SpaceMetrics.Compute(new ScoreRanking(), p, q, y, [], labelled: false, null);

        Assert.All(figures.Values.Take(4), v => Assert.Equal("label is 0 by construction", v!.Value.Note));
        Assert.All(figures.Values.Take(4), v => Assert.True(double.IsNaN(v!.Value.Value)));
        Assert.Equal(1.0, figures.Values[4]!.Value.Value);
        Assert.All(unlabelled.Values.Take(4), v => Assert.Null(v));
        Assert.Equal(figures.Values.Skip(4), unlabelled.Values.Skip(4));
        Assert.Equal(MetricIds.Conditional.Count, figures.Values.Length);
        var empty = SpaceMetrics.Compute(new ScoreRanking(), [], [], [], [], labelled: true, null);
        Assert.All(empty.Values, v => Assert.Equal(MetricValue.NoRows, v!.Value.Note));
    }
}
