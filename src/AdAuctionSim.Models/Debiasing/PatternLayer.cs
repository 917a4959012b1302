using System.Runtime.Intrinsics;
using AdAuctionSim.Models.Core;
using static AdAuctionSim.Models.Runtime.HostMemory;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Debiasing;

/// <summary>
/// The parameters of one layer's K pattern selectors as the fused pass reads them (the folded form of
/// <see cref="ApemModel.PatternSelection"/>): U [d, K·M] (each stage's query folded into the keys, columns stage-major
/// (i, h), scaled by 1/√d), the folded value-output maps [K, M·d, d] and W^O's biases [K, d], and the stages' layer
/// norms (weights and biases [K, d], ε).
/// </summary>
internal sealed record PatternWeights(Tensor Scores, Tensor Folded, Tensor OutputBias, Tensor NormWeight, Tensor NormBias, double NormEps);

/// <summary>
/// One layer of APEM's pattern selectors for every stage, fused (models.md §13.1): from the layer's output Y [B, K_I, d]
/// and the stages' previous representations T_prev [K, B, d] (none at the first layer), per stage i the attention of its
/// query over the rows of Y (scores, softmax over the K_I rows per head, pooling, the folded value-output map and its
/// bias), the residual and the stage's layer norm: T_i = LayerNorm_i(T_prev,i + F_i). Output T [K, B, d].
/// </summary>
/// <remarks>
/// <para>On a CPU with float32 tensors this is one C# pass forward and one backward over groups of eight samples, one per
/// vector lane (<see cref="LaneMath"/>), as <see cref="AsrgLayer"/>; anywhere else, and in tests as the reference,
/// <see cref="ApemModel.PatternSelection"/> runs the same function in libtorch operations.</para>
/// <para>Why: in libtorch operations the selection of one layer (three stages, batch 2048) was about twenty kernels and
/// their backward over [B, 16, 8]-sized tensors, 7–8 ms of forward and backward on the development machine's two threads.</para>
/// <para>Parameter gradients are summed per lane over fixed blocks of <see cref="LaneMath.Block"/> samples, lanes in
/// order, then blocks in order, so the result does not depend on the thread count.</para>
/// </remarks>
internal static class PatternLayer
{
    /// <summary>T [K, B, d] from Y [B, K_I, d] and T_prev [K, B, d] (or null); see the type summary.</summary>
    public static Tensor Apply(Tensor y, Tensor? previous, PatternWeights w)
    {
        ArgumentNullException.ThrowIfNull(y);
        ArgumentNullException.ThrowIfNull(w);
        var shape = Shape.Of(y, previous, w);
        return SelectFunction.apply(y.contiguous(), previous?.contiguous()!, w.Scores.contiguous(), w.Folded.contiguous(),
            w.OutputBias.contiguous(), w.NormWeight.contiguous(), w.NormBias.contiguous(), shape);
    }

    /// <summary>The sizes of a layer's selection and the offsets of its per-group stash and gradient sums (lane vectors).</summary>
    private sealed class Shape
    {
        public Shape(int n, int d, int k, int m, float eps)
        {
            (N, D, K, M, Eps) = (n, d, k, m, eps);
            Q = k * m;
            // Stash per group: softmax A [n, Q], pooled rows [Q, d], x̂ [K, d], 1/σ [K].
            PooledAt = n * Q;
            NormAt = PooledAt + (Q * d);
            InverseAt = NormAt + (k * d);
            StashSize = InverseAt + k;
            // Gradient sums per block: U [d, Q], folded [K, M·d, d], output biases [K, d], norm weights and biases [K, d].
            Grad = [0, d * Q, k * m * d * d, k * d, k * d, k * d];
            for (var i = 1; i < Grad.Length; i++)
            {
                Grad[i] += Grad[i - 1];
            }
        }

        public int N { get; }
        public int D { get; }
        public int K { get; }
        public int M { get; }
        public float Eps { get; }
        public int Q { get; }
        public int PooledAt { get; }
        public int NormAt { get; }
        public int InverseAt { get; }
        public int StashSize { get; }

