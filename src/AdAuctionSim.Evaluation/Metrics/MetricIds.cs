namespace AdAuctionSim.Evaluation.Metrics;

/// <summary>One metric of <c>metrics.csv</c>: its id and what it means.</summary>
/// <param name="Id">lower_snake_case id, the <see cref="MetricRow.Metric"/> value.</param>
/// <param name="Meaning">One line for tables and reports.</param>
/// <param name="ObservedLabels">Whether it needs observed labels, so exists only on O, C and O∖C.</param>
/// <param name="Cumulative">Whether it scores the cumulative prediction r̂_k instead of the conditional q̂_k.</param>
/// <param name="Range">The values it can take; confidence intervals are clipped to it.</param>
public sealed record MetricDefinition(string Id, string Meaning, bool ObservedLabels, bool Cumulative, MetricRange Range);

/// <summary>
/// Every metric id the evaluator writes, in the order it writes them, with its meaning: the one place reports read
/// them from. Stage k's figures score the conditional prediction q̂_k = P̂(stage k | stage k − 1, x) against the true
/// q_k, the potential outcome y_k and, on impressions, the logged label s_k; the <c>_cumulative</c> variants (stages
/// k ≥ 2 only) score r̂_k = P̂(stage k | x) against r_k = q_1·…·q_k, the cumulative potential outcome y_1·…·y_k and s_k.
/// </summary>
public static class MetricIds
{
    public const string AucObserved = "auc_observed";
    public const string LogLoss = "log_loss";
    public const string Ne = "ne";
    public const string EceObserved = "ece_observed";
    public const string AucPotential = "auc_potential";
    public const string Ece = "ece";
    public const string CalibrationRatio = "calibration_ratio";
    public const string Bias = "bias";
    public const string Mae = "mae";
    public const string Rmse = "rmse";

    /// <summary>
    /// Stages k ≥ 2: how much of the true dependence between reaching stage k − 1 and reaching stage k from there the
    /// model reproduces (<see cref="BinaryMetrics.DependenceRatio"/>).
    /// </summary>
    public const string DependenceRatio = "dependence_ratio";

    /// <summary>Suffix of the ids that score the cumulative prediction r̂_k.</summary>
    public const string CumulativeSuffix = "_cumulative";

    /// <summary>The conditional-prediction metrics, in output order.</summary>
    public static IReadOnlyList<MetricDefinition> Conditional { get; } =
    [
        new(AucObserved, "AUC of p̂ against the logged label s_k (ties count half); what papers report", true, false, MetricRange.Probability),
        new(LogLoss, "mean −[s·ln p̂ + (1−s)·ln(1−p̂)] against the logged label, p̂ clipped to [1e-15, 1−1e-15]", true, false, MetricRange.NonNegative),
        new(Ne, "normalised entropy: log loss ÷ entropy of the mean label (below 1 beats the base rate)", true, false, MetricRange.NonNegative),
        new(EceObserved, "expected calibration error against the logged label, 20 equal-mass bins of p̂", true, false, MetricRange.Probability),
        new(AucPotential, "AUC of p̂ against the potential outcome y_k: defined on every space, unclicked and lost requests included", false, false, MetricRange.Probability),
        new(Ece, "expected calibration error against the true rate q_k, 20 equal-mass bins of p̂", false, false, MetricRange.Probability),
        new(CalibrationRatio, "Σp̂ ÷ Σq_k: 1 is calibrated on average, above 1 over-predicts", false, false, MetricRange.NonNegative),
        new(Bias, "mean(p̂ − q_k); for post-click stages on D the counterfactual CVR bias", false, false, MetricRange.SignedProbability),
        new(Mae, "mean |p̂ − q_k|; for post-click stages on D the counterfactual CVR error", false, false, MetricRange.Probability),
        new(Rmse, "√mean (p̂ − q_k)²", false, false, MetricRange.Probability),
    ];

    /// <summary>The cumulative-prediction metrics (stages k ≥ 2), in output order.</summary>
    public static IReadOnlyList<MetricDefinition> Cumulative { get; } = Conditional
        .Select(d => new MetricDefinition(d.Id + CumulativeSuffix,
            "r̂_k against r_k = q_1·…·q_k, y_1·…·y_k and s_k: " + d.Meaning.Replace("q_k", "r_k", StringComparison.Ordinal).Replace("y_k", "y_1·…·y_k", StringComparison.Ordinal),
            d.ObservedLabels, true, d.Range))
        .ToArray();

    /// <summary>The metric that ties stage k's cumulative calibration to its parent's and its own (stages k ≥ 2).</summary>
    public static MetricDefinition Dependence { get; } = new(DependenceRatio,
        "the model's selection ratio over the truth's, where a selection ratio is Σr̂_k ÷ (Σr̂_{k−1} · mean q̂_k): the stage-k rate among "
        + "the rows expected to reach stage k − 1 over the rate on all rows (for the convert stage, how much likelier a click is to "
        + "convert than an average request); 1 reproduces the true dependence, below 1 under-states it; "
        + "calibration_ratio_cumulative = calibration_ratio_cumulative of stage k − 1 (the click stage: its calibration_ratio) × "
        + "calibration_ratio × this, by construction; on D, O and D∖O (NaN on C and O∖C, whose rows change with the stage)",
        false, true, MetricRange.NonNegative);

    /// <summary>Every metric, conditional then cumulative, then the dependence ratio.</summary>
    public static IReadOnlyList<MetricDefinition> All { get; } = [.. Conditional, .. Cumulative, Dependence];

    /// <summary>The definition of an id, or null.</summary>
    public static MetricDefinition? Find(string id) => All.FirstOrDefault(d => d.Id == id);

    /// <summary>The range of an id's values; <see cref="MetricRange.Unbounded"/> for an id not listed here.</summary>
    public static MetricRange RangeOf(string id) => Find(id)?.Range ?? MetricRange.Unbounded;
}
