using AdAuctionSim.Evaluation;

namespace AdAuctionSim.Reports.Documents;

/// <summary>Wall time of one phase of a run, and what it covers.</summary>
/// <param name="Phase">simulate, load, train, predict, merge, evaluate, report.</param>
/// <param name="Unit">What the phase worked on (<c>point 0, repeat 1, model mmoe</c>).</param>
/// <param name="Seconds">Wall seconds.</param>
/// <param name="Covers">What the time includes and on what (device, threads).</param>
/// <param name="Reused">Done by an earlier attempt of the run and reused by <c>--resume</c>.</param>
public sealed record PhaseTiming(string Phase, string Unit, double Seconds, string Covers, bool Reused = false);

/// <summary>The seeds of one repeat at one sweep point.</summary>
public sealed record RepeatSeeds(string Point, int Repeat, long WorldSeed, long TrainingSeed);

/// <summary>One realised-bias figure of one simulation (from its manifest).</summary>
public sealed record RealisedBiasFigure(string Point, int Repeat, string Name, double Value);

/// <summary>One epoch of one model's training curve.</summary>
/// <param name="Point">Sweep point label.</param>
/// <param name="Repeat">Repeat.</param>
/// <param name="Model">Model id.</param>
/// <param name="Epoch">Epoch, from 1.</param>
/// <param name="TrainLoss">Mean training loss of the epoch.</param>
/// <param name="ValidationLogLoss">The early-stopping criterion after the epoch.</param>
/// <param name="ValidationCalibration">Σ r̂_K / Σ s_K of the deepest stage on the validation impressions after the epoch
/// (weighted like the validation loss); NaN when the curves file has no such column.</param>
public sealed record TrainingCurvePoint(string Point, int Repeat, string Model, int Epoch, double TrainLoss, double ValidationLogLoss,
    double ValidationCalibration = double.NaN);

/// <summary>A sweep point: its label and the value of each swept dial.</summary>
public sealed record ReportPoint(string Label, IReadOnlyList<double> Values);

/// <summary>Everything a run report shows. Built by the run command; written by <see cref="RunReportWriter"/>.</summary>
public sealed record RunReportData
{
    public required string RunId { get; init; }
    public required string ScenarioName { get; init; }
    public required string ScenarioFile { get; init; }
    /// <summary>The scenario as resolved (every default filled in), with the run sections.</summary>
    public required string ResolvedScenario { get; init; }
    public required string CodeVersion { get; init; }
    public required string Device { get; init; }
    public required int Threads { get; init; }
    public required string Status { get; init; }
    public DateTimeOffset Started { get; init; }
    public DateTimeOffset Finished { get; init; }
    public required IReadOnlyList<string> Models { get; init; }
    /// <summary>
    /// The funnel's stages in order (the first is the click stage); empty: the order in which the metrics name them.
    /// </summary>
    public IReadOnlyList<string> Stages { get; init; } = [];
    public required string Baseline { get; init; }
    /// <summary>Swept dial paths (none without a sweep).</summary>
    public IReadOnlyList<string> Dials { get; init; } = [];
    public required IReadOnlyList<ReportPoint> Points { get; init; }
    public IReadOnlyList<RepeatSeeds> Seeds { get; init; } = [];
    public IReadOnlyList<PhaseTiming> Timings { get; init; } = [];
    public IReadOnlyList<RealisedBiasFigure> RealisedBias { get; init; } = [];
    /// <summary>What each realised-bias figure means, by its name before any "[…]" (a figure without an entry shows none).</summary>
    public IReadOnlyDictionary<string, string> RealisedBiasMeanings { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<MetricRow> Metrics { get; init; } = [];
    public IReadOnlyList<MetricSummary> Summaries { get; init; } = [];
    public IReadOnlyList<ReliabilityBin> Reliability { get; init; } = [];
    public IReadOnlyList<DecileError> Deciles { get; init; } = [];
    public IReadOnlyList<TrainingCurvePoint> Curves { get; init; } = [];
    /// <summary>Whether training stopped early and kept each model's best epoch (true) or trained every epoch and kept the last.</summary>
    public bool EarlyStopping { get; init; } = true;
    /// <summary>Off-policy evaluation (the scenario's <c>ope</c> section); null when the run has none.</summary>
    public OpeReportData? Ope { get; init; }
}
