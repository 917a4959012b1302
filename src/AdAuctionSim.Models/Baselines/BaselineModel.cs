using AdAuctionSim.Models.Core;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Baselines;

/// <summary>
/// What the generic multi-task baselines (models.md §1–7) share: the head kind given by the label mode, and the loss
/// of §1/§2/§6.2. Subclasses only build their network and its forward pass.
/// </summary>
/// <remarks>
/// TorchSharp's <c>RegisterComponents</c> only sees fields declared on the concrete type, so this base holds no
/// modules or tensors; every subclass keeps its own and calls <c>RegisterComponents()</c> at the end of its constructor.
/// </remarks>
internal abstract class BaselineModel : MultiTaskModel
{
    private readonly float[] stageWeights;

    protected BaselineModel(string id, ModelContext context) : base(id, context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (Unsupported(context.Depth) is { } why)
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
        stageWeights = [.. context.StageWeights(id).Select(w => (float)w)];
        Kind = context.Options.LabelMode == LabelMode.Cumulative ? HeadKind.Cumulative : HeadKind.Conditional;
    }

    /// <summary>Conditional (logits a_k) in the default label mode, cumulative (logits c_k) in cumulative mode (models.md §0.1).</summary>
    public override HeadKind Kind { get; }

    /// <summary>Why a baseline cannot serve a funnel of depth <paramref name="depth"/>, or null: they all serve any K ≥ 2.</summary>
    public static string? Unsupported(int depth) =>
        depth >= 2 ? null : $"a multi-task funnel model needs at least 2 stages, got {depth}";

    public override Tensor Loss(TrainingBatch batch, ModelOutput output, TrainingStep step) =>
        BaselineLoss.Weighted(batch, output, stageWeights);

    /// <summary>Rejects feature rows that are not [B, F] for this schema (the embedding would fail less clearly).</summary>
    protected static void CheckFeatures(Tensor features, FeatureSchema schema)
    {
        if (features.dim() != 2 || features.shape[1] != schema.Count)
        {
            throw new ArgumentException($"expected features [B, {schema.Count}], got [{string.Join(", ", features.shape)}]", nameof(features));
        }
    }
}
