using System.Globalization;

namespace AdAuctionSim.Evaluation.Metrics;

/// <summary>Error of predictions p̂ against the true rates q on the same rows.</summary>
/// <param name="Bias">mean(p̂ − q).</param>
/// <param name="Mae">mean |p̂ − q|.</param>
/// <param name="Rmse">√mean (p̂ − q)².</param>
/// <param name="CalibrationRatio">Σp̂ ÷ Σq (undefined when Σq = 0).</param>
/// <param name="Rows">Rows compared.</param>
public readonly record struct TruthError(MetricValue Bias, MetricValue Mae, MetricValue Rmse, MetricValue CalibrationRatio, long Rows);

/// <summary>The label-based figures of one set of scores, computed together from one sort (what <c>adsim bench metrics</c> times).</summary>
public readonly record struct LabelMetrics(MetricValue Auc, MetricValue LogLoss, MetricValue NormalisedEntropy, MetricValue Ece, long Rows);

/// <summary>
/// Binary-outcome metrics over plain arrays (DESIGN.md §6): exact AUC with ties, log loss, normalised entropy,
/// expected calibration error over equal-mass bins, and the error against the true rates. Arrays in, numbers out;
/// an undefined figure comes back as NaN with a note saying why.
/// </summary>
public static class BinaryMetrics
{
    /// <summary>Bins of the expected calibration error and of the reliability diagram.</summary>
    public const int CalibrationBins = 20;

    /// <summary>Predictions are clipped to [ε, 1 − ε] inside the logarithms of the log loss (as scikit-learn's log_loss with eps=1e-15).</summary>
    public const double LogLossEpsilon = 1e-15;

    /// <summary>Rows per block of the blocked sums: the reduction order is fixed, so sums do not depend on the thread count.</summary>
    internal const int Block = 1 << 16;

    /// <summary>
    /// Area under the ROC curve: the share of (positive, negative) pairs in which the positive scores higher, ties
    /// counted half. Exact (integer pair counts) in O(n) after a radix sort. Undefined for a single class.
    /// </summary>
    public static MetricValue Auc(ReadOnlySpan<double> scores, ReadOnlySpan<bool> labels)
    {
        CheckLengths(scores, labels.Length);
        var ranking = new ScoreRanking();
        ranking.Rank(scores, labels, keepOrder: false);
        return ranking.Walk([], [], 1).AucOfPackedLabel;
    }

    /// <summary>
    /// Mean negative log-likelihood −[s·ln p̂ + (1 − s)·ln(1 − p̂)], p̂ clipped to [<see cref="LogLossEpsilon"/>, 1 − ε].
    /// </summary>
    public static MetricValue LogLoss(ReadOnlySpan<double> predictions, ReadOnlySpan<bool> labels)
    {
        CheckLengths(predictions, labels.Length);
        return predictions.IsEmpty ? MetricValue.Undefined(MetricValue.NoRows) : MetricValue.Of(LogLossSum(predictions, labels) / predictions.Length);
    }

    /// <summary>
    /// Normalised entropy (He et al. 2014, "Practical lessons from predicting clicks on ads at Facebook"): the log loss
    /// divided by the entropy of the mean label, H(s̄) = −[s̄·ln s̄ + (1 − s̄)·ln(1 − s̄)]; below 1 means better than
    /// always predicting the base rate. Undefined for a single class.
    /// </summary>
    public static MetricValue NormalisedEntropy(ReadOnlySpan<double> predictions, ReadOnlySpan<bool> labels)
    {
        var logLoss = LogLoss(predictions, labels);
        return logLoss.IsDefined ? NormalisedEntropy(logLoss.Value, Positives(labels), labels.Length) : logLoss;
    }

    /// <summary>
    /// Expected calibration error over <paramref name="bins"/> equal-mass bins of the predictions:
    /// Σ_b (n_b / n)·|mean p̂_b − mean t_b| = Σ_b |Σp̂_b − Σt_b| / n, where t is a 0/1 label or a true rate. Rows are
    /// sorted by p̂ and bin b holds sorted positions [⌊b·n/B⌋, ⌊(b+1)·n/B⌋); a tie group of p̂ that straddles an edge
    /// is shared between the bins by its number of positions in each and its t-sum pro rata, so the figure does not
    /// depend on the order of tied rows.
    /// </summary>
    public static MetricValue Ece(ReadOnlySpan<double> predictions, ReadOnlySpan<double> targets, int bins = CalibrationBins)
    {
        CheckLengths(predictions, targets.Length);
        var ranking = new ScoreRanking();
        ranking.Rank(predictions, [], keepOrder: true);
        return ranking.Walk([], targets, bins).EceOfTargets;
    }

