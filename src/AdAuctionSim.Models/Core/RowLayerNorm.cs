using System.Runtime.Intrinsics;
using AdAuctionSim.Models.Runtime;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Core;

/// <summary>
/// Layer normalisation over the last dimension with an affine map per group: x [G, R, d] (G groups of R rows),
/// y[g, r, :] = (x[g, r, :] − mean) / √(var + ε) · weight[g, :] + bias[g, :], weight and bias [G, d].
/// </summary>
/// <remarks>
/// <para>On a CPU with float32 tensors this runs as a C# pass, forward and backward (a custom autograd function);
/// anywhere else as <see cref="Reference"/>, libtorch's <c>layer_norm</c> and the affine map.</para>
/// <para>Why: libtorch's CPU layer-norm backward sums the weight and bias gradients over the rows in one buffer per
/// thread and adds the buffers, so the sum's rounding, and from it the trained model, depended on the thread count
/// (APEM trained on 1 and on 2 threads gave different predictions). Here the rows are cut into fixed blocks of
/// <see cref="Block"/>; each block's partial sums are kept apart and added in block order, so the gradients have the
/// same bits whatever the thread count. On APEM's rows (d = 8) it is also several times faster than libtorch's kernel,
/// whose per-row work is sized for wide rows.</para>
/// </remarks>
public static class RowLayerNorm
{
    /// <summary>Rows per block of work.</summary>
    internal const int Block = 256;

    /// <summary>See the type summary. x [G, R, d]; weight, bias [G, d].</summary>
    public static Tensor Apply(Tensor x, Tensor weight, Tensor bias, double eps)
    {
        Check(x, weight, bias, eps);
        return HostMemory.IsHostFloat(x) && HostMemory.IsHostFloat(weight) && HostMemory.IsHostFloat(bias)
            ? NormFunction.apply(x.contiguous(), weight.contiguous(), bias.contiguous(), eps)
            : Reference(x, weight, bias, eps);
    }

    /// <summary>The same function in libtorch operations (any device, any type).</summary>
    public static Tensor Reference(Tensor x, Tensor weight, Tensor bias, double eps)
    {
        Check(x, weight, bias, eps);
        return nn.functional.layer_norm(x, [x.shape[2]], null, null, eps).mul(weight.unsqueeze(1)).Plus(bias.unsqueeze(1));
    }

