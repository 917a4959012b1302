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
/// The K towers run together, layer by layer: their weights are stacked (a copy of a few thousand numbers per step) and
/// each layer is one batched product over the stages, [K, B, in] × [K, in, out], instead of K small products each with
/// its own bias, activation and backward kernels. At batch 2048 on the 2-core development machine this took MMoE's
/// forward and backward (3 stages, gates already fused) from 8.5 to 6.2 ms. Each tower's arithmetic is unchanged:
/// tower k sees only its row (or the shared input) and its own weights.
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
        Tensor x;   // [K, B, width]
        var first = 0;
        if (h.dim() == 2)
        {
            // A shared input: the first layers of all towers are one product [B, H] × [H, K·out].
            var (w, b) = Stacked(0);
            var output = w.shape[1];
            x = h.mm(w.reshape(depth * output, input).t()).view(rows, depth, output).add(b).transpose(0, 1);
            x = Activate(x, 0, layers);
            first = 1;
        }
        else
        {
            x = h.transpose(0, 1);
        }
        for (var i = first; i < layers; i++)
        {
            var (w, b) = Stacked(i);
            x = Activate(x.bmm(w.transpose(1, 2)).add(b.unsqueeze(1)), i, layers);
        }
        return x.squeeze(-1).t().contiguous();
    }

    // Layer i of every tower: weights [K, out, in] and biases [K, out].
    private (Tensor Weight, Tensor Bias) Stacked(int i) =>
        (stack(towers.Select(t => (Tensor)t.Layers[i].weight!)), stack(towers.Select(t => (Tensor)t.Layers[i].bias!)));

    private Tensor Activate(Tensor x, int layer, int layers) =>
        layer == layers - 1 ? x : towers[0].Dropout(nn.functional.relu(x));
}
