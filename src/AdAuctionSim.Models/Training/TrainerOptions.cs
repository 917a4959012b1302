using System.Text.Json.Serialization;
using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Runtime;
using AdAuctionSim.Models.WinPropensity;

namespace AdAuctionSim.Models.Training;

/// <summary>
/// Where the win propensity a batch carries comes from (<see cref="Core.TrainingBatch.WinPropensity"/>), for the models
/// that read it (ipw-escm2). An estimated source is fitted once per run by <see cref="TrainingRun.FitWinPropensity"/>
/// on the train split (impressions and lost bids, never the logged <c>win_propensity</c> column), before any multi-task
/// model, and π̂(x) = Σ_m π(m)·Ŵ(b_m | x) (models.md §14.3) replaces the dataset's win-propensity tensor. Comparing a
/// run with <see cref="Oracle"/> to one with an estimate tells estimation error from method error (§15.4).
/// </summary>
public enum WinPropensitySource
{
    /// <summary>The logged oracle column <c>win_propensity</c> (true P(win | x) as the simulator logs it), floored.</summary>
    Oracle,
    /// <summary>Every row gets 1: no inverse-win weighting.</summary>
    None,
    /// <summary>Kaplan–Meier per segment and base-bid bucket with pseudo-wins (models.md §14.2 item 2), fitted in-sample.</summary>
    KaplanMeier,
    /// <summary>Censored log-normal regression (Wu et al. 2015; §14.2 item 3), fitted in-sample; the default (§15.4).</summary>
    CensoredLognormal,
    /// <summary>Direct log-logistic win classifier (§14.2 item 1), cross-fitted: out-of-fold π̂ on the train split.</summary>
    Classifier,
}

/// <summary>The command-line / <c>train.json</c> ids of <see cref="WinPropensitySource"/>.</summary>
public static class WinPropensitySources
{
    public const string OracleId = "oracle";
    public const string NoneId = "none";

    private static readonly OptionIds<WinPropensitySource> Table = new("win-propensity source",
        (WinPropensitySource.Oracle, OracleId), (WinPropensitySource.KaplanMeier, WinPropensityModels.KaplanMeier),
        (WinPropensitySource.CensoredLognormal, WinPropensityModels.CensoredLognormal),
        (WinPropensitySource.Classifier, WinPropensityModels.Classifier), (WinPropensitySource.None, NoneId));

    /// <summary>Every id, in the order the command line lists them.</summary>
    public static IReadOnlyList<string> Ids => Table.Ids;

    /// <summary>The id of a source (<c>oracle</c>, <c>km</c>, <c>censored-lognormal</c>, <c>classifier</c>, <c>none</c>).</summary>
    public static string Id(WinPropensitySource source) => Table.Id(source);

    /// <summary>The source with this id (exact, lower case), if any.</summary>
    public static bool TryParse(string? id, out WinPropensitySource source) => Table.TryParse(id, out source);

    /// <summary>Writes and reads <see cref="WinPropensitySource"/> by these ids in JSON (<c>train.json</c>).</summary>
    public static JsonConverter<WinPropensitySource> Json => Table.Json;

    /// <summary>Whether the source is a win model fitted on the logs (not the oracle column, not none).</summary>
    public static bool IsEstimated(WinPropensitySource source) =>
        source is WinPropensitySource.KaplanMeier or WinPropensitySource.CensoredLognormal or WinPropensitySource.Classifier;
}

/// <summary>
/// Which win probability an inverse-win weight divides by (models.md §14.3): the policy propensity π(x) = Σ_m π(m)·W(b_m | x),
/// averaged over the logging bidder's multipliers (lower variance: it does not carry the bid noise), or the win probability
/// at the bid actually placed, W(b_i | x_i) (needs no model of the bidder). Both give unbiased IPW when outcomes do not
/// depend on the bid given x. The logs carry only π(x) (<c>win_propensity</c>); W(b_i | x_i) comes from a fitted win model.
/// </summary>
public enum WinWeightBasis
{
    /// <summary>π(x): the logged oracle column, or a win model's π̂(x). The default.</summary>
    Policy,
    /// <summary>Ŵ(b_i | x_i) of a fitted win model at each request's own bid (out-of-fold for the classifier).</summary>
    AtBid,
}

/// <summary>The command-line / scenario ids of <see cref="WinWeightBasis"/>.</summary>
public static class WinWeightBases
{
    public const string PolicyId = "policy";
    public const string AtBidId = "at-bid";

