namespace AdAuctionSim.Evaluation.Metrics;

/// <summary>One figure of a fitted win model on the held-out requests (<see cref="WinModelMetrics"/>).</summary>
/// <param name="Point">Sweep point of the run (empty without a sweep).</param>
/// <param name="Repeat">Repeat index of the run.</param>
/// <param name="Source">The win model (<c>km</c>, <c>censored-lognormal</c>, <c>classifier</c>).</param>
/// <param name="Metric">A metric id of <see cref="WinModelMetrics.All"/>.</param>
/// <param name="Value">The figure; NaN when undefined (see <paramref name="Note"/>).</param>
/// <param name="Rows">Requests it was computed over.</param>
/// <param name="Note">Why it is undefined, empty otherwise.</param>
public sealed record WinModelFigure(string Point, int Repeat, string Source, string Metric, double Value, long Rows, string Note = "");

/// <summary>
/// models.md §14.4's checks of a fitted win model on held-out requests: its Ŵ(b_i | x_i) against whether each bid won
/// (log loss, AUC, ECE: what a real advertiser can check) and against the true P(win | x, b); its π̂(x) against the true
/// P(win | x); and what its weights 1/max(π̂, ε_w) do on the impressions: their effective sample size and the share of
/// the gap between the impressions' mean true r_K and every request's that they close (Hájek-weighted mean), beside the
/// same for the true weights. Arrays in, numbers out; the caller restricts them to the held-out rows.
/// </summary>
public static class WinModelMetrics
{
    public const string AtBidLogLoss = "at_bid_log_loss";
    public const string AtBidAuc = "at_bid_auc";
    public const string AtBidEce = "at_bid_ece";
    public const string AtBidMae = "at_bid_mae";
    public const string PolicyBias = "pi_bias";
    public const string PolicyMae = "pi_mae";
    public const string PolicyEce = "pi_ece";
    public const string PolicyLogCorrelation = "pi_log_correlation";
    public const string EssShare = "ess_share";
    public const string TrueEssShare = "true_ess_share";
    public const string ReachGap = "reach_gap";
    public const string ReachGapStandardError = "reach_gap_standard_error";
    public const string GapRecovered = "gap_recovered";
    public const string TrueGapRecovered = "true_gap_recovered";

    /// <summary>Every metric id with its meaning, in the order <see cref="Compute"/> returns them.</summary>
    public static IReadOnlyList<(string Id, string Meaning)> All { get; } =
    [
        (AtBidLogLoss, "log loss of Ŵ(b_i | x_i) at the logged bid against whether the bid won, over every held-out request (D)"),
        (AtBidAuc, "AUC of Ŵ(b_i | x_i) against whether the bid won (D)"),
        (AtBidEce, $"expected calibration error of Ŵ(b_i | x_i) against whether the bid won, {BinaryMetrics.CalibrationBins} equal-mass bins (D)"),
        (AtBidMae, "mean |Ŵ(b_i | x_i) − P(win | x_i, b_i)| against the truth (D)"),
        (PolicyBias, "mean π̂(x) − P(win | x) against the truth (D)"),
        (PolicyMae, "mean |π̂(x) − P(win | x)| (D)"),
        (PolicyEce, $"expected calibration error of π̂(x) against the true P(win | x), {BinaryMetrics.CalibrationBins} equal-mass bins (D)"),
        (PolicyLogCorrelation, "correlation of ln max(π̂, ε_w) with ln max(π, ε_w) over the held-out impressions (O): how well π̂ ranks them by how hard they were to win"),
        (EssShare, "effective sample size (Σw)²/Σw² of the weights w = 1/max(π̂, ε_w) over the held-out impressions, divided by their number"),
        (TrueEssShare, "the same for the true weights 1/max(π, ε_w)"),
        (ReachGap, "mean true r_K over every held-out request (D) minus its mean over the held-out impressions (O): the win selection the weights should undo"),
        (ReachGapStandardError, "standard error of that gap (the two means' standard errors added as if independent; O ⊂ D makes it conservative)"),
        (GapRecovered, "share of the gap between mean true r_K on every held-out request (D) and on the impressions (O) that the weights 1/max(π̂, ε_w) "
            + "close (Hájek-weighted mean over O): 1 = all of the win selection corrected, 0 = none"),
        (TrueGapRecovered, "the same with the true weights 1/max(π, ε_w): what an exact win model would close (below 1 when ε_w clips, or by chance)"),
    ];

