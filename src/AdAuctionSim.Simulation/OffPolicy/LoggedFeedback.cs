using AdAuctionSim.Simulation.Output;

namespace AdAuctionSim.Simulation.OffPolicy;

/// <summary>
/// The logged bandit feedback of a simulation, read through the <see cref="LoggedView"/> only (what a real advertiser
/// has): every bid request of the chosen split, won or lost, in request-id order, with the logging policy's action and
/// its probability, the position, the context fields and the observed outcome. This is what the off-policy estimators
/// read (Open Bandit Pipeline's <c>bandit_feedback</c>), and what <c>adsim export-obp</c> writes.
/// </summary>
/// <remarks>
/// The action of a request is the pair (candidate index j, bid multiplier index m), numbered <c>j·M + m</c> (M bid
/// levels), and <c>pscore</c> is its logged probability π_log(j)·π(m). A lost bid is a round with reward 0: the win is
/// part of the outcome, not of the propensity (see <c>BanditFeedback</c> in the evaluation project).
/// </remarks>
public sealed class LoggedFeedback
{
    /// <summary>Context fields exported as OBP's <c>context</c> (observed request, user and slot fields).</summary>
    public static IReadOnlyList<string> ContextFields { get; } =
        ["hour", "site_id", "position", "user_id", "age", "gender", "region", "device", "segment"];

    private LoggedFeedback(int rounds, int candidates, int multipliers)
    {
        Candidates = candidates;
        Multipliers = multipliers;
        RequestId = new long[rounds];
        Timestamp = new long[rounds];
        Split = new byte[rounds];
        CandidateIndex = new int[rounds];
        MultiplierIndex = new int[rounds];
        Pscore = new double[rounds];
        Position = new int[rounds];
        Won = new bool[rounds];
        Converted = new bool[rounds];
        Value = new double[rounds];
        Price = new double[rounds];
        CandidateAds = new int[rounds * candidates];
        Context = new int[rounds * ContextFields.Count];
        Ad = new int[rounds];
    }

    public int Rounds => RequestId.Length;
    public int Candidates { get; }
    public int Multipliers { get; }
    public int Actions => Candidates * Multipliers;
    public long[] RequestId { get; }
    public long[] Timestamp { get; }
    /// <summary>Split code of each round (0 train, 1 validation, 2 test).</summary>
    public byte[] Split { get; }
    /// <summary>Index of the shown ad among the candidates (the logged <c>action</c> column).</summary>
    public int[] CandidateIndex { get; }
    /// <summary>Index of the bid multiplier among the logging policy's.</summary>
    public int[] MultiplierIndex { get; }
    /// <summary>The logged <c>pscore</c>: π_log(ad)·π(multiplier).</summary>
    public double[] Pscore { get; }
    /// <summary>Slot (OBP: position).</summary>
    public int[] Position { get; }
    public bool[] Won { get; }
    /// <summary>Final-stage label (the logged <c>reward</c> column) of an impression; false for a lost bid.</summary>
    public bool[] Converted { get; }
    /// <summary>Value per conversion of the shown ad.</summary>
    public double[] Value { get; }
    /// <summary>Price paid (0 for a lost bid).</summary>
    public double[] Price { get; }
    /// <summary>Candidate ad ids, [round × N].</summary>
    public int[] CandidateAds { get; }
    /// <summary>The shown ad's id.</summary>
    public int[] Ad { get; }
    /// <summary>Context field values, [round × <see cref="ContextFields"/>].</summary>
    public int[] Context { get; }

    /// <summary>The logged action index j·M + m of a round.</summary>
    public int Action(int round) => CandidateIndex[round] * Multipliers + MultiplierIndex[round];

