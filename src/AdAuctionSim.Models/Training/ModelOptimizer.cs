using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Training;

/// <summary>
/// The trainer's optimiser: Adam (β = 0.9, 0.999, ε = 1e-8, as PyTorch) over the dense parameters, and a lazy row-wise
/// Adam over the embedding tables that updates only the rows a batch looked up.
/// </summary>
/// <remarks>
/// <para>Why: the feature encoder's table (10⁵ rows for the user ids of a baseline scenario, several tables for
/// single-task and STEM) holds over 90% of a model's parameters, but a batch of 2048 rows touches a few thousand of
/// them. A dense gradient and a dense Adam update read and write every row of every table on every step, which held
/// the small models of this suite near 10% of their matmul floor. The encoder's tables therefore produce sparse
/// gradients (<c>nn.Embedding(sparse: true)</c>), and this class updates the rows present in them.</para>
/// <para>Semantics are PyTorch's <c>torch.optim.SparseAdam</c> (Kingma &amp; Ba 2015, lazily applied): the moment
/// estimates of a row are updated only when the row is in the batch, with the bias correction of the global step count.
/// L2 weight decay <see cref="TrainerOptions.EmbeddingWeightDecay"/> is added to the gradient of the touched rows only
/// (as TensorFlow Addons' LazyAdam; SparseAdam itself has no weight decay). A table whose gradient arrives dense (a
/// model built with <c>sparse: false</c>) gets the ordinary dense Adam update with the same decay, so every model trains
/// correctly either way.</para>
/// <para>A sparse gradient of a float32 table in host memory is applied by <see cref="HostRowAdam"/>, one pass of C# over
/// the touched rows; elsewhere (a GPU table) by the libtorch index kernels below. Both give the same update.</para>
/// <para>The dense parameters are updated as one flat vector (<see cref="FlatAdam"/>): the parameters are views into
/// one buffer, their gradients are concatenated once, and each Adam step is a handful of kernels over all of them,
/// instead of torch's loop of about ten small kernels per parameter tensor, which at batch 2048 cost more than the
/// update's arithmetic. The arithmetic is torch's Adam, element by element.</para>
/// </remarks>
public sealed class ModelOptimizer : IDisposable
{
    internal const double Beta1 = 0.9;
    internal const double Beta2 = 0.999;
    private const double Epsilon = 1e-8;

    // Scalars are held, not made implicitly per call: a temporary Scalar can be finalized while libtorch reads it
    // (see HeldScalars). The per-step ones are disposed at the end of Step, which keeps them alive until then.
    internal static readonly Scalar B1 = Beta1.ToScalar();
    internal static readonly Scalar OneMinusB1 = (1 - Beta1).ToScalar();
    internal static readonly Scalar B2 = Beta2.ToScalar();
    internal static readonly Scalar OneMinusB2 = (1 - Beta2).ToScalar();
    internal static readonly Scalar Eps = Epsilon.ToScalar();
    private static readonly Scalar True = true.ToScalar();

    private readonly nn.Module model;
    private readonly FlatAdam? dense;
    private readonly List<(Parameter Weight, Tensor M, Tensor V)> tables = [];
    private readonly Dictionary<IntPtr, HostRowAdam> hostPasses = [];
    private readonly double learningRate;
    private readonly double weightDecay;
    private long step;

    internal ModelOptimizer(MultiTaskModel model, TrainerOptions options)
    {
        this.model = model;
        learningRate = options.LearningRate;
        weightDecay = options.EmbeddingWeightDecay;
        var embedding = new HashSet<IntPtr>();
        foreach (var module in model.modules())
        {
            if (module is Embedding table)
            {
                foreach (var p in table.parameters())
                {
                    if (p.requires_grad && embedding.Add(p.Handle))
                    {
                        tables.Add((p, zeros_like(p).DetachFromDisposeScope(), zeros_like(p).DetachFromDisposeScope()));
                    }
                }
            }
        }
        var plain = new List<Parameter>();
        foreach (var p in model.parameters())
        {
            if (p.requires_grad && !embedding.Contains(p.Handle))
            {
                plain.Add(p);
            }
        }
        if (tables.Count + plain.Count == 0)
        {
            throw new ArgumentException($"model \"{model.Id}\" has no trainable parameters", nameof(model));
        }
        DenseParameters = plain;
        if (plain.Count > 0)
        {
            dense = new FlatAdam(plain, learningRate);
        }
    }

    /// <summary>Parameters updated by the dense Adam (everything but the embedding tables), without weight decay.</summary>
    public IReadOnlyList<Parameter> DenseParameters { get; }

