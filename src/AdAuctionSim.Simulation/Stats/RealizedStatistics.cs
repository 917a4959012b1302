using AdAuctionSim.Simulation.Engine;

namespace AdAuctionSim.Simulation.Stats;

/// <summary>
/// Sums over simulated requests from which the realised effect of every bias dial is derived. Each chunk is
/// summed on its own (in parallel) and chunks are merged in request order, so the result does not depend on the
/// thread count.
/// </summary>
public sealed class RealizedStatistics
{
    public RealizedStatistics(int depth, int slots)
    {
        Depth = depth;
        SlotImpressions = new long[slots];
        SlotClicks = new long[slots];
        EntireParentCount = new long[depth];
        EntireParentOutcomes = new long[depth];
        EntireParentQ = new double[depth];
        EntireQ = new double[depth];
        LoggedParentCount = new long[depth];
        LoggedParentLabels = new long[depth];
        LoggedParentQ = new double[depth];
        ImpressionQ = new double[depth];
        ImpressionExplainedQ = new double[depth];
        LoggedParentExplainedQ = new double[depth];
    }

    public int Depth { get; }
    public long Requests { get; private set; }
    public long Won { get; private set; }
    public long[] SlotImpressions { get; }
    public long[] SlotClicks { get; }
    /// <summary>Per stage k: requests of D whose potential outcomes reach stage k−1 (all of D for the click).</summary>
    public long[] EntireParentCount { get; }
    /// <summary>Per stage k: potential outcomes of stage k over that parent population.</summary>
    public long[] EntireParentOutcomes { get; }
    public double[] EntireParentQ { get; }
    /// <summary>Per stage: Σ q_k over all of D (the counterfactual rate of every request).</summary>
    public double[] EntireQ { get; }
    /// <summary>Per stage k: impressions that reached stage k−1 (all impressions for the click).</summary>
    public long[] LoggedParentCount { get; }
    public long[] LoggedParentLabels { get; }
    public double[] LoggedParentQ { get; }
    /// <summary>Per stage: Σ q_k over every impression (O), whether or not it reached stage k−1.</summary>
    public double[] ImpressionQ { get; }
    /// <summary>Per stage: Σ E[q_k | x] over every impression (<see cref="RequestBatch.ExplainedQ"/>).</summary>
    public double[] ImpressionExplainedQ { get; }
    /// <summary>Per stage k: Σ E[q_k | x] over the impressions that reached stage k−1.</summary>
    public double[] LoggedParentExplainedQ { get; }
    public double EntireFinalRate { get; private set; }
    public double LoggedFinalRate { get; private set; }
    public double InverseWinPropensitySum { get; private set; }
    public double InverseWinPropensitySquares { get; private set; }
    public double WinPropensitySum { get; private set; }
    public double BidSum { get; private set; }
    public double PriceSum { get; private set; }
    public double ConversionValue { get; private set; }

    /// <summary>Adds every row of a batch.</summary>
    public void Add(RequestBatch b)
    {
        var k = Depth;
        for (var i = 0; i < b.Count; i++)
        {
            var won = b.Won[i];
            var o = i * k;
            var reachedEntire = true;
            var reachedLogged = won;
            var r = 1.0;
            for (var stage = 0; stage < k; stage++)
            {
                var q = b.Q[o + stage];
                var explained = b.ExplainedQ[o + stage];
                var y = b.Outcome[o + stage];
                r *= q;
                EntireQ[stage] += q;
                if (won)
                {
                    ImpressionQ[stage] += q;
                    ImpressionExplainedQ[stage] += explained;
                }
                if (reachedEntire)
                {
                    EntireParentCount[stage]++;
                    EntireParentQ[stage] += q;
                    if (y)
                    {
                        EntireParentOutcomes[stage]++;
                    }
                }
                if (reachedLogged)
                {
                    LoggedParentCount[stage]++;
                    LoggedParentQ[stage] += q;
                    LoggedParentExplainedQ[stage] += explained;
                    if (y)
                    {
                        LoggedParentLabels[stage]++;
                    }
                }
                reachedEntire &= y;
                reachedLogged &= y;
            }
            EntireFinalRate += r;
            WinPropensitySum += b.WinPropensity[i];
            BidSum += b.Bid[i];
            if (won)
            {
                Won++;
                LoggedFinalRate += r;
                var inv = 1 / b.WinPropensity[i];
                InverseWinPropensitySum += inv;
                InverseWinPropensitySquares += inv * inv;
                PriceSum += b.Price[i];
                SlotImpressions[b.Slot[i]]++;
                if (b.Outcome[o])
                {
                    SlotClicks[b.Slot[i]]++;
                }
                if (reachedLogged)
                {
                    ConversionValue += b.ValuePerConversion[i];
                }
            }
        }
        Requests += b.Count;
    }

    /// <summary>Adds another set of sums (call in request order for bit-identical results).</summary>
    public void Merge(RealizedStatistics other)
    {
        Requests += other.Requests;
        Won += other.Won;
        for (var j = 0; j < SlotImpressions.Length; j++)
        {
            SlotImpressions[j] += other.SlotImpressions[j];
            SlotClicks[j] += other.SlotClicks[j];
        }
        for (var k = 0; k < Depth; k++)
        {
            EntireParentCount[k] += other.EntireParentCount[k];
            EntireParentOutcomes[k] += other.EntireParentOutcomes[k];
            EntireParentQ[k] += other.EntireParentQ[k];
            EntireQ[k] += other.EntireQ[k];
            LoggedParentCount[k] += other.LoggedParentCount[k];
            LoggedParentLabels[k] += other.LoggedParentLabels[k];
            LoggedParentQ[k] += other.LoggedParentQ[k];
            ImpressionQ[k] += other.ImpressionQ[k];
            ImpressionExplainedQ[k] += other.ImpressionExplainedQ[k];
            LoggedParentExplainedQ[k] += other.LoggedParentExplainedQ[k];
        }
        EntireFinalRate += other.EntireFinalRate;
        LoggedFinalRate += other.LoggedFinalRate;
        InverseWinPropensitySum += other.InverseWinPropensitySum;
        InverseWinPropensitySquares += other.InverseWinPropensitySquares;
        WinPropensitySum += other.WinPropensitySum;
        BidSum += other.BidSum;
        PriceSum += other.PriceSum;
        ConversionValue += other.ConversionValue;
    }

    public void Reset()
    {
        Requests = Won = 0;
        Array.Clear(SlotImpressions);
        Array.Clear(SlotClicks);
        Array.Clear(EntireParentCount);
        Array.Clear(EntireParentOutcomes);
        Array.Clear(EntireParentQ);
        Array.Clear(EntireQ);
        Array.Clear(LoggedParentCount);
        Array.Clear(LoggedParentLabels);
        Array.Clear(LoggedParentQ);
        Array.Clear(ImpressionQ);
        Array.Clear(ImpressionExplainedQ);
        Array.Clear(LoggedParentExplainedQ);
        EntireFinalRate = LoggedFinalRate = InverseWinPropensitySum = InverseWinPropensitySquares = 0;
        WinPropensitySum = BidSum = PriceSum = ConversionValue = 0;
    }
}