    private static void Check(Tensor x, Tensor weight, Tensor bias, double eps)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(bias);
        if (x.dim() != 3 || x.shape[2] < 1 || weight.dim() != 2 || weight.shape[0] != x.shape[0] || weight.shape[1] != x.shape[2]
            || bias.dim() != 2 || bias.shape[0] != x.shape[0] || bias.shape[1] != x.shape[2])
        {
            throw new ArgumentException($"expected x [G, R, d], weight and bias [G, d]; got [{string.Join(", ", x.shape)}], "
                + $"[{string.Join(", ", weight.shape)}], [{string.Join(", ", bias.shape)}]");
        }
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(eps);
    }

    /// <summary>The autograd function of the host pass. Inputs (x, weight, bias, ε); saves x̂, 1/σ per row and weight.</summary>
    private sealed class NormFunction : autograd.SingleTensorFunction<NormFunction>
    {
        public override string Name => "RowLayerNorm";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var x = (Tensor)vars[0];
            var weight = (Tensor)vars[1];
            var bias = (Tensor)vars[2];
            var eps = (double)vars[3];
            var normalised = empty_like(x);
            var inverse = empty(x.shape[0], x.shape[1], ScalarType.Float32);
            var y = empty_like(x);
            Kernels.Forward(x, weight, bias, (float)eps, normalised, inverse, y);
            ctx.save_for_backward([normalised, inverse, weight]);
            return y;
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var saved = ctx.get_saved_variables();
            var (normalised, inverse, weight) = (saved[0], saved[1], saved[2]);
            var dy = gradOutput.to_type(ScalarType.Float32).contiguous();
            var dx = empty_like(normalised);
            var dweight = empty_like(weight);
            var dbias = empty_like(weight);
            Kernels.Backward(normalised, inverse, weight, dy, dx, dweight, dbias);
            return [dx, dweight, dbias, null!];
        }
    }

    private static unsafe class Kernels
    {
        public static void Forward(Tensor x, Tensor weight, Tensor bias, float eps, Tensor normalised, Tensor inverse, Tensor y)
        {
            var (groups, rows, d) = ((int)x.shape[0], (int)x.shape[1], (int)x.shape[2]);
            var xp = (float*)HostMemory.Data(x);
            var wp = (float*)HostMemory.Data(weight);
            var bp = (float*)HostMemory.Data(bias);
            var np = (float*)HostMemory.Data(normalised);
            var ip = (float*)HostMemory.Data(inverse);
            var yp = (float*)HostMemory.Data(y);
            Blocks(groups, rows, (g, lo, hi) =>
            {
                var w = wp + ((long)g * d);
                var b = bp + ((long)g * d);
                if (d == 8)
                {
                    ForwardRows8(xp, w, b, eps, np, ip, yp, ((long)g * rows) + lo, ((long)g * rows) + hi);
                    return;
                }
                for (var r = lo; r < hi; r++)
                {
                    var row = ((long)g * rows) + r;
                    var xr = xp + (row * d);
                    var mean = 0f;
                    for (var k = 0; k < d; k++)
                    {
                        mean += xr[k];
                    }
                    mean /= d;
                    var variance = 0f;
                    for (var k = 0; k < d; k++)
                    {
                        var c = xr[k] - mean;
                        variance = MathF.FusedMultiplyAdd(c, c, variance);
                    }
                    var rstd = 1f / MathF.Sqrt((variance / d) + eps);
                    ip[row] = rstd;
                    var nr = np + (row * d);
                    var yr = yp + (row * d);
                    for (var k = 0; k < d; k++)
                    {
                        var h = (xr[k] - mean) * rstd;
                        nr[k] = h;
                        yr[k] = MathF.FusedMultiplyAdd(h, w[k], b[k]);
                    }
                }
            });
        }

        /// <summary>
        /// dx = (1/σ) · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂)) with ĝ = dy ⊙ weight, per row; dweight = Σ_r dy ⊙ x̂ and
        /// dbias = Σ_r dy per group, as per-block partial sums added in block order.
        /// </summary>
        public static void Backward(Tensor normalised, Tensor inverse, Tensor weight, Tensor dy, Tensor dx, Tensor dweight, Tensor dbias)
        {
            var (groups, rows, d) = ((int)normalised.shape[0], (int)normalised.shape[1], (int)normalised.shape[2]);
            var np = (float*)HostMemory.Data(normalised);
            var ip = (float*)HostMemory.Data(inverse);
            var wp = (float*)HostMemory.Data(weight);
            var dyp = (float*)HostMemory.Data(dy);
            var dxp = (float*)HostMemory.Data(dx);
            var blocks = (rows + Block - 1) / Block;
            // Partial sums [G, blocks, 2, d]: Σ dy ⊙ x̂, then Σ dy, per block.
            using var partials = zeros((long)groups * blocks * 2 * d, ScalarType.Float32);
            var pp = (float*)HostMemory.Data(partials);
            Blocks(groups, rows, (g, lo, hi) =>
            {
                var w = wp + ((long)g * d);
                var sums = pp + ((((long)g * blocks) + (lo / Block)) * 2 * d);
                var biasSums = sums + d;
                if (d == 8)
                {
                    BackwardRows8(np, ip, w, dyp, dxp, sums, ((long)g * rows) + lo, ((long)g * rows) + hi);
                    return;
                }
                for (var r = lo; r < hi; r++)
                {
                    var row = ((long)g * rows) + r;
                    var nr = np + (row * d);
                    var dyr = dyp + (row * d);
                    var meanG = 0f;
                    var meanGx = 0f;
                    for (var k = 0; k < d; k++)
                    {
                        var gk = dyr[k] * w[k];
                        meanG += gk;
                        meanGx = MathF.FusedMultiplyAdd(gk, nr[k], meanGx);
                        sums[k] = MathF.FusedMultiplyAdd(dyr[k], nr[k], sums[k]);
                        biasSums[k] += dyr[k];
                    }
                    meanG /= d;
                    meanGx /= d;
                    var rstd = ip[row];
                    var dxr = dxp + (row * d);
                    for (var k = 0; k < d; k++)
                    {
                        dxr[k] = rstd * ((dyr[k] * w[k]) - meanG - (nr[k] * meanGx));
                    }
                }
            });
            var dw = (float*)HostMemory.Data(dweight);
            var db = (float*)HostMemory.Data(dbias);
            for (var g = 0; g < groups; g++)
            {
                for (var k = 0; k < d; k++)
                {
                    float sw = 0, sb = 0;
                    for (var block = 0; block < blocks; block++)
                    {
                        var at = ((((long)g * blocks) + block) * 2 * d) + k;
                        sw += pp[at];
                        sb += pp[at + d];
                    }
                    dw[((long)g * d) + k] = sw;
                    db[((long)g * d) + k] = sb;
                }
            }
        }

        /// <summary>The forward pass of rows [from, to) when d = 8: one 256-bit vector per row.</summary>
        private static void ForwardRows8(float* x, float* w, float* b, float eps, float* normalised, float* inverse, float* y, long from, long to)
        {
            var weight = Vector256.Load(w);
            var bias = Vector256.Load(b);
            for (var row = from; row < to; row++)
            {
                var xr = Vector256.Load(x + (row * 8));
                var centred = xr - Vector256.Create(Vector256.Sum(xr) / 8);
                var rstd = 1f / MathF.Sqrt((Vector256.Sum(centred * centred) / 8) + eps);
                inverse[row] = rstd;
                var h = centred * rstd;
                h.Store(normalised + (row * 8));
                Vector256.FusedMultiplyAdd(h, weight, bias).Store(y + (row * 8));
            }
        }

        /// <summary>The backward pass of rows [from, to) when d = 8, adding the block's Σ dy ⊙ x̂ and Σ dy to sums[0..16).</summary>
        private static void BackwardRows8(float* normalised, float* inverse, float* w, float* dy, float* dx, float* sums, long from, long to)
        {
            var weight = Vector256.Load(w);
            var weightSum = Vector256<float>.Zero;
            var biasSum = Vector256<float>.Zero;
            for (var row = from; row < to; row++)
            {
                var h = Vector256.Load(normalised + (row * 8));
                var dyr = Vector256.Load(dy + (row * 8));
                var g = dyr * weight;
                var meanG = Vector256.Sum(g) / 8;
                var meanGx = Vector256.Sum(g * h) / 8;
                weightSum = Vector256.FusedMultiplyAdd(dyr, h, weightSum);
                biasSum += dyr;
                ((g - Vector256.Create(meanG) - (h * meanGx)) * inverse[row]).Store(dx + (row * 8));
            }
            (Vector256.Load(sums) + weightSum).Store(sums);
            (Vector256.Load(sums + 8) + biasSum).Store(sums + 8);
        }

        /// <summary>
        /// Runs <paramref name="body"/>(group, first row, end row) over whole blocks of <see cref="Block"/> rows, the blocks
        /// of all groups shared among the intra-op threads; no block is split, so the result does not depend on the threads.
        /// </summary>
        private static void Blocks(int groups, int rows, Action<int, int, int> body)
        {
            var perGroup = (rows + Block - 1) / Block;
            HostThreads.Split(groups * perGroup, int.MaxValue, (first, end) =>
            {
                for (var j = first; j < end; j++)
                {
                    var lo = j % perGroup * Block;
                    body(j / perGroup, lo, Math.Min(rows, lo + Block));
                }
            });
        }
    }
}

