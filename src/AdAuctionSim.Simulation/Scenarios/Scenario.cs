namespace AdAuctionSim.Simulation.Scenarios;

/// <summary>
/// A fully resolved scenario: every field has a value (defaults filled in), validated before any work starts.
/// Bound from a JSON scenario file by <see cref="ScenarioLoader"/> and written back, resolved, into every manifest.
/// </summary>
public sealed record Scenario
{
    public string Name { get; init; } = "scenario";
    public string Description { get; init; } = "";
    /// <summary>World and traffic seed. The same scenario and seed give byte-identical output.</summary>
    public long Seed { get; init; } = 1;
    public TrafficOptions Traffic { get; init; } = new();
    public FunnelOptions Funnel { get; init; } = new();
    public BiasOptions Bias { get; init; } = new();
    public AuctionOptions Auction { get; init; } = new();
    public LoggingPolicyOptions LoggingPolicy { get; init; } = new();
    public ValueOptions Values { get; init; } = new();
    public SplitOptions Split { get; init; } = new();

    /// <summary>Funnel depth K (number of stages, click included).</summary>
    public int Depth => Funnel.Stages.Count;
}

/// <summary>Traffic: how many requests, who sends them, which ads compete for them, and when they arrive.</summary>
public sealed record TrafficOptions
{
    public long Requests { get; init; } = 1_000_000;
    /// <summary>Simulated days the requests are spread over (hour-of-day intensity within each day).</summary>
    public double Days { get; init; } = 7;
    public int Users { get; init; } = 100_000;
    /// <summary>Zipf exponent of user popularity (0 = uniform).</summary>
    public double UserZipf { get; init; } = 1.05;
    public int Advertisers { get; init; } = 40;
    public int CampaignsPerAdvertiser { get; init; } = 5;
    public int AdsPerCampaign { get; init; } = 8;
    /// <summary>Candidate ads the logging policy chooses among for each request.</summary>
    public int CandidateAds { get; init; } = 5;
    public int Sites { get; init; } = 300;
    public double SiteZipf { get; init; } = 1.0;
    public int Slots { get; init; } = 4;
    /// <summary>Relative traffic intensity for each hour of the day (24 non-negative numbers).</summary>
    public IReadOnlyList<double> HourProfile { get; init; } = DefaultHourProfile;

    public int Ads => Advertisers * CampaignsPerAdvertiser * AdsPerCampaign;
    public int Campaigns => Advertisers * CampaignsPerAdvertiser;

    /// <summary>A diurnal curve: quiet at night, a morning rise, an evening peak.</summary>
    public static readonly IReadOnlyList<double> DefaultHourProfile =
    [
        0.35, 0.25, 0.18, 0.15, 0.15, 0.2, 0.35, 0.6, 0.8, 0.9, 0.95, 1.0,
        1.0, 0.95, 0.9, 0.9, 0.95, 1.05, 1.2, 1.35, 1.4, 1.25, 0.9, 0.55,
    ];
}

/// <summary>One funnel stage: its name (a column name in the logs) and its target mean rate.</summary>
public sealed record StageOptions(string Name, double Rate);

/// <summary>The conversion funnel: stage 1 is the click; each later stage is conditional on the one before.</summary>
public sealed record FunnelOptions
{
    /// <summary>
    /// Stages in funnel order. Rate k is the target mean of the true conditional rate q_k over the requests of D
    /// that reach stage k−1 (for the click: over all of D), as if every request had been shown.
    /// </summary>
    public IReadOnlyList<StageOptions> Stages { get; init; } =
        [new("click", 0.04), new("authorize", 0.3), new("convert", 0.4)];
    /// <summary>Standard deviation of the feature-driven part of every stage logit: how predictable the stages are.</summary>
    public double Signal { get; init; } = 0.8;
}

/// <summary>The bias dials (DESIGN.md §3). Every dial 0 means no selection bias of that kind.</summary>
public sealed record BiasOptions
{
    /// <summary>ρ in [0, 1]: correlation of the feature-driven logits of any two stages.</summary>
    public double ClickCvrCorrelation { get; init; } = 0.3;
    /// <summary>γ ≥ 0: weight of the hidden user trait in every stage logit (missing not at random).</summary>
    public double HiddenConfounding { get; init; } = 0.3;
    /// <summary>
    /// s in [0, 1]: share of the hidden trait's variance drawn afresh for every request, h = √(1 − s)·h_u + √s·ε_request
    /// (0: a user trait, which a user-id embedding can learn for frequent users; 1: a per-request trait that no feature
    /// can explain, missing not at random for every model).
    /// </summary>
    public double HiddenPerRequest { get; init; }
    /// <summary>κ: how strongly competitors' bids follow the request's true value (log-price units per sd).</summary>
    public double WinValueCorrelation { get; init; } = 0.5;
    /// <summary>η ≥ 0: examination probability of slot j (0-based) is (1 + j)^−η, multiplying the click probability.</summary>
    public double PositionEffect { get; init; } = 0.5;
}

/// <summary>Auction type and the competing bidders.</summary>
public sealed record AuctionOptions
{
    public AuctionType Type { get; init; } = AuctionType.SecondPrice;
    public int Competitors { get; init; } = 4;
    /// <summary>Standard deviation of the competitors' mean log bids around each other.</summary>
    public double CompetitorSpread { get; init; } = 0.3;
    /// <summary>Standard deviation σ of each competitor's log bid noise.</summary>
    public double CompetitorNoise { get; init; } = 1.0;
    /// <summary>Competitors' bid level is solved so that the mean true P(win | x) over D equals this.</summary>
    public double TargetWinRate { get; init; } = 0.3;
    /// <summary>Reserve price in currency units (0 = none). A bid below it never wins.</summary>
    public double ReservePrice { get; init; }
}

public enum AuctionType
{
    SecondPrice,
    FirstPrice,
}

/// <summary>The advertiser's logging policy: which candidate ad it bids with and how much.</summary>
public sealed record LoggingPolicyOptions
{
    /// <summary>Correlation in [0, 1] between the logging model's stage logits and the true ones (0 = uninformative).</summary>
    public double EstimateQuality { get; init; } = 0.7;
    /// <summary>Softmax temperature over the candidate ads' log expected values (small = greedy).</summary>
    public double Temperature { get; init; } = 1.0;
    /// <summary>
    /// Bid multipliers and their probabilities. The default includes an exploration bid (8×) so that every request
    /// has a usable chance of winning: inverse-win-propensity weights need it.
    /// </summary>
    public IReadOnlyList<double> BidMultipliers { get; init; } = [0.5, 1.0, 2.0, 8.0];
    public IReadOnlyList<double> MultiplierProbabilities { get; init; } = [0.25, 0.4, 0.25, 0.1];
}

/// <summary>Value per conversion (final stage) of each campaign: log-normal around the mean.</summary>
public sealed record ValueOptions
{
    public double MeanValuePerConversion { get; init; } = 40;
    /// <summary>Standard deviation of log value across campaigns.</summary>
    public double ValueSpread { get; init; } = 0.5;
}

/// <summary>Train / validation / test proportions, assigned by simulated time (test follows training).</summary>
public sealed record SplitOptions
{
    public double Train { get; init; } = 0.7;
    public double Validation { get; init; } = 0.15;
    public double Test { get; init; } = 0.15;
}
