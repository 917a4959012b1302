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
internal sealed class PleLevel : nn.Module<Tensor, Tensor>
{
    private readonly ExpertBank experts;
    private readonly ModuleList<Gate> taskGates;
    private readonly Gate? sharedGate;
    private readonly int depth;
    private readonly int specific;
    private readonly int shared;
    private readonly GateUsage usage;
    private readonly string[] gateNames;
    private readonly string[][] expertNames;

    public PleLevel(string name, IReadOnlyList<string> stages, int input, int hidden, int specific, int shared, bool sharedGate,
        GateUsage usage, string label) : base(name)
    {
        depth = stages.Count;
        this.specific = specific;
        this.shared = shared;
        this.usage = usage;
        experts = new ExpertBank("experts", input, depth * specific + shared, hidden);
        taskGates = new ModuleList<Gate>();
        for (var k = 0; k < depth; k++)
        {
            taskGates.Add(new Gate($"gate{k}", input, specific + shared));
        }
        this.sharedGate = sharedGate ? new Gate("sharedGate", input, depth * specific + shared) : null;

        var all = stages.SelectMany(s => Enumerable.Range(0, specific).Select(j => $"{s}{j}"))
            .Concat(Enumerable.Range(0, shared).Select(j => $"shared{j}")).ToArray();
        gateNames = [.. stages.Select(s => $"{label}.{s}"), $"{label}.shared"];
        expertNames = new string[depth + 1][];
        for (var k = 0; k < depth; k++)
        {
            expertNames[k] = [.. all.Skip(k * specific).Take(specific), .. all.Skip(depth * specific)];
        }
        expertNames[depth] = all;
        RegisterComponents();
    }

    /// <summary>Every expert of this level, [B, K·m_k + m_s, H].</summary>
    public Tensor Experts(Tensor u)
    {
        if (u.dim() == 2)
        {
            return experts.call(u);
        }
        var taskInputs = u.narrow(1, 0, depth).repeat_interleave(specific, 1);
        var sharedInputs = u.narrow(1, depth, 1).expand(-1, shared, -1);
        return experts.call(cat([taskInputs, sharedInputs], 1));
    }

    public override Tensor forward(Tensor u)
    {
        var e = Experts(u);
        var sharedExperts = e.narrow(1, depth * specific, shared);
        var record = training;
        var fused = new List<Tensor>(depth + 1);
        for (var k = 0; k < depth; k++)
        {
            var g = taskGates[k].call(u.dim() == 2 ? u : u.select(1, k));
            if (record)
            {
                usage.Add(gateNames[k], g, expertNames[k]);
            }
            fused.Add(Gate.Mix(g, cat([e.narrow(1, k * specific, specific), sharedExperts], 1)));
        }
        if (sharedGate is not null)
        {
            var g = sharedGate.call(u.dim() == 2 ? u : u.select(1, depth));
            if (record)
            {
                usage.Add(gateNames[depth], g, expertNames[depth]);
            }
            fused.Add(Gate.Mix(g, e));
        }
        return stack(fused, 1);
    }
}
