using AdAuctionSim.Models.Core;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Debiasing;

/// <summary>
/// Running sums for a model's per-epoch diagnostics, kept as float64 scalars on the training device so a batch
/// never forces a device sync; <see cref="Drain"/> reads them once and resets.
/// </summary>
/// <remarks>
/// Not a module and holds no tensor fields of a module, so nothing here enters a state_dict. The accumulators are
/// detached from any dispose scope (the trainer opens one per step).
/// </remarks>
internal sealed class DiagnosticSums
{
    private readonly Dictionary<string, Tensor> sums = new(StringComparer.Ordinal);
    private readonly SortedSet<string> weightKeys = new(StringComparer.Ordinal);
    private readonly SortedSet<string> meanKeys = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, double> gauges = new(StringComparer.Ordinal);

    /// <summary>
    /// Records importance weights [B] (zeros for rows outside the term): reported as <c>key.ess</c> =
    /// (Σw)²/Σw² (models.md §9.6), <c>key.ess_share</c> = ESS / rows with w &gt; 0, and, when given,
    /// <c>key.floor_rate</c> = share of those rows whose propensity hit its floor (or whose weight hit a cap).
    /// </summary>
    public void Weights(string key, Tensor weights, Tensor? floored = null)
    {
        using (no_grad())
        {
            var w = weights.detach().to_type(ScalarType.Float64);
            var positive = w > HeldScalars.Zero;
            Accumulate(key + "#sum", w.sum());
            Accumulate(key + "#sq", w.Squared().sum());
            Accumulate(key + "#n", positive.sum().to_type(ScalarType.Float64));
            if (floored is not null)
            {
                Accumulate(key + "#floor", (floored.detach() & positive).sum().to_type(ScalarType.Float64));
            }
        }
        weightKeys.Add(key);
    }

    /// <summary>Records Σ v·x and Σ v, reported as <c>key</c> = their ratio (a share when x is an indicator).</summary>
    public void Mean(string key, Tensor values, Tensor rowWeight)
    {
        using (no_grad())
        {
            var v = rowWeight.detach().to_type(ScalarType.Float64);
            Accumulate(key + "#num", (values.detach().to_type(ScalarType.Float64) * v).sum());
            Accumulate(key + "#den", v.sum());
        }
        meanKeys.Add(key);
    }

    /// <summary>Records a current value (a schedule's γ), reported as is.</summary>
    public void Gauge(string key, double value) => gauges[key] = value;

    /// <summary>Everything recorded since the last drain, then reset.</summary>
    public IReadOnlyDictionary<string, double> Drain()
    {
        var result = new SortedDictionary<string, double>(StringComparer.Ordinal);
        foreach (var key in weightKeys)
        {
            var sum = Read(key + "#sum");
            var sq = Read(key + "#sq");
            var n = Read(key + "#n");
            var ess = sq > 0 ? sum * sum / sq : 0;
            result[key + ".ess"] = ess;
            result[key + ".ess_share"] = n > 0 ? ess / n : 0;
            if (sums.ContainsKey(key + "#floor"))
            {
                result[key + ".floor_rate"] = n > 0 ? Read(key + "#floor") / n : 0;
            }
        }
        foreach (var key in meanKeys)
        {
            var den = Read(key + "#den");
            result[key] = den > 0 ? Read(key + "#num") / den : 0;
        }
        foreach (var (key, value) in gauges)
        {
            result[key] = value;
        }
        foreach (var t in sums.Values)
        {
            t.Dispose();
        }
        sums.Clear();
        weightKeys.Clear();
        meanKeys.Clear();
        return result;
    }

    private double Read(string key) => sums.TryGetValue(key, out var t) ? t.item<double>() : 0;

    private void Accumulate(string key, Tensor value)
    {
        if (sums.TryGetValue(key, out var acc))
        {
            acc.PlusInPlace(value);
        }
        else
        {
            sums[key] = value.clone().DetachFromDisposeScope();
        }
    }
}
