using AdAuctionSim.Models.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Debiasing;

/// <summary>The counterfactual risk estimator of ESCM² (models.md §9.2).</summary>
internal enum CounterfactualRisk
{
    /// <summary>Inverse propensity scoring: Σ s_{k−1} δ_k / p̂_{k−1}.</summary>
    Ips,
    /// <summary>Doubly robust: imputed error plus the propensity-weighted residual, with an imputation head per stage.</summary>
    DoublyRobust,
}

/// <summary>How the DR terms pass gradients (models.md §9.5).</summary>
internal enum DrGradients
{
    /// <summary>
    /// §9.5 recommended: ê = softplus(·) ≥ 0; the prediction objective R_DR uses sg(ê), the imputation objective
    /// L_IMP uses sg(δ); both with the same detached weights. With ê detached, R_DR's gradient on the CVR tower
    /// equals IPS's; DR changes the estimate and trains the imputation head (and, through it, the embedding).
    /// </summary>
    JointLearning,
    /// <summary>
    /// §9.5 DR-JL label imputation: the head predicts a pseudo-label r̃ ∈ (0,1), ê = ℓ(sg(r̃), a_k) so every row of O
    /// (clicked or not) sends gradient to the stage-k tower; imputation trained on s(sg δ − ℓ(r̃, sg a_k))²/p̂.
    /// </summary>
    LabelImputation,
    /// <summary>PaddleRec's <c>counterfact_dr</c> exactly (§9.3): w = min(s/max(ô, 1e−6), 15), ê = σ(·), nothing but w detached.</summary>
    Paddle,
}

/// <summary>Options of <see cref="Escm2Model"/> beyond <see cref="ModelOptions"/>.</summary>
internal sealed record Escm2Options
{
    public CounterfactualRisk Risk { get; init; } = CounterfactualRisk.Ips;
    public DrGradients DrGradients { get; init; } = DrGradients.JointLearning;
    /// <summary>λ_c; null takes <see cref="ModelOptions.LambdaC"/>.</summary>
    public double? LambdaC { get; init; }
    /// <summary>
    /// λ_g; null takes <see cref="ModelOptions.LambdaG"/>. Multi-IPW/DR are this model with λ_g = 0 and λ_c = 1: §10's
    /// loss is L_CTR + L_CVR; ESCM²'s λ_c = 0.1 balances the counterfactual risk against the global term they lack.
    /// </summary>
    public double? LambdaG { get; init; }
    /// <summary>
    /// Optional cap W_max on each counterfactual weight (win weight included for IPW-ESCM², §15.2; maxWeight of §9.5);
    /// null takes <see cref="ModelOptions.MaxWeight"/> (off by default); ignored by <see cref="DrGradients.Paddle"/>, which
    /// has its own cap of 15.
    /// </summary>
    public double? MaxWeight { get; init; }
    /// <summary>IPW-ESCM² (§15.2): weight every term by ū = 1/max(π̂, ε_w) from the batch's win propensity, Hájek-normalised.</summary>
    public bool WinWeighted { get; init; }
}