        /// <summary>Where the gradient sums of input 2 + i start; the last entry is the size of a block's sums.</summary>
        public int[] Grad { get; }

        public int GradSize => Grad[^1];

        public static Shape Of(Tensor y, Tensor? previous, PatternWeights w)
        {
            if (y.dim() != 3 || w.Folded.dim() != 3 || w.Folded.shape[2] != y.shape[2] || w.Folded.shape[1] % y.shape[2] != 0)
            {
                throw new ArgumentException($"expected Y [B, K_I, d] and folded maps [K, M·d, d]; got [{string.Join(", ", y.shape)}], "
                    + $"[{string.Join(", ", w.Folded.shape)}]");
            }
            var (b, n, d, k) = (y.shape[0], (int)y.shape[1], (int)y.shape[2], (int)w.Folded.shape[0]);
            var m = (int)(w.Folded.shape[1] / d);
            if (!w.Scores.shape.SequenceEqual(new long[] { d, k * m }) || !w.OutputBias.shape.SequenceEqual(new long[] { k, d })
                || !w.NormWeight.shape.SequenceEqual(new long[] { k, d }) || !w.NormBias.shape.SequenceEqual(new long[] { k, d })
                || (previous is not null && !previous.shape.SequenceEqual(new long[] { k, b, d })))
            {
                throw new ArgumentException($"pattern weights or previous representations do not fit K = {k}, M = {m}, d = {d}: scores "
                    + $"[{string.Join(", ", w.Scores.shape)}], previous {(previous is null ? "none" : $"[{string.Join(", ", previous.shape)}]")}");
            }
            return new Shape(n, d, k, m, (float)w.NormEps);
        }
    }

