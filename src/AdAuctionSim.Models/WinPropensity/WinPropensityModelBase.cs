namespace AdAuctionSim.Models.WinPropensity;

/// <summary>
/// What every estimator shares: input checks, the reserve rule and the multiplier sum of models.md §14.3. A subclass
/// computes its x-dependent part once per call and evaluates its market-price curve at several bid vectors.
/// </summary>
internal abstract class WinPropensityModelBase : IWinPropensityModel
{
    private IReadOnlyList<string>? _fields;
    private IReadOnlyList<int> _cardinalities = [];

    protected WinPropensityModelBase(string id)
    {
        Id = id;
    }

    public string Id { get; }

    public bool IsFitted => _fields is not null;

    public IReadOnlyDictionary<string, double> Diagnostics { get; protected set; } = new Dictionary<string, double>();

    public void Fit(WinLogData train, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(train);
        train.Validate(requireOutcomes: true);
        if (train.Count == 0)
        {
            throw new ArgumentException($"{Id}: cannot fit on zero rows.", nameof(train));
        }
        FitCore(train, cancellation);
        _fields = [.. train.FieldNames];
        _cardinalities = [.. train.Cardinalities];
    }

    public double[] WinProbability(WinLogData rows, double[] bids)
    {
        ArgumentNullException.ThrowIfNull(bids);
        CheckScoring(rows);
        if (bids.Length != rows.Count)
        {
            throw new ArgumentException($"{Id}: {bids.Length} bids for {rows.Count} rows.", nameof(bids));
        }
        var w = Evaluate(rows, [bids])[0];
        ApplyReserve(rows.ReservePrice, bids, w);
        return w;
    }

    public double[] WinProbabilityAtBid(WinLogData rows)
    {
        CheckScoring(rows);
        var w = Evaluate(rows, [rows.Bid])[0];
        ApplyReserve(rows.ReservePrice, rows.Bid, w);
        return w;
    }

    public double[] WinPropensity(WinLogData rows)
    {
        CheckScoring(rows);
        var multipliers = rows.Multipliers;
        var bidSets = new double[multipliers.Count][];
        for (var m = 0; m < multipliers.Count; m++)
        {
            var b = new double[rows.Count];
            for (var i = 0; i < b.Length; i++)
            {
                b[i] = rows.BaseBid(i) * multipliers[m];
            }
            bidSets[m] = b;
        }
        var curves = Evaluate(rows, bidSets);
        var pi = new double[rows.Count];
        for (var m = 0; m < multipliers.Count; m++)
        {
            ApplyReserve(rows.ReservePrice, bidSets[m], curves[m]);
            var p = rows.MultiplierProbabilities[m];
            var w = curves[m];
            for (var i = 0; i < pi.Length; i++)
            {
                pi[i] += p * w[i];
            }
        }
        return pi;
    }