/// <summary>
/// ESCM²: ESMM plus a counterfactual CVR risk, generalised to K stages (models.md §9.6):
/// <c>L = w_1 L_CTR + Σ_{k≥2} w_k [λ_c L_CVR,k + λ_g L_CTCVR,k]</c> with per-row δ_k = ℓ(s_k, a_k) weighted by
/// s_{k−1} / p̂_{k−1}, p̂_{k−1} = max(sg(r̂_{k−1}), ε_c). Multi-IPW / Multi-DR are this class with λ_g = 0 and λ_c = 1 (§10);
/// IPW-ESCM² is the IPS form with every term also weighted by the inverse win propensity (§15.2).
/// </summary>
/// <remarks>
/// <para>
/// Papers: Wang et al., "ESCM²: Entire Space Counterfactual Multi-Task Model for Post-Click Conversion Rate
/// Estimation", SIGIR 2022; Zhang et al., "Large-scale Causal Approaches to Debiasing Post-click Conversion Rate
/// Estimation with Multi-task Learning" (Multi-IPW/DR), WWW 2020; for the win weights, Zhang et al., "User Response
/// Learning for Directly Optimizing Campaign Performance in Display Advertising" (bid-aware gradient descent /
/// unbiased learning), KDD 2016 — the IPW-ESCM² combination is this suite's (models.md §15).
/// </para>
/// <para>
/// Deviations and choices. (1) Towers sit directly on the shared embedding (ESMM-style, as MMLRec) rather than on
/// PaddleRec's 8-expert MMoE; the paper calls the method model-agnostic. (2) IPS uses the paper's normaliser |O|
/// and a propensity floor ε_c by default; SNIPS and Paddle's n_clk scaling with its cap of 15 (§9.3) are
/// <see cref="ModelOptions.IpsNormalizer"/> options (§9.5); the cap W_max is optional (<see cref="ModelOptions.MaxWeight"/>).
/// (3) N stages: the propensity of reaching stage k−1 is the detached product r̂_{k−1}, floored as a whole (§9.6).
/// (4) DR defaults to joint learning with detached cross terms (§9.5); Paddle's undetached form is
/// <see cref="DrGradients.Paddle"/>, DR-JL label imputation is <see cref="DrGradients.LabelImputation"/>.
/// (5) IPW-ESCM² is the IPS variant over O (§15.2); IPW-ESCM²-DR is the DR variant over D (§15.3): batches hold
/// lost bids in their proportion |L|/|O| (<see cref="MultiTaskModel.UsesLostBids"/>), whose features enter only the
/// imputation term ê, averaged over |B_D|; the correction ū·s/p̂·(δ − ê) and L_IMP run on impressions; the CTR and CTCVR
/// terms stay on O with win weights; joint learning or DR-JL label imputation (Paddle's unweighted form is refused).
/// Every other model excludes lost bids from every term. The win weight uses the batch's
/// <see cref="TrainingBatch.WinPropensity"/> as given (oracle or an estimate), detached.
/// </para>
/// </remarks>
internal sealed class Escm2Model : ConditionalFunnelModel
{
    public const string IpsId = "escm2-ips";
    public const string DrId = "escm2-dr";
    public const string MultiIpwId = "multi-ipw";
    public const string MultiDrId = "multi-dr";
    public const string IpwEscm2Id = "ipw-escm2";
    public const string IpwEscm2DrId = "ipw-escm2-dr";

    /// <summary>Key of the imputation-head logits [B, K−1] in <see cref="ModelOutput.Extras"/> (DR only).</summary>
    public const string ImputationExtra = "imputation";

    /// <summary>Paddle's cap on the DR weight (§9.3).</summary>
    public const double PaddleWeightCap = 15;
    // Held for the paddle's clamps (see HeldScalars).
    private static readonly Scalar PaddleCap = PaddleWeightCap.ToScalar();
    private static readonly Scalar PaddleReachFloor = 1e-6.ToScalar();
    private static readonly Scalar SnipsFloor = 1e-12.ToScalar();

    private readonly ModuleList<Mlp>? imputation;

    public Escm2Model(string id, ModelContext context, Escm2Options? options = null) : base(id, context)
    {
        Options = options ?? new Escm2Options();
        LambdaC = Options.LambdaC ?? context.Options.LambdaC;
        LambdaG = Options.LambdaG ?? context.Options.LambdaG;
        if (!double.IsFinite(LambdaC) || LambdaC < 0 || !double.IsFinite(LambdaG) || LambdaG < 0)
        {
            throw new ArgumentException($"{id}: λ_c = {LambdaC}, λ_g = {LambdaG}; expected finite values ≥ 0", nameof(options));
        }
        MaxWeight = Options.MaxWeight ?? context.Options.MaxWeight;
        if (MaxWeight is { } cap && !(cap > 0 && double.IsFinite(cap)))
        {
            throw new ArgumentException($"{id}: maxWeight = {cap}; expected a finite number > 0", nameof(options));
        }
        IpsNormalizer = context.Options.IpsNormalizer;
        if (!Enum.IsDefined(IpsNormalizer))
        {
            throw new ArgumentException($"{id}: unknown IPS normaliser {(int)IpsNormalizer}", nameof(context));
        }
        // The rules adsim train and the scenario loader check by model id (IpsNormalizers.Conflict, DrGradientModes.Conflict),
        // here on the configuration itself, with the same words.
        if (Options.WinWeighted && Options.Risk == CounterfactualRisk.Ips && IpsNormalizer == IpsNormalizer.Paddle)
        {
            throw new ArgumentException($"{id}: {IpsNormalizers.PaddleWithWinWeights}", nameof(context));
        }
        if (Options.WinWeighted && Options.Risk == CounterfactualRisk.DoublyRobust && Options.DrGradients == DrGradients.Paddle)
        {
            throw new ArgumentException($"{id}: {Training.DrGradientModes.PaddleWithWinWeights}", nameof(options));
        }
        if (Options.Risk == CounterfactualRisk.DoublyRobust)
        {
            imputation = NewHeads("imputation", 2, context.Depth, context.Options.Hidden);
        }
        RegisterComponents();
    }

