using AdAuctionSim.Models.Debiasing;

namespace AdAuctionSim.Models.Core;

public static partial class ModelCatalog
{
    /// <summary>The entire-space and debiasing models (models.md §8–13, §15).</summary>
    private static partial IEnumerable<ModelEntry> DebiasingEntries() =>
    [
        new(EsmmModel.ModelId, "ESMM: per-stage towers chained r̂_k = Π σ(a_j), trained only on all impressions, no direct CVR loss (Ma et al. 2018, §8)",
            c => new EsmmModel(c), FunnelMath.Unsupported),
        new(Escm2Model.IpsId, "ESCM²-IPS: ESMM + λ_c · inverse-propensity counterfactual CVR risk per stage (Wang et al. 2022, §9)",
            c => new Escm2Model(Escm2Model.IpsId, c), FunnelMath.Unsupported),
        new(Escm2Model.DrId, "ESCM²-DR: ESMM + λ_c · doubly robust CVR risk with a per-stage imputation head, joint learning (§9.5)",
            c => new Escm2Model(Escm2Model.DrId, c, new Escm2Options { Risk = CounterfactualRisk.DoublyRobust }), FunnelMath.Unsupported),
        new(Escm2Model.MultiIpwId, "Multi-IPW: CTR loss + inverse-propensity CVR risk, L = L_CTR + L_CVR, no global CTCVR term (ESCM² with λ_c = 1, λ_g = 0; Zhang et al. 2020, §10)",
            c => new Escm2Model(Escm2Model.MultiIpwId, c, new Escm2Options { LambdaC = 1, LambdaG = 0 }), FunnelMath.Unsupported),
        new(Escm2Model.MultiDrId, "Multi-DR: CTR loss + doubly robust CVR risk with imputation heads, L = L_CTR + L_CVR, no CTCVR term (ESCM² with λ_c = 1, λ_g = 0, §10)",
            c => new Escm2Model(Escm2Model.MultiDrId, c, new Escm2Options { Risk = CounterfactualRisk.DoublyRobust, LambdaC = 1, LambdaG = 0 }), FunnelMath.Unsupported),
        new(DcmtModel.ModelId, "DCMT: factual + counterfactual CVR towers per stage, IPS-weighted, tied by |r̂ + r̂* − 1| (Zhu et al. 2023, §11)",
            c => new DcmtModel(c), FunnelMath.Unsupported),
        new(AitmModel.ModelId, "AITM: per-stage towers with adaptive information transfer, cumulative heads, mean calibrator α (Xi et al. 2021, §12)",
            c => new AitmModel(c), FunnelMath.Unsupported),
        new(ApemModel.ModelId, "APEM: gated inducing-point attention + per-stage pattern selectors, cumulative heads, dependency MSE (Tao et al., §13)",
            c => new ApemModel(c), FunnelMath.Unsupported),
        new(Escm2Model.IpwEscm2Id, "IPW-ESCM²: ESCM²-IPS with every term also weighted by 1/win propensity, Hájek-normalised (§15.2)",
            c => new Escm2Model(Escm2Model.IpwEscm2Id, c, new Escm2Options { WinWeighted = true }), FunnelMath.Unsupported),
        new(Escm2Model.IpwEscm2DrId, "IPW-ESCM²-DR: ESCM²-DR over D: imputation on every request, lost bids included; win- and click-weighted correction on impressions (§15.3)",
            c => new Escm2Model(Escm2Model.IpwEscm2DrId, c, new Escm2Options { WinWeighted = true, Risk = CounterfactualRisk.DoublyRobust }), FunnelMath.Unsupported),
    ];
}
