namespace AdAuctionSim.Simulation.Engine;

/// <summary>Which period a request belongs to; assigned by simulated time, so test follows validation follows train.</summary>
public enum DataSplit : byte
{
    Train = 0,
    Validation = 1,
    Test = 2,
}

/// <summary>
/// A chunk of consecutive bid requests (all of D) as columns (structure of arrays). Filled by the simulator,
/// read by the log writers, which split it into the logged view (impressions, lost bids) and the truth.
/// Per-stage columns are row-major: <c>Q[i * K + k]</c> is request i's true q of stage k (0-based).
/// Per-candidate columns likewise: <c>Candidates[i * N + j]</c>.
/// </summary>
public sealed class RequestBatch
{
    public RequestBatch(int capacity, int depth, int candidates)
    {
        Capacity = capacity;
        Depth = depth;
        CandidateCount = candidates;
        RequestId = new long[capacity];
        Timestamp = new long[capacity];
        Split = new DataSplit[capacity];
        Hour = new int[capacity];
        Site = new int[capacity];
        Slot = new int[capacity];
        User = new int[capacity];
        Age = new int[capacity];
        Gender = new int[capacity];
        Region = new int[capacity];
        Device = new int[capacity];
        Segment = new int[capacity];
        Ad = new int[capacity];
        Campaign = new int[capacity];
        Advertiser = new int[capacity];
        Category = new int[capacity];
        Creative = new int[capacity];
        Candidates = new int[capacity * candidates];
        Action = new int[capacity];
        MultiplierIndex = new int[capacity];
        BidMultiplier = new double[capacity];
        Bid = new double[capacity];
        PscoreAd = new double[capacity];
        PscoreMultiplier = new double[capacity];
        LoggingQ = new double[capacity * depth];
        ValuePerConversion = new double[capacity];
        WinPropensity = new double[capacity];
        WinProbabilityAtBid = new double[capacity];
        Won = new bool[capacity];
        Price = new double[capacity];
        MarketPrice = new double[capacity];
        Q = new double[capacity * depth];
        ExplainedQ = new double[capacity * depth];
        Outcome = new bool[capacity * depth];
        HiddenTrait = new double[capacity];
    }

    public int Capacity { get; }
    /// <summary>Rows filled.</summary>
    public int Count { get; internal set; }
    /// <summary>Funnel depth K.</summary>
    public int Depth { get; }
    /// <summary>Candidate ads per request N.</summary>
    public int CandidateCount { get; }
    /// <summary>Index of this chunk in the run (chunk c holds requests c·capacity … ).</summary>
    public long ChunkIndex { get; internal set; }

    // Observed features (the logged view may read these).
    public long[] RequestId { get; }
    /// <summary>Simulated seconds since the start of the run.</summary>
    public long[] Timestamp { get; }
    public DataSplit[] Split { get; }
    public int[] Hour { get; }
    public int[] Site { get; }
    /// <summary>Ad slot (OBP: position), 0 = top.</summary>
    public int[] Slot { get; }
    public int[] User { get; }
    public int[] Age { get; }
    public int[] Gender { get; }
    public int[] Region { get; }
    public int[] Device { get; }
    public int[] Segment { get; }
    /// <summary>The ad the logging policy chose (OBP: item).</summary>
    public int[] Ad { get; }
    public int[] Campaign { get; }
    public int[] Advertiser { get; }
    public int[] Category { get; }
    public int[] Creative { get; }
    /// <summary>Candidate ad ids, N per request.</summary>
    public int[] Candidates { get; }

    // The logging policy's choices and their probabilities.
    /// <summary>Index of the chosen ad among the candidates (OBP: action).</summary>
    public int[] Action { get; }
    public int[] MultiplierIndex { get; }
    public double[] BidMultiplier { get; }
    public double[] Bid { get; }
    /// <summary>Probability the logging policy chose this candidate.</summary>
    public double[] PscoreAd { get; }
    /// <summary>Probability of the chosen bid multiplier.</summary>
    public double[] PscoreMultiplier { get; }
    /// <summary>The logging model's estimate of each stage's conditional rate (K per request).</summary>
    public double[] LoggingQ { get; }
    public double[] ValuePerConversion { get; }
    /// <summary>True P(win | x) over the bid multipliers and the competitors (logged as the oracle win propensity).</summary>
    public double[] WinPropensity { get; }

    // Auction outcome.
    public bool[] Won { get; }
    /// <summary>Price paid when won (second price: max(market, reserve); first price: the bid); 0 when lost.</summary>
    public double[] Price { get; }

    // Truth (evaluators only).
    /// <summary>True P(win | x, b) at the logged bid.</summary>
    public double[] WinProbabilityAtBid { get; }
    /// <summary>Highest competing bid.</summary>
    public double[] MarketPrice { get; }
    /// <summary>True conditional rate q_k (K per request).</summary>
    public double[] Q { get; }
    /// <summary>
    /// E[q_k | x] on impressions: the true rate averaged over the per-request part of the hidden trait, what the logged
    /// features (user id included) can explain (equal to <see cref="Q"/> when the trait is a pure user trait or has no
    /// weight). Feeds the realised-bias statistics, which read it on impressions only; a lost bid holds its q. Not written.
    /// </summary>
    public double[] ExplainedQ { get; }
    /// <summary>Potential outcome of stage k under do(stage k−1 reached), common random numbers (K per request).</summary>
    public bool[] Outcome { get; }
    public double[] HiddenTrait { get; }

    /// <summary>Observed label "stage k reached" of an impression: won and the potential outcomes of stages 0..k all 1.</summary>
    public bool Reached(int row, int stage)
    {
        if (!Won[row])
        {
            return false;
        }
        var o = row * Depth;
        for (var k = 0; k <= stage; k++)
        {
            if (!Outcome[o + k])
            {
                return false;
            }
        }
        return true;
    }
}
