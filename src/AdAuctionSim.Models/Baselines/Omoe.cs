using AdAuctionSim.Models.Core;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Baselines;

/// <summary>
/// OMoE, the one-gate mixture of experts (models.md §3; the baseline of Ma et al., KDD 2018): n experts on the shared
/// embedding, one softmax gate for all stages, <c>h = Σ_i g_i f_i(e)</c>, then <c>a_k = Tower_k(h)</c>.
/// </summary>
/// <remarks>Parameters: <c>encoder.*</c>, <c>experts.weight|bias</c>, <c>gate.linear.weight</c>, <c>towers.*</c>.</remarks>
internal sealed class Omoe : BaselineModel, IExpertModel
{
    public const string ModelId = "omoe";

    private readonly FeatureEncoder encoder;
    private readonly ExpertBank experts;
    private readonly Gate gate;
    private readonly Towers towers;
    private readonly GateUsage usage = new();
    private readonly string[] expertNames;

    public Omoe(ModelContext context) : base(ModelId, context)
    {
        var o = context.Options;
        encoder = new FeatureEncoder("encoder", context.Schema, o.EmbeddingDim);
        experts = new ExpertBank("experts", encoder.FlatWidth, o.Experts, o.ExpertHidden);
        gate = new Gate("gate", encoder.FlatWidth, o.Experts);
        towers = new Towers("towers", context.Depth, o.ExpertHidden, o.Tower);
        expertNames = Enumerable.Range(0, o.Experts).Select(i => $"expert{i}").ToArray();
        RegisterComponents();
    }

    public override ModelOutput forward(Tensor features)
    {
        CheckFeatures(features, Context.Schema);
        var e = encoder.Flat(features);
        var g = gate.call(e);
        if (training)
        {
            usage.Add("all", g, expertNames);
            usage.AddRows(features.shape[0]);
        }
        var h = Gate.Mix(g, experts.call(e));
        return new ModelOutput(towers.call(h), Kind);
    }

    public Tensor FirstLevelExperts(Tensor features) => experts.call(encoder.Flat(features));

    public override IReadOnlyDictionary<string, double> Diagnostics() => usage.Read();
}