    /// <summary>The observed reward of every round: conversions (0/1) or conversion value; 0 for a lost bid.</summary>
    public double[] Rewards(OpeReward reward)
    {
        var r = new double[Rounds];
        for (var i = 0; i < r.Length; i++)
        {
            var converted = Won[i] && Converted[i] ? 1.0 : 0.0;
            r[i] = reward switch
            {
                OpeReward.Conversions => converted,
                OpeReward.Value => converted * Value[i],
                _ => converted * Value[i] - (Won[i] ? Price[i] : 0),
            };
        }
        return r;
    }

    /// <summary>
    /// Reads impressions and lost bids of <paramref name="split"/> (null: every split) and merges them in request-id order.
    /// </summary>
    /// <exception cref="InvalidDataException">A column holds a value the logging policy cannot have produced (named).</exception>
    public static LoggedFeedback Read(LoggedView view, byte? split = null)
    {
        ArgumentNullException.ThrowIfNull(view);
        var scenario = view.ReadScenario();
        var multipliers = scenario.LoggingPolicy.BidMultipliers;
        var n = scenario.Traffic.CandidateAds;
        var candidateColumns = Enumerable.Range(0, n).Select(j => LogColumns.CandidatePrefix + j.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        string[] common = [LogColumns.RequestId, "timestamp", LogColumns.Split, "action", "ad_id", "bid_multiplier", "pscore", "value_per_conversion",
            .. ContextFields, .. candidateColumns];
        var impressions = view.Read(LoggedProduct.Impressions, [.. common, LogColumns.Price, LogColumns.Reward]);
        var lost = view.Read(LoggedProduct.LostBids, common);
        var products = new[] { impressions, lost };
        var order = new List<(long Id, int Product, int Row)>(impressions.Rows + lost.Rows);
        for (var p = 0; p < products.Length; p++)
        {
            var ids = products[p].Int64(LogColumns.RequestId);
            var splits = products[p].SplitCodes();
            for (var r = 0; r < ids.Length; r++)
            {
                if (split is null || splits[r] == split)
                {
                    order.Add((ids[r], p, r));
                }
            }
        }
        order.Sort((a, b) => a.Id.CompareTo(b.Id));
        var f = new LoggedFeedback(order.Count, n, multipliers.Count);
        var fields = ContextFields.Count;
        for (var i = 0; i < order.Count; i++)
        {
            var (id, p, r) = order[i];
            var c = products[p];
            f.RequestId[i] = id;
            f.Timestamp[i] = c.Int64("timestamp")[r];
            f.Split[i] = c.SplitCodes()[r];
            var action = c.Int32("action")[r];
            if ((uint)action >= (uint)n)
            {
                throw new InvalidDataException($"{c.File}: request {id}: action {action} is not a candidate index in [0, {n})");
            }
            f.CandidateIndex[i] = action;
            var multiplier = c.Double("bid_multiplier")[r];
            var m = IndexOf(multipliers, multiplier);
            if (m < 0)
            {
                throw new InvalidDataException($"{c.File}: request {id}: bid_multiplier {multiplier} is not one of the logging policy's [{string.Join(", ", multipliers)}]");
            }
            f.MultiplierIndex[i] = m;
            f.Pscore[i] = c.Double("pscore")[r];
            f.Ad[i] = c.Int32("ad_id")[r];
            f.Value[i] = c.Double("value_per_conversion")[r];
            f.Won[i] = p == 0;
            f.Converted[i] = p == 0 && c.Int32(LogColumns.Reward)[r] == 1;
            f.Price[i] = p == 0 ? c.Double(LogColumns.Price)[r] : 0;
            for (var j = 0; j < fields; j++)
            {
                f.Context[i * fields + j] = c.Int32(ContextFields[j])[r];
            }
            f.Position[i] = c.Int32("position")[r];
            for (var j = 0; j < n; j++)
            {
                f.CandidateAds[i * n + j] = c.Int32(candidateColumns[j])[r];
            }
        }
        return f;
    }

    private static int IndexOf(IReadOnlyList<double> values, double value)
    {
        for (var i = 0; i < values.Count; i++)
        {
            if (values[i] == value)
            {
                return i;
            }
        }
        return -1;
    }
}
