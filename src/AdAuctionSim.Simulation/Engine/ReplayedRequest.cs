namespace AdAuctionSim.Simulation.Engine;

/// <summary>
/// One bid request replayed for off-policy evaluation (<see cref="RequestKernel.Replay"/>): what every candidate ad
/// would mean if shown, with the request's common random numbers. Reused across requests by one thread.
/// </summary>
internal sealed class ReplayedRequest(int candidates, int depth, int competitors)
{
    public long RequestId { get; set; }
    public ulong RequestBase { get; set; }
    /// <summary>The logging policy's chosen candidate index and multiplier index (as logged).</summary>
    public int Action { get; set; }
    public int Multiplier { get; set; }
    public int[] Candidates { get; } = new int[candidates];
    /// <summary>Logging policy's probability of each candidate.</summary>
    public double[] AdProbability { get; } = new double[candidates];
    /// <summary>Logging model's estimated r_K of each candidate (slot examination included), and ln(value · estimate).</summary>
    public double[] LoggingRate { get; } = new double[candidates];
    public double[] LogBidBase { get; } = new double[candidates];
    /// <summary>True stage scores, [candidate × K].</summary>
    public float[] Scores { get; } = new float[candidates * depth];
    /// <summary>True conditional rates q_k, [candidate × K], and their product r_K.</summary>
    public double[] Q { get; } = new double[candidates * depth];
    public double[] TrueRate { get; } = new double[candidates];
    /// <summary>Competitors' value shift κ·v(x) with each candidate shown.</summary>
    public double[] Shift { get; } = new double[candidates];
    /// <summary>σ·ε_j of each competitor: competitor j bids exp(μ_j + shift + noise_j).</summary>
    public double[] CompetitorNoise { get; } = new double[competitors];
    /// <summary>Uniform of each stage's potential outcome: stage k happens when u_k &lt; q_k of the shown ad.</summary>
    public double[] OutcomeUniform { get; } = new double[depth];
}
