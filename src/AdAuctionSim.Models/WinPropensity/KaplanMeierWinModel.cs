namespace AdAuctionSim.Models.WinPropensity;

/// <summary>
/// Kaplan–Meier win function per segment (id <c>km</c>, models.md §14.2 item 2). A segment is a value of one
/// categorical field (default <c>segment</c>) crossed with an equal-count bucket of the log base bid ln(b / m);
/// each segment with at least <see cref="KaplanMeierWinOptions.MinSegmentRows"/> training rows gets its own
/// product-limit curve (<see cref="KaplanMeierCurve"/>), smaller ones fall back to their bid bucket's curve, then to
/// the global curve. Ŵ(b | x) is the curve of x's segment at b; π̂(x) sums it over the multipliers.
/// </summary>
/// <remarks>
/// Source: Kaplan and Meier, "Nonparametric estimation from incomplete observations" (JASA 1958), as used for the
/// winning price by Zhang, Zhou, Wang, Xu, "Bid-aware gradient descent for unbiased learning with censored data in
/// display advertising" (BGD, KDD 2016), whose <c>kaplan_meier.py</c> fits the product-limit estimate from won
/// prices and lost bids and adds one pseudo-win at every integer
/// price 0..300 so that Ŵ &gt; 0 at low bids (otherwise inverse-win weights explode).
/// <para>
/// Our smoothing: prices are continuous here, so the pseudo-wins sit on <see cref="KaplanMeierWinOptions.PseudoWinGrid"/>
/// log-spaced prices from the lowest counterfactual bid (min base bid × min multiplier) to the highest bid or price
/// seen in training, each with weight <see cref="KaplanMeierWinOptions.PseudoWinWeight"/> in every segment's curve
/// (defaults 32 × 0.25 = 8 rows of mass against a segment minimum of 1000 rows, so &lt; 1% of a curve), which
/// keeps Ŵ(b) ≥ roughly 0.25 / n_seg for any bid above the lowest grid price.
/// </para>
/// <para>
/// KM is x-free within a segment and assumes that censoring is independent of the price there. Across all requests
/// it is not: competitors bid up the requests the logging bidder also values (the κ dial), so high bids meet high
/// prices. Stratifying by the base bid, a function of x, restores independence within a bucket (the multiplier is
/// drawn independently of the competition), but the x-dependence of z that the base bid and the segment field do
/// not capture is averaged over, so KM is calibrated on average and less sharp than the x-aware models.
/// </para>
/// <para>
/// Second price only: KM needs the exact market price of won auctions. In a first-price auction a win pays the bid
/// and reveals only z &lt; b (left-censored), so the product-limit estimator is not identified; <c>Fit</c>
/// refuses such logs. Use <c>classifier</c> (needs no prices) or <c>censored-lognormal</c> (treats first-price
/// wins as left-censored) instead.
/// </para>
/// </remarks>
internal sealed class KaplanMeierWinModel : WinPropensityModelBase
{
    private readonly KaplanMeierWinOptions _options;
    private int _field = -1;
    private double[] _bucketEdges = [];
    private KaplanMeierCurve? _global;
    private KaplanMeierCurve?[] _bucketCurves = [];
    private Dictionary<(int Value, int Bucket), KaplanMeierCurve> _segmentCurves = [];

    public KaplanMeierWinModel(KaplanMeierWinOptions options) : base(WinPropensityModels.KaplanMeier)
    {
        _options = options;
    }

