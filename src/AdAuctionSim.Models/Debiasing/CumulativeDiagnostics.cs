using static TorchSharp.torch;

namespace AdAuctionSim.Models.Debiasing;

/// <summary>Diagnostics of cumulative-head models (models.md §0.3, §12.4, §13.4).</summary>
internal static class CumulativeDiagnostics
{
    /// <summary>Records, per stage k ≥ 2, the share of impressions with r̂_k &gt; r̂_{k−1} (c_k &gt; c_{k−1}, as σ is increasing).</summary>
    public static void Record(DiagnosticSums sink, Tensor cumulativeLogits, Tensor rowWeight, Func<int, string> stageName)
    {
        for (var k = 2; k <= cumulativeLogits.shape[1]; k++)
        {
            var violated = FunnelMath.Col(cumulativeLogits, k - 1) > FunnelMath.Col(cumulativeLogits, k - 2);
            sink.Mean($"monotonicity_violations/{stageName(k)}", violated, rowWeight);
        }
    }
}