    /// <summary>Bias, MAE, RMSE and calibration ratio of p̂ against the true rates q, in one pass.</summary>
    public static TruthError ErrorAgainstTruth(ReadOnlySpan<double> predictions, ReadOnlySpan<double> truth)
    {
        CheckLengths(predictions, truth.Length);
        var n = predictions.Length;
        if (n == 0)
        {
            var none = MetricValue.Undefined(MetricValue.NoRows);
            return new TruthError(none, none, none, none, 0);
        }
        double sumError = 0, sumAbs = 0, sumSquare = 0, sumPrediction = 0, sumTruth = 0;
        for (var i = 0; i < n; i++)
        {
            var p = predictions[i];
            var q = truth[i];
            var e = p - q;
            sumError += e;
            sumAbs += Math.Abs(e);
            sumSquare += e * e;
            sumPrediction += p;
            sumTruth += q;
        }
        var ratio = sumTruth > 0
            ? MetricValue.Of(sumPrediction / sumTruth)
            : MetricValue.Undefined("the true rates sum to 0, so the calibration ratio Σp̂ / Σq is undefined");
        return new TruthError(MetricValue.Of(sumError / n), MetricValue.Of(sumAbs / n), MetricValue.Of(Math.Sqrt(sumSquare / n)), ratio, n);
    }

    /// <summary>
    /// The dependence ratio of stage k ≥ 2 on some rows (<see cref="MetricIds.DependenceRatio"/>): the model's selection
    /// ratio Σr̂_k ÷ (Σr̂_{k−1} · Σq̂_k / n) over the truth's Σr_k ÷ (Σr_{k−1} · Σq_k / n), so that
    /// Σr̂_k / Σr_k = (Σr̂_{k−1} / Σr_{k−1}) · (Σq̂_k / Σq_k) · ratio exactly: the cumulative calibration ratio is the parent's
    /// times the stage's own times this. A selection ratio above 1 says that the rows likely to reach stage k − 1 are
    /// also likelier to go on to stage k (the click–conversion correlation that makes click-space CVR biased); a model
    /// that predicts q̂_k independently of r̂_{k−1} has a selection ratio of 1, and this ratio then falls to 1 over the
    /// truth's. Undefined when a sum in a denominator is 0.
    /// </summary>
    /// <param name="parent">r̂_{k−1}, the model's cumulative prediction of the parent stage.</param>
    /// <param name="stage">q̂_k, its conditional prediction of stage k.</param>
    /// <param name="cumulative">r̂_k, its cumulative prediction of stage k.</param>
    /// <param name="trueParent">r_{k−1}.</param>
    /// <param name="trueStage">q_k.</param>
    /// <param name="trueCumulative">r_k.</param>
    public static MetricValue DependenceRatio(ReadOnlySpan<double> parent, ReadOnlySpan<double> stage, ReadOnlySpan<double> cumulative,
        ReadOnlySpan<double> trueParent, ReadOnlySpan<double> trueStage, ReadOnlySpan<double> trueCumulative)
    {
        var n = parent.Length;
        CheckLengths(stage, n);
        CheckLengths(cumulative, n);
        CheckLengths(trueParent, n);
        CheckLengths(trueStage, n);
        CheckLengths(trueCumulative, n);
        return DependenceRatioOfSums(n, Sum(parent), Sum(stage), Sum(cumulative), Sum(trueParent), Sum(trueStage), Sum(trueCumulative));

        static double Sum(ReadOnlySpan<double> values)
        {
            var sum = 0.0;
            foreach (var v in values)
            {
                sum += v;
            }
            return sum;
        }
    }

    /// <summary><see cref="DependenceRatio(ReadOnlySpan{double}, ReadOnlySpan{double}, ReadOnlySpan{double}, ReadOnlySpan{double}, ReadOnlySpan{double}, ReadOnlySpan{double})"/> from the six sums over <paramref name="n"/> rows.</summary>
    internal static MetricValue DependenceRatioOfSums(long n, double sp, double ss, double sc, double tp, double ts, double tc)
    {
        if (n == 0)
        {
            return MetricValue.Undefined(MetricValue.NoRows);
        }
        if (!(tc > 0 && sp > 0 && ss > 0))
        {
            return MetricValue.Undefined(tc > 0
                ? "the model's parent-stage or stage predictions sum to 0, so its selection ratio is undefined"
                : "the true cumulative rates sum to 0, so the true selection ratio is undefined");
        }
        // (Σr̂_k / (Σr̂_{k−1}·Σq̂_k)) / (Σr_k / (Σr_{k−1}·Σq_k)); the row count cancels.
        return MetricValue.Of(sc / sp / ss * (tp * ts / tc));
    }

