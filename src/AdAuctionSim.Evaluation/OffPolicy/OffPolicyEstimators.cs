using System.Globalization;
using AdAuctionSim.Evaluation.Statistics;

namespace AdAuctionSim.Evaluation.OffPolicy;

/// <summary>Ids of the off-policy estimators, in report order.</summary>
public static class EstimatorIds
{
    public const string Dm = "dm";
    public const string Ips = "ips";
    public const string ClippedIps = "clipped-ips";
    public const string Snips = "snips";
    public const string Dr = "dr";
    public const string Sndr = "sndr";
    public const string SwitchDr = "switch-dr";

    public static IReadOnlyList<string> All { get; } = [Dm, Ips, ClippedIps, Snips, Dr, Sndr, SwitchDr];

    /// <summary>Estimators that weight rounds by π_e / π_log (what the weight diagnostics and the support warning concern).</summary>
    public static IReadOnlyList<string> Weighted { get; } = [Ips, ClippedIps, Snips, Dr, Sndr, SwitchDr];
}

/// <summary>Options of the estimators and their intervals (defaults as the <c>ope</c> scenario section's).</summary>
public sealed record EstimatorOptions
{
    /// <summary>λ of clipped IPS: importance weights above it count as λ.</summary>
    public double ClipThreshold { get; init; } = 100;

    /// <summary>τ of Switch-DR: rounds whose weight exceeds it keep only the DM term.</summary>
    public double SwitchThreshold { get; init; } = 100;

    /// <summary>Poisson-bootstrap resamples of each interval (0: no interval).</summary>
    public int BootstrapResamples { get; init; } = 200;

    /// <summary>Seed of the resampling weights (with the request id and the resample index).</summary>
    public long BootstrapSeed { get; init; } = 1;

    /// <summary>ESS below this share of the rounds triggers a warning.</summary>
    public double MinEssShare { get; init; } = 0.01;

    /// <summary>A single round holding more than this share of the total importance weight triggers a warning.</summary>
    public double MaxWeightShare { get; init; } = 0.05;

    /// <summary>Target-policy mass on actions the logging policy never takes above this share triggers the support warning.</summary>
    public double MaxUnsupportedShare { get; init; } = 1e-3;

    /// <summary>
    /// Fewer matched rounds (weight &gt; 0) with a nonzero reward than this trigger the rewarded-rounds warning: IPS,
    /// clipped IPS and SNIPS are sums over those rounds alone, so a handful of them (or none) decides the estimate.
    /// </summary>
    public int MinRewardedRounds { get; init; } = 10;
}

/// <summary>
/// One estimate of a policy's value with its 95% interval: the percentile bootstrap interval, or, when no matched round
/// has a nonzero reward, the rule-of-three interval of <see cref="OffPolicyEstimators.NoRewardInterval"/> (IPS, clipped
/// IPS, SNIPS) or the bootstrap interval widened by it (DR-type). NaN without resamples, or when that bound is undefined.
/// </summary>
public sealed record PolicyEstimate(string Estimator, double Value, double Low, double High);

/// <summary>
/// How far the logged data can be trusted for a target policy: importance weights w_i = π_e(a_i | x_i) / π_log(a_i | x_i)
/// and the support of the target policy.
/// </summary>
/// <param name="Rounds">Rounds n.</param>
/// <param name="EffectiveSampleSize">Kish's ESS (Σw)² / Σw² of the importance weights.</param>
/// <param name="MeanWeight">Mean weight (1 in expectation when the target has full support).</param>
/// <param name="MaxWeight">Largest weight.</param>
/// <param name="MaxWeightShare">Largest weight ÷ sum of weights.</param>
/// <param name="UnsupportedShare">Σ_i Σ_a π_e(a | x_i)·1[π_log(a | x_i) = 0] / n: the target's mass no logged round can ever stand for.</param>
/// <param name="ClippedShare">Share of rounds whose weight exceeds the clipping threshold λ.</param>
/// <param name="SwitchedShare">Share of rounds whose weight exceeds the Switch-DR threshold τ.</param>
/// <param name="MatchedRounds">Rounds whose logged action the target policy can take (weight &gt; 0).</param>
/// <param name="RewardedRounds">Matched rounds with a nonzero reward: the only rounds IPS, clipped IPS and SNIPS add up.</param>
/// <param name="MaxPossibleWeight">max over rounds i and actions a with π_log(a | x_i) &gt; 0 of π_e(a | x_i) / π_log(a | x_i): the
/// largest weight any round could have carried, whatever action was logged (at least <paramref name="MaxWeight"/>).</param>
/// <param name="Warnings">Why an estimate should not be trusted, one sentence each (empty when none).</param>
public sealed record EstimateDiagnostics(
    int Rounds,
    double EffectiveSampleSize,
    double MeanWeight,
    double MaxWeight,
    double MaxWeightShare,
    double UnsupportedShare,
    double ClippedShare,
    double SwitchedShare,
    int MatchedRounds,
    int RewardedRounds,
    double MaxPossibleWeight,
    IReadOnlyList<string> Warnings)
{
    public double EssShare => Rounds == 0 ? double.NaN : EffectiveSampleSize / Rounds;
}

