using System.Text.Json.Serialization;
using TorchSharp;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Core;

/// <summary>
/// What a model's logits mean (models.md §0.1): conditional heads emit a_k with q̂_k = σ(a_k); cumulative heads emit
/// c_k with r̂_k = σ(c_k).
/// </summary>
public enum HeadKind
{
    Conditional,
    Cumulative,
}

/// <summary>Label mode of the generic multi-task baselines (models.md §0.1).</summary>
public enum LabelMode
{
    /// <summary>Stage k's loss on rows with s_{k−1} = 1 only (the classic click-space baseline).</summary>
    Conditional,
    /// <summary>Stage k's loss on all impressions with the cumulative label s_k.</summary>
    Cumulative,
}

/// <summary>
/// The observed categorical fields a model may read, with their cardinalities (reserved unseen bucket included).
/// Built from the logged schema; the shared embedding table places field f at <see cref="Offsets"/>[f].
/// </summary>
public sealed record FeatureSchema(IReadOnlyList<string> Fields, IReadOnlyList<int> Cardinalities)
{
    public int Count => Fields.Count;

    public IReadOnlyList<long> Offsets { get; } = Cumulative(Cardinalities);

    public long TotalRows => Offsets.Count == 0 ? 0 : Offsets[^1] + Cardinalities[^1];

    private static long[] Cumulative(IReadOnlyList<int> cardinalities)
    {
        var offsets = new long[cardinalities.Count];
        for (var f = 1; f < offsets.Length; f++)
        {
            offsets[f] = offsets[f - 1] + cardinalities[f - 1];
        }
        return offsets;
    }
}

/// <summary>Everything a model needs to build itself: funnel depth, stage names, the feature schema and its options.</summary>
public sealed record ModelContext(int Depth, IReadOnlyList<string> StageNames, FeatureSchema Schema, ModelOptions Options)
{
    /// <summary>The stage weights w_k of the options (default 1 each), checked against the depth, for model <paramref name="id"/>.</summary>
    public double[] StageWeights(string id)
    {
        if (Options.StageWeights is not { } weights)
        {
            return Enumerable.Repeat(1.0, Depth).ToArray();
        }
        if (weights.Count != Depth)
        {
            throw new ArgumentException($"{id}: {weights.Count} stage weights for a funnel of depth {Depth}", nameof(Options));
        }
        foreach (var w in weights)
        {
            if (!double.IsFinite(w) || w < 0)
            {
                throw new ArgumentException($"{id}: stage weight {w}; expected a finite value ≥ 0", nameof(Options));
            }
        }
        return [.. weights];
    }
}

/// <summary>
/// The normaliser of an IPS counterfactual risk (models.md §9.5 <c>ipsNormalizer</c>) over a batch B of impressions,
/// with w_i = s_{k−1,i}/p̂_{k−1,i} (times ū_i for ipw-escm2) and δ_i the stage's per-row loss.
/// </summary>
public enum IpsNormalizer
{
    /// <summary>The paper's Σ w δ / |B| (Hájek Σ w δ / Σ ū with win weights), p̂ floored at ε_c.</summary>
    Paper,
    /// <summary>Self-normalised: Σ w δ / Σ w, p̂ floored at ε_c (bounded by the largest δ; biased, lower variance).</summary>
    Snips,
    /// <summary>
    /// PaddleRec's <c>counterfact_ipw</c> (§9.3): Σ s δ · min(1 / max(p̂ · n, 10⁻⁶), 15) with n the batch's rows that
    /// reached stage k − 1, i.e. 1/n Σ s δ/p̂ with the cap 15 as a batch-dependent floor p̂ ≥ 1/(15n) instead of ε_c.
    /// Unweighted: not defined with inverse-win weights.
    /// </summary>
    Paddle,
}

/// <summary>The command-line / scenario ids of <see cref="IpsNormalizer"/>.</summary>
public static class IpsNormalizers
{
    public const string PaperId = "paper";
    public const string SnipsId = "snips";
    public const string PaddleId = "paddle";

    private static readonly OptionIds<IpsNormalizer> Table = new("IPS normaliser",
        (IpsNormalizer.Paper, PaperId), (IpsNormalizer.Snips, SnipsId), (IpsNormalizer.Paddle, PaddleId));

    /// <summary>Every id, default first.</summary>
    public static IReadOnlyList<string> Ids => Table.Ids;

    public static string Id(IpsNormalizer normalizer) => Table.Id(normalizer);

