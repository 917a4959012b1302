using AdAuctionSim.Models.Core;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Baselines;

/// <summary>
/// Shared-Bottom (models.md §2; Caruana, "Multitask Learning", 1997): one shared embedding and bottom MLP,
/// <c>h = MLP_bottom(e)</c>, then one tower per stage, <c>a_k = Tower_k(h)</c>.
/// </summary>
/// <remarks>Parameters: <c>encoder.*</c>, <c>bottom.hidden.{i}.*</c>, <c>towers.towers.{k}.*</c>.</remarks>
internal sealed class SharedBottom : BaselineModel
{
    public const string ModelId = "shared-bottom";

    private readonly FeatureEncoder encoder;
    private readonly Mlp bottom;
    private readonly Towers towers;

    public SharedBottom(ModelContext context) : base(ModelId, context)
    {
        var o = context.Options;
        encoder = new FeatureEncoder("encoder", context.Schema, o.EmbeddingDim);
        bottom = new Mlp("bottom", encoder.FlatWidth, o.Hidden);
        towers = new Towers("towers", context.Depth, bottom.OutputWidth, o.Tower);
        RegisterComponents();
    }

    public override ModelOutput forward(Tensor features)
    {
        CheckFeatures(features, Context.Schema);
        var h = bottom.call(encoder.Flat(features));
        return new ModelOutput(towers.call(h), Kind);
    }
}
