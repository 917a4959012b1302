using AdAuctionSim.Models.Core;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Baselines;

/// <summary>
/// MMoE (Ma et al., "Modeling Task Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts", KDD 2018;
/// models.md §4): n experts on the shared embedding, one bias-free softmax gate per stage,
/// <c>h_k = Σ_i g_{k,i} f_i(e)</c> (one bmm for all stages), <c>a_k = Tower_k(h_k)</c>.
/// </summary>
/// <remarks>
/// Gates are a bias-free linear map with no BatchNorm (torch-rechub's BN-in-gate is avoided); experts are drawn
/// independently (PaddleRec#721). Parameters: <c>encoder.*</c>, <c>experts.weight|bias</c>,
/// <c>gates.{k}.linear.weight</c>, <c>towers.*</c>.
/// </remarks>
internal sealed class Mmoe : BaselineModel, IExpertModel
{
    public const string ModelId = "mmoe";

    private readonly FeatureEncoder encoder;
    private readonly ExpertBank experts;
    private readonly ModuleList<Gate> gates;
    private readonly GateBank gateBank;
    private readonly Towers towers;
    private readonly GateUsage usage = new();
    private readonly string[] expertNames;
    private readonly string[] gateNames;

    public Mmoe(ModelContext context) : base(ModelId, context)
    {
        var o = context.Options;
        encoder = new FeatureEncoder("encoder", context.Schema, o.EmbeddingDim);
        experts = new ExpertBank("experts", encoder.FlatWidth, o.Experts, o.ExpertHidden);
        gates = new ModuleList<Gate>();
        for (var k = 0; k < context.Depth; k++)
        {
            gates.Add(new Gate($"gate{k}", encoder.FlatWidth, o.Experts));
        }
        gateBank = new GateBank("gateBank", [.. gates], o.Experts);
        towers = new Towers("towers", context.Depth, o.ExpertHidden, o.Tower);
        expertNames = Enumerable.Range(0, o.Experts).Select(i => $"expert{i}").ToArray();
        gateNames = [.. context.StageNames];
        RegisterComponents();
    }

    public override ModelOutput forward(Tensor features)
    {
        CheckFeatures(features, Context.Schema);
        var e = encoder.Flat(features);
        var weights = gateBank.call(e);   // [B, K, n]
        if (training)
        {
            usage.Add(weights, gateNames, expertNames);
            usage.AddRows(features.shape[0]);
        }
        var h = Gate.Mix(weights, experts.call(e));
        return new ModelOutput(towers.call(h), Kind);
    }

    public Tensor FirstLevelExperts(Tensor features) => experts.call(encoder.Flat(features));

    public override IReadOnlyDictionary<string, double> Diagnostics() => usage.Read();
}