    /// <summary>The normaliser with this id (exact, lower case), if any.</summary>
    public static bool TryParse(string? id, out IpsNormalizer normalizer) => Table.TryParse(id, out normalizer);

    /// <summary>Writes and reads <see cref="IpsNormalizer"/> by these ids in JSON (<c>train.json</c>).</summary>
    public static JsonConverter<IpsNormalizer> Json => Table.Json;

    /// <summary>Why the win-weighted IPS model (ipw-escm2) refuses <see cref="IpsNormalizer.Paddle"/>.</summary>
    public const string PaddleWithWinWeights = $"IPS normaliser {PaddleId} reproduces PaddleRec's unweighted counterfact_ipw and "
        + $"is not defined with ipw-escm2's inverse-win weights; use {PaperId} or {SnipsId}";

    /// <summary>Why model <paramref name="modelId"/> cannot train with <paramref name="normalizer"/>, or null when it can.</summary>
    public static string? Conflict(string modelId, IpsNormalizer normalizer) =>
        normalizer == IpsNormalizer.Paddle && modelId == Debiasing.Escm2Model.IpwEscm2Id ? PaddleWithWinWeights : null;
}

/// <summary>
/// Hyper-parameters shared by the suite, with the defaults of models.md §16.3 (2-core CPU, 10⁵–10⁶ impressions).
/// Model-specific options live beside their model.
/// </summary>
public sealed record ModelOptions
{
    public int EmbeddingDim { get; init; } = 8;
    public IReadOnlyList<int> Hidden { get; init; } = [128, 64];
    public int Experts { get; init; } = 4;
    public int ExpertHidden { get; init; } = 64;
    public IReadOnlyList<int> Tower { get; init; } = [32];
    public LabelMode LabelMode { get; init; } = LabelMode.Conditional;
    /// <summary>Per-stage loss weights w_k (default 1).</summary>
    public IReadOnlyList<double>? StageWeights { get; init; }
    /// <summary>ESCM² λ_c (counterfactual risk) and λ_g (global risk); Multi-IPW/DR use λ_c = 1, λ_g = 0.</summary>
    public double LambdaC { get; init; } = 0.1;
    public double LambdaG { get; init; } = 1.0;
    /// <summary>ε_c: floor of a click (funnel) propensity used as a weight.</summary>
    public double PropensityFloor { get; init; } = 0.01;
    /// <summary>ε_w: floor of a win propensity used as a weight.</summary>
    public double WinPropensityFloor { get; init; } = 0.01;
    /// <summary>
    /// W_max, the optional cap on each combined counterfactual weight of the ESCM² family (ipw-escm2's ū·s/p̂, the others'
    /// s/p̂; models.md §9.5 maxWeight, §15.2); null (the default) for no cap. Rows at the cap count in the weight's
    /// floor_rate diagnostic. §15.4: on deep, rarely won and rarely clicked traffic, clip the product, not only the factors.
    /// </summary>
    public double? MaxWeight { get; init; }
    /// <summary>
    /// How the IPS models (escm2-ips, multi-ipw, ipw-escm2) normalise their counterfactual risk (models.md §9.5
    /// ipsNormalizer): the paper's 1/|B| (default), self-normalised (SNIPS) or PaddleRec's (§9.3).
    /// </summary>
    public IpsNormalizer IpsNormalizer { get; init; } = IpsNormalizer.Paper;
    /// <summary>AITM calibrator weight α (mean over the batch, as the official code).</summary>
    public double AitmAlpha { get; init; } = 0.6;
    public int Seed { get; init; } = 1;
}

/// <summary>
/// One mini-batch of the logged view on the training device. Rows are impressions (labels observed) and, for models
/// that use them, lost bids (no labels). Nothing here comes from the truth.
/// </summary>
public sealed class TrainingBatch : IDisposable
{
    public TrainingBatch(Tensor features, Tensor labels, Tensor won, Tensor winPropensity, Tensor? reachPropensity = null)
    {
        Features = features;
        Labels = labels;
        Won = won;
        WinPropensity = winPropensity;
        ReachPropensity = reachPropensity;
    }

