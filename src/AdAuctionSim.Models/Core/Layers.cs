using AdAuctionSim.Models.Runtime;
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

    /// <summary>The linear layers in order: every hidden layer (each followed by ReLU and dropout), then the output, if any.</summary>
    internal IReadOnlyList<Linear> Layers => output is null ? [.. hidden] : [.. hidden, output];

    /// <summary>Whether the last of <see cref="Layers"/> is the activation-free output layer.</summary>
    internal bool HasOutput => output is not null;

    /// <summary>The output layer's bias (the MLP must have an output layer).</summary>
    internal Tensor OutputBias => output?.bias ?? throw new InvalidOperationException($"{GetName()} has no output layer");

    /// <summary>This MLP's dropout on a hidden activation (the identity when it has none or is in eval mode).</summary>
    internal Tensor Dropout(Tensor x) => dropout is null ? x : dropout.call(x);

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
/// A module that runs matrix products on its own parameters instead of calling <c>nn.Linear</c>, and says how many
/// multiply-adds a forward pass costs, so that <c>adsim bench train</c> counts them in the model's FLOP floor.
/// </summary>
public interface IMatmulWork
{
    /// <summary>2 × multiply-adds of one forward pass on <paramref name="input"/> (the module's input; its last input for a
    /// module of two).</summary>
    double ForwardFlops(Tensor input);
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
public sealed class ExpertBank : nn.Module<Tensor, Tensor>, IMatmulWork
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

    /// <inheritdoc/>
    public double ForwardFlops(Tensor input) => 2.0 * input.shape[0] * Experts * InputWidth * Hidden;

    /// <summary>
    /// x [B, R, input] with expert j reading row <paramref name="rows"/>[j] (int64 [n], on x's device) → [B, n, H]. The
    /// inputs are gathered expert-major by one index, so the batched product reads contiguous matrices.
    /// </summary>
    public Tensor OnRows(Tensor x, Tensor rows) => call(x.transpose(0, 1).index_select(0, rows).transpose(0, 1));

