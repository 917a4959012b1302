using AdAuctionSim.Models.Core;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Baselines;

/// <summary>Options of PLE and CGC (models.md §5, §6, §16.3) beside the shared <see cref="ModelOptions"/>.</summary>
internal sealed record PleOptions
{
    /// <summary>Extraction levels Lv; CGC is one level.</summary>
    public int Levels { get; init; } = 2;

    /// <summary>m_s, shared experts per level.</summary>
    public int SharedExperts { get; init; } = 2;

    /// <summary>m_k, task-specific experts per stage and level.</summary>
    public int SpecificExperts { get; init; } = 1;

    public void Validate(string id)
    {
        if (Levels < 1 || SharedExperts < 1 || SpecificExperts < 1)
        {
            throw new ArgumentException($"{id}: levels ({Levels}), shared experts ({SharedExperts}) and specific experts ({SpecificExperts}) must each be ≥ 1");
        }
    }
}

/// <summary>
/// PLE, Progressive Layered Extraction (Tang et al., "Progressive Layered Extraction (PLE): A Novel Multi-Task Learning
/// (MTL) Model for Personalized Recommendations", RecSys 2020; models.md §6). CGC (§5) is the same model with one level.
/// </summary>
/// <remarks>
/// Per level ℓ: task k's experts read u_k^{ℓ−1}, the shared experts read u_s^{ℓ−1} (all read e at ℓ = 1); task gate k
/// reads its own previous fused output u_k^{ℓ−1} (not the raw embedding, §6.4) and mixes task-k plus shared experts;
/// a shared gate reads u_s^{ℓ−1} and mixes every expert, except at the last level, which has none. Towers read
/// u_k^{Lv}. All experts of a level are one <see cref="ExpertBank"/> (task experts stage by stage, then shared).
/// Parameters: <c>encoder.*</c>, <c>levels.{ℓ}.experts.*</c>, <c>levels.{ℓ}.taskGates.{k}.*</c>,
/// <c>levels.{ℓ}.sharedGate.*</c> (not on the last level), <c>towers.*</c>.
/// Deviation from §16.3, which suggests one level for both: <c>ple</c> has two levels (DeepCTR-Torch's PLE default,
/// §16.2), since a one-level PLE is <c>cgc</c>; <c>cgc</c> has one.
/// </remarks>
internal sealed class Ple : BaselineModel, IExpertModel
{
    public const string ModelId = "ple";
    public const string CgcId = "cgc";

    private readonly FeatureEncoder encoder;
    private readonly ModuleList<PleLevel> levels;
    private readonly Towers towers;
    private readonly GateUsage usage = new();

    public Ple(ModelContext context, PleOptions? options = null, string id = ModelId) : base(id, context)
    {
        var p = options ?? new PleOptions { Levels = id == CgcId ? 1 : 2 };
        p.Validate(id);
        Options = p;
        var o = context.Options;
        encoder = new FeatureEncoder("encoder", context.Schema, o.EmbeddingDim);
        levels = new ModuleList<PleLevel>();
        var input = encoder.FlatWidth;
        for (var l = 0; l < p.Levels; l++)
        {
            levels.Add(new PleLevel($"level{l}", context.StageNames, input, o.ExpertHidden, p.SpecificExperts, p.SharedExperts,
                sharedGate: l < p.Levels - 1, usage, $"L{l + 1}"));
            input = o.ExpertHidden;
        }
        towers = new Towers("towers", context.Depth, o.ExpertHidden, o.Tower);
        RegisterComponents();
    }

    public PleOptions Options { get; }

    public override ModelOutput forward(Tensor features)
    {
        CheckFeatures(features, Context.Schema);
        var u = encoder.Flat(features);
        foreach (var level in levels)
        {
            u = level.call(u);
        }
        if (training)
        {
            usage.AddRows(features.shape[0]);
        }
        return new ModelOutput(towers.call(u), Kind);
    }

    public Tensor FirstLevelExperts(Tensor features) => levels[0].Experts(encoder.Flat(features));

    public override IReadOnlyDictionary<string, double> Diagnostics() => usage.Read();
}

/// <summary>
/// One PLE extraction level (CGC when it is the only one). Input [B, D] (the same for every expert and gate: level 1)
/// or [B, K+1, D] (task rows, then the shared row); output [B, K+1, H] with a shared gate, else [B, K, H].
/// </summary>
/// <remarks>
/// The level's gates run as one <see cref="GateBank"/>: task gate k spreads its softmax over task k's experts and the
/// shared ones (every other expert has weight exactly 0), the shared gate over all; the mixing of every gate is then one
/// bmm over all of the level's experts. Above level 1 each expert's input row is gathered by one index (task k's experts
/// read row k, the shared experts row K), expert-major, so the experts' batched product reads contiguous inputs.
/// </remarks>
internal sealed class PleLevel : nn.Module<Tensor, Tensor>
{
    private readonly ExpertBank experts;
    private readonly ModuleList<Gate> taskGates;
    private readonly Gate? sharedGate;
    private readonly GateBank gateBank;
    private readonly int depth;
    private readonly GateUsage usage;
    private readonly string[] gateNames;
    private readonly string[] expertNames;
    private readonly DeviceConstant expertRows;

    public PleLevel(string name, IReadOnlyList<string> stages, int input, int hidden, int specific, int shared, bool sharedGate,
        GateUsage usage, string label) : base(name)
    {
        depth = stages.Count;
        this.usage = usage;
        var n = ExpertLayout.Count(depth, specific, shared);
        experts = new ExpertBank("experts", input, n, hidden);
        taskGates = new ModuleList<Gate>();
        for (var k = 0; k < depth; k++)
        {
            taskGates.Add(new Gate($"gate{k}", input, specific + shared));
        }
        this.sharedGate = sharedGate ? new Gate("sharedGate", input, n) : null;
        var sharedMembers = Enumerable.Range(depth * specific, shared).ToArray();
        var members = Enumerable.Range(0, depth)
            .Select(k => Enumerable.Range(k * specific, specific).Concat(sharedMembers).ToArray()).ToList();
        var gates = taskGates.ToList();
        if (this.sharedGate is not null)
        {
            members.Add([.. Enumerable.Range(0, n)]);
            gates.Add(this.sharedGate);
        }
        gateBank = new GateBank("gateBank", gates, n, members);

        expertNames = ExpertLayout.ExpertNames(stages, specific, shared);
        gateNames = ExpertLayout.GateNames(stages, label, sharedGate);
        long[] rows = ExpertLayout.Rows(depth, specific, shared);
        expertRows = new DeviceConstant(device => tensor(rows, device: device));
        RegisterComponents();
    }

    /// <summary>Every expert of this level, [B, K·m_k + m_s, H].</summary>
    public Tensor Experts(Tensor u) =>
        u.dim() == 2 ? experts.call(u) : experts.OnRows(u, expertRows.On(u.device));

    public override Tensor forward(Tensor u)
    {
        var e = Experts(u);
        // Gate t reads the shared input (level 1) or row t: task rows, then the shared row when this level has a shared gate.
        var weights = gateBank.call(u.dim() == 2 || gateBank.Gates == depth + 1 ? u : u.narrow(1, 0, depth));
        if (training)
        {
            usage.Add(weights, gateNames, expertNames, gateBank.Members);
        }
        return Gate.Mix(weights, e);
    }
}
