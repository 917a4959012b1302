namespace AdAuctionSim.Models.WinPropensity;

/// <summary>
/// A win-propensity model (models.md §14): the win function Ŵ(b | x) = P̂(z &lt; b | x) learned from censored auction
/// logs, and the logging policy's propensity π̂(x) = Σ_m π(m)·Ŵ(b_m | x) derived from it (§14.3). Fit it before the
/// multi-task model and never backpropagate into it (§15.4).
/// </summary>
public interface IWinPropensityModel : IDisposable
{
    /// <summary>Stable id (<c>km</c>, <c>censored-lognormal</c>, <c>classifier</c>).</summary>
    string Id { get; }

    /// <summary>Whether <see cref="Fit"/> has run.</summary>
    bool IsFitted { get; }

    /// <summary>What the last fit found (epochs, validation loss, σ, segment counts, …), for logs and reports.</summary>
    IReadOnlyDictionary<string, double> Diagnostics { get; }

    /// <summary>Fits on logged requests, won and lost (the outcome columns must be filled).</summary>
    void Fit(WinLogData train, CancellationToken cancellation = default);

    /// <summary>Ŵ(b_i | x_i) at the given bids, one per row of <paramref name="rows"/>.</summary>
    double[] WinProbability(WinLogData rows, double[] bids);

    /// <summary>Ŵ(b_i | x_i) at each row's logged bid: the propensity of the realised bid, 1/Ŵ weighting (§14.3).</summary>
    double[] WinProbabilityAtBid(WinLogData rows);

    /// <summary>
    /// π̂(x_i) = Σ_m π(m)·Ŵ(b_m | x_i) with b_m = (bid_i / bid_multiplier_i)·m: the logging policy's win propensity,
    /// an exact finite sum over the discrete multiplier set (models.md §14.3).
    /// </summary>
    double[] WinPropensity(WinLogData rows);

    /// <summary>
    /// Ĉ(b | x_i) = Ê[price·1{win} | x_i, b], the expected payment the win function implies, at each bid vector of
    /// <paramref name="bidSets"/> (one bid per row; result [set][row]). First price: b·Ŵ(b | x). Second price with
    /// reserve r: the price is max(z, r), so Ĉ(b) = b·Ŵ(b) − ∫_r^b Ŵ(p | x) dp for b ≥ r, and 0 below r. What a direct
    /// method needs to value a bid by its surplus (value − payment) rather than by what it buys.
    /// </summary>
    double[][] ExpectedPayment(WinLogData rows, IReadOnlyList<double[]> bidSets);
}
