using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using AdAuctionSim.Models.Runtime;

namespace AdAuctionSim.Models.Core;

/// <summary>
/// Building blocks of the C# passes that compute eight samples at once, one sample per lane of a
/// <see cref="Vector256{T}"/> ("lane layout": element k of a sample's array is vector k, lane s holds sample s of the
/// group). Every operation is then the same scalar program per sample, with no horizontal sums and no dependence on how
/// the batch is split.
/// </summary>
internal static unsafe class LaneMath
{
    /// <summary>Samples per group (the lanes of a vector of floats).</summary>
    public const int Lanes = 8;

    /// <summary>Samples per block of a pass's parameter-gradient partial sums (a multiple of <see cref="Lanes"/>).</summary>
    public const int Block = 256;

    /// <summary>
    /// Runs <paramref name="body"/>(first, end) over the batch in whole blocks of <see cref="Block"/> samples on the intra-op
    /// threads, so which samples a group of lanes and a block's partial sums hold does not depend on the thread count.
    /// </summary>
    public static void SplitBlocks(int samples, Action<int, int> body) => HostThreads.SplitBlocks(samples, Block, parallel: true, body);

    // Cephes' expf: e^x = 2^n · e^r with n = round(x·log₂e) and r = x − n·ln 2 (ln 2 split in two for exactness), then a
    // degree-7 polynomial in r. Relative error below 2·10⁻⁷ on [−87, 88] (tested against Math.Exp).
    private const float ExpHigh = 88.3762626647949f;
    private const float ExpLow = -87.3365447504019f;
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2High = 0.693359375f;
    private const float Ln2Low = -2.12194440e-4f;