    /// <summary>The embedding tables, updated row-wise with weight decay.</summary>
    public IReadOnlyList<Parameter> EmbeddingTables => tables.Select(t => t.Weight).ToList();

    /// <summary>
    /// Whether a sparse gradient of a float32 table in host memory is applied by <see cref="HostRowAdam"/> (default) rather
    /// than by libtorch index kernels; the two give the same update (tests compare them).
    /// </summary>
    internal bool HostUpdates { get; set; } = true;

    /// <summary>Drops every gradient (set to none, so the next backward pass allocates sparse gradients afresh).</summary>
    public void ZeroGrad() => model.zero_grad(set_to_none: true);

    /// <summary>One Adam step of every parameter that has a gradient.</summary>
    public void Step()
    {
        // The update is a few dozen memory-bound kernels over tensors of 10⁴–10⁵ elements: split over OpenMP threads,
        // each pays a fork/join that costs more than its arithmetic (on the 2-vCPU machines of models.md §16.3 the
        // update took 2–3× longer with 2 threads than with 1). It runs on one thread; the count is restored after.
        HostThreads.OnOneThread(Update);
    }

    private void Update()
    {
        dense?.Step();
        step++;
        var correction1 = 1 - Math.Pow(Beta1, step);
        var correction2 = 1 - Math.Pow(Beta2, step);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var decay = weightDecay.ToScalar();
        using var c2 = correction2.ToScalar();
        using var step1 = (-learningRate / correction1).ToScalar();
        foreach (var (weight, m, v) in tables)
        {
            var grad = weight.grad;
            if (grad is null)
            {
                continue;
            }
            if (grad.is_sparse && HostUpdates && HostRowAdam.Serves(weight, m, v))
            {
                if (!hostPasses.TryGetValue(weight.Handle, out var pass))
                {
                    hostPasses[weight.Handle] = pass = new HostRowAdam(weight.shape[0], weight.shape[1]);
                }
                pass.Step(weight, m, v, grad.SparseIndices.select(0, 0), grad.SparseValues, (float)weightDecay, (float)Beta1,
                    (float)Beta2, (float)Epsilon, (float)correction2, (float)(-learningRate / correction1));
            }
            else if (grad.is_sparse)
            {
                // Uncoalesced: one entry per lookup. Sum the duplicates of each row, then update those rows only.
                // The touched rows in ascending order and each lookup's position among them, in O(rows of the table + lookups)
                // without a sort: mark the rows, list the marked ones, number them.
                var lookups = grad.SparseIndices.select(0, 0);
                var marks = zeros(weight.shape[0], ScalarType.Bool, weight.device).index_fill_(0, lookups, True);
                var rows = marks.nonzero().select(1, 0);
                using var rowCount = rows.shape[0].ToScalar();
                var position = empty(weight.shape[0], ScalarType.Int64, weight.device)
                    .index_copy_(0, rows, arange(HeldScalars.Zero, rowCount, HeldScalars.One, ScalarType.Int64, weight.device));
                var inverse = position.index_select(0, lookups);
                var g = zeros(rows.shape[0], weight.shape[1], grad.dtype, grad.device).index_add_(0, inverse, grad.SparseValues, HeldScalars.One);
                if (weightDecay > 0)
                {
                    g.add_(weight.index_select(0, rows), alpha: decay);
                }
                var mRows = m.index_select(0, rows).mul_(B1).add_(g, alpha: OneMinusB1);
                var vRows = v.index_select(0, rows).mul_(B2).addcmul_(g, g, value: OneMinusB2);
                m.index_copy_(0, rows, mRows);
                v.index_copy_(0, rows, vRows);
                var update = mRows.div_(vRows.div_(c2).sqrt_().PlusInPlace(Eps)).mul_(step1);
                weight.index_add_(0, rows, update, HeldScalars.One);
            }
            else
            {
                var g = weightDecay > 0 ? grad.add(weight, alpha: decay) : grad;
                m.mul_(B1).add_(g, alpha: OneMinusB1);
                v.mul_(B2).addcmul_(g, g, value: OneMinusB2);
                weight.PlusInPlace(m.div(v.div(c2).sqrt_().PlusInPlace(Eps)).mul_(step1));
            }
        }
    }

    public void Dispose()
    {
        dense?.Dispose();
        foreach (var (_, m, v) in tables)
        {
            m.Dispose();
            v.Dispose();
        }
        tables.Clear();
    }
}

