namespace AdAuctionSim.Evaluation.Metrics;

/// <summary>
/// A figure that may be undefined on the rows it was asked for: then <see cref="Value"/> is NaN and
/// <see cref="Note"/> says why (for example "single class: all 12 labels are 0"), never a silent NaN.
/// </summary>
public readonly record struct MetricValue(double Value, string Note)
{
    /// <summary>Whether the figure is defined on its rows.</summary>
    public bool IsDefined => Note.Length == 0;

    /// <summary>A defined figure.</summary>
    public static MetricValue Of(double value) => new(value, "");

    /// <summary>An undefined figure and the reason.</summary>
    public static MetricValue Undefined(string why) => new(double.NaN, why);

    /// <summary>The note of a figure computed over no rows.</summary>
    public const string NoRows = "no rows";
}
