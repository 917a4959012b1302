using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Debiasing;

/// <summary>Options of <see cref="ApemModel"/> beyond <see cref="ModelOptions"/> (defaults: models.md §16.3).</summary>
internal sealed record ApemOptions
{
    /// <summary>K_I, inducing points per layer (paper 64; suite 16).</summary>
    public int InducingPoints { get; init; } = 16;
    /// <summary>M, attention heads (2).</summary>
    public int Heads { get; init; } = 2;
    /// <summary>L, stacked ASRG + pattern-selector layers (paper 4; suite 2).</summary>
    public int Layers { get; init; } = 2;
    /// <summary>Hidden widths of each layer's dynamic-selector MLP (not given by the paper).</summary>
    public IReadOnlyList<int> SelectorHidden { get; init; } = [64];
    /// <summary>The MAB feed-forward block Y = LayerNorm(Y + FFN(Y)) after the residual (§13.1, optional).</summary>
    public bool FeedForward { get; init; } = true;
    /// <summary>γ₀ of the smooth step (10).</summary>
    public double Gamma0 { get; init; } = 10;
    /// <summary>Floor of γ (1e−3).</summary>
    public double GammaFloor { get; init; } = 1e-3;
    /// <summary>Δ per step; null means 2γ₀ / TotalSteps (γ reaches its floor half-way through training).</summary>
    public double? GammaDecay { get; init; }
    /// <summary>σ, the weight of each dependency (MSE) term of eq. 21/23 (not given; 1).</summary>
    public double DependencyWeight { get; init; } = 1;
}

/// <summary>
/// APEM (models.md §13): per layer an adaptive sample-wise representation generator (a dynamic selector z → f_D(z)
/// gating learned inducing points, multi-head attention of those queries over the field embeddings, a query-side
/// residual) and, per stage, a pattern selector (a learned query attending over the layer's output); the stage's
/// representation after L layers feeds an MLP head with a cumulative logit c_i, r̂_i = σ(c_i). Loss eq. 21/23:
/// <c>Σ_i w_i mean_O BCE(s_i, f_i) + Σ_{i≥2} σ mean_O (f_{i−1} − f_i − (s_{i−1} − s_i))²</c>.
/// </summary>
/// <remarks>
/// <para>
/// Tao et al., "Adaptive Pattern Extraction Multi-Task Learning for Multi-Step Conversion Estimations" (paper text
/// only, no public code). The smooth step is DSelect-k's (Hazimeh et al., NeurIPS 2021).
/// </para>
/// <para>
/// Fixes and choices (models.md §13.1, §13.4): (1) the dependency loss uses eq. 21/23's sign f_{i−1} − f_i, not
/// constraint (4)'s. (2) The paper's residual LayerNorm(O, H) does not type-check for K_I ≠ F; the Set-Transformer
/// convention is used, Y = LayerNorm(Q̄ + O) with Q̄ the gated queries averaged over heads (each head has its own
/// inducing points), then Y = LayerNorm(Y + FFN(Y)). (3) γ(step) = max(γ₀ − Δ·step, floor) with Δ = 2γ₀/TotalSteps
/// by default (the extracted text lost the exponents); the model needs <see cref="TrainingStep.TotalSteps"/> &gt; 0
/// unless <see cref="ApemOptions.GammaDecay"/> is set. γ is a persistent buffer, so a reloaded model infers with
/// the γ it was trained to. (4) Layer ℓ &gt; 1's ASRG reads Y^{ℓ−1}; each layer has its own selector and inducing
/// points; T_i^1 = LayerNorm(F_i^1). (5) Attention: keys and values are bias-free projections with head width
/// d_h = d_f (the query I ⊙ z has width d_f and no projection); the pattern query α_i^ℓ is shared by the heads.
/// (6) d_f is <see cref="ModelOptions.EmbeddingDim"/>; defaults d_f = 8, K_I = 16, 2 heads, L = 2 (§16.3).
/// Heads are cumulative: q̂ follows §0.3 and the monotonicity violation share is a diagnostic (the MSE term does not
/// force f_i ≤ f_{i−1}). Lost bids are excluded from every term. (7) Not in the paper, which gives no initialisation:
/// the heads' output biases start at the logits of the train impressions' cumulative label rates
/// (<see cref="InitialiseFromLabelRates"/>). (8) The layer norms run as <see cref="HostLayerNorm"/>, libtorch's
/// function with gradients whose bits do not depend on the thread count. (9) On a CPU with float32 tensors each layer after
/// its selector (<see cref="AsrgLayer"/>) and each layer's pattern selection (<see cref="PatternLayer"/>) run as fused C#
/// passes with their own backward; they compute the same function as the modules (tests hold them to it), only faster.
/// </para>
/// </remarks>
internal sealed class ApemModel : DebiasingModel, IStepScheduled, ILabelRateInitialised
{
    public const string ModelId = "apem";