    protected override void FitCore(WinLogData train, CancellationToken cancellation)
    {
        if (!train.SecondPrice)
        {
            throw new NotSupportedException(
                "km: Kaplan–Meier needs the market price of won auctions, which only a second-price auction reveals (the paid "
                + "price). In a first-price auction a win pays the bid and says only that the market price was below it "
                + "(left-censored), so the product-limit estimate is not identified. Use 'classifier' (needs no prices) or "
                + "'censored-lognormal' (treats first-price wins as left-censored) for first-price logs.");
        }
        var o = _options;
        _field = -1;
        if (o.SegmentField is not null)
        {
            _field = train.FieldIndex(o.SegmentField);
            if (_field < 0)
            {
                throw new ArgumentException(
                    $"km: segment field '{o.SegmentField}' is not among the fields [{string.Join(", ", train.FieldNames)}].", nameof(train));
            }
        }

        var n = train.Count;
        var logBase = new double[n];
        for (var i = 0; i < n; i++)
        {
            logBase[i] = Math.Log(train.BaseBid(i));
        }
        var sorted = (double[])logBase.Clone();
        Array.Sort(sorted);
        var buckets = Math.Max(1, Math.Min(o.BidBuckets, n));
        _bucketEdges = new double[buckets - 1];
        for (var k = 1; k < buckets; k++)
        {
            _bucketEdges[k - 1] = sorted[(int)((long)k * n / buckets)];
        }

        var pseudo = PseudoWinGrid(train, sorted[0], sorted[^1], o.PseudoWinGrid);
        var pseudoWeight = o.PseudoWinWeight;

        var groups = new Dictionary<(int Value, int Bucket), List<int>>();
        var bucketRows = new List<int>[buckets];
        for (var k = 0; k < buckets; k++)
        {
            bucketRows[k] = [];
        }
        for (var i = 0; i < n; i++)
        {
            var bucket = Bucket(logBase[i]);
            bucketRows[bucket].Add(i);
            if (_field >= 0)
            {
                var key = (train.FeatureIds[i * train.FieldCount + _field], bucket);
                if (!groups.TryGetValue(key, out var list))
                {
                    groups[key] = list = [];
                }
                list.Add(i);
            }
        }

        cancellation.ThrowIfCancellationRequested();
        var all = new int[n];
        for (var i = 0; i < n; i++)
        {
            all[i] = i;
        }
        _global = Curve(train, all, pseudo, pseudoWeight);
        _bucketCurves = new KaplanMeierCurve?[buckets];
        var bucketFallbackRows = 0;
        for (var k = 0; k < buckets; k++)
        {
            if (buckets > 1 && bucketRows[k].Count >= o.MinSegmentRows)
            {
                _bucketCurves[k] = Curve(train, bucketRows[k], pseudo, pseudoWeight);
            }
            else if (buckets > 1)
            {
                bucketFallbackRows += bucketRows[k].Count;
            }
        }
        _segmentCurves = [];
        var segmentRows = 0;
        foreach (var (key, rows) in groups)
        {
            cancellation.ThrowIfCancellationRequested();
            if (rows.Count >= o.MinSegmentRows)
            {
                _segmentCurves[key] = Curve(train, rows, pseudo, pseudoWeight);
                segmentRows += rows.Count;
            }
        }
        Diagnostics = new Dictionary<string, double>
        {
            ["rows"] = n,
            ["bid_buckets"] = buckets,
            ["segment_curves"] = _segmentCurves.Count,
            ["segment_candidates"] = groups.Count,
            ["rows_in_own_segment"] = (double)segmentRows / n,
            ["rows_in_global_fallback"] = (double)bucketFallbackRows / n,
            ["pseudo_win_prices"] = pseudo.Length,
        };
    }

    protected override double[][] Evaluate(WinLogData rows, IReadOnlyList<double[]> bidSets)
    {
        var curves = CurvesOf(rows);
        var result = new double[bidSets.Count][];
        for (var s = 0; s < bidSets.Count; s++)
        {
            var bids = bidSets[s];
            var w = new double[rows.Count];
            for (var i = 0; i < w.Length; i++)
            {
                w[i] = curves[i].WinProbability(bids[i]);
            }
            result[s] = w;
        }
        return result;
    }

    /// <summary>Exact for the step function: <see cref="KaplanMeierCurve.ExpectedPayment"/> of each row's curve.</summary>
    protected override double[][] SecondPricePayment(WinLogData rows, IReadOnlyList<double[]> bidSets)
    {
        var curves = CurvesOf(rows);
        return PerBid(rows, bidSets, (_, i, bid) => curves[i].ExpectedPayment(bid, rows.ReservePrice));
    }

    /// <summary>The curve each row is scored with: its segment's, else its bid bucket's, else the global one.</summary>
    private KaplanMeierCurve[] CurvesOf(WinLogData rows)
    {
        var curves = new KaplanMeierCurve[rows.Count];
        for (var i = 0; i < curves.Length; i++)
        {
            var bucket = Bucket(Math.Log(rows.BaseBid(i)));
            KaplanMeierCurve? curve = null;
            if (_field >= 0)
            {
                _segmentCurves.TryGetValue((rows.FeatureIds[i * rows.FieldCount + _field], bucket), out curve);
            }
            curves[i] = curve ?? _bucketCurves[bucket] ?? _global!;
        }
        return curves;
    }

    private int Bucket(double logBase)
    {
        // Number of edges ≤ logBase.
        int lo = 0, hi = _bucketEdges.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_bucketEdges[mid] <= logBase)
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

    /// <summary>Log-spaced prices from the lowest counterfactual bid to the highest bid or price in training.</summary>
    private static double[] PseudoWinGrid(WinLogData train, double minLogBase, double maxLogBase, int points)
    {
        if (points == 0)
        {
            return [];
        }
        var lo = minLogBase + Math.Log(train.Multipliers.Min());
        var hi = maxLogBase + Math.Log(train.Multipliers.Max());
        for (var i = 0; i < train.Count; i++)
        {
            if (train.Won[i])
            {
                hi = Math.Max(hi, Math.Log(train.Price[i]));
            }
        }
        var grid = new double[points];
        for (var g = 0; g < points; g++)
        {
            grid[g] = Math.Exp(points == 1 ? lo : lo + (hi - lo) * g / (points - 1));
        }
        return grid;
    }

    private static KaplanMeierCurve Curve(WinLogData train, IReadOnlyList<int> rows, double[] pseudo, double pseudoWeight)
    {
        var won = new List<double>(rows.Count);
        var lost = new List<double>(rows.Count);
        foreach (var i in rows)
        {
            if (train.Won[i])
            {
                won.Add(train.Price[i]);
            }
            else
            {
                lost.Add(train.Bid[i]);
            }
        }
        return KaplanMeierCurve.Fit(won.ToArray(), lost.ToArray(), pseudo, pseudoWeight);
    }
}
