using AdAuctionSim.Models.Core;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Debiasing;

/// <summary>The entire-space terms of ESMM (models.md §8.2) that ESCM², DCMT and IPW-ESCM² reuse.</summary>
internal static class EntireSpaceTerms
{
    /// <summary>Empirical risk on O: Σ v·ℓ(s_1, a_1) / z (the CTR loss, §9.2).</summary>
    public static Tensor Ctr(Tensor logits, Tensor labels, Tensor rowWeight, Tensor normaliser) =>
        FunnelMath.Mean(Losses.BceWithLogits(FunnelMath.Col(logits, 0), FunnelMath.Col(labels, 0)), rowWeight, normaliser);

    /// <summary>Global risk of stage k (1-based, k ≥ 2): Σ v·BCE(s_k, r̂_k) / z with r̂_k from log space (§0.3, §8.2).</summary>
    public static Tensor Ctcvr(Tensor logCumulative, Tensor labels, int stage, Tensor rowWeight, Tensor normaliser) =>
        FunnelMath.Mean(Losses.BceFromLog(FunnelMath.Col(logCumulative, stage - 1), FunnelMath.Col(labels, stage - 1)), rowWeight, normaliser);
}
