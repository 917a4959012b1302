using AdAuctionSim.Evaluation;
using MathNet.Numerics.Distributions;

namespace AdAuctionSim.Reports.Statistics;

/// <summary>Turns metric rows of many repeats (and sweep points) into one summary per point × model × stage × space × metric.</summary>
public interface IMetricSummarizer
{
    /// <summary>
    /// Mean and 95% confidence interval across repeats of every (point, model, stage, space, metric), and for every model
    /// other than <paramref name="baseline"/> the paired test of its difference to the baseline over the repeats both have.
    /// Rows in the result follow the first appearance of each key in <paramref name="rows"/>.
    /// </summary>
    IReadOnlyList<MetricSummary> Summarize(IReadOnlyList<MetricRow> rows, string baseline);
}

/// <summary>
/// Student-t summaries: mean ± t(0.975, n−1)·s/√n over the finite values of the repeats, and the two-sided paired
/// t-test of the per-repeat differences to the baseline (pairs matched by repeat index; both values finite).
/// </summary>
/// <remarks>
/// With one repeat the interval and the p-value are NaN. When every difference is identical (s = 0) the t statistic is
/// infinite or undefined: the p-value is then 0 for a non-zero mean difference and 1 for none.
/// </remarks>
public sealed class StudentTMetricSummarizer : IMetricSummarizer
{
    public const string Method = "student-t 95%";

    public IReadOnlyList<MetricSummary> Summarize(IReadOnlyList<MetricRow> rows, string baseline)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(baseline);
        var groups = new Dictionary<(string Point, string Model, string Stage, EvaluationSpace Space, string Metric), Dictionary<int, double>>();
        var order = new List<(string, string, string, EvaluationSpace, string)>();
        foreach (var r in rows)
        {
            var key = (r.Point, r.Model, r.Stage, r.Space, r.Metric);
            if (!groups.TryGetValue(key, out var byRepeat))
            {
                groups[key] = byRepeat = [];
                order.Add(key);
            }
            byRepeat[r.Repeat] = r.Value;
        }
        var result = new List<MetricSummary>(order.Count);
        foreach (var key in order)
        {
            var values = groups[key];
            var (mean, low, high, n) = Interval(values.Values.Where(double.IsFinite).ToList());
            var difference = double.NaN;
            var p = double.NaN;
            if (key.Item2 != baseline && groups.TryGetValue((key.Item1, baseline, key.Item3, key.Item4, key.Item5), out var reference))
            {
                var differences = values
                    .Where(v => double.IsFinite(v.Value) && reference.TryGetValue(v.Key, out var b) && double.IsFinite(b))
                    .Select(v => v.Value - reference[v.Key])
                    .ToList();
                (difference, p) = PairedTest(differences);
            }
            result.Add(new MetricSummary(key.Item1, key.Item2, key.Item3, key.Item4, key.Item5, mean, low, high, n, baseline, difference, p, Method));
        }
        return result;
    }

    /// <summary>Mean and two-sided 95% Student-t interval; NaN bounds below two values.</summary>
    public static (double Mean, double Low, double High, int Count) Interval(IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var n = values.Count;
        if (n == 0)
        {
            return (double.NaN, double.NaN, double.NaN, 0);
        }
        var mean = values.Average();
        if (n < 2)
        {
            return (mean, double.NaN, double.NaN, n);
        }
        var half = StudentT.InvCDF(0, 1, n - 1, 0.975) * StandardDeviation(values, mean) / Math.Sqrt(n);
        return (mean, mean - half, mean + half, n);
    }

    /// <summary>Mean difference and the two-sided p-value of the paired t-test (NaN below two pairs).</summary>
    public static (double MeanDifference, double PValue) PairedTest(IReadOnlyList<double> differences)
    {
        ArgumentNullException.ThrowIfNull(differences);
        var n = differences.Count;
        if (n == 0)
        {
            return (double.NaN, double.NaN);
        }
        var mean = differences.Average();
        if (n < 2)
        {
            return (mean, double.NaN);
        }
        var sd = StandardDeviation(differences, mean);
        if (sd == 0)
        {
            return (mean, mean == 0 ? 1 : 0);
        }
        var t = mean / (sd / Math.Sqrt(n));
        return (mean, 2 * StudentT.CDF(0, 1, n - 1, -Math.Abs(t)));
    }

    private static double StandardDeviation(IReadOnlyList<double> values, double mean)
    {
        var squares = 0.0;
        foreach (var v in values)
        {
            squares += (v - mean) * (v - mean);
        }
        return Math.Sqrt(squares / (values.Count - 1));
    }
}
