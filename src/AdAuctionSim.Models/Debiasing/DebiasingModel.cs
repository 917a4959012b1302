using AdAuctionSim.Models.Core;
using static TorchSharp.torch;
using TorchSharp;

namespace AdAuctionSim.Models.Debiasing;

/// <summary>One named term of a model's loss: the scalar value and the weight it enters the total with.</summary>
/// <param name="Name">Stable name (<c>ctr</c>, <c>cvr/2</c>, <c>ctcvr/3</c>, …; stage numbers are 1-based).</param>
/// <param name="Weight">λ or w_k the term is multiplied by in the total.</param>
/// <param name="Value">The unweighted scalar.</param>
internal readonly record struct LossTerm(string Name, double Weight, Tensor Value);

/// <summary>
/// What the entire-space and debiasing models (models.md §8–13, §15) share: the loss as an explicit list of named
/// per-row-weighted terms (so tests can check each against a hand computation), the stage weights w_k, and
/// per-epoch diagnostics (weight ESS, propensity floor rates, monotonicity violations).
/// </summary>
/// <remarks>
/// TorchSharp's <c>RegisterComponents</c> only sees fields declared on the concrete type, so this base holds no
/// modules or tensors. Diagnostics are accumulated on the device (no <c>.item()</c> per batch) and only while grad
/// mode is on, so a validation pass under <c>no_grad</c> does not mix into the training statistics; reading
/// <see cref="Diagnostics"/> drains them (call it once per epoch).
/// </remarks>
internal abstract class DebiasingModel : MultiTaskModel
{
    private readonly DiagnosticSums diagnostics = new();

    protected DebiasingModel(string id, ModelContext context) : base(id, context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (FunnelMath.Unsupported(context.Depth) is { } why)
        {
            throw new ArgumentException($"{id}: {why}", nameof(context));
        }
        if (context.StageNames.Count != context.Depth)
        {
            throw new ArgumentException($"{id}: {context.StageNames.Count} stage names for a funnel of depth {context.Depth}", nameof(context));
        }
        if (context.Schema.Count < 1)
        {
            throw new ArgumentException($"{id}: the feature schema has no fields", nameof(context));
        }
        StageWeights = context.StageWeights(id);
    }

    /// <summary>w_k per stage (index k − 1), default 1.</summary>
    protected IReadOnlyList<double> StageWeights { get; }

    /// <summary>Σ weight · value over <see cref="LossTerms"/>.</summary>
    public override Tensor Loss(TrainingBatch batch, ModelOutput output, TrainingStep step)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(output);
        var training = is_grad_enabled();
        OnLoss(step, training);
        Tensor? total = null;
        foreach (var term in LossTerms(batch, output, training ? diagnostics : null))
        {
            using var weight = term.Weight.ToScalar();
            var weighted = term.Value * weight;
            total = total is null ? weighted : total.Plus(weighted);
        }
        return total ?? throw new InvalidOperationException($"{Id}: no loss terms");
    }

    /// <summary>The loss terms of one batch; every weight and propensity in them is detached.</summary>
    /// <param name="batch">Impressions (and lost bids, which every labelled term excludes).</param>
    /// <param name="output">This model's forward output for <paramref name="batch"/>.</param>
    /// <param name="sink">Where to record diagnostics, or null.</param>
    internal abstract IReadOnlyList<LossTerm> LossTerms(TrainingBatch batch, ModelOutput output, DiagnosticSums? sink);

    /// <summary>Called at the start of <see cref="Loss"/> (schedules); <paramref name="training"/> is grad mode.</summary>
    protected virtual void OnLoss(TrainingStep step, bool training)
    {
    }

    /// <summary>The diagnostics accumulated since the last call (per epoch when called once per epoch), then reset.</summary>
    public override IReadOnlyDictionary<string, double> Diagnostics() => diagnostics.Drain();

    /// <summary>Stage k's display name (1-based k) for diagnostic keys.</summary>
    protected string StageName(int stage) => Context.StageNames[stage - 1];
}
