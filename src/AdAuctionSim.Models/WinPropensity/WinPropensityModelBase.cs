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
