using AdAuctionSim.Models.Core;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Baselines;

/// <summary>Options of STEM (models.md §7.3, §16.3) beside the shared <see cref="ModelOptions"/>.</summary>
internal sealed record StemOptions
{
    /// <summary>STEM layers; the official configs use 1.</summary>
    public int Levels { get; init; } = 1;

    /// <summary>m_s, shared experts per layer.</summary>
    public int SharedExperts { get; init; } = 2;

    /// <summary>m_t, task-specific experts per stage and layer.</summary>
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
/// STEM, shared and task-specific embeddings (Su et al., "STEM: Unleashing the Power of Embeddings for Multi-task
/// Recommendation", AAAI 2024; models.md §7, following <c>LiangcaiSu/STEM:models/STEM.py</c>).
/// </summary>
/// <remarks>
/// One embedding table of width d·(K+1) split into K task copies x_t and one shared copy x_s. Task t's specific
/// experts read x_t, the shared experts read x_s; task gate t reads x_t + x_s and mixes every expert ("All Forward"),
/// with the other tasks' specific experts detached ("Task-specific Backward"): task t's loss sends no gradient into
/// task j's experts or embedding copy, while the shared experts are not detached. A shared gate (x_s, all experts,
/// no detach) feeds the next layer only, so the last layer has none. With more than one layer, task t's next-layer
/// gate reads the shared output, which mixes task j's experts undetached, as in the official code.
/// Parameters: <c>encoder.*</c> (columns [t·d, (t+1)·d) are copy t, the last d the shared copy),
/// <c>levels.{ℓ}.experts.*</c> (task experts stage by stage, then shared), <c>levels.{ℓ}.taskGates.{t}.*</c>,
/// <c>levels.{ℓ}.sharedGate.*</c>, <c>towers.*</c>.
/// </remarks>
internal sealed class Stem : BaselineModel, IExpertModel
{
    public const string ModelId = "stem";

    private readonly FeatureEncoder encoder;
    private readonly ModuleList<StemLevel> levels;
    private readonly Towers towers;
    private readonly GateUsage usage = new();

    public Stem(ModelContext context, StemOptions? options = null) : base(ModelId, context)
    {
        var p = options ?? new StemOptions();
        p.Validate(ModelId);
        Options = p;
        var o = context.Options;
        encoder = new FeatureEncoder("encoder", context.Schema, o.EmbeddingDim * (context.Depth + 1));
        levels = new ModuleList<StemLevel>();
        var input = context.Schema.Count * o.EmbeddingDim;
        for (var l = 0; l < p.Levels; l++)
        {
            levels.Add(new StemLevel($"level{l}", context.StageNames, input, o.ExpertHidden, p.SpecificExperts, p.SharedExperts,
                sharedGate: l < p.Levels - 1, usage, $"L{l + 1}"));
            input = o.ExpertHidden;
        }
        towers = new Towers("towers", context.Depth, o.ExpertHidden, o.Tower);
        RegisterComponents();
    }

    public StemOptions Options { get; }

    /// <summary>
    /// The K+1 embedding copies, [B, K+1, F·d]: task copies first, the shared copy last. A view of a copy-major
    /// [K+1, B, F·d] tensor, so each copy is one contiguous matrix for the layer's products.
    /// </summary>
    public Tensor Embeddings(Tensor features) => StemInputs.CopyMajor(encoder.call(features), Context.Options.EmbeddingDim).transpose(0, 1);

    public override ModelOutput forward(Tensor features)
    {
        CheckFeatures(features, Context.Schema);
        // The first layer reads the embedding rows (StemInputs makes its experts' and gates' inputs in one pass).
        var x = levels[0].FromEmbedding(encoder.call(features), Context.Options.EmbeddingDim);
        foreach (var level in levels.Skip(1))
        {
            x = level.call(x);
        }
        if (training)
        {
            usage.AddRows(features.shape[0]);
        }
        return new ModelOutput(towers.call(x), Kind);
    }

    public Tensor FirstLevelExperts(Tensor features) => levels[0].Experts(Embeddings(features));

    public override IReadOnlyDictionary<string, double> Diagnostics() => usage.Read();
}

/// <summary>
/// One STEM layer. Input [B, K+1, D] (task rows, then the shared row); output [B, K+1, H] with a shared gate, else
/// [B, K, H].
/// </summary>
/// <remarks>
/// The gates run as one <see cref="GateBank"/> (task gate t reads x_t + x_s, the shared gate x_s), the experts' input rows
/// are gathered by one index (expert-major, so the experts' product reads contiguous inputs), and the mixture of every
/// gate, with its detached experts, is one autograd function (<see cref="TaskSpecificMix"/>).
/// </remarks>
internal sealed class StemLevel : nn.Module<Tensor, Tensor>
{
    private readonly ExpertBank experts;
    private readonly ModuleList<Gate> taskGates;
    private readonly Gate? sharedGate;
    private readonly GateBank gateBank;
    private readonly DeviceConstant own;
    private readonly GateUsage usage;
    private readonly string[] gateNames;
    private readonly string[] expertNames;
    private readonly DeviceConstant expertRows;
    private readonly long[] rows;