    /// <summary>Keys of the selector pre-activations z and gates f_D(z), each [B, L, K_I], in <see cref="ModelOutput.Extras"/>.</summary>
    public const string SelectorLogitsExtra = "selector_logits";
    public const string SelectorGatesExtra = "selector_gates";

    private readonly FeatureEncoder encoder;
    private readonly ModuleList<AsrgBlock> generators;
    private readonly ModuleList<PatternSelector> selectors;
    private readonly ModuleList<PatternSelection> selections;
    private readonly ModuleList<Mlp> heads;
    private double gammaUsed;
    private double gammaNext;

    public ApemModel(ModelContext context, ApemOptions? options = null) : base(ModelId, context)
    {
        Options = options ?? new ApemOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(Options.InducingPoints, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(Options.Heads, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(Options.Layers, 1, nameof(options));
        if (!(Options.Gamma0 > 0) || !(Options.GammaFloor > 0) || Options.GammaFloor > Options.Gamma0 || Options.GammaDecay is < 0
            || !double.IsFinite(Options.DependencyWeight) || Options.DependencyWeight < 0)
        {
            throw new ArgumentException($"{ModelId}: invalid γ schedule or dependency weight in {Options}", nameof(options));
        }
        var d = context.Options.EmbeddingDim;
        encoder = new FeatureEncoder("encoder", context.Schema, d);
        generators = new ModuleList<AsrgBlock>();
        selectors = new ModuleList<PatternSelector>();
        selections = new ModuleList<PatternSelection>();
        heads = new ModuleList<Mlp>();
        for (var l = 0; l < Options.Layers; l++)
        {
            var inputWidth = (l == 0 ? context.Schema.Count : Options.InducingPoints) * d;
            generators.Add(new AsrgBlock($"asrg{l + 1}", inputWidth, d, Options));
            var layer = new List<PatternSelector>();
            for (var i = 1; i <= context.Depth; i++)
            {
                layer.Add(new PatternSelector($"pattern{l + 1}_{i}", d, Options.Heads));
                selectors.Add(layer[^1]);
            }
            selections.Add(new PatternSelection($"selection{l + 1}", layer, d));
        }
        for (var i = 1; i <= context.Depth; i++)
        {
            heads.Add(new Mlp($"head{i}", d, context.Options.Tower, output: 1));
        }
        RegisterComponents();
        register_buffer("gamma", tensor(Options.Gamma0, ScalarType.Float32).DetachFromDisposeScope());
        gammaUsed = gammaNext = Options.Gamma0;
    }

    public ApemOptions Options { get; }

    public override HeadKind Kind => HeadKind.Cumulative;

    /// <summary>The γ the next forward pass uses (read from the persistent buffer).</summary>
    public double CurrentGamma => Gamma.item<float>();

    private Tensor Gamma => get_buffer("gamma") ?? throw new InvalidOperationException("the γ buffer is not registered");

    /// <summary>γ(step) = max(γ₀ − Δ·step, floor), Δ = <see cref="ApemOptions.GammaDecay"/> or 2γ₀ / totalSteps.</summary>
    public static double ScheduledGamma(long step, long totalSteps, ApemOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        double decay;
        if (options.GammaDecay is { } fixedDecay)
        {
            decay = fixedDecay;
        }
        else if (totalSteps > 0)
        {
            decay = 2 * options.Gamma0 / totalSteps;
        }
        else
        {
            throw new InvalidOperationException(
                $"{ModelId}: the γ schedule needs TrainingStep.TotalSteps > 0 (got {totalSteps}) or a fixed ApemOptions.GammaDecay");
        }
        return Math.Max(options.Gamma0 - decay * Math.Max(step, 0), options.GammaFloor);
    }

    // The smooth step's constants, held (see HeldScalars).
    private static readonly Scalar Three = 3.0.ToScalar();
    private static readonly Scalar MinusTwo = (-2.0).ToScalar();
    private static readonly Scalar OneAndHalf = 1.5.ToScalar();

    /// <summary>
    /// DSelect-k's smooth step: 0 for z ≤ −γ/2, 1 for z ≥ γ/2, else −(2/γ³) z³ + (3/(2γ)) z + 1/2 (C¹ at ±γ/2).
    /// </summary>
    public static Tensor SmoothStep(Tensor z, Tensor gamma)
    {
        var half = gamma / HeldScalars.Two;
        var cubic = (z.pow(Three) * MinusTwo / gamma.pow(Three)).Plus(z * OneAndHalf / gamma).Plus(HeldScalars.Half);
        return where(z <= -half, zeros_like(z), where(z >= half, ones_like(z), cubic));
    }

    /// <summary>
    /// Head i's output bias starts at logit(rate_i), the train impressions' share with s_i = 1 (clamped to
    /// [10⁻⁴, 1 − 10⁻⁴]), not at 0. Not in the paper, which gives no initialisation: from a logit of 0 the cumulative
    /// heads start at 1/2 and must travel to rates near 10⁻² (logit ≈ −5) at Adam's step of about lr per weight, which
    /// the quickstart's 8 epochs (about 160 steps) did not allow: convert's r̂ ended 5.5× the truth on D. The usual
    /// prior initialisation of a rare-event output (Lin et al., focal loss, §4.1).
    /// </summary>
    public void InitialiseFromLabelRates(IReadOnlyList<double> cumulativeRates)
    {
        ArgumentNullException.ThrowIfNull(cumulativeRates);
        if (cumulativeRates.Count != Depth)
        {
            throw new ArgumentException($"{cumulativeRates.Count} rates for a funnel of depth {Depth}", nameof(cumulativeRates));
        }
        using var _ = no_grad();
        for (var i = 0; i < Depth; i++)
        {
            var rate = Math.Clamp(cumulativeRates[i], 1e-4, 1 - 1e-4);
            using var logit = Math.Log(rate / (1 - rate)).ToScalar();
            heads[i].OutputBias.fill_(logit);
        }
    }

    public void SetStep(TrainingStep step)
    {
        var value = ScheduledGamma(step.Step, step.TotalSteps, Options);
        using (no_grad())
        {
            using var held = value.ToScalar();
            Gamma.fill_(held);
        }
        gammaNext = value;
    }

    protected override void OnLoss(TrainingStep step, bool training)
    {
        if (training)
        {
            // The forward of this step has run with gammaNext; the next one is step + 1 (a trainer calling SetStep
            // before each forward overrides this). Kept as doubles so the diagnostic needs no device read.
            gammaUsed = gammaNext;
            SetStep(step with { Step = step.Step + 1 });
        }
    }

    public override ModelOutput forward(Tensor features)
    {
        if (features.dim() != 2 || features.shape[1] != Context.Schema.Count)
        {
            throw new ArgumentException($"expected features [B, {Context.Schema.Count}], got [{string.Join(", ", features.shape)}]", nameof(features));
        }
        var h = encoder.call(features);   // [B, F, d]
        // A copy: the schedule updates the buffer in place (in Loss, before backward), which must not touch this graph.
        var g = Gamma.detach().clone();
        Tensor? representations = null;   // [K, B, d]: T_i of every stage
        var selectorLogits = new List<Tensor>();
        var selectorGates = new List<Tensor>();
        for (var l = 0; l < Options.Layers; l++)
        {
            var (y, z, gates) = generators[l].Generate(h, g);
            selectorLogits.Add(z);
            selectorGates.Add(gates);
            representations = selections[l].Select(y, representations);
            h = y;
        }
        var logits = cat(Enumerable.Range(0, Depth).Select(i => heads[i].call(representations!.select(0, i))).ToList(), 1);
        return new ModelOutput(logits, HeadKind.Cumulative, new Dictionary<string, Tensor>
        {
            [SelectorLogitsExtra] = stack(selectorLogits, 1),
            [SelectorGatesExtra] = stack(selectorGates, 1),
        });
    }

    internal override IReadOnlyList<LossTerm> LossTerms(TrainingBatch batch, ModelOutput output, DiagnosticSums? sink)
    {
        var logits = output.Logits;
        var labels = FunnelMath.Labels(batch, output);
        var v = FunnelMath.Won(batch, logits.dtype);
        var z = FunnelMath.Normaliser(v);
        var f = logits.sigmoid();
        var terms = new List<LossTerm>();
        for (var i = 1; i <= Depth; i++)
        {
            terms.Add(new($"stage/{i}", StageWeights[i - 1],
                FunnelMath.Mean(Losses.BceWithLogits(FunnelMath.Col(logits, i - 1), FunnelMath.Col(labels, i - 1)), v, z)));
        }
        for (var i = 2; i <= Depth; i++)
        {
            var predicted = FunnelMath.Col(f, i - 2) - FunnelMath.Col(f, i - 1);
            var observed = FunnelMath.Col(labels, i - 2) - FunnelMath.Col(labels, i - 1);
            terms.Add(new($"dependency/{i}", Options.DependencyWeight, FunnelMath.Mean((predicted - observed).Squared(), v, z)));
        }
        if (sink is not null)
        {
            CumulativeDiagnostics.Record(sink, logits, v, StageName);
            sink.Gauge("gamma", gammaUsed);
            if (output.Extras.TryGetValue(SelectorGatesExtra, out var gates))
            {
                var open = (gates > HeldScalars.Half).to_type(v.dtype).mean([1, 2]);
                sink.Mean("selector_open_share", open, v);
            }
        }
        return terms;
    }

    /// <summary>
    /// Multi-head attention of given queries over a set: keys and values are bias-free projections d → M·d; the
    /// queries arrive already per head, [B or 1, M, n_q, d]; output [B, n_q, d] after W^O (M·d → d).
    /// </summary>
    internal sealed class HeadAttention : nn.Module<Tensor, Tensor, Tensor>
    {
        private readonly Linear keys;
        private readonly Linear values;
        private readonly Linear output;
        private readonly int heads;
        private readonly int dim;

        public HeadAttention(string name, int dim, int heads) : base(name)
        {
            this.heads = heads;
            this.dim = dim;
            keys = nn.Linear(dim, heads * dim, hasBias: false);
            values = nn.Linear(dim, heads * dim, hasBias: false);
            output = nn.Linear(heads * dim, dim);
            RegisterComponents();
        }

        /// <summary>W^K [M·d, d], W^V [M·d, d], W^O [d, M·d] and its bias [d] (PyTorch layout).</summary>
        internal (Tensor Keys, Tensor Values, Tensor Output, Tensor OutputBias) Weights =>
            (keys.weight!, values.weight!, output.weight!, output.bias!);

        internal int HeadCount => heads;

        public override Tensor forward(Tensor queries, Tensor input) => Attend(keys, values, output, heads, dim, queries, input);

        /// <summary>The attention as written: per head, keys and values of every input row, a softmax over the rows, W^O.</summary>
        internal static Tensor Attend(Linear keys, Linear values, Linear output, int heads, int dim, Tensor queries, Tensor input)
        {
            var b = input.shape[0];
            var n = input.shape[1];
            var k = keys.call(input).view(b, n, heads, dim).transpose(1, 2);     // [B, M, n, d]
            var v = values.call(input).view(b, n, heads, dim).transpose(1, 2);   // [B, M, n, d]
            // The attention is computed transposed, keys by queries: libtorch's softmax over a last dimension as short as
            // n (14–16 here) runs about 30× slower on a CPU than the same softmax over dimension −2.
            using var scale = (1 / Math.Sqrt(dim)).ToScalar();
            var attention = k.matmul(queries.mul(scale).transpose(-2, -1)).softmax(-2);  // [B, M, n, n_q], columns sum to 1
            var o = v.transpose(-2, -1).matmul(attention);                                            // [B, M, d, n_q]
            return output.call(o.permute(0, 3, 1, 2).reshape(b, queries.shape[2], heads * dim));
        }

        /// <summary>
        /// The value and output maps folded into one matrix, Σ_r a_r (x_r W^V_hᵀ) W^O_hᵀ = (Σ_r a_r x_r) W^V_hᵀ W^O_hᵀ:
        /// W^V [..., M·d, d] and W^O [..., d, M·d] (PyTorch layout, any leading stage dimensions) → [..., M·d, d], block h
        /// = W^V_hᵀ W^O_hᵀ, for pooled inputs laid out head by head.
        /// </summary>
        internal static Tensor FoldValueOutput(Tensor values, Tensor output, int heads, int dim)
        {
            long[] lead = values.shape[..^2];
            var v = values.view([.. lead, heads, dim, dim]).transpose(-2, -1);   // [..., M, c, e]
            var o = output.view([.. lead, dim, heads, dim]).movedim([-3], [-1]); // [..., M, e, o]
            return v.matmul(o).reshape([.. lead, heads * dim, dim]);             // [..., M·c, o]
        }
    }

    /// <summary>
    /// An ASRG layer's attention: the gated inducing points I_h ⊙ f_D(z) (per head, [M, K_I, d] scaled per sample and point
    /// by the gate) attend over the layer input. The same function as <see cref="HeadAttention"/> with those queries
    /// (<see cref="Reference"/>), computed in a folded form. Parameter names are HeadAttention's (keys, values, output).
    /// </summary>
    /// <remarks>
    /// <para>A query differs between samples only by its scalar gate g_j, so head h's score of input row r is
    /// g_j · (x_r W^K_hᵀ)·I_{h,j} / √d = g_j · x_r·u_{h,j}, u_{h,j} = W^K_hᵀ I_{h,j} / √d: every ungated score is one
    /// product X [B·n, d] × U [d, K_I·M], and the gate scales the columns inside <see cref="AttentionPool"/>. The values
    /// and W^O fold as in <see cref="PatternSelection"/>: Σ_r a_r (x_r W^V_hᵀ) W^O_hᵀ = (Σ_r a_r x_r) W^V_hᵀ W^O_hᵀ, one
    /// [B·K_I, M·d] × [M·d, d] product. Columns are ordered point-major, (j, h), so the pooled rows of a point are one
    /// M·d-wide row without a copy.</para>
    /// <para>Why: as written, every sample ran 2·M separate 16×14×8 products (and their backward), the per-sample work a
    /// batched matmul does worst on a CPU; with the fold the only per-sample work left is the softmax and pooling, done in
    /// one pass. Tests hold the two forms equal in values and gradients.</para>
    /// </remarks>
    internal sealed class InducingAttention : nn.Module<Tensor, Tensor, Tensor>, IMatmulWork
    {
        private readonly Linear keys;
        private readonly Linear values;
        private readonly Linear output;
        private readonly Func<Tensor> inducing;
        private readonly int heads;
        private readonly int points;
        private readonly int dim;

        /// <param name="name">Module name.</param>
        /// <param name="dim">d, the width of the input rows, the queries and the output.</param>
        /// <param name="heads">M, the attention heads.</param>
        /// <param name="points">K_I, the inducing points.</param>
        /// <param name="inducing">The inducing points I [M, K_I, d], a parameter of the enclosing block (read, not registered).</param>
        public InducingAttention(string name, int dim, int heads, int points, Func<Tensor> inducing) : base(name)
        {
            this.heads = heads;
            this.points = points;
            this.dim = dim;
            this.inducing = inducing;
            keys = nn.Linear(dim, heads * dim, hasBias: false);
            values = nn.Linear(dim, heads * dim, hasBias: false);
            output = nn.Linear(heads * dim, dim);
            RegisterComponents();
        }

        /// <inheritdoc/>
        /// <remarks>Per sample, on the layer input [B, n, d]: the scores (n × d × K_I·M), the pooling (K_I·M × n × d) and
        /// the folded value-output product (K_I × M·d × d).</remarks>
        public double ForwardFlops(Tensor input) =>
            (2.0 * input.shape[0] * ((input.shape[1] * dim * points * heads) + (points * heads * dim * dim)))
            + AttentionPool.PoolFlops(input.shape[0], input.shape[1], points * heads, dim);

        /// <summary>f_D(z) [B, K_I] and the layer input [B, n, d] → [B, K_I, d], the attention output after W^O.</summary>
        public override Tensor forward(Tensor gates, Tensor input)
        {
            var b = input.shape[0];
            var n = input.shape[1];
            var (m, k, d) = (heads, points, dim);
            var (u, folded, bias) = FoldedWeights();
            var scores = input.reshape(b * n, d).mm(u).view(b, n, k * m);
            var columnScale = gates.unsqueeze(-1).expand(b, k, m).reshape(b, k * m);
            var pooled = AttentionPool.Apply(scores, columnScale, input);                                          // [B, (j, h), d]
            return pooled.view(b * k, m * d).mm(folded).Plus(bias).view(b, k, d);
        }

        /// <summary>
        /// The folded parameters (differentiable): U [d, K_I·M] with U[c, (j, h)] = Σ_e I[h, j, e] W^K_h[e, c] / √d, the
        /// folded value-output map [M·d, d] and W^O's bias [d].
        /// </summary>
        internal (Tensor Scores, Tensor Folded, Tensor Bias) FoldedWeights()
        {
            var (m, k, d) = (heads, points, dim);
            using var scale = (1 / Math.Sqrt(d)).ToScalar();
            var u = inducing().matmul(keys.weight!.view(m, d, d)).permute(2, 1, 0).reshape(d, k * m).mul(scale);
            return (u, HeadAttention.FoldValueOutput(values.weight!, output.weight!, m, d), output.bias!);
        }

        /// <summary>The attention as written, with the queries I ⊙ f_D(z) built per sample: what <see cref="forward"/> computes.</summary>
        public Tensor Reference(Tensor gates, Tensor input) =>
            HeadAttention.Attend(keys, values, output, heads, dim, inducing().unsqueeze(0) * gates.unsqueeze(1).unsqueeze(-1), input);
    }

    /// <summary>One ASRG layer: dynamic selector, gated inducing-point queries, attention, query-side residual (+ FFN).</summary>
    /// <remarks>On a CPU with float32 tensors everything after the selector and its smooth step runs as one fused pass
    /// (<see cref="AsrgLayer"/>, through <see cref="FusedLayer"/>); elsewhere, and in <see cref="Layer"/>, as the modules
    /// below in libtorch operations. Both compute the same function (tests compare values and gradients).</remarks>
    internal sealed class AsrgBlock : nn.Module
    {
        private readonly Mlp selector;
        private readonly Parameter inducing;
        private readonly InducingAttention attention;
        private readonly HostLayerNorm norm;
        private readonly Mlp? feedForward;
        private readonly HostLayerNorm? feedForwardNorm;
        private readonly FusedLayer fused;

        public AsrgBlock(string name, int inputWidth, int dim, ApemOptions options) : base(name)
        {
            selector = new Mlp("selector", inputWidth, options.SelectorHidden, output: options.InducingPoints);
            var bound = Math.Sqrt(6.0 / (options.InducingPoints + dim));
            inducing = new Parameter(empty(options.Heads, options.InducingPoints, dim));
            nn.init.uniform_(inducing, -bound, bound);
            attention = new InducingAttention("attention", dim, options.Heads, options.InducingPoints, () => inducing);
            norm = new HostLayerNorm("norm", dim);
            if (options.FeedForward)
            {
                feedForward = new Mlp("ffn", dim, [2 * dim], output: dim);
                feedForwardNorm = new HostLayerNorm("feedForwardNorm", dim);
            }
            fused = new FusedLayer("fused", this);
            RegisterComponents();
        }

        internal InducingAttention Attention => attention;

        /// <summary>H [B, n, d] → (Y [B, K_I, d], z [B, K_I], f_D(z) [B, K_I]).</summary>
        public (Tensor Y, Tensor Z, Tensor Gates) Generate(Tensor h, Tensor gamma) => Generate(h, gamma, fuse: true);

        /// <summary><see cref="Generate(Tensor, Tensor)"/>, with the fused pass allowed or not (tests run both).</summary>
        internal (Tensor Y, Tensor Z, Tensor Gates) Generate(Tensor h, Tensor gamma, bool fuse)
        {
            var z = selector.call(h.flatten(1));
            var gates = SmoothStep(z, gamma);
            var y = fuse && HostMemory.IsHostFloat(h) && HostMemory.IsHostFloat(gates) && HostMemory.IsHostFloat(inducing)
                ? fused.call(gates, h)
                : Layer(h, gates);
            return (y, z, gates);
        }

        /// <summary>The layer after the selector in libtorch operations: f_D(z) [B, K_I] and H [B, n, d] → Y [B, K_I, d].</summary>
        internal Tensor Layer(Tensor h, Tensor gates)
        {
            // Q̄, the gated queries averaged over heads: f_D(z)_j · mean_h I_{h,j}.
            var y = norm.call((gates.unsqueeze(-1) * inducing.mean([0])).Plus(attention.call(gates, h)));
            if (feedForward is not null)
            {
                y = feedForwardNorm!.call(y.Plus(feedForward.call(y)));
            }
            return y;
        }

        /// <summary>The parameters in the form the fused pass reads (differentiable functions of the block's parameters).</summary>
        internal AsrgWeights Weights()
        {
            var (u, folded, bias) = attention.FoldedWeights();
            var ffn = feedForward?.Layers;
            return new AsrgWeights(u, folded, bias, inducing.mean([0]), norm.Weight, norm.Bias, norm.Eps,
                ffn?[0].weight, ffn?[0].bias, ffn?[1].weight, ffn?[1].bias,
                feedForwardNorm?.Weight, feedForwardNorm?.Bias, feedForwardNorm?.Eps ?? 0);
        }

        /// <summary>2 × multiply-adds of <see cref="Layer"/> on H: the attention's products and the feed-forward's two layers.</summary>
        internal double LayerFlops(Tensor h)
        {
            var rows = h.shape[0] * inducing.shape[1];
            var d = h.shape[2];
            return attention.ForwardFlops(h) + (feedForward is null ? 0 : 2.0 * 2 * rows * d * (2 * d));
        }
    }

    /// <summary>
    /// The fused pass of an <see cref="AsrgBlock"/> as a module: (f_D(z), H) → Y. It holds no parameters (it reads its
    /// block's), and reports the block's matmul work, so the benchmark's floor counts the same products whichever form ran.
    /// </summary>
    internal sealed class FusedLayer : nn.Module<Tensor, Tensor, Tensor>, IMatmulWork
    {
        private readonly Func<AsrgBlock> block;

        public FusedLayer(string name, AsrgBlock block) : base(name)
        {
            this.block = () => block;   // a delegate, not a module field: the block is this module's parent
        }

        /// <inheritdoc/>
        public double ForwardFlops(Tensor input) => block().LayerFlops(input);

        public override Tensor forward(Tensor gates, Tensor input) => AsrgLayer.Apply(input, gates, block().Weights());
    }

    /// <summary>One stage's pattern selector at one layer: F = Attention(α, Y, Y); T = LayerNorm(T_prev + F).</summary>
    internal sealed class PatternSelector : nn.Module
    {
        private readonly Parameter query;
        private readonly HeadAttention attention;
        private readonly HostLayerNorm norm;
        private readonly int heads;

        public PatternSelector(string name, int dim, int heads) : base(name)
        {
            this.heads = heads;
            var bound = Math.Sqrt(6.0 / (1 + dim));
            query = new Parameter(empty(1, dim));
            nn.init.uniform_(query, -bound, bound);
            attention = new HeadAttention("attention", dim, heads);
            norm = new HostLayerNorm("norm", dim);
            RegisterComponents();
        }

        internal Parameter Query => query;
        internal HeadAttention Attention => attention;
        internal HostLayerNorm Norm => norm;

        /// <summary>
        /// Y [B, K_I, d] and the previous T [B, d] (null at the first layer) → T [B, d]: the attention as written, one
        /// selector at a time. Training runs <see cref="PatternSelection"/>, the same function for all stages at once;
        /// this is the reference it is tested against.
        /// </summary>
        public Tensor Select(Tensor y, Tensor? previous)
        {
            var q = query.view(1, 1, 1, -1).expand(1, heads, 1, -1);   // α shared by the heads
            var f = attention.call(q, y).squeeze(1);               // [B, d]
            return norm.call(previous is null ? f : previous.Plus(f));
        }
    }

    /// <summary>
    /// The K pattern selectors of one layer run together, with the key and value projections folded into the query and
    /// the output: the same function as <see cref="PatternSelector.Select"/> for every stage, in a few products over the
    /// batch. Holds no parameters of its own (the selectors keep theirs, with their names).
    /// </summary>
    /// <remarks>
    /// <para>The query α_i is one vector shared by the batch, so head h's score of row j,
    /// (y_j W^K_h)·α_i / √d = y_j · u_{i,h} with u_{i,h} = W^K_hᵀ α_i / √d: every score of every stage is one product
    /// Y [B·K_I, d] × U [d, K·M]. The attention output Σ_j a_j (y_j W^V_h) = (Σ_j a_j y_j) W^V_h, and W^O follows, so a
    /// stage's F_i = Σ_h p_{i,h} W^V_hᵀ W^O_hᵀ + b^O with p_{i,h} = Σ_j a_{i,h,j} y_j, one [B, M·d] × [M·d, d] product per
    /// stage, batched over the stages. The layer norms T_i = LayerNorm_i(T_{i,prev} + F_i) are one normalisation of
    /// [K, B, d] and each stage's own affine map. Values agree with the per-selector form up to float rounding (tests).</para>
    /// <para>Why: written as attention, each selector projected all K_I rows of every sample to keys and values (two
    /// [B·K_I, d] × [d, M·d] products) and ran 2·B·M one-column attention products; at d = 8 those are memory traffic and
    /// per-call overhead, not arithmetic.</para>
    /// </remarks>
    internal sealed class PatternSelection : nn.Module<Tensor, Tensor>, IMatmulWork
    {
        private readonly PatternSelector[] selectors;
        private readonly int heads;
        private readonly int dim;
        private readonly Scalar scale;

        private readonly FusedSelection fused;

        public PatternSelection(string name, IReadOnlyList<PatternSelector> selectors, int dim) : base(name)
        {
            this.selectors = [.. selectors];
            heads = this.selectors[0].Attention.HeadCount;
            this.dim = dim;
            scale = (1 / Math.Sqrt(dim)).ToScalar();
            fused = new FusedSelection("fused", this);
            RegisterComponents();
        }

        /// <summary>
        /// Y [B, K_I, d] and the previous T [K, B, d] (null at the first layer) → T [K, B, d]: on a CPU with float32 tensors
        /// the fused pass (<see cref="PatternLayer"/>), elsewhere <see cref="Normalise"/> of <see cref="forward"/>.
        /// </summary>
        public Tensor Select(Tensor y, Tensor? previous) => Select(y, previous, fuse: true);

        /// <summary><see cref="Select(Tensor, Tensor?)"/>, with the fused pass allowed or not (tests run both).</summary>
        internal Tensor Select(Tensor y, Tensor? previous, bool fuse) =>
            fuse && HostMemory.IsHostFloat(y) && (previous is null || HostMemory.IsHostFloat(previous)) && HostMemory.IsHostFloat(selectors[0].Query)
                ? fused.call(previous ?? empty(0, device: y.device), y)
                : Normalise(call(y), previous);

        /// <summary>
        /// The parameters in the form the products read them (differentiable): U [d, K·M] with column (i, h) = W^K_hᵀ α_i / √d,
        /// the folded value-output maps [K, M·d, d], the output biases [K, d] and the stages' norms.
        /// </summary>
        internal PatternWeights Weights()
        {
            var (u, folded, bias) = AttentionWeights();
            var (weight, normBias) = NormWeights();
            return new PatternWeights(u, folded, bias, weight, normBias, selectors[0].Norm.Eps);
        }

        /// <summary>U [d, K·M], the folded value-output maps [K, M·d, d] and the output biases [K, d] (see <see cref="Weights"/>).</summary>
        private (Tensor Scores, Tensor Folded, Tensor OutputBias) AttentionWeights()
        {
            var k = selectors.Length;
            var (m, d) = (heads, dim);
            // U [d, K·M]: column (i, h) = W^K_hᵀ α_i / √d, with W^K_h = keys.weight[h·d:(h+1)·d, :].
            var keys = stack(selectors.Select(s => s.Attention.Weights.Keys).ToList()).view(k, m, d, d);                // [K, M, e, c]
            var alpha = stack(selectors.Select(s => (Tensor)s.Query).ToList()).view(k, 1, 1, d).expand(k, m, 1, d);    // [K, M, 1, e]
            var u = alpha.matmul(keys).view(k * m, d).t().mul(scale);                                                   // [c, K·M]
            // Folded value and output maps, per stage [M·d, d]: block h = W^V_hᵀ W^O_hᵀ.
            var folded = HeadAttention.FoldValueOutput(stack(selectors.Select(s => s.Attention.Weights.Values).ToList()),
                stack(selectors.Select(s => s.Attention.Weights.Output).ToList()), m, d);                               // [K, M·c, o]
            var bias = stack(selectors.Select(s => s.Attention.Weights.OutputBias).ToList());                          // [K, o]
            return (u, folded, bias);
        }

        /// <summary>The stages' layer-norm weights and biases, each [K, d].</summary>
        private (Tensor Weight, Tensor Bias) NormWeights() =>
            (stack(selectors.Select(s => (Tensor)s.Norm.Weight).ToList()), stack(selectors.Select(s => (Tensor)s.Norm.Bias).ToList()));

        /// <inheritdoc/>
        /// <remarks>Per row: the scores (K_I × d × K·M), the pooling (K·M × K_I × d) and the folded value-output products
        /// (K × M·d × d).</remarks>
        public double ForwardFlops(Tensor input) =>
            (2.0 * input.shape[0] * selectors.Length * heads * dim * (input.shape[1] + dim))
            + AttentionPool.PoolFlops(input.shape[0], input.shape[1], selectors.Length * heads, dim);

        /// <summary>Y [B, K_I, d] → F [K, B, d], the attention output of every stage (before its residual and norm).</summary>
        public override Tensor forward(Tensor y)
        {
            var b = y.shape[0];
            var n = y.shape[1];
            var k = selectors.Length;
            var (m, d) = (heads, dim);
            var (u, folded, bias) = AttentionWeights();
            var scores = y.reshape(b * n, d).mm(u).view(b, n, k * m);                                               // [B, n, K·M]
            var pooled = AttentionPool.Apply(scores, null, y);                                                      // [B, K·M, d], softmax over the rows j
            return pooled.view(b, k, m * d).transpose(0, 1).bmm(folded).Plus(bias.unsqueeze(1));                     // [K, B, d]
        }

        /// <summary>T_i = LayerNorm_i(T_{i,prev} + F_i) for every stage: F and the previous T [K, B, d] (null at layer 1).</summary>
        public Tensor Normalise(Tensor f, Tensor? previous)
        {
            var x = previous is null ? f : previous.Plus(f);
            var (weight, bias) = NormWeights();
            return RowLayerNorm.Apply(x, weight, bias, selectors[0].Norm.Eps);
        }
    }

    /// <summary>
    /// The fused pass of a <see cref="PatternSelection"/> as a module: (T_prev, or an empty tensor at the first layer; Y) →
    /// T. It holds no parameters (it reads the selectors'), and reports the selection's matmul work, so the benchmark's
    /// floor counts the same products whichever form ran.
    /// </summary>
    internal sealed class FusedSelection : nn.Module<Tensor, Tensor, Tensor>, IMatmulWork
    {
        private readonly Func<PatternSelection> selection;

        public FusedSelection(string name, PatternSelection selection) : base(name)
        {
            this.selection = () => selection;   // a delegate, not a module field: the selection is this module's parent
        }

        /// <inheritdoc/>
        public double ForwardFlops(Tensor input) => selection().ForwardFlops(input);

        public override Tensor forward(Tensor previous, Tensor y) =>
            PatternLayer.Apply(y, previous.numel() == 0 ? null : previous, selection().Weights());
    }
}
