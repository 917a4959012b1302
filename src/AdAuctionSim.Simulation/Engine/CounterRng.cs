using System.Runtime.CompilerServices;

namespace AdAuctionSim.Simulation.Engine;

/// <summary>
/// Counter-based random numbers: every draw is a pure function of (seed, request id, stream), so a request's
/// randomness does not depend on which thread or chunk produced it, and a different policy replayed on the
/// same request sees the same competitors and the same potential outcomes (common random numbers).
/// </summary>
internal static class CounterRng
{
    // Stream ids: one per purpose, so that changing one draw never shifts another.
    public const ulong Time = 0;
    public const ulong User = 1;
    public const ulong Site = 2;
    public const ulong Slot = 3;
    public const ulong Action = 4;
    public const ulong Multiplier = 5;
    public const ulong Hidden = 6;        // the per-request part of the hidden trait
    public const ulong Outcome = 16;      // + stage (≤ 6 stages)
    public const ulong Competitor = 32;   // + competitor index (≤ 64)
    public const ulong Candidate = 128;   // + candidate index (≤ 64)

    private const ulong Golden = 0x9E3779B97F4A7C15UL;

    /// <summary>SplitMix64's finaliser: a bijective 64-bit mix with full avalanche.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Key of a seed within a domain ("requests", "world", …).</summary>
    public static ulong SeedKey(long seed, ulong domain) => Mix(Mix((ulong)seed + Golden) ^ (domain * 0xD1B54A32D192ED03UL));

    /// <summary>Per-request base; draws are <see cref="Bits(ulong, ulong)"/> of it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong RequestBase(ulong seedKey, long requestId) => Mix(seedKey ^ ((ulong)requestId * Golden));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Bits(ulong requestBase, ulong stream) => Mix(requestBase + (stream + 1) * Golden);

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Uniform(ulong bits) => (bits >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in (0, 1): never 0, for inverse-CDF transforms.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double OpenUniform(ulong bits) => ((bits >> 11) + 0.5) * (1.0 / (1UL << 53));

    /// <summary>Integer in [0, n) by multiply-shift (bias below 2^-32 for n &lt; 2^31).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Below(ulong bits, int n) => (int)(((bits >> 32) * (ulong)n) >> 32);

    /// <summary>
    /// Approximately standard normal from one 64-bit word (Irwin–Hall sum of four 16-bit uniforms, rescaled).
    /// Used only for the logging model's estimation noise, where the exact shape does not matter.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float QuickNormal(ulong bits)
    {
        var s = (bits & 0xFFFF) + ((bits >> 16) & 0xFFFF) + ((bits >> 32) & 0xFFFF) + (bits >> 48);
        // Sum of four U(0,1): mean 2, variance 1/3.
        return (float)((s * (1.0 / 65536) + 4 * (0.5 / 65536) - 2) * 1.7320508075688772);
    }
}

/// <summary>A small sequential generator for building the world (not used per request).</summary>
internal sealed class SequentialRng(ulong key)
{
    private ulong _state = key;

    public ulong NextBits()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return CounterRng.Mix(_state);
    }

    public double NextUniform() => CounterRng.Uniform(NextBits());

    public int NextInt(int n) => CounterRng.Below(NextBits(), n);

    public double NextNormal() => NormalDistribution.InverseCdf(CounterRng.OpenUniform(NextBits()));
}
