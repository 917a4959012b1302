using AdAuctionSim.Models.Core;

namespace AdAuctionSim.Models.Debiasing;

/// <summary>
/// ESMM: one tower per stage on a shared embedding, r̂_k = Π_{j≤k} σ(a_j), trained only on the entire impression
/// space O with the cumulative labels: <c>L = Σ_k w_k · mean_O BCE(s_k, r̂_k)</c> (models.md §8).
/// </summary>
/// <remarks>
/// Ma et al., "Entire Space Multi-Task Model: An Effective Approach for Estimating Post-Click Conversion Rate",
/// SIGIR 2018; the N-step chain is ESM² (Wen et al., SIGIR 2020). As in the official XDL code there is no direct
/// CVR loss: the stage-k tower (k ≥ 2) is trained only through the product r̂_k, never on a click-space label.
/// Deviations: towers are the suite's ReLU MLPs (§16.3) instead of XDL's PReLU 200-80-2 with a 2-way softmax
/// (equivalent head, one logit); fields are single-valued, so embeddings are concatenated, not sum-pooled (§0.2).
/// Lost bids (won = 0) are excluded from every term.
/// </remarks>
internal sealed class EsmmModel : ConditionalFunnelModel
{
    public const string ModelId = "esmm";

    public EsmmModel(ModelContext context) : base(ModelId, context)
    {
    }

    internal override IReadOnlyList<LossTerm> LossTerms(TrainingBatch batch, ModelOutput output, DiagnosticSums? sink)
    {
        var labels = FunnelMath.Labels(batch, output);
        var v = FunnelMath.Won(batch, output.Logits.dtype);
        var z = FunnelMath.Normaliser(v);
        var logR = output.LogCumulative();
        var terms = new List<LossTerm> { new("ctr", StageWeights[0], EntireSpaceTerms.Ctr(output.Logits, labels, v, z)) };
        for (var k = 2; k <= Depth; k++)
        {
            terms.Add(new($"ctcvr/{k}", StageWeights[k - 1], EntireSpaceTerms.Ctcvr(logR, labels, k, v, z)));
        }
        return terms;
    }
}