    /// <summary>x [B, input] (shared by all experts) or [B, n, input] (one per expert) → [B, n, H].</summary>
    public override Tensor forward(Tensor x)
    {
        // One GEMM for a shared input ([B, i] × [i, n·H]) and one batched GEMM over the experts for per-expert inputs:
        // the same products as einsum("bi,nih->bnh") and einsum("bni,nih->bnh"), without einsum's planning and copies.
        switch (x.shape)
        {
            case [var b, var i] when i == InputWidth:
                return nn.functional.relu(addmm(bias.view(Experts * Hidden), x, weight.permute(1, 0, 2).reshape(i, Experts * Hidden), 1, 1))
                    .view(b, Experts, Hidden);
            case [_, var n, var i] when n == Experts && i == InputWidth:
                // Products, bias and activation in expert-major layout [n, B, H]; the result is its [B, n, H] view. A caller
                // that gathers the per-expert inputs expert-major (x a transposed view of a contiguous [n, B, input]) gives
                // the bmm contiguous operands.
                return nn.functional.relu(x.transpose(0, 1).bmm(weight).Plus(bias.unsqueeze(1))).transpose(0, 1);
            default:
                throw new ArgumentException($"expected [B, {InputWidth}] or [B, {Experts}, {InputWidth}], got [{string.Join(", ", x.shape)}]", nameof(x));
        }
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

    /// <summary>The bias-free map's weight, [n, input].</summary>
    internal Parameter Weight => linear.weight!;

    /// <summary>[B, n] softmax weights.</summary>
    /// <remarks>
    /// The softmax runs over the n rows of the transposed logits [n, B] (<see cref="ColumnSoftmax"/>: on a CPU the same
    /// bits for any thread count, and cheaper than a softmax over a last dimension of a few elements). The result is a
    /// transposed view, the same values.
    /// </remarks>
    public override Tensor forward(Tensor x) => ColumnSoftmax.Apply(linear.call(x).t().unsqueeze(0)).squeeze(0).t();

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

/// <summary>
/// Several gates evaluated as one product: gate t reads the shared input [B, input] or its own row of [B, T, input], and
/// spreads a softmax over its members, a subset of the layer's n experts; the output is [B, T, n] (contiguous), zero
/// outside each gate's members, ready for one <see cref="Gate.Mix"/> over all experts.
/// </summary>
/// <remarks>
/// <para>The gates remain the owner's modules, with their parameters and names; this module holds none (its
/// <c>state_dict</c> is empty). Each step stacks their weights into one [T·n, input] matrix (a non-member's row stays
/// zero and its logit is masked to −∞, so its weight is exactly 0 and it receives no gradient) and computes every logit
/// in one product, [T·n, input] × [input, B], then one softmax over the experts.</para>
/// <para>Why: at batch 2048 each gate as its own module costs a product, a softmax and their backward kernels, and gate
/// weights assembled from per-gate slices feed the mixing bmm in a strided layout that libtorch's CPU bmm runs several
/// times slower. On the development machine MMoE's forward and backward went from 9.4 to 7.5 ms with the gates fused.</para>
/// <para>Per-gate rows [B, T, input] on a CPU (STEM's gates, PLE's upper levels) run as <see cref="RowGates"/>, one C# pass
/// per sample for the logits and the softmax, forward and backward; elsewhere as the batched product below.</para>
/// </remarks>
public sealed class GateBank : nn.Module<Tensor, Tensor>, IMatmulWork
{
    private readonly Gate[] gates;
    private readonly int[][] members;
    private readonly bool complete;
    private readonly DeviceConstant scatter;
    private readonly DeviceConstant mask;

    /// <param name="name">Module name.</param>
    /// <param name="gates">The gates, all of the same input width.</param>
    /// <param name="experts">n, the experts of the layer.</param>
    /// <param name="members">For each gate, the experts (indices below n, ascending) its softmax spreads over, one per
    /// output of the gate; null: every gate covers all n experts in order.</param>
    public GateBank(string name, IReadOnlyList<Gate> gates, int experts, IReadOnlyList<int[]>? members = null) : base(name)
    {
        ArgumentNullException.ThrowIfNull(gates);
        ArgumentOutOfRangeException.ThrowIfLessThan(gates.Count, 1, nameof(gates));
        ArgumentOutOfRangeException.ThrowIfLessThan(experts, 1);
        this.gates = [.. gates];
        Experts = experts;
        InputWidth = gates[0].InputWidth;
        this.members = members is null
            ? [.. gates.Select(_ => Enumerable.Range(0, experts).ToArray())]
            : [.. members.Select(m => m.ToArray())];
        if (this.members.Length != this.gates.Length)
        {
            throw new ArgumentException($"{this.members.Length} member lists for {this.gates.Length} gates", nameof(members));
        }
        for (var t = 0; t < this.gates.Length; t++)
        {
            var m = this.members[t];
            if (this.gates[t].InputWidth != InputWidth || this.gates[t].Experts != m.Length || m.Length == 0
                || m.Any(j => j < 0 || j >= experts) || m.Zip(m.Skip(1)).Any(p => p.First >= p.Second))
            {
                throw new ArgumentException($"gate {t}: input {this.gates[t].InputWidth}, {this.gates[t].Experts} outputs, members "
                    + $"[{string.Join(", ", m)}]; expected input {InputWidth} and one ascending member below {experts} per output", nameof(members));
            }
        }
        complete = this.members.All(m => m.Length == experts);
        long[] rows = [.. this.members.SelectMany((m, t) => m.Select(j => (long)(t * experts + j)))];
        scatter = new DeviceConstant(device => tensor(rows, device: device));
        // 0 for a gate's members, −∞ elsewhere, [T, n, 1] against logits [T, n, B].
        var masked = new float[this.members.Length * experts];
        Array.Fill(masked, float.NegativeInfinity);
        for (var t = 0; t < this.members.Length; t++)
        {
            foreach (var j in this.members[t])
            {
                masked[t * experts + j] = 0;
            }
        }
        mask = new DeviceConstant(device => tensor(masked, device: device).view(this.members.Length, experts, 1));
        RegisterComponents();
    }

    public int Gates => gates.Length;
    public int Experts { get; }
    public int InputWidth { get; }

    /// <summary>For each gate, the experts it mixes (ascending).</summary>
    public IReadOnlyList<int[]> Members => members;

    /// <inheritdoc/>
    public double ForwardFlops(Tensor input) => 2.0 * input.shape[0] * gates.Sum(g => (double)g.Experts) * InputWidth;

    /// <summary>x [B, input] (every gate) or [B, T, input] (row t for gate t) → [B, T, n] softmax weights.</summary>
    public override Tensor forward(Tensor x)
    {
        var t = gates.Length;
        var n = Experts;
        var rows = x.shape[0];
        var weight = cat(gates.Select(g => (Tensor)g.Weight).ToList(), 0);    // [Σ members, input]
        if (!complete)
        {
            weight = zeros(t * n, InputWidth, weight.dtype, weight.device).index_copy(0, scatter.On(weight.device), weight);
        }
        if (x.dim() == 3 && x.shape[1] == t && x.shape[2] == InputWidth && HostMemory.IsHostFloat(x) && HostMemory.IsHostFloat(weight))
        {
            // Per-gate rows on a CPU: logits and softmax in one pass per sample.
            return RowGates.Apply(x.transpose(0, 1), weight.view(t, n, InputWidth), complete ? null : members);
        }
        Tensor logits;   // [T, n, B]
        if (x.dim() == 2 && x.shape[1] == InputWidth)
        {
            logits = weight.mm(x.t()).view(t, n, rows);
        }
        else if (x.dim() == 3 && x.shape[1] == t && x.shape[2] == InputWidth)
        {
            // [T, B, input] × [T, input, n] → [T, B, n], read as [T, n, B]: the backward of this form is several times
            // cheaper on a CPU than a product written straight into [T, n, B] from the [T, input, B] view of x.
            logits = x.transpose(0, 1).bmm(weight.view(t, n, InputWidth).transpose(1, 2)).permute(0, 2, 1);
        }
        else
        {
            throw new ArgumentException($"expected [B, {InputWidth}] or [B, {t}, {InputWidth}], got [{string.Join(", ", x.shape)}]", nameof(x));
        }
        if (!complete)
        {
            var m = mask.On(logits.device);
            logits = logits.Plus(m.dtype == logits.dtype ? m : m.to_type(logits.dtype));
        }
        // Softmax over dimension 1 of [T, n, B] (Gate.forward).
        return ColumnSoftmax.Apply(logits).permute(2, 0, 1).contiguous();
    }
}

/// <summary>
/// A constant tensor, built once per device from host values and kept there, so a forward pass does not copy it from the
/// host every step. A plain class, so <c>RegisterComponents</c> does not take it for a buffer of the module that holds it.
/// </summary>
/// <param name="build">Makes the tensor on the given device (the same values on every call).</param>
public sealed class DeviceConstant(Func<Device, Tensor> build)
{
    private Tensor? value;

    /// <summary>The tensor on <paramref name="device"/>, built on the first call there.</summary>
    public Tensor On(Device device)
    {
        if (value is null || value.device_type != device.type || value.device_index != device.index)
        {
            value?.Dispose();
            value = build(device).DetachFromDisposeScope();
        }
        return value;
    }
}
