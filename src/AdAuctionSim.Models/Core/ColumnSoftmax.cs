using System.Runtime.Intrinsics;
using AdAuctionSim.Models.Runtime;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Core;

/// <summary>
/// Softmax over dimension 1 of logits [T, n, B]: T gates, n experts, B samples along the last dimension. The expert
/// gates' softmax (<see cref="Gate"/>, <see cref="GateBank"/>).
/// </summary>
/// <remarks>
/// <para>On a CPU with float32 tensors this runs as a C# pass, forward and backward (a custom autograd function);
/// anywhere else as <see cref="Reference"/>, libtorch's softmax over the same dimension.</para>
/// <para>Why: libtorch's CPU softmax over a dimension that is not the last one splits the samples between its threads
/// at points that need not fall on a vector boundary, and a sample computed in a vector lane and the same sample computed
/// in the scalar tail differ in the last bit. At a batch that is not a multiple of the vector width times the thread
/// count (the last batch of an epoch, the last evaluation batch) the gate weights, and from them the trained model,
/// then depended on the thread count: OMoE trained on 1 and on 2 threads gave different predictions. Here the samples
/// are cut into fixed blocks of <see cref="Block"/> (a multiple of the vector width) that threads take whole, so every
/// sample goes through the same instructions whatever the thread count. libtorch's softmax over a last dimension as
/// short as n does not have the problem but costs several times more per step (about 0.2 ms forward and backward at
/// [1, 4, 2048] on the development machine, against 0.03 ms over dimension 1).</para>
/// </remarks>
public static class ColumnSoftmax
{
    /// <summary>Samples per block of work; a multiple of 8, the float lanes of a 256-bit vector.</summary>
    internal const int Block = 256;

    /// <summary>Elements (T·n·B) from which the pass is shared among the intra-op threads.</summary>
    internal const long ParallelWork = 1 << 16;

    /// <summary>softmax(logits, 1) for logits [T, n, B]; returns a new contiguous [T, n, B] tensor.</summary>
    public static Tensor Apply(Tensor logits)
    {
        Check(logits);
        return HostMemory.IsHostFloat(logits) ? SoftmaxFunction.apply(logits.contiguous()) : Reference(logits);
    }

    /// <summary>The same function in libtorch operations (any device, any type).</summary>
    public static Tensor Reference(Tensor logits)
    {
        Check(logits);
        return nn.functional.softmax(logits, 1);
    }

    private static void Check(Tensor logits)
    {
        ArgumentNullException.ThrowIfNull(logits);
        if (logits.dim() != 3 || logits.shape[1] < 1)
        {
            throw new ArgumentException($"expected logits [T, n, B] with n ≥ 1, got [{string.Join(", ", logits.shape)}]", nameof(logits));
        }
    }

