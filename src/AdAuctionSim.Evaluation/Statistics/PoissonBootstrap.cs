using AdAuctionSim.Evaluation.Metrics;

namespace AdAuctionSim.Evaluation.Statistics;

/// <summary>
/// Percentile bootstrap intervals for a single run, by the Poisson bootstrap (Hanley &amp; MacGibbon 2006; Chamandy
/// et al. 2012, "Estimating uncertainty for massive data streams"): in resample r each request counts w ~ Poisson(1)
/// times, w drawn from a counter-based hash of (seed, request id, r). The weights need no storage, do not depend on
/// the thread or the order of evaluation, and are the same for every model, so intervals of different models are
/// paired. Only cheap figures are resampled: those that need one pass per resample (bias, MAE, RMSE) and the AUC
/// against potential outcomes, which reuses the one sort of the scores (ties weighted by their multiplicities).
/// </summary>
internal static class PoissonBootstrap
{
    /// <summary>Resampled metrics, in output order.</summary>
    public static IReadOnlyList<string> Metrics { get; } = [MetricIds.AucPotential, MetricIds.Bias, MetricIds.Mae, MetricIds.Rmse];

    /// <summary>Cumulative Poisson(1) probabilities P(W ≤ k), k = 0…19; beyond that the weight is 20.</summary>
    private static readonly double[] Cumulative = BuildCumulative();

    /// <summary>
    /// 95% percentile intervals of <see cref="Metrics"/> over <paramref name="resamples"/> resamples; the ranking must
    /// hold these rows' scores ranked with their order kept.
    /// </summary>
    public static (double Low, double High)[] Intervals(ScoreRanking ranking, ReadOnlySpan<double> p, ReadOnlySpan<double> q,
        ReadOnlySpan<bool> y, ReadOnlySpan<long> requestIds, int resamples, long seed)
    {
        var n = p.Length;
        var figures = new double[Metrics.Count][];
        for (var m = 0; m < figures.Length; m++)
        {
            figures[m] = new double[resamples];
        }
        var weights = new int[n];
        for (var r = 0; r < resamples; r++)
        {
            long total = 0;
            double sumError = 0, sumAbs = 0, sumSquare = 0;
            for (var i = 0; i < n; i++)
            {
                var w = Weight(seed, requestIds[i], r);
                weights[i] = w;
                if (w == 0)
                {
                    continue;
                }
                var e = p[i] - q[i];
                total += w;
                sumError += w * e;
                sumAbs += w * Math.Abs(e);
                sumSquare += w * e * e;
            }
            figures[0][r] = ranking.WeightedAuc(y, weights).Value;
            figures[1][r] = total == 0 ? double.NaN : sumError / total;
            figures[2][r] = total == 0 ? double.NaN : sumAbs / total;
            figures[3][r] = total == 0 ? double.NaN : Math.Sqrt(sumSquare / total);
        }
        var intervals = new (double, double)[figures.Length];
        for (var m = 0; m < figures.Length; m++)
        {
            intervals[m] = Percentile(figures[m]);
        }
        return intervals;
    }

    /// <summary>The 2.5% and 97.5% quantiles (R-7, linear interpolation) of the finite values; NaN when there are none.</summary>
    internal static (double Low, double High) Percentile(double[] values)
    {
        var finite = values.Where(double.IsFinite).ToArray();
        if (finite.Length == 0)
        {
            return (double.NaN, double.NaN);
        }
        return (MathNet.Numerics.Statistics.Statistics.QuantileCustom(finite, 0.025, MathNet.Numerics.Statistics.QuantileDefinition.R7),
            MathNet.Numerics.Statistics.Statistics.QuantileCustom(finite, 0.975, MathNet.Numerics.Statistics.QuantileDefinition.R7));
    }

    /// <summary>The Poisson(1) multiplicity of a request in resample r.</summary>
    internal static int Weight(long seed, long requestId, int resample)
    {
        var bits = Mix(Mix((ulong)seed ^ 0x9E3779B97F4A7C15UL) ^ (ulong)requestId) ^ ((ulong)resample * 0xD1B54A32D192ED03UL);
        var u = (Mix(bits) >> 11) * (1.0 / (1UL << 53));
        var k = 0;
        while (k < Cumulative.Length && u >= Cumulative[k])
        {
            k++;
        }
        return k;
    }

    private static ulong Mix(ulong z)
    {
        // SplitMix64's finaliser (Steele, Lea & Flood 2014).
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static double[] BuildCumulative()
    {
        var cumulative = new double[20];
        var term = Math.Exp(-1);
        var sum = 0.0;
        for (var k = 0; k < cumulative.Length; k++)
        {
            sum += term;
            cumulative[k] = sum;
            term /= k + 1;
        }
        return cumulative;
    }
}
