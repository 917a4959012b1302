using AdAuctionSim.Models.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Debiasing;

/// <summary>Options of <see cref="DcmtModel"/> beyond <see cref="ModelOptions"/>.</summary>
internal sealed record DcmtOptions
{
    /// <summary>λ of the counterfactual tie mean_B |r̂ + r̂* − 1| (models.md §11: 1e−3).</summary>
    public double TieWeight { get; init; } = 1e-3;
}

/// <summary>
/// DCMT: a CTR tower, a factual CVR tower a_k and a counterfactual tower a*_k per post-click stage, on a shared
/// embedding (models.md §11). Loss per stage k ≥ 2: the entire-space CTCVR term, the factual term
/// s_{k−1}/p̂_{k−1} · ℓ(s_k, a_k), the counterfactual term s_{k−2}(1 − s_{k−1})/p̂*_{k−1} · ℓ(1 − s_k, a*_k), and the
/// tie λ |σ(a_k) + σ(a*_k) − 1|; plus the CTR loss. Inference uses the factual towers (the logits).
/// </summary>
/// <remarks>
/// <para>
/// Zhu et al., "DCMT: A Direct Entire-Space Causal Multi-Task Framework for Post-Click Conversion Estimation",
/// ICDE 2023. No official code; the loss follows the commonly re-implemented torch-rechub fork (models.md §11), whose
/// exact weights against the paper are unverified.
/// </para>
/// <para>
/// Choices. (1) The fork's weights are unclipped "plus ε"; here both propensities are detached and floored at ε_c
/// (<see cref="ModelOptions.PropensityFloor"/>). (2) N-step per §11: the factual weight is s_{k−1}/p̂_{k−1} with
/// p̂_{k−1} = max(sg(r̂_{k−1}), ε_c) as in ESCM² (§9.6); the counterfactual rows are those with s_{k−2} = 1 and
/// s_{k−1} = 0, and "1 − p̂_{k−1}" is read as the probability of that event, r̂_{k−2} − r̂_{k−1} = r̂_{k−2}(1 − q̂_{k−1})
/// (computed in log space, detached, floored at ε_c). For K = 2 (r̂_0 = 1) this is exactly the paper's 1 − ô; for
/// deeper stages it keeps both terms unbiased for the whole impression space O, which 1 − r̂_{k−1} would not be
/// on rows restricted to s_{k−2} = 1. (3) The CTCVR term uses the factual product r̂_k = Π σ(a_j).
/// Lost bids are excluded from every term.
/// </para>
/// </remarks>
internal sealed class DcmtModel : ConditionalFunnelModel
{
    public const string ModelId = "dcmt";

    /// <summary>Key of the counterfactual logits a*_k, [B, K−1] for k = 2..K, in <see cref="ModelOutput.Extras"/>.</summary>
    public const string CounterfactualExtra = "counterfactual";

    private readonly ModuleList<Mlp> counterfactual;

    public DcmtModel(ModelContext context, DcmtOptions? options = null) : base(ModelId, context)
    {
        Options = options ?? new DcmtOptions();
        if (!double.IsFinite(Options.TieWeight) || Options.TieWeight < 0)
        {
            throw new ArgumentException($"{ModelId}: tie weight {Options.TieWeight}; expected a finite value ≥ 0", nameof(options));
        }
        counterfactual = NewHeads("counterfactual", 2, context.Depth, context.Options.Hidden);
        RegisterComponents();
    }

    public DcmtOptions Options { get; }

    protected override IReadOnlyDictionary<string, Tensor> Auxiliary(Tensor embedding) =>
        new Dictionary<string, Tensor> { [CounterfactualExtra] = Apply(counterfactual, embedding) };

    internal override IReadOnlyList<LossTerm> LossTerms(TrainingBatch batch, ModelOutput output, DiagnosticSums? sink)
    {
        var logits = output.Logits;
        var labels = FunnelMath.Labels(batch, output);
        var v = FunnelMath.Won(batch, logits.dtype);
        var z = FunnelMath.Normaliser(v);
        var logR = output.LogCumulative();
        var star = output.Extras[CounterfactualExtra];
        var floor = Context.Options.PropensityFloor;
        using var heldFloor = floor.ToScalar();
        var terms = new List<LossTerm> { new("ctr", StageWeights[0], EntireSpaceTerms.Ctr(logits, labels, v, z)) };
        for (var k = 2; k <= Depth; k++)
        {
            var wk = StageWeights[k - 1];
            var a = FunnelMath.Col(logits, k - 1);
            var aStar = FunnelMath.Col(star, k - 2);
            var s = FunnelMath.Col(labels, k - 1);
            var sPrev = FunnelMath.Col(labels, k - 2);
            var sPrev2 = FunnelMath.PreviousLabel(labels, k - 1);

            var (p, pFloored) = FunnelMath.ReachPropensity(batch, logR, k, floor);
            var wFactual = v * sPrev / p;

            // P(reached k−2, not k−1) = r̂_{k−2} · (1 − q̂_{k−1}); log(1 − σ(a)) = logsigmoid(−a). With the true
            // propensities it is r_{k−2} − r_{k−1}.
            Tensor rawStar;
            if (batch.ReachPropensity is null)
            {
                var logPrev2 = k >= 3 ? FunnelMath.Col(logR, k - 3) : zeros_like(a);
                rawStar = logPrev2.Plus(nn.functional.logsigmoid(-FunnelMath.Col(logits, k - 2))).detach().exp();
            }
            else
            {
                rawStar = FunnelMath.Reach(batch, logR, k - 2) - FunnelMath.Reach(batch, logR, k - 1);
            }
            var wCounter = v * sPrev2 * sPrev.OneMinus() / rawStar.clamp_min(heldFloor);

            sink?.Weights($"factual_weight/{StageName(k)}", wFactual, pFloored);
            sink?.Weights($"counterfactual_weight/{StageName(k)}", wCounter, rawStar < heldFloor);

            terms.Add(new($"factual/{k}", wk, (wFactual * Losses.BceWithLogits(a, s)).sum() / z));
            terms.Add(new($"counterfactual/{k}", wk, (wCounter * Losses.BceWithLogits(aStar, s.OneMinus())).sum() / z));
            terms.Add(new($"tie/{k}", wk * Options.TieWeight, FunnelMath.Mean((a.sigmoid().Plus(aStar.sigmoid()) - HeldScalars.One).abs(), v, z)));
            terms.Add(new($"ctcvr/{k}", wk, EntireSpaceTerms.Ctcvr(logR, labels, k, v, z)));
        }
        return terms;
    }
}
