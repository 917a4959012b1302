using System.Runtime.Intrinsics;
using AdAuctionSim.Models.Core;
using static AdAuctionSim.Models.Runtime.HostMemory;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Debiasing;

/// <summary>
/// The parameters of one ASRG layer as the fused pass reads them, each already in the folded form of
/// <see cref="ApemModel.InducingAttention"/>: U [d, K_I·M] (the keys folded into the inducing points, columns point-major
/// (j, h), scaled by 1/√d), W^V W^O folded [M·d, d] and W^O's bias [d], the inducing points averaged over the heads
/// Ī [K_I, d] (the gated-query residual), the two layer norms' affine maps [d] and their ε, and the feed-forward's
/// Linear weights (PyTorch layout: W₁ [H, d], b₁ [H], W₂ [d, H], b₂ [d]), null without the feed-forward block.
/// </summary>
internal sealed record AsrgWeights(
    Tensor Scores, Tensor Folded, Tensor OutputBias, Tensor MeanInducing,
    Tensor NormWeight, Tensor NormBias, double NormEps,
    Tensor? Hidden, Tensor? HiddenBias, Tensor? Output, Tensor? OutputLayerBias,
    Tensor? FeedForwardNormWeight, Tensor? FeedForwardNormBias, double FeedForwardNormEps)
{
    public bool FeedForward => Hidden is not null;
}

/// <summary>
/// One ASRG layer after its selector (models.md §13.1), fused: from the layer input H [B, n, d] and the gates
/// f_D(z) [B, K_I], the attention of the gated inducing points over H (scores, gate, softmax over the n rows, pooling,
/// the folded value-output map and its bias), the gated-query residual and layer norm, then the feed-forward block
/// Y = LayerNorm(Y + W₂ ReLU(W₁ Y + b₁) + b₂). Output Y [B, K_I, d].
/// </summary>
/// <remarks>
/// <para>On a CPU with float32 tensors this is one C# pass forward and one backward (a custom autograd function) that
/// computes eight samples at once, one per vector lane (<see cref="LaneMath"/>): every product is a lane vector times a
/// shared parameter or a product of two lane vectors, so nothing is summed across lanes and no product is narrower than
/// a vector. Anywhere else <see cref="ApemModel.AsrgBlock"/> runs the same function in libtorch operations (its
/// reference form, which tests hold this pass to in values and in every gradient).</para>
/// <para>Why: in libtorch operations an ASRG layer was about thirty kernels over [B, 14–16, 8] tensors and their backward,
/// each a pass over memory for a few multiply-adds per element: on the development machine (2 threads, batch 2048)
/// 17–19 ms of a layer's forward and backward, against a few milliseconds for its multiply-adds.</para>
/// <para>The parameter gradients are summed per lane over the samples of fixed blocks of <see cref="LaneMath.Block"/> samples,
/// the lanes of each block added in lane order, then the blocks in order; each sample's own work is the same
/// instructions wherever it runs. So the result does not depend on the thread count.</para>
/// </remarks>
internal static class AsrgLayer
{
    /// <summary>Y [B, K_I, d] from H [B, n, d] and f_D(z) [B, K_I]; see the type summary.</summary>
    public static Tensor Apply(Tensor h, Tensor gates, AsrgWeights w)
    {
        ArgumentNullException.ThrowIfNull(h);
        ArgumentNullException.ThrowIfNull(gates);
        ArgumentNullException.ThrowIfNull(w);
        var shape = Shape.Of(h, gates, w);
        return LayerFunction.apply(h.contiguous(), gates.contiguous(), w.Scores.contiguous(), w.Folded.contiguous(), w.OutputBias.contiguous(),
            w.MeanInducing.contiguous(), w.NormWeight.contiguous(), w.NormBias.contiguous(),
            w.Hidden?.contiguous()!, w.HiddenBias?.contiguous()!, w.Output?.contiguous()!, w.OutputLayerBias?.contiguous()!,
            w.FeedForwardNormWeight?.contiguous()!, w.FeedForwardNormBias?.contiguous()!, shape);
    }