    private static readonly OptionIds<WinWeightBasis> Table = new("win-weight basis",
        (WinWeightBasis.Policy, PolicyId), (WinWeightBasis.AtBid, AtBidId));

    /// <summary>Every id, default first.</summary>
    public static IReadOnlyList<string> Ids => Table.Ids;

    public static string Id(WinWeightBasis basis) => Table.Id(basis);

    /// <summary>The basis with this id (exact, lower case), if any.</summary>
    public static bool TryParse(string? id, out WinWeightBasis basis) => Table.TryParse(id, out basis);

    /// <summary>Writes and reads <see cref="WinWeightBasis"/> by these ids in JSON (<c>train.json</c>).</summary>
    public static JsonConverter<WinWeightBasis> Json => Table.Json;

    /// <summary>Why <paramref name="basis"/> cannot go with <paramref name="source"/>, or null when it can.</summary>
    public static string? Conflict(WinWeightBasis basis, WinPropensitySource source) =>
        basis == WinWeightBasis.AtBid && !WinPropensitySources.IsEstimated(source)
            ? $"win weight {AtBidId} needs a fitted win model (win propensity {WinPropensityModels.KaplanMeier}, "
                + $"{WinPropensityModels.CensoredLognormal} or {WinPropensityModels.Classifier}), not "
                + $"{WinPropensitySources.Id(source)}: the logs carry only the policy propensity π(x), and the true W(b | x) at the bid is part of the truth"
            : null;
}

/// <summary>
/// Where the click (funnel) propensities of the IPS/DR models come from (escm2-ips, escm2-dr, multi-ipw, multi-dr,
/// ipw-escm2, dcmt): the model's own detached estimate r̂_{k−1} (the methods as published), or the true reach
/// propensities r_{k−1} the simulator logs in the impressions' <c>propensity_&lt;stage&gt;</c> columns. Comparing the two
/// tells propensity-estimation error from method error, as <see cref="WinPropensitySource.Oracle"/> does for wins.
/// </summary>
public enum ClickPropensitySource
{
    /// <summary>The model's own CTR (and earlier-stage) towers, detached: the published methods.</summary>
    Model,
    /// <summary>The logged true reach propensities (<c>propensity_&lt;stage&gt;</c>), floored like an estimate.</summary>
    Oracle,
}

/// <summary>The command-line / scenario ids of <see cref="ClickPropensitySource"/>.</summary>
public static class ClickPropensitySources
{
    public const string ModelId = "model";
    public const string OracleId = "oracle";

    private static readonly OptionIds<ClickPropensitySource> Table = new("click-propensity source",
        (ClickPropensitySource.Model, ModelId), (ClickPropensitySource.Oracle, OracleId));

    /// <summary>Every id, default first.</summary>
    public static IReadOnlyList<string> Ids => Table.Ids;

    public static string Id(ClickPropensitySource source) => Table.Id(source);

    /// <summary>The source with this id (exact, lower case), if any.</summary>
    public static bool TryParse(string? id, out ClickPropensitySource source) => Table.TryParse(id, out source);

    /// <summary>Writes and reads <see cref="ClickPropensitySource"/> by these ids in JSON (<c>train.json</c>).</summary>
    public static JsonConverter<ClickPropensitySource> Json => Table.Json;
}

/// <summary>
/// How the validation log loss, the early-stopping criterion, weighs the validation impressions: equally (models.md
/// §16.3, the default), which scores each epoch on the won slice O; or by the inverse win propensity 1/max(π, ε_w) of
/// the run's source (Hájek-normalised per stage), which under ignorability estimates the log loss over every request
/// of D, the population a debiased model is meant for.
/// </summary>
public enum ValidationWeighting
{
    /// <summary>Every validation impression weighs 1 (models.md §16.3).</summary>
    Impressions,
    /// <summary>Each validation impression weighs 1/max(π, ε_w), π from the run's win-propensity source.</summary>
    WinWeighted,
}

/// <summary>The command-line / scenario ids of <see cref="ValidationWeighting"/>.</summary>
public static class ValidationWeightings
{
    public const string ImpressionsId = "impressions";
    public const string WinWeightedId = "win-weighted";

    private static readonly OptionIds<ValidationWeighting> Table = new("validation loss",
        (ValidationWeighting.Impressions, ImpressionsId), (ValidationWeighting.WinWeighted, WinWeightedId));

    /// <summary>Every id, default first.</summary>
    public static IReadOnlyList<string> Ids => Table.Ids;