    public Escm2Options Options { get; }

    /// <summary>The win-weighted DR variant over D (models.md §15.3) trains on lost bids too: their features enter the ê term.</summary>
    public override bool UsesLostBids => Options.WinWeighted && Options.Risk == CounterfactualRisk.DoublyRobust;

    /// <summary>How the IPS risk is normalised (<see cref="ModelOptions.IpsNormalizer"/>); the DR risks ignore it.</summary>
    public IpsNormalizer IpsNormalizer { get; }

    /// <summary>W_max in force: the model's option, else the suite's <see cref="ModelOptions.MaxWeight"/>; null for none.</summary>
    public double? MaxWeight { get; }
    public double LambdaC { get; }
    public double LambdaG { get; }

    protected override IReadOnlyDictionary<string, Tensor>? Auxiliary(Tensor embedding) => imputation is null
        ? null
        : new Dictionary<string, Tensor> { [ImputationExtra] = Apply(imputation, embedding) };

    internal override IReadOnlyList<LossTerm> LossTerms(TrainingBatch batch, ModelOutput output, DiagnosticSums? sink)
    {
        var logits = output.Logits;
        var labels = FunnelMath.Labels(batch, output);
        var won = FunnelMath.Won(batch, logits.dtype);
        var v = won;
        if (Options.WinWeighted)
        {
            // ū = 1 / max(π̂, ε_w), detached: the win model is fitted first and never trained by this loss (§15.4).
            using var floor = Context.Options.WinPropensityFloor.ToScalar();
            // Lost rows' propensities are never read (a NaN there would otherwise survive 0 · 1/π̂).
            var pi = where(won > HeldScalars.Zero, batch.WinPropensity.to_type(logits.dtype).detach(), ones_like(won));
            v = won / pi.clamp_min(floor);
            sink?.Weights("win_weight", v, pi < floor);
        }
        var z = FunnelMath.Normaliser(v);
        // DR rows and normalisers, the same for every stage. Over O (§9.5): ê on the batch's impressions, both terms over
        // |B| (Σ ū). Over D (§15.3, ipw-escm2-dr): ê on every request of the batch, lost bids included, R_DR over |B_D| and
        // L_IMP over |B_O|.
        var (drRows, riskNormaliser, fitNormaliser) = !UsesLostBids
            ? (v, z, z)
            : (ones_like(won), FunnelMath.Normaliser(ones_like(won)), FunnelMath.Normaliser(won));
        var logR = output.LogCumulative();
        var terms = new List<LossTerm> { new("ctr", StageWeights[0], EntireSpaceTerms.Ctr(logits, labels, v, z)) };
        var imputed = imputation is null ? null : output.Extras[ImputationExtra];
        for (var k = 2; k <= Depth; k++)
        {
            var wk = StageWeights[k - 1];
            var a = FunnelMath.Col(logits, k - 1);
            var s = FunnelMath.Col(labels, k - 1);
            var sPrev = FunnelMath.Col(labels, k - 2);
            var delta = Losses.BceWithLogits(a, s);
            if (Options.Risk == CounterfactualRisk.DoublyRobust && Options.DrGradients == DrGradients.Paddle)
            {
                // §9.3: w = min(s / max(ô, 1e−6), 15) detached; ê = σ(·) and δ not detached; mean_B(ê + w e + w e²).
                var raw = FunnelMath.Reach(batch, logR, k - 1);
                var w = (sPrev / raw.clamp_min(PaddleReachFloor)).clamp_max(PaddleCap);
                sink?.Weights($"cvr_weight/{StageName(k)}", v * w, w >= PaddleCap);
                var eHat = FunnelMath.Col(imputed!, k - 2).sigmoid();
                var e = delta - eHat;
                terms.Add(new($"cvr/{k}", wk * LambdaC, FunnelMath.Mean(eHat.Plus(w * e).Plus(w * e.Squared()), v, z)));
            }
            else if (Options.Risk == CounterfactualRisk.Ips && IpsNormalizer == IpsNormalizer.Paddle)
            {
                // §9.3 counterfact_ipw: w = min(1 / max(ô·n, 1e−6), 15)·B detached, mean_B(w s δ) = Σ s δ min(1/max(ô·n, 1e−6), 15),
                // n the batch's rows that reached stage k − 1 (clicks for k = 2). No ε_c floor and no W_max: the cap is Paddle's.
                var raw = FunnelMath.Reach(batch, logR, k - 1);
                var reached = v * sPrev;
                var capped = (raw * reached.sum()).clamp_min(PaddleReachFloor).reciprocal().clamp_max(PaddleCap);
                sink?.Weights($"cvr_weight/{StageName(k)}", reached * capped, capped >= PaddleCap);
                terms.Add(new($"cvr/{k}", wk * LambdaC, (reached * capped * delta).sum()));
            }
            else
            {
                var (p, floored) = FunnelMath.ReachPropensity(batch, logR, k, Context.Options.PropensityFloor);
                var w = v * sPrev / p;
                if (MaxWeight is { } maxWeight)
                {
                    using var cap = maxWeight.ToScalar();
                    floored = floored | (w > cap);
                    w = w.clamp_max(cap);
                }
                sink?.Weights($"cvr_weight/{StageName(k)}", w, floored);
                if (Options.Risk == CounterfactualRisk.Ips)
                {
                    // Paper: Σ w δ / |B| (Σ ū with win weights); SNIPS: Σ w δ / Σ w (0 when no row of B reached stage k − 1).
                    var normaliser = IpsNormalizer == IpsNormalizer.Snips ? w.sum().clamp_min(SnipsFloor) : z;
                    terms.Add(new($"cvr/{k}", wk * LambdaC, (w * delta).sum() / normaliser));
                }
                else
                {
                    var head = FunnelMath.Col(imputed!, k - 2);
                    Tensor risk;
                    Tensor fit;
                    if (Options.DrGradients == DrGradients.JointLearning)
                    {
                        var eHat = head.Softplus();
                        var eFixed = eHat.detach();
                        risk = FunnelMath.Mean(eFixed, drRows, riskNormaliser).Plus((w * (delta - eFixed)).sum() / riskNormaliser);
                        fit = (w * (delta.detach() - eHat).Squared()).sum() / fitNormaliser;
                    }
                    else
                    {
                        var pseudo = head.sigmoid();
                        var eHat = Losses.BceWithLogits(a, pseudo.detach());
                        risk = FunnelMath.Mean(eHat, drRows, riskNormaliser).Plus((w * (delta - eHat)).sum() / riskNormaliser);
                        fit = (w * (delta.detach() - Losses.BceWithLogits(a.detach(), pseudo)).Squared()).sum() / fitNormaliser;
                    }
                    terms.Add(new($"cvr/{k}", wk * LambdaC, risk));
                    terms.Add(new($"imputation/{k}", wk * LambdaC, fit));
                }
            }
            if (LambdaG > 0)
            {
                terms.Add(new($"ctcvr/{k}", wk * LambdaG, EntireSpaceTerms.Ctcvr(logR, labels, k, v, z)));
            }
        }
        return terms;
    }
}
