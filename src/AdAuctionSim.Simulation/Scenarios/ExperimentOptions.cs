namespace AdAuctionSim.Simulation.Scenarios;

/// <summary>
/// What <c>adsim run</c> does with a scenario beyond simulating it: the scenario file's <c>models</c>, <c>training</c>,
/// <c>evaluation</c>, <c>sweep</c> and <c>ope</c> sections. <c>adsim simulate</c> checks and ignores them.
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

    /// <summary>Off-policy evaluation; null when the file has no <c>ope</c> section.</summary>
    public OpeOptions? Ope { get; init; }
}

/// <summary>The <c>training</c> section. Null numbers take the trainer's defaults (those of <c>adsim train</c>).</summary>
public sealed record RunTrainingOptions
{
    /// <summary>Most stage weights a list may give (a funnel's most stages), and the largest weight.</summary>
    public const int MaxStageWeights = 16;
    public const double MaxStageWeight = 1e6;

    /// <summary>The largest W_max a run may set (a weight of 1/p̂ is at least 1, so the cap's range is [1, this]).</summary>
    public const double MaxWeightCap = 1e6;

    public int? Epochs { get; init; }
    /// <summary>
    /// Whether training stops early on the validation log loss and keeps the best epoch (default), or trains every epoch
    /// and keeps the last (as <c>adsim train --fixed-epochs</c>).
    /// </summary>
    public bool EarlyStopping { get; init; } = true;
    /// <summary>Epochs without a better validation log loss before training stops (as <c>adsim train --patience</c>); null for the trainer's default.</summary>
    public int? Patience { get; init; }
    public int? BatchSize { get; init; }
    public double? LearningRate { get; init; }
    /// <summary>Training seed of repeat 0; repeat r trains with seed + r.</summary>
    public long Seed { get; init; } = 1;
    /// <summary><c>conditional</c> or <c>cumulative</c>.</summary>
    public string LabelMode { get; init; } = "conditional";
    /// <summary>w_k, each stage's loss weight, one per stage of the funnel (models.md §2: Σ_k w_k L_k); null for all 1.</summary>
    public IReadOnlyList<double>? StageWeights { get; init; }
    /// <summary>Win-propensity source id (as <c>adsim train --win-propensity</c>).</summary>
    public string WinPropensity { get; init; } = "censored-lognormal";
    /// <summary>
    /// What the inverse-win weights divide by (as <c>adsim train --win-weight</c>): <c>policy</c>, π(x), or <c>at-bid</c>,
    /// Ŵ(b_i | x_i) of the fitted win model (models.md §14.3).
    /// </summary>
    public string WinWeight { get; init; } = "policy";
    /// <summary>
    /// How the validation log loss that early stopping minimises weighs the validation impressions (as <c>adsim train
    /// --validation-loss</c>): <c>impressions</c>, equally, or <c>win-weighted</c>, by their inverse win propensity.
    /// </summary>
    public string ValidationLoss { get; init; } = "impressions";
    /// <summary>
    /// W_max, the cap on each combined counterfactual weight of the ESCM² family (as <c>adsim train --max-weight</c>;
    /// models.md §9.5, §15.2); null for none.
    /// </summary>
    public double? MaxWeight { get; init; }
    /// <summary>IPS normaliser id (as <c>adsim train --ips-normalizer</c>): <c>paper</c>, <c>snips</c> or <c>paddle</c>.</summary>
    public string IpsNormalizer { get; init; } = "paper";
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

/// <summary>
/// The <c>ope</c> section: off-policy evaluation of target policies against the simulator's truth (<c>adsim ope</c>, and
/// <c>adsim run</c> when present). Model ids are kept as strings and checked against the catalog by the command.
/// </summary>
public sealed record OpeOptions
{
    /// <summary><c>value</c> (conversion value per request), <c>conversions</c> or <c>surplus</c> (value less the price paid).</summary>
    public string Reward { get; init; } = "value";

    /// <summary>The requests the policies are valued on: <c>test</c>, <c>validation</c>, <c>train</c> or <c>all</c>.</summary>
    public string Split { get; init; } = "test";

    /// <summary>Where DM's and DR's reward model takes r̂_K from: <c>logging</c>, a model id, or <c>truth</c> (the true reward function, a reference).</summary>
    public string RewardModel { get; init; } = "logging";

    /// <summary>Win model of the reward model's Ŵ(b | x): <c>km</c>, <c>censored-lognormal</c> or <c>classifier</c> (unused, and not fitted, with <c>rewardModel: "truth"</c>).</summary>
    public string WinModel { get; init; } = "censored-lognormal";

    /// <summary>λ of clipped IPS.</summary>
    public double Clip { get; init; } = 100;

    /// <summary>τ of Switch-DR.</summary>
    public double Switch { get; init; } = 100;

    /// <summary>Poisson-bootstrap resamples per estimate (0: none).</summary>
    public int Bootstrap { get; init; } = 200;

    /// <summary>Target policies (the logging policy is always valued too, first).</summary>
    public IReadOnlyList<OpePolicyOptions> Policies { get; init; } = [];
}

/// <summary>One target policy of the <c>ope</c> section.</summary>
public sealed record OpePolicyOptions
{
    public string Name { get; init; } = "";
    /// <summary>Per-candidate scores: <c>truth</c>, <c>logging</c> or a model id.</summary>
    public string Scores { get; init; } = "logging";
    /// <summary><c>greedy</c>, <c>softmax</c>, <c>uniform</c> or <c>logging</c>.</summary>
    public string Ad { get; init; } = "greedy";
    public double Temperature { get; init; } = 1;
    /// <summary><c>own</c>, <c>logging</c> or <c>fixed</c>.</summary>
    public string Bid { get; init; } = "own";
    public double BidScale { get; init; } = 1;
    public double Multiplier { get; init; } = 1;
}
