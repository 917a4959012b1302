using AdAuctionSim.Models.Core;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Baselines;

/// <summary>
/// The loss of the generic multi-task baselines (models.md §1, §2, §6.2), per stage and weighted.
/// </summary>
/// <remarks>
/// Conditional heads: stage k is the mean of <c>BceWithLogits(a_k, s_k)</c> over the rows of its sample space,
/// δ_k = won · s_{k−1} (s_0 = 1): PLE's per-task mask (Tang et al., RecSys 2020, §6.2), never dropping whole rows.
/// Cumulative heads: stage k is the mean of <c>BceFromLog(log σ(c_k), s_k)</c> over every impression.
/// Lost bids (won = 0) carry no labels and never enter either. A stage whose mask is empty in a batch (no click in
/// it) contributes exactly 0, with zero gradient, rather than 0/0.
/// </remarks>
internal static class BaselineLoss
{
    /// <summary>Σ_k w_k · L_k, a scalar.</summary>
    /// <remarks>Conditional heads on a CPU run as <see cref="ConditionalStageLoss"/>, one C# pass forward and backward.</remarks>
    public static Tensor Weighted(TrainingBatch batch, ModelOutput output, IReadOnlyList<float> weights)
    {
        if (output.Kind == HeadKind.Conditional && ConditionalStageLoss.Serves(output.Logits, batch.Labels, batch.Won))
        {
            return ConditionalStageLoss.Apply(output.Logits, batch.Labels, batch.Won, weights);
        }
        var perStage = PerStage(batch, output);
        var w = tensor(weights as float[] ?? [.. weights], device: perStage.device);
        return (perStage * w).sum();
    }

    /// <summary>L_k for every stage, [K].</summary>
    public static Tensor PerStage(TrainingBatch batch, ModelOutput output)
    {
        var logits = output.Logits;
        var labels = batch.Labels.to_type(logits.dtype);
        if (labels.shape.Length != 2 || labels.shape[0] != logits.shape[0] || labels.shape[1] != logits.shape[1])
        {
            throw new ArgumentException(
                $"labels [{string.Join(", ", labels.shape)}] do not match logits [{string.Join(", ", logits.shape)}]", nameof(batch));
        }
        var won = batch.Won.to_type(logits.dtype).unsqueeze(1);
        Tensor perRow;
        Tensor inSpace;
        if (output.Kind == HeadKind.Conditional)
        {
            perRow = Losses.BceWithLogits(logits, labels);
            var k = labels.shape[1];
            var parent = cat([ones_like(labels.narrow(1, 0, 1)), labels.narrow(1, 0, k - 1)], 1);
            inSpace = (parent * won) > HeldScalars.Half;
        }
        else
        {
            perRow = Losses.BceFromLog(nn.functional.logsigmoid(logits), labels);
            inSpace = (won > HeldScalars.Half).expand_as(labels);
        }
        var sums = where(inSpace, perRow, zeros_like(perRow)).sum(dim: 0);
        var counts = inSpace.sum(dim: 0).to_type(logits.dtype).clamp_min(HeldScalars.One);
        return sums / counts;
    }
}
