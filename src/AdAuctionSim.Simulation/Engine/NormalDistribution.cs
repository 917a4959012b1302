using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace AdAuctionSim.Simulation.Engine;

/// <summary>
/// Standard normal CDF and inverse CDF for the hot loop. Φ uses a table of Φ and φ on a grid of step 1/512 over
/// [−9, 9] with cubic Hermite interpolation: the interpolation error is below h⁴·max|Φ⁽⁴⁾|/384 ≈ 2e−14, so the
/// simulator's P(win | x, b) is exact to double precision for every practical purpose. Table values come from
/// MathNet.Numerics' erfc.
/// </summary>
internal static class NormalDistribution
{
    private const double Range = 9.0;
    private const int PerUnit = 512;
    private const double Step = 1.0 / PerUnit;
    // Interleaved [Φ(x_i), φ(x_i)·h] so that one interpolation touches one or two cache lines.
    private static readonly double[] Table;

    static NormalDistribution()
    {
        var n = (int)(2 * Range * PerUnit) + 2;
        Table = new double[2 * n];
        for (var i = 0; i < n; i++)
        {
            var x = -Range + i * Step;
            Table[2 * i] = CdfExact(x);
            Table[2 * i + 1] = Step * Math.Exp(-0.5 * x * x) / Math.Sqrt(2 * Math.PI);
        }
    }

    /// <summary>Φ(x) to near machine precision (MathNet's erfc), for tables and tests.</summary>
    public static double CdfExact(double x) => 0.5 * MathNet.Numerics.SpecialFunctions.Erfc(-x / Math.Sqrt(2));

    /// <summary>Φ(x) by cubic Hermite interpolation of the table.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Cdf(double x)
    {
        if (!(x > -Range))
        {
            return 0.0;
        }
        if (x >= Range)
        {
            return 1.0;
        }
        var u = (x + Range) * PerUnit;
        var i = (int)u;
        var t = u - i;
        // Hermite basis on [x_i, x_i+1] with derivatives φ scaled by the step.
        var t2 = t * t;
        var t3 = t2 * t;
        var h00 = 2 * t3 - 3 * t2 + 1;
        var h10 = t3 - 2 * t2 + t;
        var h01 = -2 * t3 + 3 * t2;
        var h11 = t3 - t2;
        ref var e = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(Table), 2 * i);
        return h00 * e + h10 * Unsafe.Add(ref e, 1) + h01 * Unsafe.Add(ref e, 2) + h11 * Unsafe.Add(ref e, 3);
    }

    /// <summary>
    /// Φ⁻¹(p): Acklam's rational approximation refined by one Halley step against the exact CDF, giving close to
    /// full double precision. Used where a normal is derived from one uniform (building the world).
    /// </summary>
    public static double InverseCdf(double p)
    {
        var x = InverseCdfFast(p);
        var e = CdfExact(x) - p;
        var u = e * Math.Sqrt(2 * Math.PI) * Math.Exp(0.5 * x * x);
        return x - u / (1 + 0.5 * x * u);
    }

    /// <summary>Acklam's approximation alone (implied probability off by up to 3e−6): a starting point only.</summary>
    private static double InverseCdfFast(double p)
    {
        const double plow = 0.02425;
        const double phigh = 1 - plow;
        if (p < plow)
        {
            var q = Math.Sqrt(-2 * Math.Log(p));
            return (((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q - 2.400758277161838e+00) * q - 2.549732539343734e+00) * q + 4.374664141464968e+00) * q + 2.938163982698783e+00)
                / ((((7.784695709041462e-03 * q + 3.224671290700398e-01) * q + 2.445134137142996e+00) * q + 3.754408661907416e+00) * q + 1);
        }
        if (p > phigh)
        {
            var q = Math.Sqrt(-2 * Math.Log(1 - p));
            return -(((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q - 2.400758277161838e+00) * q - 2.549732539343734e+00) * q + 4.374664141464968e+00) * q + 2.938163982698783e+00)
                / ((((7.784695709041462e-03 * q + 3.224671290700398e-01) * q + 2.445134137142996e+00) * q + 3.754408661907416e+00) * q + 1);
        }
        {
            var q = p - 0.5;
            var r = q * q;
            return (((((-3.969683028665376e+01 * r + 2.209460984245205e+02) * r - 2.759285104469687e+02) * r + 1.383577518672690e+02) * r - 3.066479806614716e+01) * r + 2.506628277459239e+00) * q
                / (((((-5.447609879822406e+01 * r + 1.615858368580409e+02) * r - 1.556989798598866e+02) * r + 6.680131310664461e+01) * r - 1.328068155288572e+01) * r + 1);
        }
    }
}

/// <summary>
/// Vose's alias method: O(1) draws from a fixed discrete distribution with one 64-bit word. Each column is one
/// 8-byte entry (alias in the high half, acceptance threshold in 2⁻³² units in the low half), so a draw touches a
/// single cache line; the threshold's quantisation moves each probability by less than 2⁻³².
/// </summary>
internal sealed unsafe class AliasTable
{
    private readonly ulong[] _entries;

    public AliasTable(ReadOnlySpan<double> weights)
    {
        var n = weights.Length;
        var probability = new double[n];
        var alias = new int[n];
        var total = 0.0;
        foreach (var w in weights)
        {
            total += w;
        }
        var scaled = new double[n];
        var small = new Stack<int>();
        var large = new Stack<int>();
        for (var i = n - 1; i >= 0; i--)
        {
            scaled[i] = weights[i] * n / total;
            alias[i] = i;
            (scaled[i] < 1 ? small : large).Push(i);
        }
        while (small.Count > 0 && large.Count > 0)
        {
            var s = small.Pop();
            var l = large.Pop();
            probability[s] = scaled[s];
            alias[s] = l;
            scaled[l] = scaled[l] + scaled[s] - 1;
            (scaled[l] < 1 ? small : large).Push(l);
        }
        while (large.Count > 0)
        {
            probability[large.Pop()] = 1;
        }
        while (small.Count > 0)
        {
            probability[small.Pop()] = 1;
        }
        _entries = GC.AllocateArray<ulong>(n, pinned: true);
        for (var i = 0; i < n; i++)
        {
            var threshold = probability[i] >= 1 ? uint.MaxValue : (uint)(probability[i] * 4294967296.0);
            var target = probability[i] >= 1 ? i : alias[i];
            _entries[i] = ((ulong)(uint)target << 32) | threshold;
        }
    }

    public int Count => _entries.Length;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Sample(ulong bits)
    {
        var column = CounterRng.Below(bits, _entries.Length);
        var e = _entries[column];
        return (uint)bits < (uint)e ? column : (int)(e >> 32);
    }

    /// <summary>Hints the cache about the entry a draw with these bits will read.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Prefetch(ulong bits)
    {
        if (System.Runtime.Intrinsics.X86.Sse.IsSupported)
        {
            System.Runtime.Intrinsics.X86.Sse.Prefetch0(Unsafe.AsPointer(ref _entries[CounterRng.Below(bits, _entries.Length)]));
        }
    }
}
