using AdAuctionSim.Models.Core;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Debiasing;

/// <summary>
/// The probability-transfer network shared by ESMM, ESCM² (and Multi-IPW/DR, IPW-ESCM²) and DCMT: one feature
/// encoder (models.md §0.2), one tower per stage on the flat embedding e ∈ R^{B×Fd}, conditional logits a_k with
/// r̂_k = Π_{j≤k} σ(a_j) (§8.1, N-step as in ESM²). Subclasses add auxiliary heads (imputation, counterfactual).
/// </summary>
/// <remarks>
/// Towers are <see cref="Mlp"/>s with <see cref="ModelOptions.Hidden"/> and a linear logit, each with its own
/// parameters (the "pCVR ≈ 0" reports of §8.4 came from towers sharing one variable scope). The encoder and towers
/// are registered explicitly here, because <c>RegisterComponents</c> only sees fields of the concrete type.
/// </remarks>
internal abstract class ConditionalFunnelModel : DebiasingModel
{
    private readonly FeatureEncoder encoder;
    private readonly ModuleList<Mlp> towers;

    protected ConditionalFunnelModel(string id, ModelContext context) : base(id, context)
    {
        encoder = new FeatureEncoder("encoder", context.Schema, context.Options.EmbeddingDim);
        towers = NewHeads("stage", 1, context.Depth, context.Options.Hidden);
        register_module("encoder", encoder);
        register_module("towers", towers);
    }

    public override HeadKind Kind => HeadKind.Conditional;

    /// <summary>Stage k's tower (1-based; stage 1 is the CTR tower).</summary>
    internal Mlp Tower(int stage) => towers[stage - 1];

    /// <summary>[B, F] → conditional logits [B, K] plus the subclass's auxiliary outputs.</summary>
    public override ModelOutput forward(Tensor features)
    {
        if (features.dim() != 2 || features.shape[1] != Context.Schema.Count)
        {
            throw new ArgumentException($"expected features [B, {Context.Schema.Count}], got [{string.Join(", ", features.shape)}]", nameof(features));
        }
        var e = encoder.Flat(features);
        return new ModelOutput(Apply(towers, e), HeadKind.Conditional, Auxiliary(e));
    }

    /// <summary>Extra outputs computed from the flat embedding (imputation, counterfactual logits), or null.</summary>
    protected virtual IReadOnlyDictionary<string, Tensor>? Auxiliary(Tensor embedding) => null;

    /// <summary>Heads named <c>{prefix}{k}</c> for stages first..last, each an MLP ending in one logit.</summary>
    protected ModuleList<Mlp> NewHeads(string prefix, int first, int last, IReadOnlyList<int> hidden)
    {
        var heads = new ModuleList<Mlp>();
        for (var k = first; k <= last; k++)
        {
            heads.Add(new Mlp($"{prefix}{k}", encoder.FlatWidth, hidden, output: 1));
        }
        return heads;
    }

    /// <summary>Each head on e, concatenated: [B, heads].</summary>
    protected static Tensor Apply(ModuleList<Mlp> heads, Tensor embedding) =>
        cat(heads.Select(h => h.call(embedding)).ToList(), 1);
}
