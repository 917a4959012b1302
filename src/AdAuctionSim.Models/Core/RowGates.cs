using System.Runtime.Intrinsics;
using AdAuctionSim.Models.Runtime;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Core;

/// <summary>
/// Gates that each read their own input row: logits L[t, b, j] = x[t, b, :] · W[t, j, :] for the members j of gate t,
/// then a softmax over those members; output P [B, T, n], zero outside each gate's members.
/// </summary>
/// <remarks>
/// <para>On a CPU with float32 tensors this runs as one C# pass per sample forward and one backward (a custom autograd
/// function); anywhere else it runs <see cref="Reference"/>, the same function in libtorch operations (a batched
/// product, a mask, a softmax). Used by <see cref="GateBank"/> for inputs [B, T, input] (STEM's gates, PLE's upper
/// levels).</para>
/// <para>Why: a gate has a handful of outputs (n = 3–5 here), so as libtorch operations its forward product has 5 output
/// columns and its input gradient a reduction 5 deep, shapes MKL runs at a small share of its rate, each followed by
/// permutes, a softmax and their backward kernels over [T, B, n]. The pass reads each input row once forward and once
/// backward. Measured on the development machine at STEM's sizes (3 gates of 5 experts on 112 inputs, batch 2048),
/// forward and backward: 1.9–2.1 ms against 2.3 ms in libtorch operations on 2 threads, 1.6 ms against 2.7–2.9 ms on
/// one; in <c>adsim bench train --model stem</c> (2 threads, two runs of two rounds each way, the pass switched off and
/// on in the same build) a training step took 15.2–16.5 ms without it and 12.0–17.4 ms (mean 14.1) with it.</para>
/// <para>Each sample's logits, softmax and input gradient are computed on their own; the weight gradient is summed over
/// fixed blocks of <see cref="Block"/> samples, each block in sample order, then the blocks in order. So the result does
/// not depend on how many threads share the batch. Values agree with <see cref="Reference"/> up to float rounding
/// (tests compare both, and their gradients).</para>
/// </remarks>
public static class RowGates
{
    /// <summary>Samples per block of the weight gradient's sum.</summary>
    internal const int Block = 256;

    /// <summary>P [B, T, n] from x [T, B, input], W [T, n, input] and each gate's members (null: every gate has all n).</summary>
    /// <param name="x">Gate t's input rows, x[t] [B, input].</param>
    /// <param name="weight">Gate t's weight rows, W[t] [n, input] (rows of non-members are not read).</param>
    /// <param name="members">For each gate, the experts in its softmax (distinct, below n); null for all.</param>
    public static Tensor Apply(Tensor x, Tensor weight, IReadOnlyList<int[]>? members)
    {
        Check(x, weight, members);
        return HostMemory.IsHostFloat(x) && HostMemory.IsHostFloat(weight)
            ? GatesFunction.apply(x.contiguous(), weight.contiguous(), members ?? All(weight))
            : Reference(x, weight, members);
    }

    /// <summary>The same function in libtorch operations (any device, any type).</summary>
    public static Tensor Reference(Tensor x, Tensor weight, IReadOnlyList<int[]>? members)
    {
        Check(x, weight, members);
        var logits = x.bmm(weight.transpose(1, 2));   // [T, B, n]
        if (members is not null)
        {
            var (t, n) = (members.Count, (int)weight.shape[1]);
            var mask = new float[t * n];
            Array.Fill(mask, float.NegativeInfinity);
            for (var i = 0; i < t; i++)
            {
                foreach (var j in members[i])
                {
                    mask[(i * n) + j] = 0f;
                }
            }
            logits = logits.Plus(tensor(mask, device: x.device).view(t, 1, n).to_type(logits.dtype));
        }
        return nn.functional.softmax(logits, -1).transpose(0, 1).contiguous();
    }

