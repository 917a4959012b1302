namespace AdAuctionSim.Models.WinPropensity;

/// <summary>
/// The weighted Kaplan–Meier product-limit estimate of the market price's distribution from second-price logs
/// (models.md §14.2 item 2): distinct observed prices t_1 &lt; … &lt; t_J, d_j = (weighted) wins with z = t_j,
/// n_j = wins with z ≥ t_j plus lost bids with b ≥ t_j, and Ŵ(b) = 1 − Π_{t_j &lt; b} (1 − d_j / n_j).
/// </summary>
/// <remarks>
/// A lost bid b says z ≥ b (right-censored at b), so it stays at risk at every t_j ≤ b, a tie included. The strict
/// t_j &lt; b matches the simulator's rule "win iff b &gt; z". Pseudo-wins (BGD's smoothing) are wins of the given
/// weight at the given prices.
/// </remarks>
internal sealed class KaplanMeierCurve
{
    private readonly double[] _times;
    private readonly double[] _win;
    private readonly double[] _paid;

    private KaplanMeierCurve(double[] times, double[] win, double weight)
    {
        _times = times;
        _win = win;
        Weight = weight;
        // Σ_{i ≤ j} t_i·(Ŵ_i − Ŵ_{i−1}): the partial mean of the price up to and including t_j.
        _paid = new double[times.Length];
        var paid = 0.0;
        for (var j = 0; j < times.Length; j++)
        {
            paid += times[j] * (win[j] - (j == 0 ? 0 : win[j - 1]));
            _paid[j] = paid;
        }
    }

    /// <summary>Total weight of the rows (pseudo-wins included) the curve was fitted on.</summary>
    public double Weight { get; }

    /// <summary>Distinct event prices t_j, ascending.</summary>
    public IReadOnlyList<double> Times => _times;

    public static KaplanMeierCurve Fit(ReadOnlySpan<double> wonPrices, ReadOnlySpan<double> lostBids,
        ReadOnlySpan<double> pseudoWinPrices = default, double pseudoWinWeight = 0)
    {
        var n = wonPrices.Length + lostBids.Length + pseudoWinPrices.Length;
        var time = new double[n];
        var eventWeight = new double[n];
        var weight = new double[n];
        var r = 0;
        foreach (var z in wonPrices)
        {
            (time[r], eventWeight[r], weight[r]) = (z, 1, 1);
            r++;
        }
        foreach (var b in lostBids)
        {
            (time[r], eventWeight[r], weight[r]) = (b, 0, 1);
            r++;
        }
        foreach (var z in pseudoWinPrices)
        {
            (time[r], eventWeight[r], weight[r]) = (z, pseudoWinWeight, pseudoWinWeight);
            r++;
        }
        var order = new int[n];
        for (var i = 0; i < n; i++)
        {
            order[i] = i;
        }
        Array.Sort(time, order);

        var atRisk = 0.0;
        foreach (var w in weight)
        {
            atRisk += w;
        }
        var total = atRisk;
        var times = new List<double>();
        var win = new List<double>();
        var survival = 1.0;
        for (var i = 0; i < n;)
        {
            var t = time[i];
            double deaths = 0, leaving = 0;
            for (; i < n && time[i] == t; i++)
            {
                deaths += eventWeight[order[i]];
                leaving += weight[order[i]];
            }
            if (deaths > 0 && atRisk > 0)
            {
                survival *= Math.Max(0, 1 - deaths / atRisk);
                times.Add(t);
                win.Add(1 - survival);
            }
            atRisk -= leaving;
        }
        return new KaplanMeierCurve([.. times], [.. win], total);
    }

    /// <summary>Ŵ(b) = 1 − Π_{t_j &lt; b}(1 − d_j/n_j): 0 below the first event price.</summary>
    public double WinProbability(double bid)
    {
        var below = EventsBelow(bid);
        return below == 0 ? 0 : _win[below - 1];
    }

    /// <summary>
    /// The second-price payment the curve implies for a bid b ≥ r: Σ_{t_j &lt; b} max(t_j, r)·(Ŵ_j − Ŵ_{j−1}), the price
    /// being max(z, r); exact for the step function (equal to b·Ŵ(b) − ∫_r^b Ŵ(p) dp). The caller returns 0 below r.
    /// </summary>
    public double ExpectedPayment(double bid, double reserve)
    {
        var below = EventsBelow(bid);
        if (below == 0)
        {
            return 0;
        }
        var underReserve = reserve > 0 ? Math.Min(EventsBelow(reserve), below) : 0;
        var paid = _paid[below - 1] - (underReserve == 0 ? 0 : _paid[underReserve - 1]);
        return (underReserve == 0 ? 0 : reserve * _win[underReserve - 1]) + paid;
    }

    /// <summary>The number of event prices t_j strictly below <paramref name="bid"/>.</summary>
    private int EventsBelow(double bid)
    {
        // Index of the first t_j ≥ b; the events strictly below b are those before it.
        int lo = 0, hi = _times.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_times[mid] < bid)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }
        return lo;
    }
}
