using AdAuctionSim.Models.Runtime;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Baselines;

/// <summary>
/// The conditional-head loss of the generic baselines (<see cref="BaselineLoss"/>, models.md §1, §2, §6.2) as one C# pass
/// forward and one backward on a CPU: <c>Σ_k w_k · L_k</c>, where L_k is the mean of <c>BceWithLogits(a_k, s_k)</c> over
/// the rows of δ_k = won · s_{k−1} (s_0 = 1), and 0 with zero gradient when δ_k is empty in the batch.
/// </summary>
/// <remarks>
/// <para>The same function as <see cref="BaselineLoss.PerStage"/> weighted and summed, which stays the reference (and
/// the path on any other device or type). Each row's term is <c>max(a, 0) − s·a + log(1 + e^{−|a|})</c>, which is
/// libtorch's softplus(a) − s·a without its switch to a at a &gt; 20, computed and summed in double precision in row order
/// on one thread, so the bits do not depend on the thread count; the gradient is
/// <c>w_k · (σ(a_k) − s_k) / |δ_k|</c> on δ_k's rows and 0 elsewhere.</para>
/// <para>Why: in libtorch operations the loss is about twenty small kernels forward (casts, the softplus, the parent
/// labels' concatenation, the mask, a select, two sums, a clamp, a division, the weights) and their backward, about
/// 0.3 ms a step at batch 2048 on the development machine, for a few thousand exponentials.</para>
/// </remarks>
internal static class ConditionalStageLoss
{
    /// <summary>Whether the host pass serves these tensors: float32 in host memory, logits and labels [B, K], won [B].</summary>
    public static bool Serves(Tensor logits, Tensor labels, Tensor won) =>
        HostMemory.IsHostFloat(logits) && HostMemory.IsHostFloat(labels) && HostMemory.IsHostFloat(won)
        && logits.dim() == 2 && labels.dim() == 2 && won.dim() == 1
        && labels.shape[0] == logits.shape[0] && labels.shape[1] == logits.shape[1] && won.shape[0] == logits.shape[0];

    /// <summary>
    /// The weighted loss, a scalar. <paramref name="weights"/> holds one weight per stage (K of them).
    /// </summary>
    /// <param name="logits">[B, K] conditional logits a_k.</param>
    /// <param name="labels">[B, K] cumulative labels s_k (0 or 1).</param>
    /// <param name="won">[B]: 1 for an impression, 0 for a lost bid.</param>
    /// <param name="weights">w_k, one per stage.</param>
    public static Tensor Apply(Tensor logits, Tensor labels, Tensor won, IReadOnlyList<float> weights)
    {
        if (!Serves(logits, labels, won))
        {
            throw new ArgumentException($"expected float32 host tensors logits and labels [B, K] and won [B], got logits "
                + $"[{string.Join(", ", logits.shape)}] {logits.dtype} on {logits.device_type}, labels [{string.Join(", ", labels.shape)}], "
                + $"won [{string.Join(", ", won.shape)}]", nameof(logits));
        }
        if (weights.Count != logits.shape[1])
        {
            throw new ArgumentException($"{weights.Count} stage weights for {logits.shape[1]} stages", nameof(weights));
        }
        return LossFunction.apply(logits.contiguous(), labels.contiguous(), won.contiguous(), weights.ToArray());
    }

    /// <summary>
    /// Inputs (logits, labels, won, weights); saves the logits and labels, the positions of the terms in the loss (row-major
    /// offsets into [B, K]) and each stage's row count.
    /// </summary>
    private sealed class LossFunction : autograd.SingleTensorFunction<LossFunction>
    {
        public override string Name => "ConditionalStageLoss";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (logits, labels, won, weights) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (float[])vars[3]);
            var (terms, counts) = Kernels.Terms(labels, won);
            var value = Kernels.Forward(logits, labels, weights, terms, counts);
            ctx.save_for_backward([logits, labels]);
            ctx.save_data("weights", weights);
            ctx.save_data("terms", terms);
            ctx.save_data("counts", counts);
            return tensor(value, ScalarType.Float32);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var saved = ctx.get_saved_variables();
            var weights = (float[])ctx.get_data("weights");
            var terms = (int[])ctx.get_data("terms");
            var counts = (long[])ctx.get_data("counts");
            var g = gradOutput.to_type(ScalarType.Float64).item<double>();
            var grad = zeros_like(saved[0]);
            Kernels.Backward(saved[0], saved[1], weights, terms, counts, g, grad);
            return [grad, null!, null!, null!];
        }
    }

    private static unsafe class Kernels
    {
        /// <summary>
        /// The row-major offsets (b·K + k) of the terms in the loss, in row order: row b is in stage k's space when
        /// won_b · s_{b,k−1} &gt; ½ (s_{b,0} read as 1); and each stage's count of them.
        /// </summary>
        public static (int[] Terms, long[] Counts) Terms(Tensor labels, Tensor won)
        {
            var (rows, k) = ((int)labels.shape[0], (int)labels.shape[1]);
            var s = HostMemory.Floats(labels);
            var w = HostMemory.Floats(won);
            var terms = new int[checked(rows * k)];
            var counts = new long[k];
            var n = 0;
            for (var b = 0; b < rows; b++)
            {
                var row = b * k;
                for (var j = 0; j < k; j++)
                {
                    var parent = j == 0 ? 1f : s[row + j - 1];
                    if (parent * w[b] > 0.5f)
                    {
                        terms[n++] = row + j;
                        counts[j]++;
                    }
                }
            }
            return (terms[..n], counts);
        }

        public static double Forward(Tensor logits, Tensor labels, float[] weights, int[] terms, long[] counts)
        {
            var k = weights.Length;
            var a = HostMemory.Floats(logits);
            var s = HostMemory.Floats(labels);
            Span<double> sums = stackalloc double[k];
            sums.Clear();
            foreach (var t in terms)
            {
                double x = a[t];
                sums[t % k] += Math.Max(x, 0) - (s[t] * x) + Math.Log(1 + Math.Exp(-Math.Abs(x)));
            }
            var total = 0.0;
            for (var j = 0; j < k; j++)
            {
                total += weights[j] * (float)(sums[j] / Math.Max(counts[j], 1));
            }
            return (float)total;
        }

        public static void Backward(Tensor logits, Tensor labels, float[] weights, int[] terms, long[] counts, double g, Tensor grad)
        {
            var k = weights.Length;
            var a = HostMemory.Floats(logits);
            var s = HostMemory.Floats(labels);
            var d = HostMemory.Floats(grad);
            Span<double> scale = stackalloc double[k];
            for (var j = 0; j < k; j++)
            {
                scale[j] = g * weights[j] / Math.Max(counts[j], 1);
            }
            foreach (var t in terms)
            {
                double x = a[t];
                var e = Math.Exp(-Math.Abs(x));
                var sigma = x >= 0 ? 1 / (1 + e) : e / (1 + e);
                d[t] = (float)(scale[t % k] * (sigma - s[t]));
            }
        }
    }
}