/// <summary>Every estimator's value of one target policy on one log, and the diagnostics of its weights.</summary>
public sealed record OffPolicyResult(IReadOnlyList<PolicyEstimate> Estimates, EstimateDiagnostics Diagnostics)
{
    public PolicyEstimate this[string estimator] => Estimates.First(e => e.Estimator == estimator);
}

/// <summary>
/// The off-policy estimators of Open Bandit Pipeline over plain arrays (DESIGN.md §6): DM, IPS, clipped IPS, SNIPS, DR,
/// self-normalised DR and Switch-DR, with Poisson-bootstrap intervals and weight diagnostics.
/// </summary>
/// <remarks>
/// With w_i = π_e(a_i | x_i) / π_log(a_i | x_i), q̂ the reward model and q̂_π(x) = Σ_a π_e(a | x)·q̂(x, a):
/// <list type="bullet">
/// <item>DM = mean q̂_π(x_i) (Beygelzimer &amp; Langford 2009; biased as far as q̂ is).</item>
/// <item>IPS = mean w_i·r_i (Horvitz &amp; Thompson 1952; Precup et al. 2000): unbiased when π_log &gt; 0 wherever π_e &gt; 0.</item>
/// <item>Clipped IPS = mean min(w_i, λ)·r_i (Strehl et al. 2010; Su et al. 2020): lower variance, biased downwards.</item>
/// <item>SNIPS = Σ w_i·r_i / Σ w_i (Swaminathan &amp; Joachims 2015, "The self-normalized estimator for counterfactual
/// learning"): consistent, bounded by the reward range.</item>
/// <item>DR = mean [q̂_π(x_i) + w_i·(r_i − q̂(x_i, a_i))] (Dudík, Langford &amp; Li 2011, "Doubly robust policy evaluation and
/// learning"): unbiased when the propensities are right, whatever q̂; with the true reward function its correction term
/// has mean 0 and it keeps only the noise of the observed rewards.</item>
/// <item>SNDR = mean q̂_π(x_i) + Σ w_i·(r_i − q̂(x_i, a_i)) / Σ w_i (self-normalised DR, as OBP's
/// <c>SelfNormalizedDoublyRobust</c>).</item>
/// <item>Switch-DR = mean [q̂_π(x_i) + 1[w_i ≤ τ]·w_i·(r_i − q̂(x_i, a_i))] (Wang, Agarwal &amp; Dudík 2017, "Optimal and
/// adaptive off-policy evaluation in contextual bandits"; the form of OBP's <c>SwitchDoublyRobust</c>).</item>
/// </list>
/// Names and definitions follow Open Bandit Pipeline (Saito, Aihara, Matsutani &amp; Narita 2021, "Open Bandit Dataset and
/// Pipeline: Towards realistic and reproducible off-policy evaluation"), so that the exported bandit feedback
/// (<c>adsim export-obp</c>) gives the same figures there. The intervals are percentile intervals of the Poisson bootstrap
/// (<see cref="PoissonBootstrap"/>): round i counts Poisson(1) times in each resample, keyed by its request id, so every
/// estimator and every policy sees the same resamples. When no matched round has a nonzero reward, IPS, clipped IPS and
/// SNIPS are 0 in every resample; their interval is then the rule-of-three bound of <see cref="NoRewardInterval"/>
/// instead of a zero-width [0, 0], the DR-type intervals are widened by it, and the diagnostics warn (as they do when fewer than
/// <see cref="EstimatorOptions.MinRewardedRounds"/> matched rounds are rewarded).
/// </remarks>
public static class OffPolicyEstimators
{
    /// <summary>Every estimator's value, interval and the diagnostics for one target policy.</summary>
    public static OffPolicyResult Estimate(BanditFeedback data, EstimatorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        options ??= new EstimatorOptions();
        data.Validate();
        var rounds = Precompute(data);
        var point = new Sums();
        for (var i = 0; i < rounds.Length; i++)
        {
            point.Add(1, rounds[i], options);
        }
        var values = point.Values();
        var resamples = options.BootstrapResamples;
        var figures = new double[values.Length][];
        for (var e = 0; e < figures.Length; e++)
        {
            figures[e] = new double[resamples];
        }
        for (var r = 0; r < resamples; r++)
        {
            var sums = new Sums();
            for (var i = 0; i < rounds.Length; i++)
            {
                var c = PoissonBootstrap.Weight(options.BootstrapSeed, data.RequestId[i], r);
                if (c != 0)
                {
                    sums.Add(c, rounds[i], options);
                }
            }
            var v = sums.Values();
            for (var e = 0; e < v.Length; e++)
            {
                figures[e][r] = v[e];
            }
        }
        var diagnostics = Diagnose(data, rounds, options);
        (double Low, double High) unseen = resamples > 0 && diagnostics.RewardedRounds == 0 ? NoRewardInterval(data, diagnostics) : (double.NaN, double.NaN);
        var estimates = new PolicyEstimate[values.Length];
        for (var e = 0; e < values.Length; e++)
        {
            var (low, high) = resamples > 0 ? PoissonBootstrap.Percentile(figures[e]) : (double.NaN, double.NaN);
            if (resamples > 0 && diagnostics.RewardedRounds == 0 && !double.IsNaN(values[e]))
            {
                (low, high) = EstimatorIds.All[e] switch
                {
                    EstimatorIds.Dm => (low, high),
                    // Every resample of a sum of zeros is 0: the percentile interval [0, 0] would claim certainty it does not have.
                    EstimatorIds.Ips or EstimatorIds.ClippedIps or EstimatorIds.Snips => unseen,
                    // The bootstrap sees the reward model's part only; the unseen rewards could add up to U (÷ mean weight for SNDR).
                    EstimatorIds.Dr or EstimatorIds.SwitchDr => (low + unseen.Low, high + unseen.High),
                    EstimatorIds.Sndr => diagnostics.MeanWeight > 0
                        ? (low + unseen.Low / diagnostics.MeanWeight, high + unseen.High / diagnostics.MeanWeight)
                        : (double.NaN, double.NaN),
                    _ => throw new InvalidOperationException($"no interval rule for estimator {EstimatorIds.All[e]}"),
                };
            }
            estimates[e] = new PolicyEstimate(EstimatorIds.All[e], values[e], low, high);
        }
        return new OffPolicyResult(estimates, diagnostics);
    }