    /// <summary>Inputs (Y, T_prev or null, U, folded, output biases, norm weights, norm biases, shape).</summary>
    private sealed class SelectFunction : autograd.SingleTensorFunction<SelectFunction>
    {
        public override string Name => "PatternLayer";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var y = (Tensor)vars[0];
            var previous = vars[1] as Tensor;
            var (u, folded, bias, normWeight, normBias) = ((Tensor)vars[2], (Tensor)vars[3], (Tensor)vars[4], (Tensor)vars[5], (Tensor)vars[6]);
            var shape = (Shape)vars[7];
            var b = (int)y.shape[0];
            var groups = (b + LaneMath.Lanes - 1) / LaneMath.Lanes;
            var stash = empty((long)groups * shape.StashSize * LaneMath.Lanes, ScalarType.Float32);
            var t = empty(shape.K, b, shape.D, ScalarType.Float32);
            Kernels.Forward(shape, y, previous, u, folded, bias, normWeight, normBias, stash, t);
            ctx.save_for_backward([y, u, folded, normWeight, stash]);
            ctx.save_data("shape", shape);
            ctx.save_data("previous", previous is not null);
            return t;
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var saved = ctx.get_saved_variables();
            var (y, u, folded, normWeight, stash) = (saved[0], saved[1], saved[2], saved[3], saved[4]);
            var shape = (Shape)ctx.get_data("shape");
            var hasPrevious = (bool)ctx.get_data("previous");
            var dt = gradOutput.to_type(ScalarType.Float32).contiguous();
            var dy = empty_like(y);
            var dprevious = hasPrevious ? empty_like(dt) : null;
            var du = zeros_like(u);
            var dfolded = zeros_like(folded);
            var dbias = zeros_like(normWeight);
            var dweight = zeros_like(normWeight);
            var dnormBias = zeros_like(normWeight);
            Kernels.Backward(shape, y, u, folded, normWeight, stash, dt, dy, dprevious, [du, dfolded, dbias, dweight, dnormBias]);
            return [dy, dprevious!, du, dfolded, dbias, dweight, dnormBias, null!];
        }
    }

    private static unsafe class Kernels
    {
        public static void Forward(Shape s, Tensor y, Tensor? previous, Tensor u, Tensor folded, Tensor bias, Tensor normWeight, Tensor normBias,
            Tensor stash, Tensor t)
        {
            var b = (int)y.shape[0];
            float* yp = Floats(y), prev = Floats(previous), fp = Floats(folded), bp = Floats(bias);
            float* nw = Floats(normWeight), nb = Floats(normBias), tp = Floats(t);
            var sp = (Vector256<float>*)Floats(stash);
            var (n, d, k, m, q) = (s.N, s.D, s.K, s.M, s.Q);
            // U and each stage's folded map, packed by blocks of 8 output columns.
            var stagePack = LaneMath.PackedSize(m * d, d);
            var uk = LaneMath.PackScratch(LaneMath.PackedSize(d, q) + (k * stagePack));
            var fk = uk + LaneMath.PackedSize(d, q);
            LaneMath.Pack(Floats(u), d, q, q, 1, uk);
            for (var i = 0; i < k; i++)
            {
                LaneMath.Pack(fp + ((long)i * m * d * d), m * d, d, d, 1, fk + ((long)i * stagePack));
            }
            LaneMath.SplitBlocks(b, (lo, hi) =>
            {
                var x = LaneMath.Scratch((n * d) + (n * q) + (2 * k * d));
                var scores = x + (n * d);
                var z = scores + (n * q);
                var output = z + (k * d);
                for (var first = lo; first < hi; first += LaneMath.Lanes)
                {
                    var count = Math.Min(LaneMath.Lanes, hi - first);
                    var st = sp + ((long)(first / LaneMath.Lanes) * s.StashSize);
                    var a = st;
                    var pooled = st + s.PooledAt;
                    LaneMath.Gather(yp + ((long)first * n * d), count, n * d, x);
                    // Scores S[r, (i, h)] = y_r · U[:, (i, h)], softmax over the rows r, pooled rows p_(i,h) = Σ_r A y_r.
                    LaneMath.TimesShared(x, n, d, d, 1, uk, q, scores, q, null, accumulate: false);
                    LaneMath.ColumnSoftmax(scores, n, q, null, 1, a);
                    LaneMath.TimesLanes(a, q, 1, n, q, x, d, 1, d, pooled, d, accumulate: false);
                    for (var i = 0; i < k; i++)
                    {
                        // F_i = b_i + Σ_(h,e) p_(i,h)[e] F_i[(h, e), :], plus the stage's previous representation.
                        LaneMath.TimesShared(pooled + (i * m * d), 1, 0, m * d, 1, fk + ((long)i * stagePack), d, z + (i * d), d,
                            bp + (i * d), accumulate: false);
                        if (prev is not null)
                        {
                            // Read into the stage's output slot, which its norm overwrites next.
                            LaneMath.Gather(prev + ((((long)i * b) + first) * d), count, d, output + (i * d));
                            for (var e = 0; e < d; e++)
                            {
                                z[(i * d) + e] += output[(i * d) + e];
                            }
                        }
                        LaneMath.LayerNorm(z + (i * d), 1, d, nw + (i * d), nb + (i * d), s.Eps, st + s.NormAt + (i * d), st + s.InverseAt + i,
                            output + (i * d));
                    }
                    for (var i = 0; i < k; i++)
                    {
                        LaneMath.Scatter(output + (i * d), count, d, tp + ((((long)i * b) + first) * d));
                    }
                }
            });
        }

        public static void Backward(Shape s, Tensor y, Tensor u, Tensor folded, Tensor normWeight, Tensor stash, Tensor dt,
            Tensor dy, Tensor? dprevious, Tensor[] grads)
        {
            var b = (int)y.shape[0];
            float* yp = Floats(y), fp = Floats(folded), nw = Floats(normWeight), dtp = Floats(dt), dyp = Floats(dy), dprev = Floats(dprevious);
            var sp = (Vector256<float>*)Floats(stash);
            var (n, d, k, m, q) = (s.N, s.D, s.K, s.M, s.Q);
            var blocks = (b + LaneMath.Block - 1) / LaneMath.Block;
            int gU = s.Grad[0], gFolded = s.Grad[1], gBias = s.Grad[2], gWeight = s.Grad[3], gNormBias = s.Grad[4];
            // Uᵀ and each stage's folded map transposed, packed for the products that read them.
            var stagePack = LaneMath.PackedSize(d, m * d);
            var ut = LaneMath.PackScratch(LaneMath.PackedSize(q, d) + (k * stagePack));
            var ft = ut + LaneMath.PackedSize(q, d);
            LaneMath.Pack(Floats(u), q, 1, d, q, ut);
            for (var i = 0; i < k; i++)
            {
                LaneMath.Pack(fp + ((long)i * m * d * d), d, 1, m * d, d, ft + ((long)i * stagePack));
            }
            using var partials = zeros((long)blocks * s.GradSize * LaneMath.Lanes, ScalarType.Float32);
            var pp = (Vector256<float>*)Floats(partials);
            LaneMath.SplitBlocks(b, (lo, hi) =>
            {
                var x = LaneMath.Scratch((2 * n * d) + (2 * k * d) + (q * d) + (n * q));
                var dx = x + (n * d);
                var dtl = dx + (n * d);
                var dz = dtl + (k * d);
                var dpooled = dz + (k * d);
                var da = dpooled + (q * d);
                for (var first = lo; first < hi; first += LaneMath.Lanes)
                {
                    var count = Math.Min(LaneMath.Lanes, hi - first);
                    var st = sp + ((long)(first / LaneMath.Lanes) * s.StashSize);
                    var acc = pp + ((long)(first / LaneMath.Block) * s.GradSize);
                    var a = st;
                    var pooled = st + s.PooledAt;
                    LaneMath.Gather(yp + ((long)first * n * d), count, n * d, x);
                    for (var i = 0; i < k; i++)
                    {
                        LaneMath.Gather(dtp + ((((long)i * b) + first) * d), count, d, dtl + (i * d));
                        // The stage's norm, then its output bias, folded map (dF_i[(h,e), o] += p_(i,h)[e] dz_i[o]) and pooled rows.
                        LaneMath.LayerNormBackward(dtl + (i * d), st + s.NormAt + (i * d), st + s.InverseAt + i, 1, d, nw + (i * d), dz + (i * d),
                            acc + gWeight + (i * d), acc + gNormBias + (i * d));
                        if (dprev is not null)
                        {
                            LaneMath.Scatter(dz + (i * d), count, d, dprev + ((((long)i * b) + first) * d));
                        }
                        for (var e = 0; e < d; e++)
                        {
                            acc[gBias + (i * d) + e] += dz[(i * d) + e];
                        }
                        LaneMath.TimesLanes(pooled + (i * m * d), m * d, 1, 1, 0, dz + (i * d), 0, 1, d, acc + gFolded + (i * m * d * d), d, accumulate: true);
                        LaneMath.TimesShared(dz + (i * d), 1, 0, d, 1, ft + ((long)i * stagePack), m * d, dpooled + (i * m * d), m * d, null, accumulate: false);
                    }
                    // Pooling, softmax, scores, as in the ASRG layer without gates.
                    LaneMath.TimesLanes(x, n, d, d, 1, dpooled, 1, d, q, da, q, accumulate: false);
                    LaneMath.TimesLanes(a, n, q, q, 1, dpooled, d, 1, d, dx, d, accumulate: false);
                    LaneMath.ColumnSoftmaxBackward(a, da, n, q, null, null, 1, null);
                    LaneMath.TimesLanes(x, d, 1, n, d, da, q, 1, q, acc + gU, q, accumulate: true);
                    LaneMath.TimesShared(da, n, q, q, 1, ut, d, dx, d, null, accumulate: true);
                    LaneMath.Scatter(dx, count, n * d, dyp + ((long)first * n * d));
                }
            });
            for (var i = 0; i < grads.Length; i++)
            {
                var total = Floats(grads[i]);
                for (var block = 0; block < blocks; block++)
                {
                    LaneMath.AddLanes(pp + ((long)block * s.GradSize) + s.Grad[i], s.Grad[i + 1] - s.Grad[i], total);
                }
            }
        }
    }
}
