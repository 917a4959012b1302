using TorchSharp;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Core;

/// <summary>Numerically safe per-row losses in float32 (models.md §0.3). All return [B] (or [B, K]) vectors, never sums.</summary>
public static class Losses
{
    // Held for the process, not made implicitly per call (see HeldScalars).
    private static readonly Scalar LogHalf = (-0.6931471805599453).ToScalar();
    private static readonly Scalar MaxLog = (-1e-7).ToScalar();

    /// <summary>BCE from logits: softplus(a) − y·a.</summary>
    public static Tensor BceWithLogits(Tensor logits, Tensor labels) =>
        logits.Softplus() - labels * logits;

    /// <summary>log(1 − e^u) for u ≤ 0: log(−expm1(u)) when u &gt; −ln 2, else log1p(−e^u).</summary>
    public static Tensor Log1mExp(Tensor u)
    {
        var near = (-u.expm1()).log();
        var far = (-u.exp()).log1p();
        return where(u > LogHalf, near, far);
    }

    /// <summary>BCE of a probability given by its log (a product computed in log space), clamped to log r ≤ −1e−7.</summary>
    public static Tensor BceFromLog(Tensor logProbability, Tensor labels)
    {
        var logP = logProbability.clamp_max(MaxLog);
        return -(labels * logP) - labels.OneMinus() * Log1mExp(logP);
    }
}
