namespace AdAuctionSim.Evaluation.Metrics;

/// <summary>
/// The figures of one prediction target on one space, in the order of <see cref="MetricIds.Conditional"/>; null where
/// the metric does not apply (observed-label metrics on a space without logged labels).
/// </summary>
internal sealed record SpaceFigures(MetricValue?[] Values, long Rows, RankSums Sums, bool ObservedLabels);

/// <summary>
/// Computes every metric of one target (p̂ against q, y and, where logged, s) on the rows of one space with a single
/// sort of p̂: the observed label s (or the potential outcome y where nothing is observed) is packed into the sort key
/// and the other per-row arrays are read through the carried row order.
/// </summary>
internal static class SpaceMetrics
{
    /// <param name="ranking">Reusable sort buffers; afterwards it holds this space's order (used by the bootstrap).</param>
    /// <param name="p">Predictions p̂.</param>
    /// <param name="q">True rates.</param>
    /// <param name="y">Potential outcomes.</param>
    /// <param name="s">Logged labels (ignored unless <paramref name="labelled"/>).</param>
    /// <param name="labelled">Whether the space is one of logged rows (O, C, O∖C), so that observed-label metrics are written.</param>
    /// <param name="observedUndefined">
    /// When the space has logged rows whose label is not an observation of this target (O∖C for a conditional stage),
    /// why: the observed-label metrics are then written as NaN with this note. Null otherwise.
    /// </param>
    public static SpaceFigures Compute(ScoreRanking ranking, ReadOnlySpan<double> p, ReadOnlySpan<double> q, ReadOnlySpan<bool> y,
        ReadOnlySpan<bool> s, bool labelled, string? observedUndefined)
    {
        var values = new MetricValue?[MetricIds.Conditional.Count];
        var n = p.Length;
        var observed = labelled && observedUndefined is null;
        RankSums sums;
        if (observed)
        {
            ranking.Rank(p, s, keepOrder: true);
            sums = ranking.Walk(y, q, BinaryMetrics.CalibrationBins);
            var logLoss = BinaryMetrics.LogLoss(p, s);
            values[0] = sums.AucOfPackedLabel;
            values[1] = logLoss;
            values[2] = logLoss.IsDefined ? BinaryMetrics.NormalisedEntropy(logLoss.Value, sums.PositivesA, n) : logLoss;
            values[3] = sums.EceOfPackedLabel;
            values[4] = sums.AucOfRowLabels;
        }
        else
        {
            ranking.Rank(p, y, keepOrder: true);
            sums = ranking.Walk([], q, BinaryMetrics.CalibrationBins);
            if (labelled)
            {
                var undefined = MetricValue.Undefined(n == 0 ? MetricValue.NoRows : observedUndefined!);
                values[0] = values[1] = values[2] = values[3] = undefined;
            }
            values[4] = sums.AucOfPackedLabel;
        }
        values[5] = sums.EceOfTargets;
        var error = BinaryMetrics.ErrorAgainstTruth(p, q);
        values[6] = error.CalibrationRatio;
        values[7] = error.Bias;
        values[8] = error.Mae;
        values[9] = error.Rmse;
        return new SpaceFigures(values, n, sums, observed);
    }

    /// <summary>Bias, MAE and RMSE of p̂ against q per group (true-CTR decile); groups index rows, −1 skips a row.</summary>
    public static (double[] MeanKey, TruthError[] Errors) ByGroup(ReadOnlySpan<double> p, ReadOnlySpan<double> q, ReadOnlySpan<double> key,
        ReadOnlySpan<byte> group, int groups)
    {
        var count = new long[groups];
        var sumKey = new double[groups];
        var sumError = new double[groups];
        var sumAbs = new double[groups];
        var sumSquare = new double[groups];
        for (var i = 0; i < p.Length; i++)
        {
            var g = group[i];
            var e = p[i] - q[i];
            count[g]++;
            sumKey[g] += key[i];
            sumError[g] += e;
            sumAbs[g] += Math.Abs(e);
            sumSquare[g] += e * e;
        }
        var meanKey = new double[groups];
        var errors = new TruthError[groups];
        for (var g = 0; g < groups; g++)
        {
            var c = count[g];
            meanKey[g] = c == 0 ? double.NaN : sumKey[g] / c;
            var none = MetricValue.Undefined(MetricValue.NoRows);
            errors[g] = c == 0
                ? new TruthError(none, none, none, none, 0)
                : new TruthError(MetricValue.Of(sumError[g] / c), MetricValue.Of(sumAbs[g] / c), MetricValue.Of(Math.Sqrt(sumSquare[g] / c)), none, c);
        }
        return (meanKey, errors);
    }

    /// <summary>
    /// Equal-mass decile (0–9) of each row by <paramref name="key"/> (the true CTR q_1): sorted ascending, ties in
    /// row order, decile d holds sorted positions [⌊d·n/10⌋, ⌊(d+1)·n/10⌋).
    /// </summary>
    public static byte[] Deciles(ScoreRanking ranking, ReadOnlySpan<double> key)
    {
        ranking.Rank(key, [], keepOrder: true);
        var order = ranking.Order;
        var n = order.Length;
        var deciles = new byte[n];
        for (var d = 0; d < 10; d++)
        {
            for (var at = ScoreRanking.BinEdge(d, n, 10); at < ScoreRanking.BinEdge(d + 1, n, 10); at++)
            {
                deciles[order[at]] = (byte)d;
            }
        }
        return deciles;
    }
}
