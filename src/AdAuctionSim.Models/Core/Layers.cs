using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Core;

/// <summary>
/// A plain multi-layer perceptron (models.md §16.3: ReLU, no BatchNorm, dropout 0 by default): Linear → ReLU
/// (→ Dropout) for every hidden width, then an optional linear output with no activation (a logit or a tower head).
/// Input [B, input], output [B, <see cref="OutputWidth"/>].
/// </summary>
/// <remarks>
/// Parameters are named <c>hidden.{i}.weight|bias</c> and <c>output.weight|bias</c>, PyTorch layout ([out, in]).
/// With no hidden widths and no output it is the identity.
/// </remarks>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<Linear> hidden;
    private readonly Linear? output;
    private readonly Dropout? dropout;

    public Mlp(string name, int input, IReadOnlyList<int> hidden, int? output = null, double dropout = 0) : base(name)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(input, 1);
        ArgumentNullException.ThrowIfNull(hidden);
        ArgumentOutOfRangeException.ThrowIfNegative(dropout);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(dropout, 1.0);
        this.hidden = new ModuleList<Linear>();
        var width = input;
        foreach (var h in hidden)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(h, 1, nameof(hidden));
            this.hidden.Add(nn.Linear(width, h));
            width = h;
        }
        if (output is { } o)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(o, 1, nameof(output));
            this.output = nn.Linear(width, o);
            width = o;
        }
        this.dropout = dropout > 0 ? nn.Dropout(dropout) : null;
        InputWidth = input;
        OutputWidth = width;
        RegisterComponents();
    }

    public int InputWidth { get; }
    public int OutputWidth { get; }

    public override Tensor forward(Tensor x)
    {
        foreach (var layer in hidden)
        {
            x = nn.functional.relu(layer.call(x));
            if (dropout is not null)
            {
                x = dropout.call(x);
            }
        }
        return output is null ? x : output.call(x);
    }
}

/// <summary>
/// n one-layer experts (Linear → ReLU, width H) evaluated as one batched matmul instead of a loop over modules
/// (CONVENTIONS: stack experts). Input [B, input] read by every expert, or [B, n, input] with one input per expert
/// (PLE levels above the first, STEM's task-specific embeddings); output [B, n, H].
/// </summary>
/// <remarks>
/// Weight [n, input, H] (note: input-major, the transpose of <c>nn.Linear</c>'s [out, in]) and bias [n, H], named
/// <c>weight</c> and <c>bias</c>. Every element is drawn independently from Xavier-uniform with the fan of one expert
/// (±√(6 / (input + H))), so experts differ at init: PaddleRec's constant init left all experts identical for ever
/// (PaddlePaddle/PaddleRec#721, fixed by #724; models.md §4). Biases start at zero.
/// </remarks>
public sealed class ExpertBank : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;

    public ExpertBank(string name, int input, int experts, int hidden) : base(name)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(input, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(experts, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(hidden, 1);
        InputWidth = input;
        Experts = experts;
        Hidden = hidden;
        var bound = Math.Sqrt(6.0 / (input + hidden));
        weight = new Parameter(empty(experts, input, hidden));
        bias = new Parameter(zeros(experts, hidden));
        nn.init.uniform_(weight, -bound, bound);
        RegisterComponents();
    }

    public int InputWidth { get; }
    public int Experts { get; }
    public int Hidden { get; }

    /// <summary>[n, input, H].</summary>
    public Parameter Weight => weight;

    /// <summary>[n, H].</summary>
    public Parameter Bias => bias;

    /// <summary>x [B, input] (shared by all experts) or [B, n, input] (one per expert) → [B, n, H].</summary>
    public override Tensor forward(Tensor x)
    {
        // One GEMM for a shared input ([B, i] × [i, n·H]) and one batched GEMM over the experts for per-expert inputs:
        // the same products as einsum("bi,nih->bnh") and einsum("bni,nih->bnh"), without einsum's planning and copies.
        var z = x.shape switch
        {
            [var b, var i] when i == InputWidth => x.mm(weight.permute(1, 0, 2).reshape(i, Experts * Hidden)).view(b, Experts, Hidden),
            [_, var n, var i] when n == Experts && i == InputWidth => x.transpose(0, 1).bmm(weight).transpose(0, 1),
            _ => throw new ArgumentException($"expected [B, {InputWidth}] or [B, {Experts}, {InputWidth}], got [{string.Join(", ", x.shape)}]", nameof(x)),
        };
        return nn.functional.relu(z + bias);
    }
}

/// <summary>
/// A softmax gate over n experts: <c>softmax(W x)</c> with a bias-free linear map and no BatchNorm (MMoE paper;
/// models.md §4 warns against torch-rechub's BN-in-gate). Input [B, input], output [B, n] rows summing to 1.
/// </summary>
public sealed class Gate : nn.Module<Tensor, Tensor>
{
    private readonly Linear linear;

    public Gate(string name, int input, int experts) : base(name)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(input, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(experts, 1);
        linear = nn.Linear(input, experts, hasBias: false);
        InputWidth = input;
        Experts = experts;
        RegisterComponents();
    }

    public int InputWidth { get; }
    public int Experts { get; }

    /// <summary>[B, n] softmax weights.</summary>
    /// <remarks>
    /// The softmax runs over dimension 0 of the transposed logits: libtorch's CPU softmax over a last dimension of a few
    /// elements costs ~0.2 ms forward and backward at batch 2048, over dimension 0 (n rows of B) ~0.03 ms. The result is
    /// a transposed view, the same values.
    /// </remarks>
    public override Tensor forward(Tensor x) => nn.functional.softmax(linear.call(x).t(), 0).t();

    /// <summary>
    /// Σ_i w[:, i] · experts[:, i, :]: weights [B, n] → [B, H], or weights [B, T, n] (T gates over the same experts) →
    /// [B, T, H]; experts [B, n, H].
    /// </summary>
    /// <remarks>
    /// One gate is a broadcast product summed over the experts: as a bmm it would be B products of 1×n by n×H, which
    /// libtorch runs one small kernel call per row (forward and both backward products), 2–3× slower than the
    /// element-wise form at batch 2048 on a CPU. T gates are one bmm ([T×n] by [n×H] per row), which is the faster of
    /// the two there.
    /// </remarks>
    public static Tensor Mix(Tensor weights, Tensor experts) => weights.dim() == 2
        ? (weights.unsqueeze(-1) * experts).sum(1)
        : weights.bmm(experts);
}