    public static string Id(ValidationWeighting weighting) => Table.Id(weighting);

    /// <summary>The weighting with this id (exact, lower case), if any.</summary>
    public static bool TryParse(string? id, out ValidationWeighting weighting) => Table.TryParse(id, out weighting);

    /// <summary>Writes and reads <see cref="ValidationWeighting"/> by these ids in JSON (<c>train.json</c>).</summary>
    public static JsonConverter<ValidationWeighting> Json => Table.Json;

    /// <summary>Why <paramref name="weighting"/> cannot go with <paramref name="source"/>, or null when it can.</summary>
    public static string? Conflict(ValidationWeighting weighting, WinPropensitySource source) =>
        weighting == ValidationWeighting.WinWeighted && source == WinPropensitySource.None
            ? $"validation loss {WinWeightedId} needs a win propensity ({WinPropensitySources.Id(WinPropensitySource.Oracle)} or a fitted win model), not "
                + WinPropensitySources.Id(WinPropensitySource.None)
            : null;
}

/// <summary>
/// How the trainer runs, with the defaults of models.md §16.3 (2-core CPU, 10⁵–10⁶ impressions). Validated by
/// <see cref="Validate"/> before any work.
/// </summary>
public sealed record TrainerOptions
{
    /// <summary>
    /// auto, cpu or cuda (<see cref="TorchRuntime.ParseDevice"/>): what the caller initialises the runtime with and loads
    /// the dataset onto. <see cref="Trainer.Fit"/> itself trains on the dataset's device.
    /// </summary>
    public string Device { get; init; } = "auto";

    /// <summary>
    /// Training rows per batch; for a model that also trains on lost bids (ipw-escm2-dr), impressions per batch, with the
    /// lost bids in their proportion on top (<see cref="Trainer.BatchRows"/>).
    /// </summary>
    public int BatchSize { get; init; } = 2048;

    /// <summary>Most epochs; early stopping may end training sooner (every one of them is trained without it).</summary>
    public int Epochs { get; init; } = 10;

    /// <summary>Adam learning rate (β = 0.9, 0.999, ε = 1e-8, as PyTorch).</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>L2 weight decay of Adam on the embedding tables only; every other parameter has none (models.md §16.3).</summary>
    public double EmbeddingWeightDecay { get; init; } = 1e-6;

    /// <summary>Epochs without a better validation log loss before training stops (with <see cref="EarlyStopping"/>).</summary>
    [JsonIgnore]
    public int Patience { get; init; } = 2;

