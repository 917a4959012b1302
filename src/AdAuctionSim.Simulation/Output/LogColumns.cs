namespace AdAuctionSim.Simulation.Output;

/// <summary>
/// Column names of every product a simulation writes (DESIGN.md §4), in file order. Names follow Open Bandit
/// Pipeline where one applies (action, position, reward, pscore). The lists are the contract of the information
/// barrier: the logged view (impressions, lost bids) must never contain a name for which <see cref="IsTruthOnly"/>
/// holds, and the truth carries no features (join it to the logs by <c>request_id</c>).
/// </summary>
public static class LogColumns
{
    /// <summary>Product file names without extension.</summary>
    public const string ImpressionsProduct = "impressions";
    public const string LostBidsProduct = "lost_bids";
    public const string TruthProduct = "truth";
    public const string AdsProduct = "ads";
    public const string ManifestFile = "manifest.json";

    public const string RequestId = "request_id";
    public const string Split = "split";

    /// <summary>Values of the <c>split</c> column, indexed by <see cref="Engine.DataSplit"/>.</summary>
    public static readonly IReadOnlyList<string> SplitNames = ["train", "validation", "test"];

    /// <summary>Observed context, user and chosen-ad fields (int32 except the first two, which are int64, and split, a string).</summary>
    public static readonly IReadOnlyList<string> Features =
    [
        RequestId, "timestamp", Split, "hour", "site_id", "position", "user_id", "age", "gender", "region", "device",
        "segment", "ad_id", "campaign_id", "advertiser_id", "category", "creative", "action",
    ];

    /// <summary>Prefix of the candidate ad columns <c>candidate_0 … candidate_{N−1}</c> (int32 ad ids).</summary>
    public const string CandidatePrefix = "candidate_";

    /// <summary>The logging policy's bid and propensities (double), logged in both impressions and lost bids.</summary>
    public static readonly IReadOnlyList<string> Policy = ["bid_multiplier", "bid", "pscore", "pscore_ad", "pscore_multiplier"];

    /// <summary>Prefix of the logging model's per-stage estimates <c>logging_&lt;stage&gt;</c> (double).</summary>
    public const string LoggingPrefix = "logging_";

    /// <summary>Logged after the per-stage estimates (double): the campaign's value and the oracle win propensity P(win | x).</summary>
    public static readonly IReadOnlyList<string> PolicyTail = ["value_per_conversion", "win_propensity"];

    /// <summary>
    /// Prefix of the oracle reach propensities <c>propensity_&lt;stage&gt;</c> (double, impressions only, every stage but the
    /// last): the true probability r_k(x) = q_1(x)·…·q_k(x) that an impression reaches stage k. Like
    /// <c>win_propensity</c>, an oracle propensity of the kind a known logging mechanism or a randomised experiment
    /// provides; models never read it as a feature, and IPS/DR models use it only when a run asks for the true click
    /// propensities (<c>training.clickPropensity = "oracle"</c>), so that propensity-estimation error and method error
    /// can be told apart.
    /// </summary>
    public const string PropensityPrefix = "propensity_";

    /// <summary>Price paid by a won auction (double, impressions only).</summary>
    public const string Price = "price";
    /// <summary>The final stage's label (int32 0/1, impressions only); each stage's cumulative label is a column named after the stage.</summary>
    public const string Reward = "reward";
    /// <summary>Censoring indicator of the lost bids (bool, always true).</summary>
    public const string Lost = "lost";

    /// <summary>Truth prefixes: true conditional rate <c>q_&lt;stage&gt;</c> and potential outcome <c>y_&lt;stage&gt;</c>.</summary>
    public const string TruePrefix = "q_";
    public const string OutcomePrefix = "y_";

    /// <summary>Truth columns after the per-stage ones (double).</summary>
    public static readonly IReadOnlyList<string> TruthTail = ["win_prob", "win_prob_at_bid", "market_price", "hidden_trait"];

    /// <summary>Names and prefixes that only the truth may contain: what a real advertiser never observes.</summary>
    public static readonly IReadOnlyList<string> TruthOnly = ["won", "win_prob", "win_prob_at_bid", "market_price", "hidden_trait"];
    public static readonly IReadOnlyList<string> TruthOnlyPrefixes = [TruePrefix, OutcomePrefix];

    /// <summary>The ad catalogue (the advertiser knows its own ads): int32 ids and fields, then value_per_conversion (double).</summary>
    public static readonly IReadOnlyList<string> Ads = ["ad_id", "campaign_id", "advertiser_id", "category", "creative", "value_per_conversion"];

    /// <summary>
    /// Why a funnel stage may not take this name (its label column would clash with a fixed column or look like a
    /// truth column), or null when the name is free.
    /// </summary>
    public static string? CollidesWithColumn(string stage)
    {
        string[] fixedColumns = [.. Features, .. Policy, .. PolicyTail, .. TruthOnly, .. TruthTail, .. Ads, Price, Reward, Lost];
        if (fixedColumns.Contains(stage, StringComparer.Ordinal))
        {
            return $"the logs already have a column named \"{stage}\"";
        }
        foreach (var prefix in (string[])[CandidatePrefix, LoggingPrefix, PropensityPrefix, TruePrefix, OutcomePrefix])
        {
            if (stage.StartsWith(prefix, StringComparison.Ordinal))
            {
                return $"names starting with \"{prefix}\" are used by other columns";
            }
        }
        return null;
    }

    /// <summary>Whether a column holds ground truth that the logged view must never contain.</summary>
    public static bool IsTruthOnly(string column) =>
        TruthOnly.Contains(column, StringComparer.Ordinal)
        || TruthOnlyPrefixes.Any(p => column.StartsWith(p, StringComparison.Ordinal));

    /// <summary>Columns shared by impressions and lost bids.</summary>
    public static IReadOnlyList<string> Logged(IReadOnlyList<string> stages, int candidates)
    {
        var names = new List<string>(Features);
        for (var j = 0; j < candidates; j++)
        {
            names.Add(CandidatePrefix + j.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        names.AddRange(Policy);
        names.AddRange(stages.Select(s => LoggingPrefix + s));
        names.AddRange(PolicyTail);
        return names;
    }

    /// <summary>The oracle reach-propensity columns <c>propensity_&lt;stage&gt;</c> of every stage but the last.</summary>
    public static IReadOnlyList<string> ReachPropensities(IReadOnlyList<string> stages) =>
        [.. stages.Take(stages.Count - 1).Select(s => PropensityPrefix + s)];

    /// <summary>Columns of <c>impressions</c> (rows of O).</summary>
    public static IReadOnlyList<string> Impressions(IReadOnlyList<string> stages, int candidates) =>
        [.. Logged(stages, candidates), Price, .. stages, Reward, .. ReachPropensities(stages)];

    /// <summary>Columns of <c>lost_bids</c> (rows of D∖O).</summary>
    public static IReadOnlyList<string> LostBids(IReadOnlyList<string> stages, int candidates) =>
        [.. Logged(stages, candidates), Lost];

    /// <summary>Columns of <c>truth</c> (rows of D).</summary>
    public static IReadOnlyList<string> Truth(IReadOnlyList<string> stages) =>
        [RequestId, Split, "won", .. stages.Select(s => TruePrefix + s), .. stages.Select(s => OutcomePrefix + s), .. TruthTail];
}