    /// <summary>
    /// The 95% interval of IPS, clipped IPS and SNIPS when no matched round has a nonzero reward: [0, U] with
    /// U = (1 − 0.05^(1/n))·w_max·r_max ≈ 3·w_max·r_max / n. The DR-type estimators' bootstrap intervals, which then
    /// see only the reward model's terms, are widened by it: DR's and Switch-DR's upper end by U (Switch-DR's reward term
    /// is a part of IPS's), SNDR's by U ÷ the mean weight (and the lower ends by the lower end, 0 unless rewards can be
    /// negative).
    /// </summary>
    /// <remarks>
    /// IPS averages Z_i = w_i·r_i, whose mean is V(π) (under support) and which lies in [0, w_max·r_max]: w_max is
    /// <see cref="EstimateDiagnostics.MaxPossibleWeight"/>, the largest weight any round could carry, and r_max is
    /// <see cref="BanditFeedback.MaxReward"/> (the largest logged reward when that is not given). All n observed Z_i are
    /// 0, so by the rule of three (Hanley &amp; Lippman-Hand 1983, "If nothing goes wrong, is everything all right?"; here
    /// the exact binomial bound 1 − 0.05^(1/n)) the share of rounds with Z &gt; 0 is at most about 3/n with 95% confidence,
    /// and V(π) = E[Z] ≤ that share × w_max·r_max. Equivalently: of the m matched rounds at most about 3/m could have
    /// been rewarded, and the matched rounds are about m/n of the log. V(π) ≥ 0 holds surely, so [0, U] is a 95% interval;
    /// when rewards can be negative (no <see cref="BanditFeedback.MaxReward"/> and a negative logged reward) it is
    /// [−U, U]. Undefined (NaN) when there are no rounds or no reward bound (every logged reward 0): then nothing in the
    /// log says how large the value could be. The bound is conservative; the rewarded-rounds warning says why.
    /// </remarks>
    public static (double Low, double High) NoRewardInterval(BanditFeedback data, EstimateDiagnostics diagnostics)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(diagnostics);
        var n = diagnostics.Rounds;
        double bound = 0;
        var negative = false;
        if (data.MaxReward is { } max)
        {
            bound = max;
        }
        else
        {
            foreach (var r in data.Reward)
            {
                bound = Math.Max(bound, Math.Abs(r));
                negative |= r < 0;
            }
        }
        if (n == 0 || !(bound > 0) || !double.IsFinite(bound))
        {
            return (double.NaN, double.NaN);
        }
        var share = 1 - Math.Pow(0.05, 1.0 / n);
        // Without any supported action the target has no weight anywhere: V(π) is invisible to IPS, not 0 (support warning).
        var weight = diagnostics.MaxPossibleWeight;
        if (!(weight > 0))
        {
            return (double.NaN, double.NaN);
        }
        var high = share * weight * bound;
        return (negative ? -high : 0, high);
    }

    /// <summary>The self-normalised weights w_i / Σ w of SNIPS (they sum to 1 when any weight is positive).</summary>
    public static double[] NormalisedWeights(BanditFeedback data)
    {
        ArgumentNullException.ThrowIfNull(data);
        data.Validate();
        var rounds = Precompute(data);
        var sum = 0.0;
        foreach (var r in rounds)
        {
            sum += r.Weight;
        }
        var result = new double[rounds.Length];
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = sum > 0 ? rounds[i].Weight / sum : 0;
        }
        return result;
    }

    /// <summary>Per-round quantities every estimator is a ratio of sums of.</summary>
    private readonly record struct Round(double Weight, double Reward, double DirectValue, double FactualModel);

    private static Round[] Precompute(BanditFeedback data)
    {
        var a = data.Actions;
        var rounds = new Round[data.Rounds];
        for (var i = 0; i < rounds.Length; i++)
        {
            var target = data.Target.AsSpan(i * a, a);
            var model = data.RewardModel.AsSpan(i * a, a);
            var dm = 0.0;
            for (var j = 0; j < a; j++)
            {
                dm += target[j] * model[j];
            }
            var action = data.Action[i];
            rounds[i] = new Round(target[action] / data.Pscore[i], data.Reward[i], dm, model[action]);
        }
        return rounds;
    }

    /// <summary>Weighted sums (multiplicity c per round) from which every estimator is formed.</summary>
    private struct Sums
    {
        private double _count, _direct, _weightedReward, _clippedReward, _weight, _residual, _switchedResidual;

        public void Add(int c, in Round r, EstimatorOptions options)
        {
            var residual = r.Weight * (r.Reward - r.FactualModel);
            _count += c;
            _direct += c * r.DirectValue;
            _weightedReward += c * r.Weight * r.Reward;
            _clippedReward += c * Math.Min(r.Weight, options.ClipThreshold) * r.Reward;
            _weight += c * r.Weight;
            _residual += c * residual;
            if (r.Weight <= options.SwitchThreshold)
            {
                _switchedResidual += c * residual;
            }
        }

        /// <summary>Values in <see cref="EstimatorIds.All"/> order.</summary>
        public readonly double[] Values()
        {
            var n = _count;
            var dm = _direct / n;
            return
            [
                dm,
                _weightedReward / n,
                _clippedReward / n,
                _weight > 0 ? _weightedReward / _weight : double.NaN,
                (_direct + _residual) / n,
                _weight > 0 ? dm + _residual / _weight : double.NaN,
                (_direct + _switchedResidual) / n,
            ];
        }
    }

    private static EstimateDiagnostics Diagnose(BanditFeedback data, Round[] rounds, EstimatorOptions options)
    {
        var n = rounds.Length;
        double sum = 0, sumSq = 0, max = 0;
        int clipped = 0, switched = 0, matched = 0, rewarded = 0, events = 0;
        for (var i = 0; i < n; i++)
        {
            var r = rounds[i];
            sum += r.Weight;
            sumSq += r.Weight * r.Weight;
            max = Math.Max(max, r.Weight);
            clipped += r.Weight > options.ClipThreshold ? 1 : 0;
            switched += r.Weight > options.SwitchThreshold ? 1 : 0;
            if (r.Weight > 0)
            {
                matched++;
                rewarded += r.Reward != 0 ? 1 : 0;
                events += data.Events is { } e && e[i] ? 1 : 0;
            }
        }
        var a = data.Actions;
        var unsupported = 0.0;
        var possible = 0.0;
        for (var i = 0; i < n; i++)
        {
            for (var j = 0; j < a; j++)
            {
                var logging = data.Logging[i * a + j];
                if (logging <= 0)
                {
                    unsupported += data.Target[i * a + j];
                }
                else
                {
                    possible = Math.Max(possible, data.Target[i * a + j] / logging);
                }
            }
        }
        unsupported = n == 0 ? 0 : unsupported / n;
        var ess = sumSq > 0 ? sum * sum / sumSq : 0;
        var maxShare = sum > 0 ? max / sum : double.NaN;
        var warnings = new List<string>();
        var weighted = string.Join(", ", EstimatorIds.Weighted);
        if (unsupported > options.MaxUnsupportedShare)
        {
            warnings.Add(Fmt($"support: {unsupported:P2} of the target policy's mass is on actions the logging policy never takes; {weighted} cannot see that mass (IPS and DR are biased by it); only DM extrapolates to it, through its reward model"));
        }
        if (n > 0 && ess < options.MinEssShare * n)
        {
            warnings.Add(Fmt($"effective sample size {ess:F1} is {ess / n:P2} of {n} rounds (below {options.MinEssShare:P0}): the weighted estimates rest on a few rounds and their intervals are unreliable"));
        }
        if (maxShare > options.MaxWeightShare)
        {
            warnings.Add(Fmt($"one round carries {maxShare:P1} of the total importance weight (maximum weight {max:G4}): IPS, SNIPS and DR are dominated by it"));
        }
        if (n > 0 && rewarded == 0)
        {
            warnings.Add(Fmt($"rewarded rounds: none of the {matched} rounds the target policy matches (weight > 0, of {n}) has a nonzero reward: IPS, clipped IPS and SNIPS are 0 by construction, and their interval is the rule-of-three bound [0, ≈3·w_max·r_max/n] with w_max = {possible:G4} (undefined without a reward bound), not a bootstrap interval; the DR-type corrections see no reward either, and their bootstrap intervals are widened upwards by that bound"));
        }
        else if (n > 0 && data.Events is null && rewarded < options.MinRewardedRounds)
        {
            warnings.Add(Fmt($"rewarded rounds: only {rewarded} of the {matched} rounds the target policy matches (weight > 0, of {n}) have a nonzero reward (below {options.MinRewardedRounds}): IPS, clipped IPS and SNIPS rest on them alone and their bootstrap intervals are unreliable"));
        }
        else if (n > 0 && data.Events is not null && events < options.MinRewardedRounds)
        {
            warnings.Add(Fmt($"rewarded rounds: only {events} of the {matched} rounds the target policy matches (weight > 0, of {n}) converted (below {options.MinRewardedRounds}): the value part of IPS, clipped IPS and SNIPS rests on them alone (the other won rounds add only their price) and their bootstrap intervals are unreliable"));
        }
        return new EstimateDiagnostics(n, ess, n == 0 ? double.NaN : sum / n, max, maxShare, unsupported,
            n == 0 ? 0 : (double)clipped / n, n == 0 ? 0 : (double)switched / n, matched, rewarded, possible, warnings);
    }

    private static string Fmt(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