    /// <summary>The sizes of a layer and the offsets of its per-group stash and gradient sums (in lane vectors).</summary>
    private sealed class Shape
    {
        public Shape(int n, int d, int p, int m, int h, float eps1, float eps2)
        {
            (N, D, P, M, H, Eps1, Eps2) = (n, d, p, m, h, eps1, eps2);
            Q = p * m;
            // Stash per group of 8 samples, for the backward: raw scores S [n, Q], softmax A [n, Q], pooled rows [Q, d],
            // x̂₁ [P, d], 1/σ₁ [P], Y₁ [P, d], and with the feed-forward its pre-activation [P, H], x̂₂ [P, d], 1/σ₂ [P].
            ScoresAt = 0;
            SoftmaxAt = ScoresAt + (n * Q);
            PooledAt = SoftmaxAt + (n * Q);
            Norm1At = PooledAt + (Q * d);
            Inverse1At = Norm1At + (p * d);
            Y1At = Inverse1At + p;
            HiddenAt = Y1At + (p * d);
            Norm2At = HiddenAt + (p * h);
            Inverse2At = Norm2At + (h > 0 ? p * d : 0);
            StashSize = Inverse2At + (h > 0 ? p : 0);
            // Parameter-gradient sums per block (lane vectors), in the order of the inputs.
            var f = h > 0 ? d : 0;
            Grad = [0, d * Q, m * d * d, d, p * d, d, d, h * d, h, d * h, f, f, f];
            for (var i = 1; i < Grad.Length; i++)
            {
                Grad[i] += Grad[i - 1];
            }
        }

        public int N { get; }
        public int D { get; }
        public int P { get; }
        public int M { get; }
        public int H { get; }
        public float Eps1 { get; }
        public float Eps2 { get; }
        public int Q { get; }
        public int ScoresAt { get; }
        public int SoftmaxAt { get; }
        public int PooledAt { get; }
        public int Norm1At { get; }
        public int Inverse1At { get; }
        public int Y1At { get; }
        public int HiddenAt { get; }
        public int Norm2At { get; }
        public int Inverse2At { get; }
        public int StashSize { get; }

        /// <summary>Where the gradient sums of input 2 + i start (U, folded, output bias, Ī, norm₁ weight and bias, W₁, b₁,
        /// W₂, b₂, norm₂ weight and bias); the last entry is the size of a block's sums.</summary>
        public int[] Grad { get; }

        public int GradSize => Grad[^1];

        public static Shape Of(Tensor h, Tensor gates, AsrgWeights w)
        {
            if (h.dim() != 3 || gates.dim() != 2 || gates.shape[0] != h.shape[0] || w.MeanInducing.dim() != 2
                || w.MeanInducing.shape[0] != gates.shape[1] || w.MeanInducing.shape[1] != h.shape[2])
            {
                throw new ArgumentException($"expected H [B, n, d], gates [B, K_I] and mean inducing points [K_I, d]; got [{string.Join(", ", h.shape)}], "
                    + $"[{string.Join(", ", gates.shape)}], [{string.Join(", ", w.MeanInducing.shape)}]");
            }
            var (n, d, p) = ((int)h.shape[1], (int)h.shape[2], (int)gates.shape[1]);
            var q = (int)w.Scores.shape[1];
            var m = q / p;
            var hidden = w.Hidden is null ? 0 : (int)w.Hidden.shape[0];
            if (w.Scores.dim() != 2 || w.Scores.shape[0] != d || q % p != 0 || m < 1
                || !w.Folded.shape.SequenceEqual(new long[] { m * d, d }) || w.OutputBias.numel() != d
                || w.NormWeight.numel() != d || w.NormBias.numel() != d
                || (w.Hidden is not null && (!w.Hidden.shape.SequenceEqual(new long[] { hidden, d }) || w.HiddenBias?.numel() != hidden
                    || w.Output is null || !w.Output.shape.SequenceEqual(new long[] { d, hidden }) || w.OutputLayerBias?.numel() != d
                    || w.FeedForwardNormWeight?.numel() != d || w.FeedForwardNormBias?.numel() != d)))
            {
                throw new ArgumentException($"ASRG weights do not fit d = {d}, K_I = {p}: scores [{string.Join(", ", w.Scores.shape)}], "
                    + $"folded [{string.Join(", ", w.Folded.shape)}]");
            }
            return new Shape(n, d, p, m, hidden, (float)w.NormEps, (float)w.FeedForwardNormEps);
        }
    }

