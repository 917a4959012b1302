using AdAuctionSim.Models.Core;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Baselines;

/// <summary>
/// One tower per stage, each an <see cref="Mlp"/> ending in a single linear unit (models.md §2: <c>a_k = Tower_k(h)</c>).
/// Input [B, H] read by every tower (Shared-Bottom, OMoE) or [B, K, H], one row per stage (MMoE, PLE, STEM);
/// output [B, K] logits. Parameters are named <c>towers.{k}.hidden.{i}.*</c> and <c>towers.{k}.output.*</c>.
/// </summary>
/// <remarks>
/// <para>The K towers run together, layer by layer: their weights are stacked (a copy of a few thousand numbers per step)
/// and each hidden layer is one batched product over the stages, [K, B, in] × [K, in, out], instead of K small products
/// each with its own bias, activation and backward kernels. At batch 2048 on the 2-core development machine this took
/// MMoE's forward and backward (3 stages, gates already fused) from 8.5 to 6.2 ms. Each tower's arithmetic is
/// unchanged: tower k sees only its row (or the shared input) and its own weights.</para>
/// <para>Two further shapes: a shared input's first layer is one <c>addmm</c> (the bias added inside the product) into a
/// batch-major [B, K, out]; the one-unit output layer is a product with the stage's weight row summed over the last
/// dimension, not a batched product with one output column, which libtorch runs poorly forward and backward. Measured on
/// the development machine at batch 2048 (3 towers of [32] on H = 64, forward and backward): 1.85 → 1.32 ms from a
/// shared input, 2.0 → 1.7 ms from per-stage rows.</para>
/// </remarks>
internal sealed class Towers : nn.Module<Tensor, Tensor>, IMatmulWork
{
    private readonly ModuleList<Mlp> towers;
    private readonly int input;

    public Towers(string name, int depth, int input, IReadOnlyList<int> hidden) : base(name)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(depth, 1);
        this.input = input;
        towers = new ModuleList<Mlp>();
        for (var k = 0; k < depth; k++)
        {
            towers.Add(new Mlp($"tower{k}", input, hidden, output: 1));
        }
        RegisterComponents();
    }

    /// <inheritdoc/>
    public double ForwardFlops(Tensor h) =>
        2.0 * h.shape[0] * towers.Sum(t => t.Layers.Sum(l => (double)l.in_features * l.out_features));

    public override Tensor forward(Tensor h)
    {
        var depth = towers.Count;
        var rows = h.shape[0];
        if (h.shape[^1] != input || !(h.dim() == 2 || (h.dim() == 3 && h.shape[1] == depth)))
        {
            throw new ArgumentException($"expected [B, {input}] or [B, {depth}, {input}], got [{string.Join(", ", h.shape)}]", nameof(h));
        }
        var layers = towers[0].Layers.Count;
        Tensor? shared = h.dim() == 2 ? h : null;   // [B, in], read by every tower until their first layer has run
        var x = h;                                   // otherwise [B, K, width] while batchMajor, then [K, B, width]
        var batchMajor = true;
        for (var i = 0; i < layers - 1; i++)
        {
            var (w, b) = Stacked(i);   // [K, out, in], [K, out]
            var output = w.shape[1];
            if (shared is not null)
            {
                // A shared input: the first layers of all towers are one product [B, H] × [H, K·out], bias included.
                x = addmm(b.reshape(depth * output), shared, w.reshape(depth * output, input).t(), 1, 1).view(rows, depth, output);
                shared = null;
            }
            else
            {
                var stages = batchMajor ? x.transpose(0, 1) : x;
                x = stages.bmm(w.transpose(1, 2)).Plus(b.unsqueeze(1));
                batchMajor = false;
            }
            x = towers[0].Dropout(nn.functional.relu(x));
        }
        // The output layer of every tower has one unit: a product summed over the last dimension, [B, K].
        var (wo, bo) = Stacked(layers - 1);   // [K, 1, in], [K, 1]
        Tensor logits;
        if (shared is not null)
        {
            logits = addmm(bo.view(depth), shared, wo.view(depth, -1).t(), 1, 1);
        }
        else if (batchMajor)
        {
            logits = x.mul(wo.view(depth, -1)).sum(-1).Plus(bo.view(depth));
        }
        else
        {
            logits = x.mul(wo).sum(-1).t().Plus(bo.view(depth));
        }
        return logits.contiguous();
    }

    // Layer i of every tower: weights [K, out, in] and biases [K, out].
    private (Tensor Weight, Tensor Bias) Stacked(int i) =>
        (stack(towers.Select(t => (Tensor)t.Layers[i].weight!)), stack(towers.Select(t => (Tensor)t.Layers[i].bias!)));
}