    /// <summary>[B, F] int64 rows of the shared embedding table (field offsets already added).</summary>
    public Tensor Features { get; }
    /// <summary>[B, K] float32 cumulative labels s_k; zero on lost bids.</summary>
    public Tensor Labels { get; }
    /// <summary>[B] float32: 1 for an impression, 0 for a lost bid.</summary>
    public Tensor Won { get; }
    /// <summary>
    /// [B] float32 win propensity for inverse-win weighting (oracle as logged, or estimated), not floored: the model that
    /// reads it applies <see cref="ModelOptions.WinPropensityFloor"/> and reports the share of rows at the floor.
    /// </summary>
    public Tensor WinPropensity { get; }
    /// <summary>
    /// [B, K−1] float32 true reach propensities r_1…r_{K−1} (the logged oracle columns, not floored) when the run asks
    /// for the true click propensities; null when IPS/DR models use their own detached estimates r̂ (the default).
    /// </summary>
    public Tensor? ReachPropensity { get; }

    public long Size => Features.shape[0];

    public void Dispose()
    {
        Features.Dispose();
        Labels.Dispose();
        Won.Dispose();
        WinPropensity.Dispose();
        ReachPropensity?.Dispose();
    }
}

/// <summary>A model's forward output: [B, K] logits of its head kind, plus named auxiliary outputs (imputation heads, …).</summary>
public sealed class ModelOutput(Tensor logits, HeadKind kind, IReadOnlyDictionary<string, Tensor>? extras = null)
{

    public Tensor Logits { get; } = logits;
    public HeadKind Kind { get; } = kind;
    public IReadOnlyDictionary<string, Tensor> Extras { get; } = extras ?? new Dictionary<string, Tensor>();

    /// <summary>log r̂_k, [B, K], computed in log space (models.md §0.3).</summary>
    public Tensor LogCumulative() => Kind == HeadKind.Conditional
        ? torch.nn.functional.logsigmoid(Logits).cumsum(1)
        : torch.nn.functional.logsigmoid(Logits);

    /// <summary>log q̂_k, [B, K]; for cumulative heads log r̂_k − log r̂_{k−1} clamped at 0 (models.md §0.3).</summary>
    public Tensor LogConditional()
    {
        if (Kind == HeadKind.Conditional)
        {
            return torch.nn.functional.logsigmoid(Logits);
        }
        var logR = torch.nn.functional.logsigmoid(Logits);
        var previous = torch.cat([torch.zeros_like(logR.narrow(1, 0, 1)), logR.narrow(1, 0, logR.shape[1] - 1)], 1);
        return (logR - previous).clamp_max(HeldScalars.Zero);
    }
}

/// <summary>
/// A model whose output biases start from the train split's label rates rather than from 0 (a logit of 0 is a rate of
/// 1/2): <see cref="Training.Trainer.Fit"/> calls <see cref="InitialiseFromLabelRates"/> once, before the first step.
/// </summary>
internal interface ILabelRateInitialised
{
    /// <summary>
    /// Sets the output biases from <paramref name="cumulativeRates"/>: per stage k, the share of the train impressions
    /// with s_k = 1 (the logged labels; nothing from the truth).
    /// </summary>
    void InitialiseFromLabelRates(IReadOnlyList<double> cumulativeRates);
}

/// <summary>Where training is: the global step (for schedules such as APEM's γ) and the total planned steps.</summary>
public readonly record struct TrainingStep(long Step, long TotalSteps, int Epoch);

/// <summary>
/// A multi-task funnel model: forward from feature rows to per-stage logits, and its own loss as models.md specifies
/// (which rows, which labels, which weights, what is detached). The trainer owns batching, the optimiser and devices.
/// </summary>
public abstract class MultiTaskModel : nn.Module<Tensor, ModelOutput>
{
    protected MultiTaskModel(string id, ModelContext context) : base(id)
    {
        Id = id;
        Context = context;
    }

    /// <summary>Stable id (<c>mmoe</c>, <c>escm2-ips</c>, …).</summary>
    public string Id { get; }
    public ModelContext Context { get; }
    public int Depth => Context.Depth;
    public abstract HeadKind Kind { get; }

    /// <summary>Whether batches should also hold lost bids (models that use D∖O, such as the DR variant over D).</summary>
    public virtual bool UsesLostBids => false;

    /// <summary>The scalar training loss of one batch.</summary>
    public abstract Tensor Loss(TrainingBatch batch, ModelOutput output, TrainingStep step);

    /// <summary>Diagnostics to log per epoch (gate weights, ESS, …); empty by default.</summary>
    public virtual IReadOnlyDictionary<string, double> Diagnostics() => new Dictionary<string, double>();
}
