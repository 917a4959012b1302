using System.Globalization;
using AdAuctionSim.Evaluation.Metrics;
using AdAuctionSim.Evaluation.Runs;

namespace AdAuctionSim.Evaluation.Statistics;

/// <summary>
/// Statistics across repeated seeds (DESIGN.md §6): the one entry point that turns metric rows of many repeats (and
/// sweep points) into <see cref="MetricSummary"/> rows: the mean with a Student-t 95% confidence interval, and the
/// paired t-test of each model against a baseline model over the repeats both have. With a single repeat there is no
/// spread across seeds: the interval is the bootstrap interval of that run when the evaluator computed one
/// (<see cref="EvaluationResult.Intervals"/>), otherwise NaN, and the method column says which. Every interval is
/// clipped to its metric's range (<see cref="MetricIds.RangeOf"/>: an AUC's to [0, 1], an MAE's to [0, ∞) …); the
/// means are not touched. The <see cref="RunEvaluator.TruthModel"/> reference row (the oracle, p̂ = q) gets no paired
/// test: it is what every model is scored against, not a contender, and would differ "significantly" from any of them.
/// </summary>
public static class MetricStatistics
{
    /// <summary>Confidence level of every interval.</summary>
    public const double Level = 0.95;

    public const string StudentT = "student-t";
    public const string NoInterval = "none (one repeat)";
    /// <summary>The interval label of a metric with no value in any repeat (every row NaN: see metrics.csv's note column).</summary>
    public const string NoValues = "none (no values)";

    /// <summary>
    /// Summarises <paramref name="rows"/> per (point, model, stage, space, metric), in the order each first appears.
    /// NaN values (undefined figures) are left out of a group; <see cref="MetricSummary.Repeats"/> counts the rest.
    /// </summary>
    /// <param name="rows">Metric rows of one or more repeats.</param>
    /// <param name="baseline">Model to test every other model against (paired by repeat index).</param>
    /// <param name="bootstrap">Bootstrap intervals of single runs, used where a group has one repeat.</param>
    public static IReadOnlyList<MetricSummary> Summarise(IReadOnlyList<MetricRow> rows, string baseline,
        IReadOnlyList<MetricInterval>? bootstrap = null)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(baseline);
        var groups = new Dictionary<GroupKey, List<MetricRow>>();
        var order = new List<GroupKey>();
        foreach (var row in rows)
        {
            var key = new GroupKey(row.Point, row.Model, row.Stage, row.Space, row.Metric);
            if (!groups.TryGetValue(key, out var list))
            {
                groups[key] = list = [];
                order.Add(key);
            }
            list.Add(row);
        }
        var intervals = new Dictionary<(GroupKey, int), MetricInterval>();
        foreach (var interval in bootstrap ?? [])
        {
            intervals[(new GroupKey(interval.Point, interval.Model, interval.Stage, interval.Space, interval.Metric), interval.Repeat)] = interval;
        }
        var summaries = new List<MetricSummary>(order.Count);
        foreach (var key in order)
        {
            var byRepeat = ByRepeat(groups[key]);
            var values = byRepeat.Values.ToArray();
            var baselineRows = groups.GetValueOrDefault(key with { Model = baseline });
            double difference = double.NaN, pValue = double.NaN;
            if (baselineRows is not null && key.Model != baseline)
            {
                var reference = ByRepeat(baselineRows);
                var paired = byRepeat.Keys.Where(reference.ContainsKey).Order().ToArray();
                var differences = paired.Select(r => byRepeat[r] - reference[r]).ToArray();
                if (differences.Length > 0)
                {
                    difference = differences.Average();
                }
                if (differences.Length >= 2 && !IsOracle(key.Model))
                {
                    pValue = PairedTTest(differences);
                }
            }
            double low, high;
            string method;
            if (values.Length >= 2)
            {
                (low, high) = StudentTInterval(values);
                method = StudentT;
            }
            else if (values.Length == 1 && intervals.TryGetValue((key, byRepeat.Keys.Single()), out var interval))
            {
                (low, high, method) = (interval.Low, interval.High, interval.Method);
            }
            else
            {
                (low, high, method) = (double.NaN, double.NaN, values.Length == 0 ? NoValues : NoInterval);
            }
            (low, high) = MetricIds.RangeOf(key.Metric).Clip(low, high);
            summaries.Add(new MetricSummary(key.Point, key.Model, key.Stage, key.Space, key.Metric,
                values.Length == 0 ? double.NaN : values.Average(), low, high, values.Length, baseline, difference, pValue, method));
        }
        return summaries;
    }

    /// <summary>
    /// Whether a model id is the oracle reference row, which is never tested against the baseline (its mean difference
    /// is still given). The logging row, the logging policy's own estimates, is a real predictor and is tested like a model.
    /// </summary>
    public static bool IsOracle(string model) => model == RunEvaluator.TruthModel;

    /// <summary>
    /// Mean ± t_{0.975, n−1}·s/√n with the sample standard deviation s, not clipped (<see cref="Summarise"/> clips it to
    /// the metric's range).
    /// </summary>
    public static (double Low, double High) StudentTInterval(IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count < 2)
        {
            throw new ArgumentException($"a t interval needs at least 2 values; got {values.Count}", nameof(values));
        }
        var mean = values.Average();
        var sd = MathNet.Numerics.Statistics.Statistics.StandardDeviation(values);
        var half = MathNet.Numerics.Distributions.StudentT.InvCDF(0, 1, values.Count - 1, 1 - ((1 - Level) / 2)) * sd / Math.Sqrt(values.Count);
        return (mean - half, mean + half);
    }

    /// <summary>
    /// Two-sided p-value of the paired t-test of mean(d) = 0 for the differences d (model − baseline per repeat):
    /// t = mean(d) / (s_d / √m) with m − 1 degrees of freedom. Identical pairs (all d = 0) give 1; a constant
    /// non-zero difference gives 0.
    /// </summary>
    public static double PairedTTest(IReadOnlyList<double> differences)
    {
        ArgumentNullException.ThrowIfNull(differences);
        if (differences.Count < 2)
        {
            throw new ArgumentException($"a paired t-test needs at least 2 pairs; got {differences.Count}", nameof(differences));
        }
        var mean = differences.Average();
        var sd = MathNet.Numerics.Statistics.Statistics.StandardDeviation(differences);
        if (sd == 0)
        {
            return mean == 0 ? 1 : 0;
        }
        var t = mean / (sd / Math.Sqrt(differences.Count));
        return 2 * (1 - MathNet.Numerics.Distributions.StudentT.CDF(0, 1, differences.Count - 1, Math.Abs(t)));
    }

    /// <summary>The method label of a percentile bootstrap interval.</summary>
    public static string BootstrapMethod(int resamples, long seed) =>
        string.Create(CultureInfo.InvariantCulture, $"poisson-bootstrap percentile ({resamples} resamples, seed {seed})");

    private static SortedDictionary<int, double> ByRepeat(List<MetricRow> rows)
    {
        var values = new SortedDictionary<int, double>();
        foreach (var row in rows)
        {
            if (double.IsNaN(row.Value))
            {
                continue;
            }
            if (!values.TryAdd(row.Repeat, row.Value))
            {
                throw new ArgumentException($"two rows for repeat {row.Repeat} of {row.Model} / {row.Stage} / {row.Space} / {row.Metric}"
                    + (row.Point.Length > 0 ? $" at {row.Point}" : ""), nameof(rows));
            }
        }
        return values;
    }

    private readonly record struct GroupKey(string Point, string Model, string Stage, EvaluationSpace Space, string Metric);
}