    public double[][] ExpectedPayment(WinLogData rows, IReadOnlyList<double[]> bidSets)
    {
        ArgumentNullException.ThrowIfNull(bidSets);
        CheckScoring(rows);
        foreach (var bids in bidSets)
        {
            ArgumentNullException.ThrowIfNull(bids, nameof(bidSets));
            if (bids.Length != rows.Count)
            {
                throw new ArgumentException($"{Id}: {bids.Length} bids for {rows.Count} rows.", nameof(bidSets));
            }
        }
        if (!rows.SecondPrice)
        {
            var curves = Evaluate(rows, bidSets);
            return PerBid(rows, bidSets, (s, i, bid) => bid * curves[s][i]);
        }
        return SecondPricePayment(rows, bidSets);
    }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }

    /// <summary>Fits on validated rows with outcomes.</summary>
    protected abstract void FitCore(WinLogData train, CancellationToken cancellation);

    /// <summary>
    /// The market-price curve P̂(z &lt; b | x_i) at each bid vector (result [set][row]); the reserve indicator is applied
    /// by the caller.
    /// </summary>
    protected abstract double[][] Evaluate(WinLogData rows, IReadOnlyList<double[]> bidSets);

    /// <summary>
    /// Second price: Ĉ(b) = b·Ŵ(b) − ∫_r^b Ŵ(p) dp for b ≥ r, 0 below the reserve r. By default
    /// <see cref="PaymentByQuadrature"/>; a model with a closed form overrides it.
    /// </summary>
    protected virtual double[][] SecondPricePayment(WinLogData rows, IReadOnlyList<double[]> bidSets) => PaymentByQuadrature(rows, bidSets);

    /// <summary>
    /// One payment per bid of each set ([set][row]): <paramref name="payment"/>(set, row, bid) where the bid can win (b ≥ the
    /// reserve and b &gt; 0), else 0.
    /// </summary>
    protected static double[][] PerBid(WinLogData rows, IReadOnlyList<double[]> bidSets, Func<int, int, double, double> payment)
    {
        var reserve = rows.ReservePrice;
        var result = new double[bidSets.Count][];
        for (var s = 0; s < bidSets.Count; s++)
        {
            var bids = bidSets[s];
            var paid = new double[bids.Length];
            for (var i = 0; i < paid.Length; i++)
            {
                paid[i] = bids[i] >= reserve && bids[i] > 0 ? payment(s, i, bids[i]) : 0;
            }
            result[s] = paid;
        }
        return result;
    }

    /// <summary>Width in ln p below ln b over which <see cref="PaymentByQuadrature"/> integrates when the reserve is lower.</summary>
    internal const double QuadratureSpan = 12;

    /// <summary>Panels of the composite rule of <see cref="PaymentByQuadrature"/>.</summary>
    internal const int QuadraturePanels = 48;

    // Four-point Gauss–Legendre nodes on [0, 1] and their weights.
    private static readonly double[] LegendreNodes =
    [
        0.5 - (0.8611363115940526 / 2), 0.5 - (0.3399810435848563 / 2), 0.5 + (0.3399810435848563 / 2), 0.5 + (0.8611363115940526 / 2),
    ];
    private static readonly double[] LegendreWeights =
    [
        0.3478548451374538 / 2, 0.6521451548625461 / 2, 0.6521451548625461 / 2, 0.3478548451374538 / 2,
    ];

    /// <summary>
    /// The second-price payment by quadrature: ∫_r^b Ŵ(p) dp = ∫ Ŵ(e^y)·e^y dy over y from max(ln r, ln b − 12) to
    /// ln b, by a composite four-point Gauss–Legendre rule on 48 panels of equal width (192 evaluations of the curve
    /// per bid). Below ln b − 12 the integral is at most b·e^−12 ≈ 6·10⁻⁶·b. Any monotone win curve works; the tests measure
    /// the rule against the log-normal model's closed form.
    /// </summary>
    internal double[][] PaymentByQuadrature(WinLogData rows, IReadOnlyList<double[]> bidSets)
    {
        var reserve = rows.ReservePrice;
        var nodes = QuadraturePanels * LegendreNodes.Length;
        var result = new double[bidSets.Count][];
        for (var s = 0; s < bidSets.Count; s++)
        {
            var bids = bidSets[s];
            var n = bids.Length;
            var width = new double[n];
            var sets = new double[nodes + 1][];
            sets[0] = bids;
            for (var g = 1; g <= nodes; g++)
            {
                sets[g] = new double[n];
            }
            for (var i = 0; i < n; i++)
            {
                var high = Math.Log(Math.Max(bids[i], double.Epsilon));
                var low = reserve > 0 ? Math.Max(Math.Log(reserve), high - QuadratureSpan) : high - QuadratureSpan;
                low = Math.Min(low, high);
                var panel = (high - low) / QuadraturePanels;
                width[i] = panel;
                for (var p = 0; p < QuadraturePanels; p++)
                {
                    for (var q = 0; q < LegendreNodes.Length; q++)
                    {
                        sets[1 + (p * LegendreNodes.Length) + q][i] = Math.Exp(low + (panel * (p + LegendreNodes[q])));
                    }
                }
            }
            var curves = Evaluate(rows, sets);
            result[s] = PerBid(rows, [bids], (_, i, bid) =>
            {
                var integral = 0.0;
                for (var g = 0; g < nodes; g++)
                {
                    integral += LegendreWeights[g % LegendreNodes.Length] * curves[g + 1][i] * sets[g + 1][i];
                }
                return Math.Max(0, (bid * curves[0][i]) - (integral * width[i]));
            })[0];
        }
        return result;
    }

    private void CheckScoring(WinLogData rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (_fields is null)
        {
            throw new InvalidOperationException($"{Id}: call Fit before scoring.");
        }
        rows.Validate(requireOutcomes: false);
        if (!rows.FieldNames.SequenceEqual(_fields, StringComparer.Ordinal) || !rows.Cardinalities.SequenceEqual(_cardinalities))
        {
            throw new ArgumentException(
                $"{Id}: rows have fields [{string.Join(", ", rows.FieldNames)}] with cardinalities [{string.Join(", ", rows.Cardinalities)}]; "
                + $"the model was fitted on [{string.Join(", ", _fields)}] with [{string.Join(", ", _cardinalities)}].",
                nameof(rows));
        }
    }

    /// <summary>A bid below the reserve never wins (the simulator wins ties at the reserve: b ≥ r clears it).</summary>
    private static void ApplyReserve(double reserve, double[] bids, double[] w)
    {
        if (reserve <= 0)
        {
            return;
        }
        for (var i = 0; i < w.Length; i++)
        {
            if (bids[i] < reserve)
            {
                w[i] = 0;
            }
        }
    }
}
