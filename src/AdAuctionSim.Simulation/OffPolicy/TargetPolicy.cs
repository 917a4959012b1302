namespace AdAuctionSim.Simulation.OffPolicy;

/// <summary>How a policy picks the candidate ad.</summary>
public enum AdRule
{
    /// <summary>The candidate with the largest score × value (ties: the first).</summary>
    Greedy,
    /// <summary>Softmax over ln(score × value) / temperature.</summary>
    Softmax,
    /// <summary>Every candidate alike.</summary>
    Uniform,
    /// <summary>The logging policy's own probabilities.</summary>
    Logging,
}

/// <summary>How a policy picks its bid among the logging bidder's bid levels for the chosen ad.</summary>
public enum BidRule
{
    /// <summary>
    /// The policy's own bid, value × score × bid scale, placed at the logged bid level nearest to it in log scale (ties:
    /// the lower level).
    /// </summary>
    Own,
    /// <summary>The logging policy's multiplier probabilities.</summary>
    Logging,
    /// <summary>Always the given multiplier.</summary>
    Fixed,
}

/// <summary>
/// A policy over the logged action space (candidate ad × bid level) of an <see cref="ActionTable"/>: the logging policy
/// itself, or a target policy built from per-candidate scores (a trained model's r̂_K of each candidate ad, the
/// logging model's estimates or the truth) with its own ad rule and bid rule.
/// </summary>
/// <remarks>
/// Why the bid is snapped to the logging bidder's levels: off-policy estimators can value only actions the logs can
/// stand for. The logging bidder bids value·r̂_log(x, j)·m for a discrete multiplier set, so (ad, multiplier) is the
/// discrete action space the logs randomise over (DESIGN.md §3). A target policy "bid proportional to the model's
/// r̂_K" therefore bids the logged level nearest its own bid. A policy that needs a level the logging policy never takes
/// (a multiplier with logging probability 0) puts mass outside the logging support, which the estimators' support
/// diagnostic reports.
/// </remarks>
/// <param name="Name">Name in reports.</param>
/// <param name="Scores">Where the per-candidate scores come from: <c>truth</c>, <c>logging</c> or a model id.</param>
/// <param name="Ad">Ad rule.</param>
/// <param name="Temperature">Softmax temperature (ad rule softmax).</param>
/// <param name="Bid">Bid rule.</param>
/// <param name="BidScale">Factor on the policy's own bid (bid rule own).</param>
/// <param name="Multiplier">The multiplier of bid rule fixed (one of the logging policy's multipliers).</param>
public sealed record TargetPolicy(string Name, string Scores, AdRule Ad, double Temperature = 1, BidRule Bid = BidRule.Own,
    double BidScale = 1, double Multiplier = 1)
{
    public const string TruthScores = "truth";
    public const string LoggingScores = "logging";

    /// <summary>The logging policy as a target (its probabilities are those logged).</summary>
    public static TargetPolicy Logging { get; } = new("logging", LoggingScores, AdRule.Logging, Bid: BidRule.Logging);

    /// <summary>Whether this is the logging policy itself.</summary>
    public bool IsLogging => Ad == AdRule.Logging && Bid == BidRule.Logging;

    /// <summary>
    /// π(a | x_i) for every round and action, [round × A]. <paramref name="scores"/> are the per-candidate scores
    /// ([round × N]) for the ad and own-bid rules; null is allowed when neither uses them.
    /// </summary>
    public double[] Distribution(ActionTable table, double[]? scores)
    {
        ArgumentNullException.ThrowIfNull(table);
        var n = table.Candidates;
        var m = table.Multipliers;
        var needsScores = Ad is AdRule.Greedy or AdRule.Softmax || Bid == BidRule.Own;
        if (needsScores && (scores is null || scores.Length != table.Rounds * n))
        {
            throw new ArgumentException($"policy \"{Name}\" needs a score for each of the {table.Rounds} × {n} candidates", nameof(scores));
        }
        var fixedIndex = -1;
        if (Bid == BidRule.Fixed)
        {
            for (var mi = 0; mi < m; mi++)
            {
                if (table.MultiplierValues[mi] == Multiplier)
                {
                    fixedIndex = mi;
                }
            }
            if (fixedIndex < 0)
            {
                throw new ArgumentException($"policy \"{Name}\": multiplier {Multiplier} is not one of the logging policy's [{string.Join(", ", table.MultiplierValues)}]");
            }
        }
        var result = new double[table.Rounds * table.Actions];
        var ad = new double[n];
        var utility = new double[n];
        for (var i = 0; i < table.Rounds; i++)
        {
            AdProbabilities(table, scores, i, ad, utility);
            for (var j = 0; j < n; j++)
            {
                var at = (i * n + j) * m;
                switch (Bid)
                {
                    case BidRule.Logging:
                        for (var mi = 0; mi < m; mi++)
                        {
                            result[at + mi] = ad[j] * table.MultiplierProbabilities[mi];
                        }
                        break;
                    case BidRule.Fixed:
                        result[at + fixedIndex] = ad[j];
                        break;
                    default:
                        var own = Math.Log(scores![i * n + j] * table.Value[i * n + j] * BidScale);
                        var best = 0;
                        for (var mi = 1; mi < m; mi++)
                        {
                            if (Math.Abs(table.LogBid[at + mi] - own) < Math.Abs(table.LogBid[at + best] - own))
                            {
                                best = mi;
                            }
                        }
                        result[at + best] = ad[j];
                        break;
                }
            }
        }
        return result;
    }

    private void AdProbabilities(ActionTable table, double[]? scores, int i, double[] ad, double[] utility)
    {
        var n = table.Candidates;
        switch (Ad)
        {
            case AdRule.Logging:
                Array.Copy(table.LoggingAdProbability, i * n, ad, 0, n);
                return;
            case AdRule.Uniform:
                Array.Fill(ad, 1.0 / n);
                return;
        }
        var top = double.NegativeInfinity;
        var best = 0;
        for (var j = 0; j < n; j++)
        {
            utility[j] = Math.Log(Math.Max(scores![i * n + j], 1e-300) * table.Value[i * n + j]);
            if (utility[j] > top)
            {
                top = utility[j];
                best = j;
            }
        }
        if (Ad == AdRule.Greedy)
        {
            Array.Clear(ad);
            ad[best] = 1;
            return;
        }
        var sum = 0.0;
        for (var j = 0; j < n; j++)
        {
            ad[j] = Math.Exp((utility[j] - top) / Temperature);
            sum += ad[j];
        }
        for (var j = 0; j < n; j++)
        {
            ad[j] /= sum;
        }
    }
}