/// <summary>
/// Adam over a fixed list of dense parameters held as one flat vector: the parameters become views into one buffer
/// (<c>set_</c>), the moment estimates are flat too, and a step concatenates the gradients and runs the update once.
/// </summary>
/// <remarks>
/// Element for element the same arithmetic as torch's Adam: with L2 weight decay λ (torch's <c>weight_decay</c>, 0 by
/// default) g ← g + λθ, then m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε),
/// with t the parameter's own step count. Unlike TorchSharp's Adam it passes libtorch only held Scalars (see HeldScalars). A parameter without a gradient is skipped, as torch does: its moments and step count
/// stay put. Such a step, or parameters that cannot share one buffer (mixed dtypes or devices), take the per-parameter
/// path over views of the flat moments; every other step is one fused pass.
/// </remarks>
internal sealed class FlatAdam : IDisposable
{
    private readonly Parameter[] parameters;
    private readonly long[] steps;
    private readonly Tensor? values;
    private readonly Tensor m;
    private readonly Tensor v;
    private readonly Tensor[] mViews;
    private readonly Tensor[] vViews;
    private readonly Scalar? weightDecay;

    public FlatAdam(IReadOnlyList<Parameter> parameters, double learningRate, double weightDecay = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(weightDecay);
        this.parameters = [.. parameters];
        LearningRate = learningRate;
        this.weightDecay = weightDecay > 0 ? weightDecay.ToScalar() : null;
        steps = new long[this.parameters.Length];
        var first = this.parameters[0];
        var total = this.parameters.Sum(p => p.numel());
        var shared = this.parameters.All(p => p.dtype == first.dtype && p.device_type == first.device_type && p.device_index == first.device_index && p.is_contiguous());
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        m = zeros(total, first.dtype, first.device).DetachFromDisposeScope();
        v = zeros(total, first.dtype, first.device).DetachFromDisposeScope();
        mViews = new Tensor[this.parameters.Length];
        vViews = new Tensor[this.parameters.Length];
        if (shared)
        {
            values = empty(total, first.dtype, first.device).DetachFromDisposeScope();
        }
        long offset = 0;
        for (var i = 0; i < this.parameters.Length; i++)
        {
            var p = this.parameters[i];
            var n = p.numel();
            mViews[i] = m.narrow(0, offset, n).view(p.shape).DetachFromDisposeScope();
            vViews[i] = v.narrow(0, offset, n).view(p.shape).DetachFromDisposeScope();
            if (values is not null)
            {
                var view = values.narrow(0, offset, n).view(p.shape);
                view.copy_(p);
                p.set_(view);
            }
            offset += n;
        }
    }

    public void Step()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var grads = new Tensor[parameters.Length];
        var fused = values is not null;
        for (var i = 0; i < parameters.Length; i++)
        {
            grads[i] = parameters[i].grad!;
            fused &= grads[i] is not null && steps[i] == steps[0];
        }
        if (fused)
        {
            for (var i = 0; i < grads.Length; i++)
            {
                steps[i]++;
                grads[i] = grads[i].reshape(-1);
            }
            Update(values!, m, v, cat(grads, 0), steps[0]);
            return;
        }
        for (var i = 0; i < parameters.Length; i++)
        {
            if (grads[i] is not null)
            {
                Update(parameters[i], mViews[i], vViews[i], grads[i], ++steps[i]);
            }
        }
    }

    /// <summary>lr of the next steps (a schedule may change it between steps).</summary>
    public double LearningRate { get; set; }

    private void Update(Tensor parameter, Tensor m, Tensor v, Tensor g, long step)
    {
        if (weightDecay is not null)
        {
            g = g.add(parameter, alpha: weightDecay);
        }
        var correction1 = 1 - Math.Pow(ModelOptimizer.Beta1, step);
        var correction2 = 1 - Math.Pow(ModelOptimizer.Beta2, step);
        using var root = Math.Sqrt(correction2).ToScalar();
        using var size = (-LearningRate / correction1).ToScalar();
        m.mul_(ModelOptimizer.B1).add_(g, alpha: ModelOptimizer.OneMinusB1);
        v.mul_(ModelOptimizer.B2).addcmul_(g, g, value: ModelOptimizer.OneMinusB2);
        parameter.addcdiv_(m, v.sqrt().div_(root).PlusInPlace(ModelOptimizer.Eps), value: size);
    }

    public void Dispose()
    {
        foreach (var t in mViews.Concat(vViews))
        {
            t.Dispose();
        }
        values?.Dispose();
        m.Dispose();
        v.Dispose();
        weightDecay?.Dispose();
    }
}