    public StemLevel(string name, IReadOnlyList<string> stages, int input, int hidden, int specific, int shared, bool sharedGate,
        GateUsage usage, string label) : base(name)
    {
        var depth = stages.Count;
        this.usage = usage;
        var n = ExpertLayout.Count(depth, specific, shared);
        experts = new ExpertBank("experts", input, n, hidden);
        taskGates = new ModuleList<Gate>();
        for (var t = 0; t < depth; t++)
        {
            taskGates.Add(new Gate($"gate{t}", input, n));
        }
        this.sharedGate = sharedGate ? new Gate("sharedGate", input, n) : null;
        gateBank = new GateBank("gateBank", this.sharedGate is null ? [.. taskGates] : [.. taskGates, this.sharedGate], n);

        // ownMask[t, j] = 1 where gate t may send gradient into expert j: its own experts and the shared ones; the shared
        // gate (row K, when there is one) may send gradient everywhere.
        var gates = gateBank.Gates;
        var ownMask = new float[gates * n];
        for (var t = 0; t < gates; t++)
        {
            for (var j = 0; j < n; j++)
            {
                var owner = j < depth * specific ? j / specific : -1;
                ownMask[t * n + j] = owner == t || owner < 0 || t == depth ? 1f : 0f;
            }
        }
        own = new DeviceConstant(device => tensor(ownMask, device: device).view(gates, n));
        gateNames = ExpertLayout.GateNames(stages, label, sharedGate);
        expertNames = ExpertLayout.ExpertNames(stages, specific, shared);
        rows = ExpertLayout.Rows(depth, specific, shared);
        expertRows = new DeviceConstant(device => tensor(rows, device: device));
        RegisterComponents();
    }

    /// <summary>Every expert of this layer, [B, K·m_t + m_s, H]: task t's experts read row t, the shared ones row K.</summary>
    public Tensor Experts(Tensor x) => experts.OnRows(x, expertRows.On(x.device));

    /// <summary>
    /// The layer on the encoder's rows [B, F, (K+1)·d] (the first layer): the same function as <see cref="forward"/> on
    /// <see cref="Stem.Embeddings"/>, with the inputs of the experts and gates made by <see cref="StemInputs"/>.
    /// </summary>
    public Tensor FromEmbedding(Tensor embedding, int dim)
    {
        var (expertInputs, gateInputs) = StemInputs.Apply(embedding, dim, rows, sharedGate is not null);
        return Mix(expertInputs, gateInputs);
    }

    public override Tensor forward(Tensor x)
    {
        var (expertInputs, gateInputs) = StemInputs.FromCopies(x.transpose(0, 1), expertRows.On(x.device), sharedGate is not null);
        return Mix(expertInputs, gateInputs);
    }

    /// <summary>Expert inputs [n, B, D] (expert-major) and gate inputs [K(+1), B, D] → the layer's output.</summary>
    private Tensor Mix(Tensor expertInputs, Tensor gateInputs)
    {
        var e = experts.call(expertInputs.transpose(0, 1));   // [B, n, H]
        var g = gateBank.call(gateInputs.transpose(0, 1));    // [B, K(+1), n]
        if (training)
        {
            usage.Add(g, gateNames, expertNames);
        }
        // Other tasks' specific experts enter gate t's mixture detached; own and shared experts carry gradient.
        return TaskSpecificMix.apply(g, e, own.On(g.device));
    }

    /// <summary>
    /// <c>Mix(g ⊙ own, e) + Mix(g ⊙ (1 − own), e.detach())</c> as one autograd function: forward y = g·e (one bmm per row
    /// block, [B, T, n] × [B, n, H]); backward ∂g = ∂y·eᵀ (every expert's value reaches the gate) and
    /// ∂e = (g ⊙ own)ᵀ·∂y (an expert hears only the gates that own it). The written form ran two mixtures forward and
    /// four products backward, with two masked copies of the gate weights; at batch 2048 (3 gates, 5 experts, H = 64)
    /// it cost 1.7 ms against 0.9 ms for this one. Tests hold the two equal in values and gradients.
    /// </summary>
    internal sealed class TaskSpecificMix : autograd.SingleTensorFunction<TaskSpecificMix>
    {
        public override string Name => "StemTaskSpecificMix";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var g = (Tensor)vars[0];
            var e = (Tensor)vars[1];
            var mask = (Tensor)vars[2];
            ctx.save_for_backward([g, e, mask]);
            return g.bmm(e);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var saved = ctx.get_saved_variables();
            var (g, e, mask) = (saved[0], saved[1], saved[2]);
            // Every operand held in a local until its product is made: on a GPU libtorch may run this on a device thread
            // where no dispose scope of ours is open, and a temporary's finalizer must not run mid-call.
            using var et = e.transpose(1, 2);
            var dg = gradOutput.bmm(et);
            using var owned = g.mul(mask);
            using var ownedT = owned.transpose(1, 2);
            var de = ownedT.bmm(gradOutput);
            GC.KeepAlive(saved);
            GC.KeepAlive(gradOutput);
            return [dg, de, null!];
        }
    }
}
