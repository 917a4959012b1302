namespace AdAuctionSim.Models.WinPropensity;

/// <summary>Options of the win-propensity estimators, with their defaults; one section per estimator.</summary>
public sealed record WinPropensityOptions
{
    /// <summary>Seeds the train/validation split, the batch order and (via torch.manual_seed) the initial weights.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>
    /// Whether the x-aware models also read the standardised log base bid ln(b / m). The base bid is the logging
    /// bidder's own function of x (value · p̂(x)), so it is a legitimate x-only covariate, and it summarises the
    /// user × ad interaction that competitors keying on the request's value respond to (the κ dial), which additive
    /// field effects cannot express.
    /// </summary>
    public bool UseBaseBidCovariate { get; init; } = true;

    public ClassifierWinOptions Classifier { get; init; } = new();
    public KaplanMeierWinOptions KaplanMeier { get; init; } = new();
    public CensoredLognormalWinOptions CensoredLognormal { get; init; } = new();

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        Classifier.Training.Validate("classifier");
        CensoredLognormal.Training.Validate("censoredLognormal");
        if (Classifier.EmbeddingDim < 1 || Classifier.Hidden < 1)
        {
            throw new ArgumentException($"classifier: embeddingDim {Classifier.EmbeddingDim} and hidden {Classifier.Hidden} must be ≥ 1.");
        }
        if (!(CensoredLognormal.L2 >= 0))
        {
            throw new ArgumentException($"censoredLognormal.l2 is {CensoredLognormal.L2}; expected ≥ 0.");
        }
        var km = KaplanMeier;
        if (km.BidBuckets < 0 || km.MinSegmentRows < 1 || km.PseudoWinGrid < 0 || !(km.PseudoWinWeight >= 0))
        {
            throw new ArgumentException(
                $"kaplanMeier: bidBuckets {km.BidBuckets} (≥ 0), minSegmentRows {km.MinSegmentRows} (≥ 1), pseudoWinGrid {km.PseudoWinGrid} (≥ 0), "
                + $"pseudoWinWeight {km.PseudoWinWeight} (≥ 0) out of range.");
        }
    }
}

/// <summary>Mini-batch Adam with early stopping on a held-out share of the training rows (learning rate halved on each epoch without improvement).</summary>
public sealed record WinTrainingOptions
{
    public int MaxEpochs { get; init; } = 30;
    /// <summary>Stop after this many epochs without a better validation loss; the best epoch's weights are kept.</summary>
    public int Patience { get; init; } = 3;
    public int BatchSize { get; init; } = 1024;
    public double LearningRate { get; init; } = 0.01;
    /// <summary>Share of the training rows held out for early stopping.</summary>
    public double ValidationShare { get; init; } = 0.1;

    internal void Validate(string section)
    {
        if (MaxEpochs < 1 || Patience < 1 || BatchSize < 1 || !(LearningRate > 0) || !(ValidationShare > 0 && ValidationShare < 0.5))
        {
            throw new ArgumentException(
                $"{section}.training: maxEpochs {MaxEpochs}, patience {Patience}, batchSize {BatchSize} (≥ 1), learningRate {LearningRate} (> 0), "
                + $"validationShare {ValidationShare} (in (0, 0.5)) out of range.");
        }
    }
}

/// <summary>The direct log-logistic classifier (models.md §14.2 item 1).</summary>
public sealed record ClassifierWinOptions
{
    public int EmbeddingDim { get; init; } = 8;
    /// <summary>Width of the hidden layer of the MLP over the field embeddings that emits m(x) and κ(x).</summary>
    public int Hidden { get; init; } = 32;
    /// <summary>L2 penalty on every parameter (torch Adam weight_decay); user ids repeat only tens of times, so it matters.</summary>
    public double WeightDecay { get; init; } = 1e-3;
    public WinTrainingOptions Training { get; init; } = new() { LearningRate = 0.003 };
}

/// <summary>
/// Kaplan–Meier per segment (models.md §14.2 item 2). A segment is a value of <see cref="SegmentField"/> crossed with
/// a quantile bucket of the log base bid; segments with fewer than <see cref="MinSegmentRows"/> training rows fall back
/// to the bucket alone, then to the global curve.
/// </summary>
public sealed record KaplanMeierWinOptions
{
    /// <summary>Categorical field to segment by (a log column name such as <c>segment</c> or <c>site_id</c>), or null for none.</summary>
    public string? SegmentField { get; init; } = "segment";
    /// <summary>
    /// Equal-count buckets of ln(base bid) to stratify by (0 = none). Within a bucket the base bid is nearly constant
    /// and the multiplier is drawn independently of the competition, so censoring at b = base·m is independent of z
    /// there, which KM assumes; across buckets it is not (competitors bid up the requests we value).
    /// </summary>
    public int BidBuckets { get; init; } = 10;
    public int MinSegmentRows { get; init; } = 1000;
    /// <summary>Log-spaced pseudo-win prices spanning the training bids and prices (BGD smoothing; 0 = off).</summary>
    public int PseudoWinGrid { get; init; } = 32;
    /// <summary>Weight of each pseudo-win in every segment's curve.</summary>
    public double PseudoWinWeight { get; init; } = 0.25;
}

/// <summary>Censored log-normal regression (Wu et al., KDD 2015; models.md §14.2 item 3).</summary>
public sealed record CensoredLognormalWinOptions
{
    /// <summary>Ridge λ on the field coefficients β, in units of rows: the loss is mean NLL + λ‖β‖² / (2N).</summary>
    public double L2 { get; init; } = 10.0;
    public WinTrainingOptions Training { get; init; } = new() { BatchSize = 1024, LearningRate = 0.01 };
}
