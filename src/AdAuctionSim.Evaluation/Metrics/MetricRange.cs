namespace AdAuctionSim.Evaluation.Metrics;

/// <summary>
/// The values a metric (or, in the OPE report, a policy's value per request) can take: an AUC, an ECE or an error of probabilities lies in [0, 1], a log loss, a normalised
/// entropy or a calibration ratio in [0, ∞), a bias of probabilities in [−1, 1]. A confidence interval is clipped to
/// it: the Student t interval of two repeats is symmetric and wide, and ends outside the range (an AUC above 1, a
/// negative MAE) say nothing the clipped interval does not.
/// </summary>
/// <param name="Min">Smallest value (−∞ when unbounded below).</param>
/// <param name="Max">Largest value (+∞ when unbounded above).</param>
public readonly record struct MetricRange(double Min, double Max)
{
    /// <summary>[0, 1]: AUCs, calibration errors, errors of probabilities.</summary>
    public static MetricRange Probability { get; } = new(0, 1);

    /// <summary>[0, ∞): losses and ratios.</summary>
    public static MetricRange NonNegative { get; } = new(0, double.PositiveInfinity);

    /// <summary>[−1, 1]: a signed difference of two probabilities.</summary>
    public static MetricRange SignedProbability { get; } = new(-1, 1);

    /// <summary>(−∞, ∞): no bound (a metric whose range is not known).</summary>
    public static MetricRange Unbounded { get; } = new(double.NegativeInfinity, double.PositiveInfinity);

    /// <summary>The interval [low, high] clipped to the range; NaN ends stay NaN.</summary>
    public (double Low, double High) Clip(double low, double high) => (Clamp(low), Clamp(high));

    private double Clamp(double value) => value < Min ? Min : value > Max ? Max : value;

    /// <summary>The range in interval notation, e.g. <c>[0, 1]</c> or <c>[0, ∞)</c>.</summary>
    public override string ToString() =>
        (double.IsNegativeInfinity(Min) ? "(−∞" : $"[{Min.ToString(System.Globalization.CultureInfo.InvariantCulture)}") + ", "
        + (double.IsPositiveInfinity(Max) ? "∞)" : $"{Max.ToString(System.Globalization.CultureInfo.InvariantCulture)}]");
}