    /// <summary><see cref="Patience"/> as <c>train.json</c> writes it: left out without early stopping, where it plays no part.</summary>
    [JsonPropertyName("patience")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? PatienceWhenStopping => EarlyStopping ? Patience : null;

    /// <summary>
    /// Whether training stops after <see cref="Patience"/> epochs without a better validation log loss and keeps the state
    /// of the best epoch (default), or trains every one of <see cref="Epochs"/> and keeps the last epoch's state: a fixed
    /// schedule, as papers report (ESMM trains 2 epochs), and the way to read models at one epoch, since early stopping on
    /// a log loss picks a different epoch per model and per repeat.
    /// </summary>
    public bool EarlyStopping { get; init; } = true;

    /// <summary>Seed of torch's generators: parameter initialisation and batch order.</summary>
    public long Seed { get; init; } = 1;

    /// <summary>Intra-op threads for <see cref="TorchRuntime.Initialize"/>; 0 keeps libtorch's default (one per physical core).</summary>
    public int Threads { get; init; }

    /// <summary>
    /// Win propensity of the batches (models.md §15.4; default censored-lognormal). <see cref="Trainer.Fit"/> reads the
    /// dataset's win-propensity tensor for every source but <see cref="WinPropensitySource.None"/>; filling it with an
    /// estimate is <see cref="TrainingRun.FitWinPropensity"/>'s job (done once per run by <see cref="TrainingRun.Execute"/>).
    /// </summary>
    public WinPropensitySource WinPropensity { get; init; } = WinPropensitySource.CensoredLognormal;

    /// <summary>
    /// Which win probability the inverse-win weights use: π(x) (default) or Ŵ(b_i | x_i) at the request's own bid, which
    /// needs an estimated <see cref="WinPropensity"/> source.
    /// </summary>
    public WinWeightBasis WinWeight { get; init; } = WinWeightBasis.Policy;

    /// <summary>
    /// How the validation log loss (the early-stopping criterion and the curves' <c>validation_log_loss</c>) weighs the
    /// validation impressions: equally (default) or by their inverse win propensity, which needs a
    /// <see cref="WinPropensity"/> source other than none (a fitted one is then fitted for every model of the run).
    /// </summary>
    public ValidationWeighting ValidationLoss { get; init; } = ValidationWeighting.Impressions;

    /// <summary>Click (reach) propensities of the IPS/DR models: their own estimates (default) or the logged truth.</summary>
    public ClickPropensitySource ClickPropensity { get; init; } = ClickPropensitySource.Model;

    /// <summary>Rows per forward pass when validating and predicting (no gradients, so larger than training batches).</summary>
    /// <remarks>4096, not more: on a CPU the MoE models' activations at 16,384 rows ([B, experts, 64] floats, 33.5 MB)
    /// pass glibc's largest mmap threshold (32 MiB, <see cref="Runtime.HostHeap"/>), so every batch mapped, zero-filled
    /// and unmapped them; omoe's forward went from 4.3 to 2.2 µs a row, and the quickstart's predict phase (16 models,
    /// every request of D) from 10–19 s to 7 s.</remarks>
    public int EvaluationBatchSize { get; init; } = DefaultEvaluationBatchSize;

    /// <summary>The default of <see cref="EvaluationBatchSize"/>, also the default batch of the scoring functions.</summary>
    public const int DefaultEvaluationBatchSize = 4096;

    /// <summary>Batches between two cheap checks for a non-finite loss (one device read each); also checked at epoch end.</summary>
    public int DivergenceCheckInterval { get; init; } = 50;

    /// <summary>Every problem with these options, or none.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (!TorchRuntime.DeviceNames.Contains(Device.Trim().ToLowerInvariant(), StringComparer.Ordinal))
        {
            problems.Add($"device \"{Device}\" is not one of {string.Join(", ", TorchRuntime.DeviceNames)}");
        }
        if (BatchSize < 1)
        {
            problems.Add($"batch size {BatchSize} must be at least 1");
        }
        if (Epochs < 1)
        {
            problems.Add($"epochs {Epochs} must be at least 1");
        }
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
        {
            problems.Add($"learning rate {LearningRate} must be a finite number above 0");
        }
        if (!(EmbeddingWeightDecay >= 0) || double.IsInfinity(EmbeddingWeightDecay))
        {
            problems.Add($"embedding weight decay {EmbeddingWeightDecay} must be a finite number ≥ 0");
        }
        if (Patience < 1)
        {
            problems.Add($"patience {Patience} must be at least 1");
        }
        if (Threads < 0)
        {
            problems.Add($"threads {Threads} must be ≥ 0 (0: libtorch's default)");
        }
        if (!Enum.IsDefined(WinPropensity))
        {
            problems.Add($"win-propensity source {(int)WinPropensity} is not one of {string.Join(", ", WinPropensitySources.Ids)}");
        }
        if (!Enum.IsDefined(WinWeight))
        {
            problems.Add($"win-weight basis {(int)WinWeight} is not one of {string.Join(", ", WinWeightBases.Ids)}");
        }
        else if (Enum.IsDefined(WinPropensity) && WinWeightBases.Conflict(WinWeight, WinPropensity) is { } conflict)
        {
            problems.Add(conflict);
        }
        if (!Enum.IsDefined(ValidationLoss))
        {
            problems.Add($"validation loss {(int)ValidationLoss} is not one of {string.Join(", ", ValidationWeightings.Ids)}");
        }
        else if (Enum.IsDefined(WinPropensity) && ValidationWeightings.Conflict(ValidationLoss, WinPropensity) is { } weighting)
        {
            problems.Add(weighting);
        }
        if (!Enum.IsDefined(ClickPropensity))
        {
            problems.Add($"click-propensity source {(int)ClickPropensity} is not one of {string.Join(", ", ClickPropensitySources.Ids)}");
        }
        if (EvaluationBatchSize < 1)
        {
            problems.Add($"evaluation batch size {EvaluationBatchSize} must be at least 1");
        }
        if (DivergenceCheckInterval < 1)
        {
            problems.Add($"divergence check interval {DivergenceCheckInterval} must be at least 1");
        }
        return problems;
    }

    /// <exception cref="ArgumentException">Lists every problem at once.</exception>
    public void Validate()
    {
        var problems = Problems();
        if (problems.Count > 0)
        {
            throw new ArgumentException("invalid trainer options: " + string.Join("; ", problems));
        }
    }
}