    /// <summary>
    /// AUC, log loss, normalised entropy and ECE against the labels from one radix sort of the scores; the log loss
    /// runs on a second thread while the sort runs on the other cores, when <paramref name="parallel"/> is set. Results are identical
    /// either way (fixed-block reduction).
    /// </summary>
    public static LabelMetrics Evaluate(ReadOnlySpan<double> scores, ReadOnlySpan<bool> labels, bool parallel = true, int bins = CalibrationBins) =>
        Evaluate(scores.ToArray(), labels.ToArray(), new ScoreRanking { Threads = parallel ? Math.Max(1, Environment.ProcessorCount - 1) : 1 }, parallel, bins, timings: null);

    internal static LabelMetrics Evaluate(double[] scores, bool[] labels, ScoreRanking ranking, bool parallel, int bins, Action<string, double>? timings)
    {
        CheckLengths(scores, labels.Length);
        if (scores.Length == 0)
        {
            var none = MetricValue.Undefined(MetricValue.NoRows);
            return new LabelMetrics(none, none, none, none, 0);
        }
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var logLossTask = parallel
            ? Task.Run(() => LogLossSum(scores, labels))
            : null;
        ranking.KeysBuilt = timings is null ? null : () =>
        {
            timings("keys", clock.Elapsed.TotalSeconds);
            clock.Restart();
        };
        ranking.Rank(scores, labels, keepOrder: false);
        ranking.KeysBuilt = null;
        timings?.Invoke($"radix sort ({ranking.Threads} thread{(ranking.Threads == 1 ? "" : "s")})", clock.Elapsed.TotalSeconds);
        clock.Restart();
        var sums = ranking.Walk([], [], bins);
        timings?.Invoke("walk (AUC ties, ECE bins)", clock.Elapsed.TotalSeconds);
        clock.Restart();
        var logLossSum = logLossTask?.GetAwaiter().GetResult() ?? LogLossSum(scores, labels);
        timings?.Invoke(parallel ? "log loss (wait for the second thread)" : "log loss", clock.Elapsed.TotalSeconds);
        var logLoss = logLossSum / scores.Length;
        return new LabelMetrics(sums.AucOfPackedLabel, MetricValue.Of(logLoss), NormalisedEntropy(logLoss, sums.PositivesA, scores.Length),
            sums.EceOfPackedLabel, scores.Length);
    }

    internal static MetricValue NormalisedEntropy(double logLoss, long positives, long rows)
    {
        if (rows == 0)
        {
            return MetricValue.Undefined(MetricValue.NoRows);
        }
        if (positives == 0 || positives == rows)
        {
            return MetricValue.Undefined(string.Create(CultureInfo.InvariantCulture,
                $"single class: all {rows} labels are {(positives == 0 ? 0 : 1)}, so the base-rate entropy is 0"));
        }
        var rate = (double)positives / rows;
        var entropy = -((rate * Math.Log(rate)) + ((1 - rate) * Math.Log(1 - rate)));
        return MetricValue.Of(logLoss / entropy);
    }

    /// <summary>Σ of the per-row log losses, summed in blocks of <see cref="Block"/> rows and the block sums in order.</summary>
    internal static double LogLossSum(ReadOnlySpan<double> predictions, ReadOnlySpan<bool> labels)
    {
        var total = 0.0;
        for (var start = 0; start < predictions.Length; start += Block)
        {
            var end = Math.Min(predictions.Length, start + Block);
            var block = 0.0;
            for (var i = start; i < end; i++)
            {
                var p = Math.Clamp(predictions[i], LogLossEpsilon, 1 - LogLossEpsilon);
                block -= Math.Log(labels[i] ? p : 1 - p);
            }
            total += block;
        }
        return total;
    }

    internal static long Positives(ReadOnlySpan<bool> labels)
    {
        long positives = 0;
        foreach (var label in labels)
        {
            if (label)
            {
                positives++;
            }
        }
        return positives;
    }

    private static void CheckLengths(ReadOnlySpan<double> predictions, int other)
    {
        if (predictions.Length != other)
        {
            throw new ArgumentException($"{predictions.Length} predictions but {other} labels or targets; expected one per row");
        }
    }
}