/// <summary>
/// <c>nn.LayerNorm</c> over the last dimension with elementwise affine, computed by <see cref="RowLayerNorm"/>; parameters
/// <c>weight</c> (ones) and <c>bias</c> (zeros) as libtorch names them, so checkpoints keep their keys.
/// </summary>
public sealed class HostLayerNorm : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // the field names are the parameter names, libtorch's
    private readonly Parameter weight;
    private readonly Parameter bias;
#pragma warning restore IDE1006

    public HostLayerNorm(string name, int dim, double eps = 1e-5) : base(name)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dim, 1);
        Dim = dim;
        Eps = eps;
        weight = new Parameter(ones(dim));
        bias = new Parameter(zeros(dim));
        RegisterComponents();
    }

    public int Dim { get; }
    public double Eps { get; }
    public Parameter Weight => weight;
    public Parameter Bias => bias;

    /// <summary>x [..., d] → the same shape.</summary>
    public override Tensor forward(Tensor x)
    {
        if (x.dim() < 1 || x.shape[^1] != Dim)
        {
            throw new ArgumentException($"expected [..., {Dim}], got [{string.Join(", ", x.shape)}]", nameof(x));
        }
        return RowLayerNorm.Apply(x.reshape(1, -1, Dim), weight.view(1, Dim), bias.view(1, Dim), Eps).view(x.shape);
    }
}