    private static void Check(Tensor x, Tensor weight, IReadOnlyList<int[]>? members)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        if (x.dim() != 3 || weight.dim() != 3 || weight.shape[0] != x.shape[0] || weight.shape[2] != x.shape[2] || weight.shape[1] < 1
            || (members is not null && members.Count != weight.shape[0]))
        {
            throw new ArgumentException($"expected inputs [T, B, input], weights [T, n, input] and T member lists or none; got "
                + $"[{string.Join(", ", x.shape)}], [{string.Join(", ", weight.shape)}] and {(members is null ? "none" : $"{members.Count} lists")}");
        }
        for (var t = 0; members is not null && t < members.Count; t++)
        {
            var m = members[t];
            if (m.Length == 0 || m.Any(j => j < 0 || j >= weight.shape[1]) || m.Distinct().Count() != m.Length)
            {
                throw new ArgumentException($"gate {t}: members [{string.Join(", ", m)}]; expected at least one, distinct, below {weight.shape[1]}", nameof(members));
            }
        }
    }

    /// <summary>Every gate over all n experts.</summary>
    private static int[][] All(Tensor weight) =>
        [.. Enumerable.Range(0, (int)weight.shape[0]).Select(_ => Enumerable.Range(0, (int)weight.shape[1]).ToArray())];

    /// <summary>The autograd function of the host pass. Inputs (x, W, members); saves x, W and P.</summary>
    private sealed class GatesFunction : autograd.SingleTensorFunction<GatesFunction>
    {
        public override string Name => "RowGates";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var x = (Tensor)vars[0];
            var w = (Tensor)vars[1];
            var members = (IReadOnlyList<int[]>)vars[2];
            var p = zeros(x.shape[1], x.shape[0], w.shape[1], ScalarType.Float32);
            Kernels.Forward(x, w, members, p);
            ctx.save_for_backward([x, w, p]);
            ctx.save_data("members", members);
            return p;
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var saved = ctx.get_saved_variables();
            var (x, w, p) = (saved[0], saved[1], saved[2]);
            var members = (IReadOnlyList<int[]>)ctx.get_data("members");
            var dp = gradOutput.to_type(ScalarType.Float32).contiguous();
            var dx = empty_like(x);
            var dw = zeros_like(w);
            Kernels.Backward(x, w, members, p, dp, dx, dw);
            return [dx, dw, null!];
        }
    }

    /// <summary>Per sample, vectorised along the input rows.</summary>
    private static unsafe class Kernels
    {
        public static void Forward(Tensor x, Tensor w, IReadOnlyList<int[]> members, Tensor p)
        {
            var (gates, b, width, n) = ((int)x.shape[0], (int)x.shape[1], (int)x.shape[2], (int)w.shape[1]);
            var xp = (float*)HostMemory.Data(x);
            var wp = (float*)HostMemory.Data(w);
            var pp = (float*)HostMemory.Data(p);
            Blocks(b, (lo, hi) =>
            {
                var logits = stackalloc float[n];
                for (long i = lo; i < hi; i++)
                {
                    for (var t = 0; t < gates; t++)
                    {
                        var row = xp + ((((long)t * b) + i) * width);
                        var m = members[t];
                        var max = float.NegativeInfinity;
                        foreach (var j in m)
                        {
                            logits[j] = Dot(row, wp + ((((long)t * n) + j) * width), width);
                            max = MathF.Max(max, logits[j]);
                        }
                        var sum = 0f;
                        foreach (var j in m)
                        {
                            logits[j] = MathF.Exp(logits[j] - max);
                            sum += logits[j];
                        }
                        var inverse = 1f / sum;
                        var output = pp + ((((i * gates) + t)) * n);
                        foreach (var j in m)
                        {
                            output[j] = logits[j] * inverse;
                        }
                    }
                }
            });
        }

        /// <summary>
        /// ∂L[t, b, j] = P (∂P − Σ_j' P ∂P); ∂x[t, b] = Σ_j ∂L[t, b, j] W[t, j]; ∂W[t, j] = Σ_b ∂L[t, b, j] x[t, b], summed per
        /// block of <see cref="Block"/> samples, then over the blocks in order.
        /// </summary>
        public static void Backward(Tensor x, Tensor w, IReadOnlyList<int[]> members, Tensor p, Tensor dp, Tensor dx, Tensor dw)
        {
            var (gates, b, width, n) = ((int)x.shape[0], (int)x.shape[1], (int)x.shape[2], (int)w.shape[1]);
            var xp = (float*)HostMemory.Data(x);
            var wp = (float*)HostMemory.Data(w);
            var pp = (float*)HostMemory.Data(p);
            var dpp = (float*)HostMemory.Data(dp);
            var dxp = (float*)HostMemory.Data(dx);
            var blocks = (b + Block - 1) / Block;
            var weightSize = (long)gates * n * width;
            // Partial sums of ∂W [blocks, T, n, input], one per block.
            using var partials = zeros(blocks * weightSize, ScalarType.Float32);
            var pt = (float*)HostMemory.Data(partials);
            Blocks(b, (lo, hi) =>
            {
                var dl = stackalloc float[n];
                for (long i = lo; i < hi; i++)
                {
                    var sums = pt + ((i / Block) * weightSize);
                    for (var t = 0; t < gates; t++)
                    {
                        var m = members[t];
                        var at = ((i * gates) + t) * n;
                        var dot = 0f;
                        foreach (var j in m)
                        {
                            dot = MathF.FusedMultiplyAdd(pp[at + j], dpp[at + j], dot);
                        }
                        foreach (var j in m)
                        {
                            dl[j] = pp[at + j] * (dpp[at + j] - dot);
                        }
                        var row = xp + ((((long)t * b) + i) * width);
                        var grad = dxp + ((((long)t * b) + i) * width);
                        var weights = wp + ((long)t * n * width);
                        var gateSums = sums + ((long)t * n * width);
                        Gradients(m, dl, row, weights, grad, gateSums, width);
                    }
                }
            });
            var total = (float*)HostMemory.Data(dw);
            for (var k = 0; k < blocks; k++)
            {
                Axpy(1f, pt + (k * weightSize), total, weightSize);
            }
        }

        /// <summary>
        /// One gate and sample, chunk by chunk of the row: grad = Σ_j dl[j] W[j] (held in a register, stored once) and
        /// sums[j] += dl[j] · row.
        /// </summary>
        private static void Gradients(int[] members, float* dl, float* row, float* weights, float* grad, float* sums, int width)
        {
            var c = 0;
            // Four chunks at a time: four independent chains of multiply-adds over the members instead of one.
            for (; c + 32 <= width; c += 32)
            {
                var (x0, x1, x2, x3) = (Vector256.Load(row + c), Vector256.Load(row + c + 8), Vector256.Load(row + c + 16), Vector256.Load(row + c + 24));
                var (a0, a1, a2, a3) = (Vector256<float>.Zero, Vector256<float>.Zero, Vector256<float>.Zero, Vector256<float>.Zero);
                foreach (var j in members)
                {
                    var scale = Vector256.Create(dl[j]);
                    var w = weights + ((long)j * width) + c;
                    var sum = sums + ((long)j * width) + c;
                    a0 = Vector256.FusedMultiplyAdd(scale, Vector256.Load(w), a0);
                    a1 = Vector256.FusedMultiplyAdd(scale, Vector256.Load(w + 8), a1);
                    a2 = Vector256.FusedMultiplyAdd(scale, Vector256.Load(w + 16), a2);
                    a3 = Vector256.FusedMultiplyAdd(scale, Vector256.Load(w + 24), a3);
                    Vector256.FusedMultiplyAdd(scale, x0, Vector256.Load(sum)).Store(sum);
                    Vector256.FusedMultiplyAdd(scale, x1, Vector256.Load(sum + 8)).Store(sum + 8);
                    Vector256.FusedMultiplyAdd(scale, x2, Vector256.Load(sum + 16)).Store(sum + 16);
                    Vector256.FusedMultiplyAdd(scale, x3, Vector256.Load(sum + 24)).Store(sum + 24);
                }
                a0.Store(grad + c);
                a1.Store(grad + c + 8);
                a2.Store(grad + c + 16);
                a3.Store(grad + c + 24);
            }
            for (; c + 8 <= width; c += 8)
            {
                var x = Vector256.Load(row + c);
                var acc = Vector256<float>.Zero;
                foreach (var j in members)
                {
                    var scale = Vector256.Create(dl[j]);
                    var at = ((long)j * width) + c;
                    acc = Vector256.FusedMultiplyAdd(scale, Vector256.Load(weights + at), acc);
                    Vector256.FusedMultiplyAdd(scale, x, Vector256.Load(sums + at)).Store(sums + at);
                }
                acc.Store(grad + c);
            }
            for (; c < width; c++)
            {
                var acc = 0f;
                foreach (var j in members)
                {
                    var at = ((long)j * width) + c;
                    acc = MathF.FusedMultiplyAdd(dl[j], weights[at], acc);
                    sums[at] = MathF.FusedMultiplyAdd(dl[j], row[c], sums[at]);
                }
                grad[c] = acc;
            }
        }

        /// <summary>Whole blocks of <see cref="Block"/> samples per share, so a block's sum is one thread's, in sample order.</summary>
        private static void Blocks(int samples, Action<int, int> body) => HostThreads.SplitBlocks(samples, Block, parallel: true, body);

        /// <summary>Σ a[i]·b[i] over n floats: even and odd vectors in two accumulators (two chains of multiply-adds), then the tail.</summary>
        private static float Dot(float* a, float* b, int n)
        {
            var i = 0;
            var (even, odd) = (Vector256<float>.Zero, Vector256<float>.Zero);
            for (; i + 16 <= n; i += 16)
            {
                even = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), even);
                odd = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 8), Vector256.Load(b + i + 8), odd);
            }
            for (; i + 8 <= n; i += 8)
            {
                even = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), even);
            }
            var sum = Vector256.Sum(even + odd);
            for (; i < n; i++)
            {
                sum = MathF.FusedMultiplyAdd(a[i], b[i], sum);
            }
            return sum;
        }

        /// <summary>y += a·x over n floats.</summary>
        private static void Axpy(float a, float* x, float* y, long n)
        {
            long i = 0;
            var va = Vector256.Create(a);
            for (; i + 8 <= n; i += 8)
            {
                Vector256.FusedMultiplyAdd(va, Vector256.Load(x + i), Vector256.Load(y + i)).Store(y + i);
            }
            for (; i < n; i++)
            {
                y[i] = MathF.FusedMultiplyAdd(a, x[i], y[i]);
            }
        }
    }
}
