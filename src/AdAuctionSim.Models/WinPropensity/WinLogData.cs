namespace AdAuctionSim.Models.WinPropensity;

/// <summary>
/// The logged view of bid requests that a win-propensity model reads (models.md §14.1): observed categorical
/// fields, the logging bidder's bid and multiplier, and, for fitting, the auction outcome. Plain arrays so that it
/// does not depend on how the logs were read (parquet, in-memory simulation, a synthetic test).
/// </summary>
/// <param name="FeatureIds">
/// Row-major [N × F] raw ids, one per field: <c>FeatureIds[i * F + f]</c> is request i's value of field f, in
/// [0, <paramref name="Cardinalities"/>[f]). No offsets: the models place field f in their own table. An id outside
/// that range (a value unseen when the schema was built) goes to the field's extra "unseen" row.
/// </param>
/// <param name="FieldNames">Names of the F fields (log column names such as <c>site_id</c>, <c>segment</c>).</param>
/// <param name="Cardinalities">Number of distinct ids of each field.</param>
/// <param name="Bid">The logged bid b &gt; 0 of each request.</param>
/// <param name="BidMultiplier">The multiplier m the logging bidder drew for this bid (b = base bid · m).</param>
/// <param name="Won">Whether the bid won. Empty when the rows are only to be scored.</param>
/// <param name="Price">
/// The price paid by a won bid: in a second-price auction the market price z = max(highest competing bid, reserve),
/// which satisfies z &lt; b; in a first-price auction the bid itself (it says nothing about z except z &lt; b).
/// NaN (or anything) on lost rows, which are never read. Empty when the rows are only to be scored.
/// </param>
/// <param name="Multipliers">The logging bidder's discrete multiplier set (DESIGN.md §3).</param>
/// <param name="MultiplierProbabilities">π(m) of each multiplier (sum 1), the same for every request.</param>
/// <param name="SecondPrice">True for a second-price auction (wins reveal z), false for first price.</param>
/// <param name="ReservePrice">Reserve price (0 = none): a bid below it never wins, whatever the competition.</param>
public sealed record WinLogData(
    int[] FeatureIds,
    IReadOnlyList<string> FieldNames,
    IReadOnlyList<int> Cardinalities,
    double[] Bid,
    double[] BidMultiplier,
    bool[] Won,
    double[] Price,
    IReadOnlyList<double> Multipliers,
    IReadOnlyList<double> MultiplierProbabilities,
    bool SecondPrice,
    double ReservePrice = 0)
{
    /// <summary>Requests N.</summary>
    public int Count => Bid.Length;

    /// <summary>Fields F.</summary>
    public int FieldCount => FieldNames.Count;

    /// <summary>Whether <see cref="Won"/> and <see cref="Price"/> are filled (needed by Fit, not by scoring).</summary>
    public bool HasOutcomes => Won.Length > 0;

    /// <summary>The logging bidder's base bid b / m of row i: a function of x only (the bid before its random multiplier).</summary>
    public double BaseBid(int row) => Bid[row] / BidMultiplier[row];

    /// <summary>Index of a field by name, or −1.</summary>
    public int FieldIndex(string name)
    {
        for (var f = 0; f < FieldNames.Count; f++)
        {
            if (string.Equals(FieldNames[f], name, StringComparison.Ordinal))
            {
                return f;
            }
        }
        return -1;
    }

    /// <summary>The requests at <paramref name="rows"/> (in that order), sharing the schema and the auction settings.</summary>
    public WinLogData Select(IReadOnlyList<int> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var f = FieldCount;
        var ids = new int[rows.Count * f];
        var bid = new double[rows.Count];
        var multiplier = new double[rows.Count];
        var won = HasOutcomes ? new bool[rows.Count] : [];
        var price = HasOutcomes ? new double[rows.Count] : [];
        for (var i = 0; i < rows.Count; i++)
        {
            var r = rows[i];
            Array.Copy(FeatureIds, (long)r * f, ids, (long)i * f, f);
            bid[i] = Bid[r];
            multiplier[i] = BidMultiplier[r];
            if (HasOutcomes)
            {
                won[i] = Won[r];
                price[i] = Price[r];
            }
        }
        return this with { FeatureIds = ids, Bid = bid, BidMultiplier = multiplier, Won = won, Price = price };
    }

    /// <summary>
    /// Checks shapes and values; <paramref name="requireOutcomes"/> also checks the outcome columns (for Fit).
    /// </summary>
    /// <exception cref="ArgumentException">What is wrong, with the first offending row.</exception>
    public void Validate(bool requireOutcomes)
    {
        var n = Count;
        var f = FieldCount;
        if (f == 0 || Cardinalities.Count != f)
        {
            throw new ArgumentException($"WinLogData: {f} field names but {Cardinalities.Count} cardinalities (need at least one field).");
        }
        for (var j = 0; j < f; j++)
        {
            if (Cardinalities[j] < 1)
            {
                throw new ArgumentException($"WinLogData: field {FieldNames[j]} has cardinality {Cardinalities[j]}; expected ≥ 1.");
            }
        }
        if (FeatureIds.LongLength != (long)n * f)
        {
            throw new ArgumentException($"WinLogData: FeatureIds has {FeatureIds.LongLength} entries; expected rows × fields = {n} × {f}.");
        }
        if (BidMultiplier.Length != n)
        {
            throw new ArgumentException($"WinLogData: BidMultiplier has {BidMultiplier.Length} rows; Bid has {n}.");
        }
        if (Multipliers.Count == 0 || Multipliers.Count != MultiplierProbabilities.Count)
        {
            throw new ArgumentException($"WinLogData: {Multipliers.Count} multipliers but {MultiplierProbabilities.Count} probabilities.");
        }
        var sum = 0.0;
        for (var m = 0; m < Multipliers.Count; m++)
        {
            if (!(Multipliers[m] > 0) || double.IsInfinity(Multipliers[m]) || !(MultiplierProbabilities[m] >= 0))
            {
                throw new ArgumentException($"WinLogData: multiplier {m} is {Multipliers[m]} with probability {MultiplierProbabilities[m]}; expected a positive multiplier and a probability ≥ 0.");
            }
            sum += MultiplierProbabilities[m];
        }
        if (Math.Abs(sum - 1) > 1e-6)
        {
            throw new ArgumentException($"WinLogData: multiplier probabilities sum to {sum}; expected 1.");
        }
        if (!(ReservePrice >= 0) || double.IsInfinity(ReservePrice))
        {
            throw new ArgumentException($"WinLogData: reserve price {ReservePrice}; expected a finite value ≥ 0.");
        }
        for (var i = 0; i < n; i++)
        {
            if (!(Bid[i] > 0) || double.IsInfinity(Bid[i]) || !(BidMultiplier[i] > 0) || double.IsInfinity(BidMultiplier[i]))
            {
                throw new ArgumentException($"WinLogData: row {i} has bid {Bid[i]} and multiplier {BidMultiplier[i]}; both must be finite and > 0.");
            }
        }
        if (!requireOutcomes)
        {
            return;
        }
        if (Won.Length != n || Price.Length != n)
        {
            throw new ArgumentException($"WinLogData: fitting needs Won and Price for every row; got {Won.Length} and {Price.Length} for {n} rows.");
        }
        if (!SecondPrice)
        {
            return;
        }
        for (var i = 0; i < n; i++)
        {
            // Win iff b > z (the simulator's tie rule), so a paid second price never exceeds the bid.
            if (Won[i] && (!(Price[i] > 0) || double.IsInfinity(Price[i]) || Price[i] > Bid[i] * (1 + 1e-9)))
            {
                throw new ArgumentException($"WinLogData: won row {i} has price {Price[i]} for bid {Bid[i]}; a second-price win pays a finite price in (0, bid].");
            }
        }
    }
}
