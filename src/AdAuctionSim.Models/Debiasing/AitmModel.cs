using AdAuctionSim.Models.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Debiasing;

/// <summary>Options of <see cref="AitmModel"/> beyond <see cref="ModelOptions"/>.</summary>
internal sealed record AitmOptions
{
    /// <summary>k, the width of every tower output and of the AIT attention (official 32).</summary>
    public int Dim { get; init; } = 32;
}

/// <summary>
/// AITM, the official N-task form (models.md §12): per stage t a tower q_t = MLP_t(e) ∈ R^{B×k}; z_1 = q_1; for
/// t ≥ 2 the transfer p_{t−1} = ReLU(Dense(z_{t−1})) and the AIT attention over {q_t, p_{t−1}} with projections
/// h1, h2, h3 shared by all stages; c_t = Dense(1)(z_t) is a cumulative logit, r̂_t = σ(c_t).
/// Loss <c>Σ_t w_t mean_O BCE(s_t, r̂_t) + α · mean_O Σ_{t≥2} max(r̂_t − r̂_{t−1}, 0)</c>.
/// </summary>
/// <remarks>
/// <para>
/// Xi et al., "Modeling the Sequential Dependence among Audience Multi-step Conversions with Multi-task Learning in
/// Targeted Display Advertising", KDD 2021; official code <c>xidongbo/AITM:AITM_standard.py</c>. The behavioural
/// expectation calibrator is the batch MEAN as in the official code (not PaddleRec's / AITM-torch's sum, which is
/// α × B larger, §12.4), weighted by <see cref="ModelOptions.AitmAlpha"/>.
/// </para>
/// <para>
/// Deviations (suite defaults, §16.3): no BatchNorm and no dropout in towers and transfers; the tower widths are
/// <see cref="ModelOptions.Hidden"/> followed by k (the official 128-64-32 with the defaults); of the official L2 term
/// λ‖θ‖² (1e−6) only the suite's weight decay on the embedding rows remains (§16.3: decay on embeddings only), so the
/// towers, transfers and h1..h3 are not regularised. h1..h3 are bias-free k×k maps initialised N(0, 0.01) as
/// officially. The transferred representation is not detached (EasyRec's stop-gradient is not in the paper).
/// Outputs are cumulative; the calibrator is soft, so r̂_t &gt; r̂_{t−1} still happens — q̂_t follows §0.3 and the
/// violation share is a diagnostic. Lost bids are excluded from every term.
/// </para>
/// </remarks>
internal sealed class AitmModel : DebiasingModel
{
    public const string ModelId = "aitm";

    /// <summary>Key of the AIT weight on the stage's own tower, [B, K−1] for t = 2..K, in <see cref="ModelOutput.Extras"/>.</summary>
    public const string OwnWeightExtra = "ait_own_weight";

    private readonly FeatureEncoder encoder;
    private readonly ModuleList<Mlp> towers;
    private readonly ModuleList<Mlp> transfers;
    private readonly Linear h1;
    private readonly Linear h2;
    private readonly Linear h3;
    private readonly ModuleList<Linear> heads;
    // 1/√k, held for the attention logits (see HeldScalars).
    private readonly Scalar scale;

    public AitmModel(ModelContext context, AitmOptions? options = null) : base(ModelId, context)
    {
        Options = options ?? new AitmOptions();
        var k = Options.Dim;
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1, nameof(options));
        encoder = new FeatureEncoder("encoder", context.Schema, context.Options.EmbeddingDim);
        towers = new ModuleList<Mlp>();
        transfers = new ModuleList<Mlp>();
        heads = new ModuleList<Linear>();
        var widths = context.Options.Hidden.Append(k).ToArray();
        for (var t = 1; t <= context.Depth; t++)
        {
            towers.Add(new Mlp($"tower{t}", encoder.FlatWidth, widths));
            heads.Add(nn.Linear(k, 1));
            if (t < context.Depth)
            {
                transfers.Add(new Mlp($"transfer{t}", k, [k]));
            }
        }
        h1 = nn.Linear(k, k, hasBias: false);
        h2 = nn.Linear(k, k, hasBias: false);
        h3 = nn.Linear(k, k, hasBias: false);
        scale = (1.0 / Math.Sqrt(k)).ToScalar();
        foreach (var h in new[] { h1, h2, h3 })
        {
            nn.init.normal_(h.weight, 0, 0.01);
        }
        RegisterComponents();
    }

    public AitmOptions Options { get; }

    public override HeadKind Kind => HeadKind.Cumulative;

    public override ModelOutput forward(Tensor features)
    {
        if (features.dim() != 2 || features.shape[1] != Context.Schema.Count)
        {
            throw new ArgumentException($"expected features [B, {Context.Schema.Count}], got [{string.Join(", ", features.shape)}]", nameof(features));
        }
        var e = encoder.Flat(features);
        var z = towers[0].call(e);
        var logits = new List<Tensor> { heads[0].call(z) };
        var own = new List<Tensor>();
        for (var t = 1; t < Depth; t++)
        {
            var q = towers[t].call(e);
            var p = transfers[t - 1].call(z);
            var u = stack([q, p], 1);                                               // [B, 2, k]
            var weights = ((h1.call(u) * h2.call(u)).sum(-1) * scale).softmax(1); // [B, 2]
            z = (weights.unsqueeze(-1) * h3.call(u)).sum(1);                      // [B, k]
            logits.Add(heads[t].call(z));
            own.Add(weights.narrow(1, 0, 1));
        }
        return new ModelOutput(cat(logits, 1), HeadKind.Cumulative,
            new Dictionary<string, Tensor> { [OwnWeightExtra] = cat(own, 1) });
    }

    internal override IReadOnlyList<LossTerm> LossTerms(TrainingBatch batch, ModelOutput output, DiagnosticSums? sink)
    {
        var logits = output.Logits;
        var labels = FunnelMath.Labels(batch, output);
        var v = FunnelMath.Won(batch, logits.dtype);
        var z = FunnelMath.Normaliser(v);
        var terms = new List<LossTerm>();
        for (var t = 1; t <= Depth; t++)
        {
            terms.Add(new($"stage/{t}", StageWeights[t - 1],
                FunnelMath.Mean(Losses.BceWithLogits(FunnelMath.Col(logits, t - 1), FunnelMath.Col(labels, t - 1)), v, z)));
        }
        terms.Add(new("calibrator", Context.Options.AitmAlpha, Calibrator(logits.sigmoid(), v)));
        if (sink is not null)
        {
            CumulativeDiagnostics.Record(sink, logits, v, StageName);
            if (output.Extras.TryGetValue(OwnWeightExtra, out var ownWeight))
            {
                for (var t = 2; t <= Depth; t++)
                {
                    sink.Mean($"ait_own_weight/{StageName(t)}", FunnelMath.Col(ownWeight, t - 2), v);
                }
            }
        }
        return terms;
    }

    /// <summary>
    /// The behavioural expectation calibrator without α: Σ_i v_i Σ_{t≥2} max(r̂_{t,i} − r̂_{t−1,i}, 0) / Σ_i v_i,
    /// a mean over rows (the official code's <c>reduce_mean</c>), so duplicating a batch leaves it unchanged.
    /// </summary>
    internal static Tensor Calibrator(Tensor cumulative, Tensor rowWeight)
    {
        var k = cumulative.shape[1];
        var excess = nn.functional.relu(cumulative.narrow(1, 1, k - 1) - cumulative.narrow(1, 0, k - 1)).sum(1);
        return FunnelMath.Mean(excess, rowWeight, FunnelMath.Normaliser(rowWeight));
    }
}
