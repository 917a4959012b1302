namespace AdAuctionSim.Evaluation;

/// <summary>
/// The evaluation spaces of DESIGN.md §2: every request (D), the won auctions (O), the clicked impressions (C) and
/// their complements within the larger space.
/// </summary>
public enum EvaluationSpace
{
    /// <summary>Every bid request.</summary>
    D,
    /// <summary>Won auctions: the impressions.</summary>
    O,
    /// <summary>Impressions that reached the parent stage of the stage evaluated (for stage 1 this is O itself).</summary>
    C,
    /// <summary>Impressions that did not reach the parent stage.</summary>
    OMinusC,
    /// <summary>Lost bids.</summary>
    DMinusO,
}

/// <summary>
/// One figure of one evaluation: a model (or a reference row such as <c>truth</c> or <c>logging</c>) on one funnel
/// stage in one space. This is the row of <c>metrics.csv</c> and the contract between evaluation and reports.
/// </summary>
/// <param name="Point">The sweep point this run belongs to (for example <c>bias.click_cvr=0.5</c>), empty without a sweep.</param>
/// <param name="Repeat">Index of the repeat (0-based); each repeat has its own world seed.</param>
/// <param name="Seed">The world seed of this repeat.</param>
/// <param name="Model">Model id, or a reference row id.</param>
/// <param name="Stage">Funnel stage name.</param>
/// <param name="Space">Space the figure was computed on.</param>
/// <param name="Metric">Metric id (for example <c>auc_observed</c>, <c>log_loss</c>, <c>ece</c>, <c>bias</c>).</param>
/// <param name="Value">The figure; NaN when undefined on these rows (see <paramref name="Note"/>).</param>
/// <param name="Rows">Rows the figure was computed over.</param>
/// <param name="Note">Why the value is undefined (for example "single class"), empty otherwise.</param>
public sealed record MetricRow(
    string Point, int Repeat, long Seed, string Model, string Stage, EvaluationSpace Space, string Metric,
    double Value, long Rows, string Note = "");

/// <summary>One bin of a reliability diagram: mean prediction against the mean true rate and the observed frequency.</summary>
public sealed record ReliabilityBin(
    string Point, int Repeat, string Model, string Stage, EvaluationSpace Space, int Bin,
    double MeanPrediction, double MeanTrueRate, double ObservedFrequency, long Rows);

/// <summary>Error against the truth within one decile of the true click-through rate q_1.</summary>
public sealed record DecileError(
    string Point, int Repeat, string Model, string Stage, EvaluationSpace Space, int Decile,
    double MeanTrueCtr, double Bias, double Mae, double Rmse, long Rows);

/// <summary>
/// A metric summarised across repeats: mean with its 95% confidence interval (clipped to the metric's range) and,
/// against the baseline model, the paired t-test's p-value (NaN for the baseline itself, for the truth reference row
/// and with fewer than two repeats).
/// </summary>
public sealed record MetricSummary(
    string Point, string Model, string Stage, EvaluationSpace Space, string Metric,
    double Mean, double CiLow, double CiHigh, int Repeats, string Baseline, double MeanDifference, double PValue,
    string IntervalMethod);

/// <summary>
/// A confidence interval of one figure of one run, computed from that run's rows (a bootstrap over requests), for
/// when a single repeat is all there is. <see cref="Statistics.MetricStatistics.Summarise"/> uses it for groups of one repeat.
/// </summary>
/// <param name="Point">Sweep point of the run.</param>
/// <param name="Repeat">Repeat index of the run.</param>
/// <param name="Model">Model id or reference row id.</param>
/// <param name="Stage">Funnel stage name.</param>
/// <param name="Space">Space the figure was computed on.</param>
/// <param name="Metric">Metric id.</param>
/// <param name="Low">Lower end of the 95% interval.</param>
/// <param name="High">Upper end of the 95% interval.</param>
/// <param name="Method">How it was computed, e.g. "poisson-bootstrap percentile (200 resamples, seed 1)".</param>
public sealed record MetricInterval(
    string Point, int Repeat, string Model, string Stage, EvaluationSpace Space, string Metric, double Low, double High, string Method);
