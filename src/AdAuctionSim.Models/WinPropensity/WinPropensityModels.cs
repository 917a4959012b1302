namespace AdAuctionSim.Models.WinPropensity;

/// <summary>
/// The win-propensity estimators of models.md §14.2 by id. For IPW-ESCM² (§15): fit one on all logged requests of
/// the training period (impressions and lost bids), then take <see cref="IWinPropensityModel.WinPropensity"/> (π̂(x),
/// default) or <see cref="IWinPropensityModel.WinProbabilityAtBid"/> (Ŵ(b_i | x_i)) for the impressions, floored at ε_w.
/// </summary>
public static class WinPropensityModels
{
    public const string KaplanMeier = "km";
    public const string CensoredLognormal = "censored-lognormal";
    public const string Classifier = "classifier";

    /// <summary>Every id <see cref="Create"/> accepts.</summary>
    public static IReadOnlyList<string> Ids { get; } = [KaplanMeier, CensoredLognormal, Classifier];

    /// <summary>
    /// Why the win model <paramref name="id"/> cannot be fitted on first-price logs (for a message that goes on to name the
    /// field and the auction), or null when it can: only Kaplan–Meier needs the prices that second-price wins reveal.
    /// </summary>
    public static string? FirstPriceProblem(string id) =>
        id == KaplanMeier ? "needs a second-price auction, whose won bids reveal the market price" : null;

    /// <summary>An unfitted estimator.</summary>
    /// <exception cref="ArgumentException">An unknown id (the message lists the known ones) or invalid options.</exception>
    public static IWinPropensityModel Create(string id, WinPropensityOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(id);
        options ??= new WinPropensityOptions();
        options.Validate();
        return id switch
        {
            KaplanMeier => new KaplanMeierWinModel(options.KaplanMeier),
            CensoredLognormal => new CensoredLognormalWinModel(options),
            Classifier => new LogLogisticWinClassifier(options),
            _ => throw new ArgumentException($"Unknown win-propensity model '{id}'. Known: {string.Join(", ", Ids)}.", nameof(id)),
        };
    }

    /// <summary>
    /// Out-of-fold π̂(x_i) and Ŵ(b_i | x_i) for every row of <paramref name="data"/>: the rows are split into
    /// <paramref name="folds"/> seeded random folds, and each fold is scored by a model fitted on the others. Use it
    /// for the propensities of the rows a model was fitted on (IPW training weights): an in-sample π̂ of a flexible
    /// model (per-user embeddings) leans towards each row's own outcome, higher on the won rows, which shrinks their
    /// inverse weights.
    /// </summary>
    public static (double[] Propensity, double[] AtBid) CrossFit(string id, WinLogData data, int folds = 2,
        WinPropensityOptions? options = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfLessThan(folds, 2);
        options ??= new WinPropensityOptions();
        var fold = new int[data.Count];
        for (var i = 0; i < fold.Length; i++)
        {
            fold[i] = i % folds;
        }
        new Random(options.Seed).Shuffle(fold);
        var propensity = new double[data.Count];
        var atBid = new double[data.Count];
        for (var k = 0; k < folds; k++)
        {
            var train = new List<int>();
            var held = new List<int>();
            for (var i = 0; i < fold.Length; i++)
            {
                (fold[i] == k ? held : train).Add(i);
            }
            using var model = Create(id, options);
            model.Fit(data.Select(train), cancellation);
            var rows = data.Select(held);
            var pi = model.WinPropensity(rows);
            var w = model.WinProbabilityAtBid(rows);
            for (var j = 0; j < held.Count; j++)
            {
                propensity[held[j]] = pi[j];
                atBid[held[j]] = w[j];
            }
        }
        return (propensity, atBid);
    }
}