    /// <summary>Inputs (H, gates, U, folded, output bias, Ī, norm₁ weight and bias, W₁, b₁, W₂, b₂, norm₂ weight and bias, shape).</summary>
    private sealed class LayerFunction : autograd.SingleTensorFunction<LayerFunction>
    {
        public override string Name => "AsrgLayer";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var t = vars.Take(14).Select(v => v as Tensor).ToArray();
            var shape = (Shape)vars[14];
            var b = (int)t[0]!.shape[0];
            var groups = (b + LaneMath.Lanes - 1) / LaneMath.Lanes;
            var stash = empty((long)groups * shape.StashSize * LaneMath.Lanes, ScalarType.Float32);
            var y = empty(b, shape.P, shape.D, ScalarType.Float32);
            Kernels.Forward(shape, t, stash, y);
            ctx.save_for_backward([.. t.Select(x => x ?? empty(0)), stash]);
            ctx.save_data("shape", shape);
            return y;
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var saved = ctx.get_saved_variables();
            var shape = (Shape)ctx.get_data("shape");
            // Without the feed-forward block its six inputs were saved as empty placeholders.
            var t = saved.Take(14).Select((x, i) => i >= 8 && shape.H == 0 ? null : x).ToArray();
            var stash = saved[14];
            var dy = gradOutput.to_type(ScalarType.Float32).contiguous();
            var dh = empty_like(t[0]!);
            var dgates = empty_like(t[1]!);
            var grads = new Tensor?[14];
            grads[0] = dh;
            grads[1] = dgates;
            for (var i = 2; i < 14; i++)
            {
                grads[i] = t[i] is null ? null : zeros_like(t[i]!);
            }
            Kernels.Backward(shape, t, stash, dy, grads);
            return [.. grads.Select(g => g!), null!];
        }
    }

    private static unsafe class Kernels
    {
        public static void Forward(Shape s, Tensor?[] t, Tensor stash, Tensor y)
        {
            var b = (int)t[0]!.shape[0];
            float* hp = Floats(t[0]), gp = Floats(t[1]), up = Floats(t[2]), fp = Floats(t[3]), obp = Floats(t[4]), ip = Floats(t[5]);
            float* n1w = Floats(t[6]), n1b = Floats(t[7]);
            float* w1 = Floats(t[8]), b1 = Floats(t[9]), w2 = Floats(t[10]), b2 = Floats(t[11]), n2w = Floats(t[12]), n2b = Floats(t[13]);
            var sp = (Vector256<float>*)Floats(stash);
            var yp = Floats(y);
            // The parameters as the products read them: U, F, W₁, W₂ packed by blocks of 8 output columns.
            var uk = LaneMath.PackScratch(LaneMath.PackedSize(s.D, s.Q) + LaneMath.PackedSize(s.M * s.D, s.D)
                + LaneMath.PackedSize(s.D, Math.Max(s.H, 1)) + LaneMath.PackedSize(Math.Max(s.H, 1), s.D));
            var fk = uk + LaneMath.PackedSize(s.D, s.Q);
            var w1k = fk + LaneMath.PackedSize(s.M * s.D, s.D);
            var w2k = w1k + LaneMath.PackedSize(s.D, Math.Max(s.H, 1));
            LaneMath.Pack(up, s.D, s.Q, s.Q, 1, uk);
            LaneMath.Pack(fp, s.M * s.D, s.D, s.D, 1, fk);
            if (s.H > 0)
            {
                LaneMath.Pack(w1, s.D, 1, s.H, s.D, w1k);
                LaneMath.Pack(w2, s.H, 1, s.D, s.H, w2k);
            }
            var (n, d, pts, m, hid, q) = (s.N, s.D, s.P, s.M, s.H, s.Q);
            LaneMath.SplitBlocks(b, (lo, hi) =>
            {
                var x = LaneMath.Scratch((n * d) + pts + (2 * pts * d) + (pts * Math.Max(hid, 1)));
                var g = x + (n * d);
                var z = g + pts;
                var o = z + (pts * d);
                var relu = o + (pts * d);
                for (var first = lo; first < hi; first += LaneMath.Lanes)
                {
                    var count = Math.Min(LaneMath.Lanes, hi - first);
                    var st = sp + ((long)(first / LaneMath.Lanes) * s.StashSize);
                    LaneMath.Gather(hp + ((long)first * n * d), count, n * d, x);
                    LaneMath.Gather(gp + ((long)first * pts), count, pts, g);
                    var scores = st + s.ScoresAt;
                    var a = st + s.SoftmaxAt;
                    var pooled = st + s.PooledAt;
                    // Raw scores S[r, c] = x_r · U[:, c]; then per column c = (j, h) the softmax over r of g_j · S[r, c].
                    LaneMath.TimesShared(x, n, d, d, 1, uk, q, scores, q, null, accumulate: false);
                    LaneMath.ColumnSoftmax(scores, n, q, g, m, a);
                    // Pooled rows p_c = Σ_r A[r, c] x_r; Z_j = b^O + Σ_{h,e} p_{(j,h)}[e] F[(h, e), :] + g_j Ī_j.
                    LaneMath.TimesLanes(a, q, 1, n, q, x, d, 1, d, pooled, d, accumulate: false);
                    LaneMath.TimesShared(pooled, pts, m * d, m * d, 1, fk, d, z, d, obp, accumulate: false);
                    for (var j = 0; j < pts; j++)
                    {
                        for (var e = 0; e < d; e++)
                        {
                            z[(j * d) + e] = Vector256.FusedMultiplyAdd(g[j], Vector256.Create(ip[(j * d) + e]), z[(j * d) + e]);
                        }
                    }
                    var y1 = st + s.Y1At;
                    LaneMath.LayerNorm(z, pts, d, n1w, n1b, s.Eps1, st + s.Norm1At, st + s.Inverse1At, y1);
                    var output = y1;
                    if (hid > 0)
                    {
                        var pre = st + s.HiddenAt;
                        LaneMath.TimesShared(y1, pts, d, d, 1, w1k, hid, pre, hid, b1, accumulate: false);
                        for (var k = 0; k < pts * hid; k++)
                        {
                            relu[k] = Vector256.MaxNative(pre[k], Vector256<float>.Zero);
                        }
                        LaneMath.TimesShared(relu, pts, hid, hid, 1, w2k, d, o, d, b2, accumulate: false);
                        for (var k = 0; k < pts * d; k++)
                        {
                            z[k] = o[k] + y1[k];
                        }
                        LaneMath.LayerNorm(z, pts, d, n2w, n2b, s.Eps2, st + s.Norm2At, st + s.Inverse2At, o);
                        output = o;
                    }
                    LaneMath.Scatter(output, count, pts * d, yp + ((long)first * pts * d));
                }
            });
        }

        public static void Backward(Shape s, Tensor?[] t, Tensor stash, Tensor dy, Tensor?[] grads)
        {
            var b = (int)t[0]!.shape[0];
            float* hp = Floats(t[0]), gp = Floats(t[1]), up = Floats(t[2]), fp = Floats(t[3]), ip = Floats(t[5]);
            float* n1w = Floats(t[6]), w1 = Floats(t[8]), w2 = Floats(t[10]), n2w = Floats(t[12]);
            var sp = (Vector256<float>*)Floats(stash);
            var dyp = Floats(dy);
            float* dhp = Floats(grads[0]), dgp = Floats(grads[1]);
            var (n, d, pts, m, hid, q) = (s.N, s.D, s.P, s.M, s.H, s.Q);
            var blocks = (b + LaneMath.Block - 1) / LaneMath.Block;
            int g0 = s.Grad[0], g1 = s.Grad[1], g2 = s.Grad[2], g3 = s.Grad[3], g4 = s.Grad[4], g5 = s.Grad[5];
            int g6 = s.Grad[6], g7 = s.Grad[7], g8 = s.Grad[8], g9 = s.Grad[9], g10 = s.Grad[10], g11 = s.Grad[11];
            // The parameters as the products read them (transposed for the backward): Uᵀ, Fᵀ, W₁ᵀ, W₂ᵀ.
            var ut = LaneMath.PackScratch(LaneMath.PackedSize(s.Q, d) + LaneMath.PackedSize(d, m * d)
                + LaneMath.PackedSize(Math.Max(hid, 1), d) + LaneMath.PackedSize(d, Math.Max(hid, 1)));
            var ft = ut + LaneMath.PackedSize(s.Q, d);
            var w1t = ft + LaneMath.PackedSize(d, m * d);
            var w2t = w1t + LaneMath.PackedSize(Math.Max(hid, 1), d);
            LaneMath.Pack(up, s.Q, 1, d, s.Q, ut);
            LaneMath.Pack(fp, d, 1, m * d, d, ft);
            if (hid > 0)
            {
                LaneMath.Pack(w1, hid, d, d, 1, w1t);
                LaneMath.Pack(w2, d, hid, hid, 1, w2t);
            }
            using var partials = zeros((long)blocks * s.GradSize * LaneMath.Lanes, ScalarType.Float32);
            var pp = (Vector256<float>*)Floats(partials);
            LaneMath.SplitBlocks(b, (lo, hi) =>
            {
                var x = LaneMath.Scratch((2 * n * d) + (2 * pts) + (3 * pts * d) + (pts * Math.Max(hid, 1)) + (q * d) + (n * q));
                var dx = x + (n * d);
                var g = dx + (n * d);
                var dg = g + pts;
                var dout = dg + pts;       // dY [P, d]
                var dz = dout + (pts * d);  // gradient before a layer norm [P, d]
                var dy1 = dz + (pts * d);   // gradient at Y₁ [P, d]
                var dpre = dy1 + (pts * d); // gradient at the feed-forward's pre-activation [P, H]
                var dpooled = dpre + (pts * Math.Max(hid, 1));
                var da = dpooled + (q * d);
                for (var first = lo; first < hi; first += LaneMath.Lanes)
                {
                    var count = Math.Min(LaneMath.Lanes, hi - first);
                    var st = sp + ((long)(first / LaneMath.Lanes) * s.StashSize);
                    var acc = pp + ((long)(first / LaneMath.Block) * s.GradSize);
                    LaneMath.Gather(hp + ((long)first * n * d), count, n * d, x);
                    LaneMath.Gather(gp + ((long)first * pts), count, pts, g);
                    LaneMath.Gather(dyp + ((long)first * pts * d), count, pts * d, dout);
                    var y1 = st + s.Y1At;
                    if (hid > 0)
                    {
                        var pre = st + s.HiddenAt;
                        LaneMath.LayerNormBackward(dout, st + s.Norm2At, st + s.Inverse2At, pts, d, n2w, dz, acc + g10, acc + g11);
                        // Output layer: db₂ += dz, dW₂[o, k] += Σ_j dz[j, o] relu[j, k]; the hidden gradient through the ReLU.
                        for (var j = 0; j < pts; j++)
                        {
                            for (var e = 0; e < d; e++)
                            {
                                acc[g9 + e] += dz[(j * d) + e];
                            }
                        }
                        for (var k = 0; k < pts * hid; k++)
                        {
                            dpre[k] = Vector256.MaxNative(pre[k], Vector256<float>.Zero);   // the ReLU's output, for dW₂
                        }
                        LaneMath.TimesLanes(dz, d, 1, pts, d, dpre, hid, 1, hid, acc + g8, hid, accumulate: true);
                        LaneMath.TimesShared(dz, pts, d, d, 1, w2t, hid, dpre, hid, null, accumulate: false);
                        for (var j = 0; j < pts; j++)
                        {
                            for (var u = 0; u < hid; u++)
                            {
                                var k = (j * hid) + u;
                                dpre[k] = Vector256.ConditionalSelect(Vector256.GreaterThan(pre[k], Vector256<float>.Zero), dpre[k], Vector256<float>.Zero);
                                acc[g7 + u] += dpre[k];
                            }
                        }
                        // Hidden layer: dW₁[k, e] += Σ_j dpre[j, k] Y₁[j, e]; dY₁ = dz (the residual) + Σ_k dpre[j, k] W₁[k, :].
                        LaneMath.TimesLanes(dpre, hid, 1, pts, hid, y1, d, 1, d, acc + g6, d, accumulate: true);
                        for (var k = 0; k < pts * d; k++)
                        {
                            dy1[k] = dz[k];
                        }
                        LaneMath.TimesShared(dpre, pts, hid, hid, 1, w1t, d, dy1, d, null, accumulate: true);
                    }
                    else
                    {
                        for (var k = 0; k < pts * d; k++)
                        {
                            dy1[k] = dout[k];
                        }
                    }
                    LaneMath.LayerNormBackward(dy1, st + s.Norm1At, st + s.Inverse1At, pts, d, n1w, dz, acc + g4, acc + g5);
                    // Residual g_j Ī_j and the output bias.
                    for (var j = 0; j < pts; j++)
                    {
                        var sum = Vector256<float>.Zero;
                        for (var e = 0; e < d; e++)
                        {
                            var grad = dz[(j * d) + e];
                            sum = Vector256.FusedMultiplyAdd(grad, Vector256.Create(ip[(j * d) + e]), sum);
                            acc[g3 + (j * d) + e] = Vector256.FusedMultiplyAdd(grad, g[j], acc[g3 + (j * d) + e]);
                            acc[g2 + e] += grad;
                        }
                        dg[j] = sum;
                    }
                    // Folded map: dF[(h, e), o] += Σ_j p_{(j,h)}[e] dz[j, o]; dp_{(j,h)}[e] = Σ_o F[(h, e), o] dz[j, o].
                    var pooled = st + s.PooledAt;
                    LaneMath.TimesLanes(pooled, m * d, 1, pts, m * d, dz, d, 1, d, acc + g1, d, accumulate: true);
                    LaneMath.TimesShared(dz, pts, d, d, 1, ft, m * d, dpooled, m * d, null, accumulate: false);
                    // Pooling: dA[r, c] = x_r · dp_c; dx_r = Σ_c A[r, c] dp_c.
                    var a = st + s.SoftmaxAt;
                    LaneMath.TimesLanes(x, n, d, d, 1, dpooled, 1, d, q, da, q, accumulate: false);
                    LaneMath.TimesLanes(a, n, q, q, 1, dpooled, d, 1, d, dx, d, accumulate: false);
                    // Softmax over r per column, then the gate: dS'[r, c] = A (dA − Σ_r A dA); dg_j += Σ_{h,r} S dS'; dS = g_j dS'.
                    var scores = st + s.ScoresAt;
                    LaneMath.ColumnSoftmaxBackward(a, da, n, q, scores, g, m, dg);
                    // Scores: dU[e, c] += Σ_r x_r[e] dS[r, c]; dx_r += Σ_c dS[r, c] U[:, c].
                    LaneMath.TimesLanes(x, d, 1, n, d, da, q, 1, q, acc + g0, q, accumulate: true);
                    LaneMath.TimesShared(da, n, q, q, 1, ut, d, dx, d, null, accumulate: true);
                    LaneMath.Scatter(dx, count, n * d, dhp + ((long)first * n * d));
                    LaneMath.Scatter(dg, count, pts, dgp + ((long)first * pts));
                }
            });
            // Each block's lanes in lane order, then the blocks in order, into the parameter gradients.
            for (var i = 0; i < 12; i++)
            {
                if (grads[i + 2] is not { } grad)
                {
                    continue;
                }
                var total = Floats(grad);
                for (var k = 0; k < blocks; k++)
                {
                    LaneMath.AddLanes(pp + ((long)k * s.GradSize) + s.Grad[i], s.Grad[i + 1] - s.Grad[i], total);
                }
            }
        }
    }
}
