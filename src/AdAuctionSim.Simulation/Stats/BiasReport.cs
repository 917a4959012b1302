using AdAuctionSim.Simulation.Scenarios;

namespace AdAuctionSim.Simulation.Stats;

/// <summary>A rate with its count and a 95% Wilson interval.</summary>
public sealed record RateEstimate(long Trials, long Successes, double Rate, double Lower, double Upper)
{
    public static RateEstimate Of(long successes, long trials)
    {
        if (trials == 0)
        {
            return new RateEstimate(0, 0, double.NaN, double.NaN, double.NaN);
        }
        const double z = 1.959963984540054;
        var p = (double)successes / trials;
        var denom = 1 + z * z / trials;
        var centre = (p + z * z / (2 * trials)) / denom;
        var half = z * Math.Sqrt(p * (1 - p) / trials + z * z / (4.0 * trials * trials)) / denom;
        return new RateEstimate(trials, successes, p, centre - half, centre + half);
    }
}

/// <summary>
/// One funnel stage: its target, what D really has, and what the logs show. For a post-click stage the selection ratio
/// C ÷ D splits exactly into the part the auction makes (O ÷ D: which requests were won) and the part the funnel makes
/// (C ÷ O: which impressions reached the stage before).
/// </summary>
public sealed record StageRealization(
    string Stage,
    double TargetRate,
    RateEstimate EntireSpaceRate,
    double EntireSpaceMeanQ,
    RateEstimate LoggedRate,
    double CounterfactualMeanQ,
    double LoggedParentMeanQ,
    double? ClickSelectionRatio)
{
    /// <summary>Mean true q_k over every impression (O).</summary>
    public double ImpressionMeanQ { get; init; } = double.NaN;

    /// <summary>Post-click stages: ImpressionMeanQ ÷ CounterfactualMeanQ, the win-selection part of <see cref="ClickSelectionRatio"/>.</summary>
    public double? WinSelectionPart { get; init; }

    /// <summary>Post-click stages: LoggedParentMeanQ ÷ ImpressionMeanQ, the funnel-selection part of <see cref="ClickSelectionRatio"/>.</summary>
    public double? FunnelSelectionPart { get; init; }

    /// <summary>
    /// Post-click stages: the part of <see cref="FunnelSelectionPart"/> that the logged features cannot explain,
    /// FunnelSelectionPart ÷ (the same ratio of E[q_k | x]): 1 when the hidden trait is a user trait (user id is a
    /// feature) or has no weight; above 1 as far as the per-request part of the trait (bias.hiddenPerRequest) drives
    /// the stage before and this one together. No model of x, however good, can recover this part from the logs.
    /// </summary>
    public double? HiddenSelectionPart { get; init; }
}

/// <summary>
/// The realised effect of every bias dial (DESIGN.md §3), written into the manifest.
/// </summary>
public sealed record BiasReport(
    long Requests,
    long Impressions,
    double WinRate,
    double MeanTrueWinPropensity,
    double ClickRate,
    IReadOnlyList<RateEstimate> ClickRateBySlot,
    IReadOnlyList<StageRealization> Stages,
    double WinSelectionRatio,
    double InverseWinPropensityEss,
    double InverseWinPropensityEssShare,
    double MeanBid,
    double MeanPrice,
    double ConversionValue)
{
    /// <summary>Derives the report from the run's sums.</summary>
    public static BiasReport From(RealizedStatistics s, Scenario scenario)
    {
        var k = s.Depth;
        var stages = new StageRealization[k];
        for (var stage = 0; stage < k; stage++)
        {
            var counterfactual = s.EntireQ[stage] / s.Requests;
            var loggedMean = s.LoggedParentCount[stage] > 0 ? s.LoggedParentQ[stage] / s.LoggedParentCount[stage] : double.NaN;
            var impressionMean = s.Won > 0 ? s.ImpressionQ[stage] / s.Won : double.NaN;
            var explainedFunnel = s.LoggedParentCount[stage] > 0 && s.Won > 0
                ? s.LoggedParentExplainedQ[stage] / s.LoggedParentCount[stage] / (s.ImpressionExplainedQ[stage] / s.Won)
                : double.NaN;
            stages[stage] = new StageRealization(
                scenario.Funnel.Stages[stage].Name,
                scenario.Funnel.Stages[stage].Rate,
                RateEstimate.Of(s.EntireParentOutcomes[stage], s.EntireParentCount[stage]),
                s.EntireParentCount[stage] > 0 ? s.EntireParentQ[stage] / s.EntireParentCount[stage] : double.NaN,
                RateEstimate.Of(s.LoggedParentLabels[stage], s.LoggedParentCount[stage]),
                counterfactual,
                loggedMean,
                stage == 0 ? null : loggedMean / counterfactual)
            {
                ImpressionMeanQ = impressionMean,
                WinSelectionPart = stage == 0 ? null : impressionMean / counterfactual,
                FunnelSelectionPart = stage == 0 ? null : loggedMean / impressionMean,
                HiddenSelectionPart = stage == 0 ? null : loggedMean / impressionMean / explainedFunnel,
            };
        }
        var slots = new RateEstimate[s.SlotImpressions.Length];
        for (var j = 0; j < slots.Length; j++)
        {
            slots[j] = RateEstimate.Of(s.SlotClicks[j], s.SlotImpressions[j]);
        }
        var ess = s.InverseWinPropensitySquares > 0
            ? s.InverseWinPropensitySum * s.InverseWinPropensitySum / s.InverseWinPropensitySquares
            : 0;
        return new BiasReport(
            s.Requests,
            s.Won,
            (double)s.Won / s.Requests,
            s.WinPropensitySum / s.Requests,
            s.Won > 0 ? (double)s.LoggedParentLabels[0] / s.Won : double.NaN,
            slots,
            stages,
            s.Won > 0 ? s.LoggedFinalRate / s.Won / (s.EntireFinalRate / s.Requests) : double.NaN,
            ess,
            s.Won > 0 ? ess / s.Won : double.NaN,
            s.BidSum / s.Requests,
            s.Won > 0 ? s.PriceSum / s.Won : double.NaN,
            s.ConversionValue);
    }
}