    /// <summary>
    /// The figures over the held-out requests; all arrays are per request of D, in the same order.
    /// </summary>
    /// <param name="atBid">Ŵ(b_i | x_i) of the model.</param>
    /// <param name="policy">π̂(x_i) of the model.</param>
    /// <param name="won">Whether the bid won (the request is an impression).</param>
    /// <param name="trueAtBid">The true P(win | x_i, b_i).</param>
    /// <param name="truePolicy">The true P(win | x_i).</param>
    /// <param name="trueReach">The true r_K(x_i) of the last stage, whose O-to-D gap the weights should close.</param>
    /// <param name="floor">ε_w.</param>
    public static IReadOnlyList<(string Id, MetricValue Value, long Rows)> Compute(ReadOnlySpan<double> atBid, ReadOnlySpan<double> policy, ReadOnlySpan<bool> won,
        ReadOnlySpan<double> trueAtBid, ReadOnlySpan<double> truePolicy, ReadOnlySpan<double> trueReach, double floor)
    {
        var n = atBid.Length;
        if (policy.Length != n || won.Length != n || trueAtBid.Length != n || truePolicy.Length != n || trueReach.Length != n)
        {
            throw new ArgumentException("the win model's figures need arrays of one length");
        }
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(floor);
        var labels = BinaryMetrics.Evaluate(atBid, won, parallel: false);
        var atBidError = BinaryMetrics.ErrorAgainstTruth(atBid, trueAtBid);
        var policyError = BinaryMetrics.ErrorAgainstTruth(policy, truePolicy);
        var impressions = new List<int>();
        for (var i = 0; i < n; i++)
        {
            if (won[i])
            {
                impressions.Add(i);
            }
        }
        var o = impressions.Count;
        var gap = Gap(trueReach, impressions);
        return
        [
            (AtBidLogLoss, labels.LogLoss, n),
            (AtBidAuc, labels.Auc, n),
            (AtBidEce, labels.Ece, n),
            (AtBidMae, atBidError.Mae, n),
            (PolicyBias, policyError.Bias, n),
            (PolicyMae, policyError.Mae, n),
            (PolicyEce, n == 0 ? MetricValue.Undefined(MetricValue.NoRows) : BinaryMetrics.Ece(policy, truePolicy), n),
            (PolicyLogCorrelation, LogCorrelation(policy, truePolicy, impressions, floor), o),
            (EssShare, Ess(policy, impressions, floor), o),
            (TrueEssShare, Ess(truePolicy, impressions, floor), o),
            (ReachGap, gap.Gap, n),
            (ReachGapStandardError, gap.StandardError, n),
            (GapRecovered, Recovered(policy, trueReach, impressions, floor, gap), o),
            (TrueGapRecovered, Recovered(truePolicy, trueReach, impressions, floor, gap), o),
        ];
    }

    private static MetricValue LogCorrelation(ReadOnlySpan<double> fitted, ReadOnlySpan<double> truth, List<int> rows, double floor)
    {
        if (rows.Count < 2)
        {
            return MetricValue.Undefined($"{rows.Count} held-out impression(s); a correlation needs two");
        }
        var x = new double[rows.Count];
        var y = new double[rows.Count];
        for (var j = 0; j < rows.Count; j++)
        {
            x[j] = Math.Log(Math.Max(fitted[rows[j]], floor));
            y[j] = Math.Log(Math.Max(truth[rows[j]], floor));
        }
        var r = MathNet.Numerics.Statistics.Correlation.Pearson(x, y);
        return double.IsFinite(r)
            ? MetricValue.Of(r)
            : MetricValue.Undefined("π̂ or π is constant over the held-out impressions, so their correlation is undefined");
    }

    private static MetricValue Ess(ReadOnlySpan<double> propensity, List<int> rows, double floor)
    {
        if (rows.Count == 0)
        {
            return MetricValue.Undefined("no held-out impressions");
        }
        double sum = 0, squares = 0;
        foreach (var i in rows)
        {
            var w = 1 / Math.Max(propensity[i], floor);
            sum += w;
            squares += w * w;
        }
        return MetricValue.Of(sum * sum / squares / rows.Count);
    }

    /// <summary>mean_D r − mean_O r, its standard error and mean_O r; undefined without two rows of each.</summary>
    private static (MetricValue Gap, MetricValue StandardError, double MeanO) Gap(ReadOnlySpan<double> reach, List<int> rows)
    {
        var n = reach.Length;
        if (rows.Count < 2 || n < 2)
        {
            var why = MetricValue.Undefined($"{rows.Count} held-out impression(s) of {n} requests; the gap needs two of each");
            return (why, why, double.NaN);
        }
        var (meanD, varianceD) = MeanAndVariance(reach, null);
        var (meanO, varianceO) = MeanAndVariance(reach, rows);
        return (MetricValue.Of(meanD - meanO), MetricValue.Of(Math.Sqrt((varianceD / n) + (varianceO / rows.Count))), meanO);
    }

    /// <summary>
    /// (Σ_O w·r / Σ_O w − mean_O r) / (mean_D r − mean_O r); undefined when the gap is within two standard errors of zero,
    /// where there is no win selection to speak of and the ratio is noise (or within rounding of zero).
    /// </summary>
    private static MetricValue Recovered(ReadOnlySpan<double> propensity, ReadOnlySpan<double> reach, List<int> rows, double floor,
        (MetricValue Gap, MetricValue StandardError, double MeanO) gap)
    {
        if (!gap.Gap.IsDefined)
        {
            return gap.Gap;
        }
        // Also no gap when it is rounding: the means of a constant r over D and O need not agree to the last bit.
        if (!(Math.Abs(gap.Gap.Value) > Math.Max(2 * gap.StandardError.Value, 1e-12 * Math.Abs(gap.MeanO))))
        {
            return MetricValue.Undefined(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"the gap in mean true r_K between D and O ({gap.Gap.Value:G3}) is within two standard errors ({2 * gap.StandardError.Value:G3}) of zero: no win selection to recover"));
        }
        double weighted = 0, weights = 0;
        foreach (var i in rows)
        {
            var w = 1 / Math.Max(propensity[i], floor);
            weighted += w * reach[i];
            weights += w;
        }
        return MetricValue.Of(((weighted / weights) - gap.MeanO) / gap.Gap.Value);
    }

    private static (double Mean, double Variance) MeanAndVariance(ReadOnlySpan<double> values, List<int>? rows)
    {
        var picked = new double[rows?.Count ?? values.Length];
        for (var j = 0; j < picked.Length; j++)
        {
            picked[j] = values[rows is null ? j : rows[j]];
        }
        return MathNet.Numerics.Statistics.Statistics.MeanVariance(picked);
    }
}
