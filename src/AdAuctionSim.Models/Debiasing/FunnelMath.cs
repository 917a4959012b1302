using AdAuctionSim.Models.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Debiasing;

/// <summary>Per-row building blocks shared by the debiasing losses (models.md §0.3, §9.6, §15.2).</summary>
/// <remarks>
/// Every function returns per-row vectors [B] or takes them; reductions happen only in <see cref="Mean"/>, after the
/// row weights are applied (the MMLRec sum-before-weighting bug, models.md §9.4).
/// </remarks>
internal static class FunnelMath
{
    private static readonly Scalar NormaliserFloor = 1e-12.ToScalar();

    /// <summary>Why a model of this family cannot serve a funnel of depth <paramref name="depth"/>, or null.</summary>
    public static string? Unsupported(int depth) => depth >= 2
        ? null
        : $"an entire-space funnel model needs at least 2 stages (a click and a post-click stage), got {depth}";

    /// <summary>Checks that labels are [B, K] beside logits [B, K] and returns them in the logits' dtype.</summary>
    public static Tensor Labels(TrainingBatch batch, ModelOutput output)
    {
        var logits = output.Logits;
        var labels = batch.Labels;
        if (labels.dim() != 2 || logits.dim() != 2 || labels.shape[0] != logits.shape[0] || labels.shape[1] != logits.shape[1])
        {
            throw new ArgumentException(
                $"labels [{string.Join(", ", labels.shape)}] do not match logits [{string.Join(", ", logits.shape)}]", nameof(batch));
        }
        return labels.to_type(logits.dtype);
    }

    /// <summary>1 on impressions, 0 on lost bids, [B] in <paramref name="dtype"/>: the row weight of every labelled term.</summary>
    public static Tensor Won(TrainingBatch batch, ScalarType dtype) => (batch.Won.to_type(dtype) > HeldScalars.Half).to_type(dtype);

    /// <summary>Column j (0-based) of a [B, K] matrix as [B].</summary>
    public static Tensor Col(Tensor matrix, int j) => matrix.select(1, j);

    /// <summary>The normaliser Σ_i v_i of row weights v (|O| in the batch for v = won), never 0.</summary>
    public static Tensor Normaliser(Tensor rowWeight) => rowWeight.sum().clamp_min(NormaliserFloor);

    /// <summary>Σ_i v_i · x_i / z: a per-row vector weighted, then reduced.</summary>
    public static Tensor Mean(Tensor perRow, Tensor rowWeight, Tensor normaliser) => (perRow * rowWeight).sum() / normaliser;

    /// <summary>
    /// The detached, floored propensity of having reached stage k − 1 (k 1-based, k ≥ 2) and whether the floor was
    /// hit: p̂_{k−1} = max(sg(r̂_{k−1}), ε) from log r̂ (models.md §9.6: the cumulative propensity is clipped, never the
    /// factors).
    /// </summary>
    /// <remarks>
    /// When the batch carries the true reach propensities (<see cref="TrainingBatch.ReachPropensity"/>, a run with
    /// <c>clickPropensity = oracle</c>), r_{k−1} replaces the model's r̂_{k−1}, floored the same way.
    /// </remarks>
    public static (Tensor Propensity, Tensor Floored) ReachPropensity(TrainingBatch batch, Tensor logCumulative, int stage, double floor)
    {
        var raw = Reach(batch, logCumulative, stage - 1);
        using var held = floor.ToScalar();
        return (raw.clamp_min(held), raw < held);
    }

    /// <summary>
    /// The detached, unfloored probability r_j of reaching stage j (1-based; r_0 = 1): the batch's true value when it
    /// carries one, else exp(log r̂_j).
    /// </summary>
    public static Tensor Reach(TrainingBatch batch, Tensor logCumulative, int stage)
    {
        if (stage == 0)
        {
            return ones_like(Col(logCumulative, 0)).detach();
        }
        return batch.ReachPropensity is { } oracle
            ? Col(oracle, stage - 1).to_type(logCumulative.dtype).detach()
            : Col(logCumulative, stage - 1).detach().exp();
    }

    /// <summary>The label s_{k−1} of the stage before k (k 1-based; s_0 = 1).</summary>
    public static Tensor PreviousLabel(Tensor labels, int stage) => stage >= 2 ? Col(labels, stage - 2) : ones_like(Col(labels, 0));
}
