using AdAuctionSim.Models.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.WinPropensity;

/// <summary>Standard normal CDF in double precision and a stable log Φ for tensors (TorchSharp 0.107 has no log_ndtr).</summary>
internal static class NormalFunctions
{
    private const double Sqrt2 = 1.4142135623730951;
    private const double HalfLog2Pi = 0.91893853320467274;
    // Below this, log Φ uses the asymptotic series: its first omitted term, 105/t⁸, is < 7e−6 there.
    private static readonly Scalar AsymptoticBelow = (-8.0).ToScalar();
    // Held for the tensor path (see HeldScalars).
    private static readonly Scalar Sqrt2Scalar = Sqrt2.ToScalar();
    private static readonly Scalar MinusHalf = (-0.5).ToScalar();
    private static readonly Scalar MinusHalfLog2Pi = (-HalfLog2Pi).ToScalar();
    private static readonly Scalar Three = 3.0.ToScalar();
    private static readonly Scalar Fifteen = 15.0.ToScalar();

    /// <summary>Φ(x), with relative error below 1.2e−7 everywhere (Chebyshev fit of erfc, Numerical Recipes §6.2).</summary>
    public static double Cdf(double x) => 0.5 * Erfc(-x / Sqrt2);

    private static double Erfc(double x)
    {
        var z = Math.Abs(x);
        var t = 1 / (1 + 0.5 * z);
        var ans = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
            + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? ans : 2 - ans;
    }

    /// <summary>
    /// log Φ(t), elementwise: log(½·erfc(−t/√2)) above −8, and −t²/2 − ln(−t) − ½ln 2π + ln(1 − t⁻² + 3t⁻⁴ − 15t⁻⁶)
    /// below, each branch evaluated on clamped inputs so the unused branch cannot put NaN into the gradient.
    /// </summary>
    public static Tensor LogCdf(Tensor t)
    {
        var upper = t.clamp_min(AsymptoticBelow);
        var direct = (special.erfc(upper.neg() / Sqrt2Scalar) * HeldScalars.Half).log();
        var lower = t.clamp_max(AsymptoticBelow);
        var inv2 = (lower * lower).reciprocal();
        var series = inv2.OneMinus().Plus(inv2 * inv2 * Three) - (inv2 * inv2 * inv2 * Fifteen);
        var asymptotic = (lower * lower * MinusHalf - lower.neg().log()).Plus(MinusHalfLog2Pi).Plus(series.log());
        return where(t > AsymptoticBelow, direct, asymptotic);
    }
}