    /// <summary>
    /// e^x per lane, for x in [−87.3, 88.4] (clamped outside: e^−87.3 ≈ 10⁻³⁸ stands for anything smaller). About a
    /// quarter of the time of <c>Vector256.Exp</c>, which evaluates the float exponential in double precision.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        x = Vector256.MinNative(Vector256.MaxNative(x, Vector256.Create(ExpLow)), Vector256.Create(ExpHigh));
        var n = Vector256.Round(x * Vector256.Create(Log2E));
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2High), x);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Low), r);
        var p = Vector256.Create(1.9875691500E-4f);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.3981999507E-3f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(8.3334519073E-3f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(4.1665795894E-2f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.6666665459E-1f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(5.0000001201E-1f));
        p = Vector256.FusedMultiplyAdd(p, r * r, r) + Vector256<float>.One;
        var scale = (Vector256.ConvertToInt32(n) + Vector256.Create(127)) << 23;
        return p * scale.AsSingle();
    }

    // Per thread, kept between calls: the passes would otherwise allocate pinned buffers at every step, and the
    // pinned-object heap is collected only with generation 2 (tens of full collections per second of training).
    [ThreadStatic]
    private static float[]? scratch;

    [ThreadStatic]
    private static float[]? packScratch;

    /// <summary>
    /// This thread's scratch of at least <paramref name="vectors"/> lane vectors, 32-byte aligned, valid until this thread
    /// asks again (a pass takes it once per share of the batch).
    /// </summary>
    public static Vector256<float>* Scratch(int vectors) => Aligned(ref scratch, vectors * Lanes);

    /// <summary>
    /// This thread's buffer for a pass's <see cref="Pack"/>ed parameters, at least <paramref name="floats"/> floats, taken by
    /// the calling thread once per pass (apart from <see cref="Scratch"/>, which the same thread takes for its shares).
    /// </summary>
    public static float* PackScratch(int floats) => (float*)Aligned(ref packScratch, floats);

    private static Vector256<float>* Aligned(ref float[]? buffer, int floats)
    {
        if (buffer is null || buffer.Length < floats + 8)
        {
            buffer = GC.AllocateUninitializedArray<float>(floats + 8, pinned: true);
        }
        return (Vector256<float>*)(((nint)Unsafe.AsPointer(ref buffer[0]) + 31) & ~(nint)31);
    }

    /// <summary>
    /// Copies <paramref name="count"/> (at most 8) consecutive samples of <paramref name="length"/> floats each into lane
    /// layout: <c>dst[k][s] = src[s·length + k]</c>; lanes from <paramref name="count"/> on are zero.
    /// </summary>
    public static void Gather(float* src, int count, int length, Vector256<float>* dst)
    {
        var d = (float*)dst;
        if (count < Lanes)
        {
            new Span<float>(d, length * Lanes).Clear();
        }
        for (var s = 0; s < count; s++)
        {
            var row = src + ((long)s * length);
            for (var k = 0; k < length; k++)
            {
                d[(k * Lanes) + s] = row[k];
            }
        }
    }

    /// <summary>The inverse of <see cref="Gather"/>: <c>dst[s·length + k] = src[k][s]</c> for the first <paramref name="count"/> lanes.</summary>
    public static void Scatter(Vector256<float>* src, int count, int length, float* dst)
    {
        var f = (float*)src;
        for (var s = 0; s < count; s++)
        {
            var row = dst + ((long)s * length);
            for (var k = 0; k < length; k++)
            {
                row[k] = f[(k * Lanes) + s];
            }
        }
    }

    /// <summary>Floats of a matrix packed by <see cref="Pack"/>: whole blocks of 8 columns, <paramref name="inner"/> rows each.</summary>
    public static int PackedSize(int inner, int cols) => ((cols + 7) / 8) * inner * 8;

    /// <summary>
    /// Packs the matrix w[k·wInner + c·wCol] (k &lt; inner, c &lt; cols) for <see cref="TimesShared"/>: per block of 8
    /// columns, per k, the block's 8 values side by side (zeros past the last column), so the product reads each step's
    /// eight multipliers from one 32-byte line.
    /// </summary>
    public static void Pack(float* w, int inner, int wInner, int cols, int wCol, float* packed)
    {
        for (var block = 0; block * 8 < cols; block++)
        {
            for (var k = 0; k < inner; k++)
            {
                var to = packed + (((long)block * inner) + k) * 8;
                for (var j = 0; j < 8; j++)
                {
                    var c = (block * 8) + j;
                    to[j] = c < cols ? w[((long)k * wInner) + ((long)c * wCol)] : 0f;
                }
            }
        }
    }

    /// <summary>
    /// out[i·oRow + c] = init + Σ_k a[i·aRow + k·aInner] · W[k, c] for i &lt; rows, c &lt; cols: lane vectors times a matrix
    /// of scalars shared by the lanes (a parameter), given <see cref="Pack"/>ed. init is out's value when
    /// <paramref name="accumulate"/>, else bias[c] when a bias is given, else 0. Eight output columns at a time, so eight
    /// independent chains of multiply-adds share each loaded input vector.
    /// </summary>
    public static void TimesShared(Vector256<float>* a, int rows, int aRow, int inner, int aInner,
        float* packed, int cols, Vector256<float>* o, int oRow, float* bias, bool accumulate)
    {
        var zero = Vector256<float>.Zero;
        Span<Vector256<float>> init = stackalloc Vector256<float>[8];
        for (var i = 0; i < rows; i++)
        {
            var ai = a + ((long)i * aRow);
            var oi = o + ((long)i * oRow);
            for (var c = 0; c < cols; c += 8)
            {
                var width = Math.Min(8, cols - c);
                Vector256<float> s0, s1, s2, s3, s4, s5, s6, s7;
                if (width < 8)
                {
                    for (var j = 0; j < 8; j++)
                    {
                        init[j] = j >= width ? zero : accumulate ? oi[c + j] : bias is not null ? Vector256.Create(bias[c + j]) : zero;
                    }
                    (s0, s1, s2, s3, s4, s5, s6, s7) = (init[0], init[1], init[2], init[3], init[4], init[5], init[6], init[7]);
                }
                else if (accumulate)
                {
                    (s0, s1, s2, s3, s4, s5, s6, s7) = (oi[c], oi[c + 1], oi[c + 2], oi[c + 3], oi[c + 4], oi[c + 5], oi[c + 6], oi[c + 7]);
                }
                else if (bias is not null)
                {
                    (s0, s1, s2, s3) = (Vector256.Create(bias[c]), Vector256.Create(bias[c + 1]), Vector256.Create(bias[c + 2]), Vector256.Create(bias[c + 3]));
                    (s4, s5, s6, s7) = (Vector256.Create(bias[c + 4]), Vector256.Create(bias[c + 5]), Vector256.Create(bias[c + 6]), Vector256.Create(bias[c + 7]));
                }
                else
                {
                    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = zero;
                }
                var wk = packed + ((long)c * inner);
                var ak = ai;
                for (var k = 0; k < inner; k++, wk += 8, ak += aInner)
                {
                    var x = *ak;
                    s0 = Vector256.FusedMultiplyAdd(x, Vector256.Create(wk[0]), s0);
                    s1 = Vector256.FusedMultiplyAdd(x, Vector256.Create(wk[1]), s1);
                    s2 = Vector256.FusedMultiplyAdd(x, Vector256.Create(wk[2]), s2);
                    s3 = Vector256.FusedMultiplyAdd(x, Vector256.Create(wk[3]), s3);
                    s4 = Vector256.FusedMultiplyAdd(x, Vector256.Create(wk[4]), s4);
                    s5 = Vector256.FusedMultiplyAdd(x, Vector256.Create(wk[5]), s5);
                    s6 = Vector256.FusedMultiplyAdd(x, Vector256.Create(wk[6]), s6);
                    s7 = Vector256.FusedMultiplyAdd(x, Vector256.Create(wk[7]), s7);
                }
                if (width == 8)
                {
                    (oi[c], oi[c + 1], oi[c + 2], oi[c + 3], oi[c + 4], oi[c + 5], oi[c + 6], oi[c + 7]) = (s0, s1, s2, s3, s4, s5, s6, s7);
                    continue;
                }
                (init[0], init[1], init[2], init[3], init[4], init[5], init[6], init[7]) = (s0, s1, s2, s3, s4, s5, s6, s7);
                for (var j = 0; j < width; j++)
                {
                    oi[c + j] = init[j];
                }
            }
        }
    }

    /// <summary>
    /// out[i·oRow + c] (+)= Σ_k a[i·aRow + k·aInner] · b[k·bInner + c·bCol] for i &lt; rows, c &lt; cols: a product of
    /// two lane matrices, lane by lane (each sample's own matrices). Eight (then single) output columns at a time.
    /// </summary>
    public static void TimesLanes(Vector256<float>* a, int rows, int aRow, int inner, int aInner,
        Vector256<float>* b, int bInner, int bCol, int cols, Vector256<float>* o, int oRow, bool accumulate)
    {
        // Byte offsets of the columns of a block of eight (the general path).
        nint c1 = (nint)bCol * sizeof(Vector256<float>), c2 = 2 * c1, c3 = 3 * c1, c4 = 4 * c1, c5 = 5 * c1, c6 = 6 * c1, c7 = 7 * c1;
        for (var i = 0; i < rows; i++)
        {
            var ai = a + ((long)i * aRow);
            var oi = o + ((long)i * oRow);
            var c = 0;
            for (; c + 8 <= cols; c += 8)
            {
                Vector256<float> s0, s1, s2, s3, s4, s5, s6, s7;
                if (accumulate)
                {
                    (s0, s1, s2, s3, s4, s5, s6, s7) = (oi[c], oi[c + 1], oi[c + 2], oi[c + 3], oi[c + 4], oi[c + 5], oi[c + 6], oi[c + 7]);
                }
                else
                {
                    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = Vector256<float>.Zero;
                }
                var bk = b + ((long)c * bCol);
                var ak = ai;
                if (bCol == 1)
                {
                    // Adjacent columns: the eight operands of a step are one 256-byte run, at fixed offsets.
                    for (var k = 0; k < inner; k++, bk += bInner, ak += aInner)
                    {
                        var x = *ak;
                        s0 = Vector256.FusedMultiplyAdd(x, bk[0], s0);
                        s1 = Vector256.FusedMultiplyAdd(x, bk[1], s1);
                        s2 = Vector256.FusedMultiplyAdd(x, bk[2], s2);
                        s3 = Vector256.FusedMultiplyAdd(x, bk[3], s3);
                        s4 = Vector256.FusedMultiplyAdd(x, bk[4], s4);
                        s5 = Vector256.FusedMultiplyAdd(x, bk[5], s5);
                        s6 = Vector256.FusedMultiplyAdd(x, bk[6], s6);
                        s7 = Vector256.FusedMultiplyAdd(x, bk[7], s7);
                    }
                    (oi[c], oi[c + 1], oi[c + 2], oi[c + 3], oi[c + 4], oi[c + 5], oi[c + 6], oi[c + 7]) = (s0, s1, s2, s3, s4, s5, s6, s7);
                    continue;
                }
                for (var k = 0; k < inner; k++, bk += bInner, ak += aInner)
                {
                    var x = *ak;
                    var at = (byte*)bk;
                    s0 = Vector256.FusedMultiplyAdd(x, *bk, s0);
                    s1 = Vector256.FusedMultiplyAdd(x, *(Vector256<float>*)(at + c1), s1);
                    s2 = Vector256.FusedMultiplyAdd(x, *(Vector256<float>*)(at + c2), s2);
                    s3 = Vector256.FusedMultiplyAdd(x, *(Vector256<float>*)(at + c3), s3);
                    s4 = Vector256.FusedMultiplyAdd(x, *(Vector256<float>*)(at + c4), s4);
                    s5 = Vector256.FusedMultiplyAdd(x, *(Vector256<float>*)(at + c5), s5);
                    s6 = Vector256.FusedMultiplyAdd(x, *(Vector256<float>*)(at + c6), s6);
                    s7 = Vector256.FusedMultiplyAdd(x, *(Vector256<float>*)(at + c7), s7);
                }
                (oi[c], oi[c + 1], oi[c + 2], oi[c + 3], oi[c + 4], oi[c + 5], oi[c + 6], oi[c + 7]) = (s0, s1, s2, s3, s4, s5, s6, s7);
            }
            for (; c < cols; c++)
            {
                var s = accumulate ? oi[c] : Vector256<float>.Zero;
                var bk = b + ((long)c * bCol);
                var ak = ai;
                for (var k = 0; k < inner; k++, bk += bInner, ak += aInner)
                {
                    s = Vector256.FusedMultiplyAdd(*ak, *bk, s);
                }
                oi[c] = s;
            }
        }
    }

    /// <summary>
    /// Layer normalisation of <paramref name="rows"/> lane rows of width d: x̂ = (z − mean) / √(var + ε),
    /// y = x̂ ⊙ weight + bias, with the biased variance taken about the mean (two passes, as <see cref="RowLayerNorm"/>).
    /// Writes x̂, 1/σ per row and y.
    /// </summary>
    public static void LayerNorm(Vector256<float>* z, int rows, int d, float* weight, float* bias, float eps,
        Vector256<float>* normalised, Vector256<float>* inverse, Vector256<float>* y)
    {
        var width = Vector256.Create((float)d);
        var epsilon = Vector256.Create(eps);
        for (var j = 0; j < rows; j++)
        {
            var zj = z + ((long)j * d);
            var sum = Vector256<float>.Zero;
            for (var o = 0; o < d; o++)
            {
                sum += zj[o];
            }
            var mean = sum / width;
            var variance = Vector256<float>.Zero;
            for (var o = 0; o < d; o++)
            {
                var c = zj[o] - mean;
                variance = Vector256.FusedMultiplyAdd(c, c, variance);
            }
            var rstd = Vector256<float>.One / Vector256.Sqrt((variance / width) + epsilon);
            inverse[j] = rstd;
            var nj = normalised + ((long)j * d);
            var yj = y + ((long)j * d);
            for (var o = 0; o < d; o++)
            {
                var h = (zj[o] - mean) * rstd;
                nj[o] = h;
                yj[o] = Vector256.FusedMultiplyAdd(h, Vector256.Create(weight[o]), Vector256.Create(bias[o]));
            }
        }
    }

    /// <summary>
    /// The backward of <see cref="LayerNorm"/>: dz = (1/σ) (ĝ − mean(ĝ) − x̂ mean(ĝ ⊙ x̂)), ĝ = dy ⊙ weight, per row;
    /// adds Σ dy ⊙ x̂ and Σ dy over the rows to the lane accumulators of the weight and bias gradients.
    /// </summary>
    public static void LayerNormBackward(Vector256<float>* dy, Vector256<float>* normalised, Vector256<float>* inverse, int rows, int d,
        float* weight, Vector256<float>* dz, Vector256<float>* dWeight, Vector256<float>* dBias)
    {
        var width = Vector256.Create((float)d);
        for (var j = 0; j < rows; j++)
        {
            var gj = dy + ((long)j * d);
            var nj = normalised + ((long)j * d);
            var (m1, m2) = (Vector256<float>.Zero, Vector256<float>.Zero);
            for (var o = 0; o < d; o++)
            {
                var g = gj[o] * Vector256.Create(weight[o]);
                m1 += g;
                m2 = Vector256.FusedMultiplyAdd(g, nj[o], m2);
                dWeight[o] = Vector256.FusedMultiplyAdd(gj[o], nj[o], dWeight[o]);
                dBias[o] += gj[o];
            }
            (m1, m2) = (m1 / width, m2 / width);
            var rstd = inverse[j];
            var zj = dz + ((long)j * d);
            for (var o = 0; o < d; o++)
            {
                var g = gj[o] * Vector256.Create(weight[o]);
                zj[o] = (g - m1 - (nj[o] * m2)) * rstd;
            }
        }
    }

    /// <summary>
    /// Per column c of the lane matrix S [n, q], the softmax over its n rows of g_{c / m} · S[r, c] (no scaling when
    /// <paramref name="gates"/> is null): A[r, c], columns summing to 1.
    /// </summary>
    public static void ColumnSoftmax(Vector256<float>* scores, int n, int q, Vector256<float>* gates, int m, Vector256<float>* a)
    {
        for (var c = 0; c < q; c++)
        {
            var gate = gates is null ? Vector256<float>.One : gates[c / m];
            var max = scores[c] * gate;
            for (var r = 1; r < n; r++)
            {
                max = Vector256.MaxNative(max, scores[(r * q) + c] * gate);
            }
            var sum = Vector256<float>.Zero;
            for (var r = 0; r < n; r++)
            {
                var e = Exp((scores[(r * q) + c] * gate) - max);
                a[(r * q) + c] = e;
                sum += e;
            }
            var inverse = Vector256<float>.One / sum;
            for (var r = 0; r < n; r++)
            {
                a[(r * q) + c] *= inverse;
            }
        }
    }

    /// <summary>
    /// The backward of <see cref="ColumnSoftmax"/>, in place: dA [n, q] becomes dS, the gradient at the raw scores:
    /// dS' = A (dA − Σ_r A dA) per column, then with gates dS = g dS' and dg_{c / m} += Σ_r S[r, c] dS'[r, c].
    /// </summary>
    public static void ColumnSoftmaxBackward(Vector256<float>* a, Vector256<float>* da, int n, int q,
        Vector256<float>* scores, Vector256<float>* gates, int m, Vector256<float>* dGates)
    {
        for (var c = 0; c < q; c++)
        {
            var dot = Vector256<float>.Zero;
            for (var r = 0; r < n; r++)
            {
                dot = Vector256.FusedMultiplyAdd(a[(r * q) + c], da[(r * q) + c], dot);
            }
            if (gates is null)
            {
                for (var r = 0; r < n; r++)
                {
                    da[(r * q) + c] = a[(r * q) + c] * (da[(r * q) + c] - dot);
                }
                continue;
            }
            var gate = gates[c / m];
            var dgate = Vector256<float>.Zero;
            for (var r = 0; r < n; r++)
            {
                var grad = a[(r * q) + c] * (da[(r * q) + c] - dot);
                dgate = Vector256.FusedMultiplyAdd(scores[(r * q) + c], grad, dgate);
                da[(r * q) + c] = grad * gate;
            }
            dGates[c / m] += dgate;
        }
    }

    /// <summary>Adds the lanes of each of <paramref name="count"/> lane accumulators, lane 0 first, into <paramref name="total"/>.</summary>
    public static void AddLanes(Vector256<float>* sums, int count, float* total)
    {
        for (var k = 0; k < count; k++)
        {
            var v = (float*)(sums + k);
            var s = v[0];
            for (var l = 1; l < Lanes; l++)
            {
                s += v[l];
            }
            total[k] += s;
        }
    }
}