    /// <summary>The autograd function of the host pass; saves the output.</summary>
    private sealed class SoftmaxFunction : autograd.SingleTensorFunction<SoftmaxFunction>
    {
        public override string Name => "ColumnSoftmax";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var logits = (Tensor)vars[0];
            var y = empty_like(logits);
            Kernels.Forward(logits, y);
            ctx.save_for_backward([y]);
            return y;
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var y = ctx.get_saved_variables()[0];
            var dy = gradOutput.to_type(ScalarType.Float32).contiguous();
            var dx = empty_like(y);
            Kernels.Backward(y, dy, dx);
            return [dx];
        }
    }

    /// <summary>Vectorised across the samples (the last dimension); each gate's n rows are read at a stride of B.</summary>
    private static unsafe class Kernels
    {
        public static void Forward(Tensor x, Tensor y)
        {
            var (gates, n, b) = ((int)x.shape[0], (int)x.shape[1], (int)x.shape[2]);
            var xp = HostMemory.Data(x);
            var yp = HostMemory.Data(y);
            Blocks(b, gates * n, (lo, hi) =>
            {
                for (var t = 0; t < gates; t++)
                {
                    var offset = (long)t * n * b;
                    Softmax((float*)xp + offset, (float*)yp + offset, n, b, lo, hi);
                }
            });
        }

        public static void Backward(Tensor y, Tensor dy, Tensor dx)
        {
            var (gates, n, b) = ((int)y.shape[0], (int)y.shape[1], (int)y.shape[2]);
            var yp = HostMemory.Data(y);
            var dyp = HostMemory.Data(dy);
            var dxp = HostMemory.Data(dx);
            Blocks(b, gates * n, (lo, hi) =>
            {
                for (var t = 0; t < gates; t++)
                {
                    var offset = (long)t * n * b;
                    Gradient((float*)yp + offset, (float*)dyp + offset, (float*)dxp + offset, n, b, lo, hi);
                }
            });
        }

        /// <summary>
        /// Hands the samples out in whole blocks of <see cref="Block"/> (<see cref="HostThreads.SplitBlocks"/>); below
        /// <see cref="ParallelWork"/> elements a second thread costs more to start than it saves.
        /// </summary>
        private static void Blocks(int samples, int rows, Action<int, int> body) =>
            HostThreads.SplitBlocks(samples, Block, (long)samples * rows >= ParallelWork, body);

        /// <summary>y[r, c] = softmax over the rows r of x[r, c], for the columns lo ≤ c &lt; hi of a [n, stride] slab.</summary>
        private static void Softmax(float* x, float* y, int n, int stride, int lo, int hi)
        {
            var c = lo;
            for (; c + 8 <= hi; c += 8)
            {
                var max = Vector256.Load(x + c);
                for (var r = 1; r < n; r++)
                {
                    max = Vector256.Max(max, Vector256.Load(x + ((long)r * stride) + c));
                }
                var sum = Vector256<float>.Zero;
                for (var r = 0; r < n; r++)
                {
                    var at = ((long)r * stride) + c;
                    var e = Vector256.Exp(Vector256.Load(x + at) - max);
                    e.Store(y + at);
                    sum += e;
                }
                var inverse = Vector256<float>.One / sum;
                for (var r = 0; r < n; r++)
                {
                    var at = ((long)r * stride) + c;
                    (Vector256.Load(y + at) * inverse).Store(y + at);
                }
            }
            for (; c < hi; c++)
            {
                var max = x[c];
                for (var r = 1; r < n; r++)
                {
                    max = MathF.Max(max, x[((long)r * stride) + c]);
                }
                var sum = 0f;
                for (var r = 0; r < n; r++)
                {
                    var at = ((long)r * stride) + c;
                    var e = MathF.Exp(x[at] - max);
                    y[at] = e;
                    sum += e;
                }
                var inverse = 1f / sum;
                for (var r = 0; r < n; r++)
                {
                    y[((long)r * stride) + c] *= inverse;
                }
            }
        }

        /// <summary>dx[r, c] = y[r, c] · (dy[r, c] − Σ_r' y[r', c] dy[r', c]), for the columns lo ≤ c &lt; hi.</summary>
        private static void Gradient(float* y, float* dy, float* dx, int n, int stride, int lo, int hi)
        {
            var c = lo;
            for (; c + 8 <= hi; c += 8)
            {
                var dot = Vector256<float>.Zero;
                for (var r = 0; r < n; r++)
                {
                    var at = ((long)r * stride) + c;
                    dot = Vector256.FusedMultiplyAdd(Vector256.Load(y + at), Vector256.Load(dy + at), dot);
                }
                for (var r = 0; r < n; r++)
                {
                    var at = ((long)r * stride) + c;
                    (Vector256.Load(y + at) * (Vector256.Load(dy + at) - dot)).Store(dx + at);
                }
            }
            for (; c < hi; c++)
            {
                var dot = 0f;
                for (var r = 0; r < n; r++)
                {
                    var at = ((long)r * stride) + c;
                    dot = MathF.FusedMultiplyAdd(y[at], dy[at], dot);
                }
                for (var r = 0; r < n; r++)
                {
                    var at = ((long)r * stride) + c;
                    dx[at] = y[at] * (dy[at] - dot);
                }
            }
        }
    }
}
