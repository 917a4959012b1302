using AdAuctionSim.Models.Core;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Baselines;

/// <summary>
/// Single-Task (models.md §1): K independent networks, each with its own embedding table and MLP ending in one
/// logit; nothing is shared. In conditional mode this is the naive click-space model, the reference point for
/// selection bias; one optimiser over the whole block-diagonal model is the same as K separate ones.
/// </summary>
/// <remarks>Parameters: <c>encoders.{k}.*</c>, <c>networks.{k}.*</c>.</remarks>
internal sealed class SingleTask : BaselineModel
{
    public const string ModelId = "single-task";

    private readonly ModuleList<FeatureEncoder> encoders;
    private readonly ModuleList<Mlp> networks;

    public SingleTask(ModelContext context) : base(ModelId, context)
    {
        var o = context.Options;
        encoders = new ModuleList<FeatureEncoder>();
        networks = new ModuleList<Mlp>();
        for (var k = 0; k < context.Depth; k++)
        {
            var encoder = new FeatureEncoder($"encoder{k}", context.Schema, o.EmbeddingDim);
            encoders.Add(encoder);
            networks.Add(new Mlp($"network{k}", encoder.FlatWidth, o.Hidden, output: 1));
        }
        RegisterComponents();
    }

    public override ModelOutput forward(Tensor features)
    {
        CheckFeatures(features, Context.Schema);
        var logits = new Tensor[Depth];
        for (var k = 0; k < Depth; k++)
        {
            logits[k] = networks[k].call(encoders[k].Flat(features));
        }
        return new ModelOutput(cat(logits, 1), Kind);
    }
}
