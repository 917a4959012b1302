using AdAuctionSim.Models.Core;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Baselines;

/// <summary>
/// One tower per stage, each an <see cref="Mlp"/> ending in a single linear unit (models.md §2: <c>a_k = Tower_k(h)</c>).
/// Input [B, H] read by every tower (Shared-Bottom, OMoE) or [B, K, H], one row per stage (MMoE, PLE, STEM);
/// output [B, K] logits. Parameters are named <c>towers.{k}.hidden.{i}.*</c> and <c>towers.{k}.output.*</c>.
/// </summary>
internal sealed class Towers : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<Mlp> towers;

    public Towers(string name, int depth, int input, IReadOnlyList<int> hidden) : base(name)
    {
        towers = new ModuleList<Mlp>();
        for (var k = 0; k < depth; k++)
        {
            towers.Add(new Mlp($"tower{k}", input, hidden, output: 1));
        }
        RegisterComponents();
    }

    public override Tensor forward(Tensor h)
    {
        var logits = new Tensor[towers.Count];
        for (var k = 0; k < logits.Length; k++)
        {
            var input = h.dim() == 3 ? h.select(1, k) : h;
            logits[k] = towers[k].call(input);
        }
        return cat(logits, 1);
    }
}
