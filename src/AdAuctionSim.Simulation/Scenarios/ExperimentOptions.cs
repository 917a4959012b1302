namespace AdAuctionSim.Simulation.Scenarios;

/// <summary>
/// What <c>adsim run</c> does with a scenario beyond simulating it: the scenario file's <c>models</c>, <c>training</c>,
/// <c>evaluation</c> and <c>sweep</c> sections. <c>adsim simulate</c> checks and ignores them.
/// </summary>
/// <remarks>
/// Model ids and the training option names (label mode, win propensity, DR gradients, device) are kept as the strings
/// of the file: the simulator knows nothing of models (DESIGN.md §8), so the command that trains checks them against
/// the model catalog, naming the file and the field path, before any work starts.
/// </remarks>
public sealed record ExperimentOptions
{
    /// <summary>Model ids to train, in order; empty means every model of the catalog.</summary>
    public IReadOnlyList<string> Models { get; init; } = [];

    public RunTrainingOptions Training { get; init; } = new();

    public RunEvaluationOptions Evaluation { get; init; } = new();

    /// <summary>The dial (or grid of two dials) the run sweeps over; null for a single point.</summary>
    public SweepOptions? Sweep { get; init; }
}

/// <summary>The <c>training</c> section. Null numbers take the trainer's defaults (those of <c>adsim train</c>).</summary>
public sealed record RunTrainingOptions
{
    public int? Epochs { get; init; }
    public int? BatchSize { get; init; }
    public double? LearningRate { get; init; }
    /// <summary>Training seed of repeat 0; repeat r trains with seed + r.</summary>
    public long Seed { get; init; } = 1;
    /// <summary><c>conditional</c> or <c>cumulative</c>.</summary>
    public string LabelMode { get; init; } = "conditional";
    /// <summary>Win-propensity source id (as <c>adsim train --win-propensity</c>).</summary>
    public string WinPropensity { get; init; } = "censored-lognormal";
    /// <summary>Click-propensity source id of the IPS/DR models (as <c>adsim train --click-propensity</c>): <c>model</c> or <c>oracle</c>.</summary>
    public string ClickPropensity { get; init; } = "model";
    /// <summary>DR gradient mode id (as <c>adsim train --dr-gradients</c>).</summary>
    public string DrGradients { get; init; } = "joint-learning";
    /// <summary><c>auto</c>, <c>cpu</c> or <c>cuda</c>.</summary>
    public string Device { get; init; } = "auto";
    /// <summary>Intra-op threads of libtorch; 0 means the processor count.</summary>
    public int Threads { get; init; }
}

/// <summary>The <c>evaluation</c> section: how many repeats, and which model the others are tested against.</summary>
public sealed record RunEvaluationOptions
{
    /// <summary>Repeats per sweep point; each draws a fresh world seed (repeat 0 uses the scenario's seed).</summary>
    public int Repeats { get; init; } = 1;

    /// <summary>Model every other model is compared with (paired t-test across repeats); null for the first model.</summary>
    public string? Baseline { get; init; }
}

/// <summary>One swept dial: a numeric scenario field path and the values it takes.</summary>
/// <param name="Path">Field path as error messages spell it (<c>bias.clickCvrCorrelation</c>, <c>funnel.stages[1].rate</c>),
/// or <c>funnel.depth</c> (keep the first N stages of the funnel).</param>
/// <param name="Values">Values in sweep order.</param>
public sealed record SweepDial(string Path, IReadOnlyList<double> Values);

/// <summary>The <c>sweep</c> section: one dial, or a grid of two (every combination).</summary>
public sealed record SweepOptions(IReadOnlyList<SweepDial> Dials);

/// <summary>A scenario file as <c>adsim run</c> reads it: the scenario and its run sections.</summary>
public sealed record ScenarioFile(Scenario Scenario, ExperimentOptions Experiment);
