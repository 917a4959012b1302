using AdAuctionSim.Evaluation.OffPolicy;
using AdAuctionSim.Evaluation.Statistics;

namespace AdAuctionSim.Evaluation.Tests;

/// <summary>
/// The off-policy estimators on a synthetic contextual bandit whose reward function is known: properties with known
/// answers (IPS of the logging policy is the logged mean; unbiasedness across independent seeds, judged by the t interval
/// of the mean error; SNIPS's normalised weights; DR with the true reward function; the support warning).
/// </summary>
public sealed class OffPolicyEstimatorTests
{
    private const int Actions = 4;

    /// <summary>A synthetic bandit: context x ~ U(0, 1), reward ~ Bernoulli(μ(x, a)), softmax logging and target policies.</summary>
    private sealed record Bandit(BanditFeedback Feedback, double[] TrueMean, double Truth);

    private static double Mu(double x, int a) => 1 / (1 + Math.Exp(-(-1.0 + 2.0 * x * (a - 1.5) / 1.5)));

    private static double[] Softmax(Func<int, double> logit)
    {
        var p = new double[Actions];
        var sum = 0.0;
        for (var a = 0; a < Actions; a++)
        {
            p[a] = Math.Exp(logit(a));
            sum += p[a];
        }
        for (var a = 0; a < Actions; a++)
        {
            p[a] /= sum;
        }
        return p;
    }

    /// <param name="seed">Seed of contexts, logged actions and rewards.</param>
    /// <param name="rounds">Rounds n.</param>
    /// <param name="targetIsLogging">Target policy = logging policy.</param>
    /// <param name="noiseFree">Rewards equal their expectation μ(x, a) instead of a Bernoulli draw.</param>
    /// <param name="modelShift">Added to the true mean to make the reward model (0: the true reward function).</param>
    /// <param name="unsupportedAction">An action the logging policy never takes (−1: none).</param>
    private static Bandit Make(int seed, int rounds = 2000, bool targetIsLogging = false, bool noiseFree = false, double modelShift = 0,
        int unsupportedAction = -1)
    {
        var rng = new Random(seed);
        var requestId = new long[rounds];
        var action = new int[rounds];
        var reward = new double[rounds];
        var pscore = new double[rounds];
        var target = new double[rounds * Actions];
        var model = new double[rounds * Actions];
        var logging = new double[rounds * Actions];
        var mean = new double[rounds * Actions];
        var truth = 0.0;
        for (var i = 0; i < rounds; i++)
        {
            requestId[i] = (long)seed * rounds + i;
            var x = rng.NextDouble();
            var pLog = Softmax(a => a == unsupportedAction ? double.NegativeInfinity : 0.8 * a * x);
            var pTarget = targetIsLogging ? pLog : Softmax(a => 4 * Mu(x, a));
            for (var a = 0; a < Actions; a++)
            {
                var o = i * Actions + a;
                mean[o] = Mu(x, a);
                model[o] = Math.Clamp(mean[o] + modelShift, 0, 1);
                logging[o] = pLog[a];
                target[o] = pTarget[a];
                truth += pTarget[a] * mean[o];
            }
            var u = rng.NextDouble();
            var chosen = Actions - 1;
            var acc = 0.0;
            for (var a = 0; a < Actions; a++)
            {
                acc += pLog[a];
                if (u < acc)
                {
                    chosen = a;
                    break;
                }
            }
            action[i] = chosen;
            pscore[i] = pLog[chosen];
            var mu = mean[i * Actions + chosen];
            reward[i] = noiseFree ? mu : rng.NextDouble() < mu ? 1 : 0;
        }
        return new Bandit(new BanditFeedback(requestId, Actions, action, reward, pscore, target, model, logging), mean, truth / rounds);
    }

    private static readonly EstimatorOptions NoBootstrap = new() { BootstrapResamples = 0 };

    [Fact]
    public void Ips_equals_the_logged_average_reward_when_the_target_is_the_logging_policy()
    {
        var bandit = Make(seed: 3, targetIsLogging: true);

        var result = OffPolicyEstimators.Estimate(bandit.Feedback, NoBootstrap);

        var logged = bandit.Feedback.Reward.Average();
        Assert.Equal(logged, result[EstimatorIds.Ips].Value);
        Assert.Equal(logged, result[EstimatorIds.Snips].Value);
        Assert.Equal(1.0, result.Diagnostics.MaxWeight);
        Assert.Equal(bandit.Feedback.Rounds, result.Diagnostics.EffectiveSampleSize, 1e-9);
        Assert.Empty(result.Diagnostics.Warnings);
    }

    /// <summary>Errors (estimate − truth) of one estimator over independent seeds.</summary>
    private static double[] Errors(string estimator, int seeds, double modelShift)
    {
        var errors = new double[seeds];
        for (var s = 0; s < seeds; s++)
        {
            var bandit = Make(seed: 1000 + s, rounds: 500, modelShift: modelShift);
            errors[s] = OffPolicyEstimators.Estimate(bandit.Feedback, NoBootstrap)[estimator].Value - bandit.Truth;
        }
        return errors;
    }

    [Theory]
    [InlineData(EstimatorIds.Ips, 0.0)]
    [InlineData(EstimatorIds.Dr, 0.0)]
    [InlineData(EstimatorIds.Dr, 0.15)]
    public void Ips_and_dr_are_unbiased_the_mean_error_over_seeds_lies_within_its_t_interval(string estimator, double modelShift)
    {
        // DR with a wrong reward model (shift 0.15) is still unbiased: the propensities are right.
        var errors = Errors(estimator, seeds: 300, modelShift);

        var (low, high) = MetricStatistics.StudentTInterval(errors);

        Assert.True(low <= 0 && 0 <= high, $"{estimator}: mean error {errors.Average():G4}, 95% interval [{low:G4}, {high:G4}] excludes 0");
    }

    [Fact]
    public void The_unbiasedness_check_can_fail_dm_with_a_shifted_reward_model_is_detected_as_biased()
    {
        var errors = Errors(EstimatorIds.Dm, seeds: 300, modelShift: 0.02);

        var (low, high) = MetricStatistics.StudentTInterval(errors);

        Assert.True(low > 0, $"DM's mean error {errors.Average():G4} with interval [{low:G4}, {high:G4}] should exclude 0");
    }

    [Fact]
    public void Snips_weights_are_normalised_and_snips_is_their_weighted_reward()
    {
        var bandit = Make(seed: 11);

        var weights = OffPolicyEstimators.NormalisedWeights(bandit.Feedback);

        Assert.Equal(1.0, weights.Sum(), 1e-12);
        Assert.All(weights, w => Assert.True(w >= 0));
        var snips = weights.Select((w, i) => w * bandit.Feedback.Reward[i]).Sum();
        Assert.Equal(snips, OffPolicyEstimators.Estimate(bandit.Feedback, NoBootstrap)[EstimatorIds.Snips].Value, 1e-12);
    }

    [Fact]
    public void Dr_with_the_true_reward_function_has_zero_bias()
    {
        // Noise-free rewards: every residual r − q̂ is exactly 0, so DR is exactly the truth (DM with the true function),
        // whatever the weights; IPS still errs by the weights' sampling noise.
        var exact = Make(seed: 5, noiseFree: true);
        var result = OffPolicyEstimators.Estimate(exact.Feedback, NoBootstrap);
        Assert.Equal(exact.Truth, result[EstimatorIds.Dr].Value, 1e-12);
        Assert.Equal(exact.Truth, result[EstimatorIds.Sndr].Value, 1e-12);
        Assert.Equal(exact.Truth, result[EstimatorIds.SwitchDr].Value, 1e-12);
        Assert.NotEqual(exact.Truth, result[EstimatorIds.Ips].Value, 1e-6);

        // Bernoulli rewards: the error over seeds has mean 0 within its interval, and less spread than IPS's.
        var dr = Errors(EstimatorIds.Dr, seeds: 300, modelShift: 0);
        var ips = Errors(EstimatorIds.Ips, seeds: 300, modelShift: 0);
        var (low, high) = MetricStatistics.StudentTInterval(dr);
        Assert.True(low <= 0 && 0 <= high, $"DR mean error {dr.Average():G4}, interval [{low:G4}, {high:G4}]");
        Assert.True(Variance(dr) < Variance(ips), $"DR error variance {Variance(dr):G4} is not below IPS's {Variance(ips):G4}");
    }

    private static double Variance(double[] v) => MathNet.Numerics.Statistics.Statistics.Variance(v);

    [Fact]
    public void A_target_with_mass_where_the_logging_policy_has_none_triggers_the_support_warning()
    {
        var unsupported = Make(seed: 8, unsupportedAction: 3);
        var supported = Make(seed: 8);

        var warned = OffPolicyEstimators.Estimate(unsupported.Feedback, NoBootstrap).Diagnostics;
        var fine = OffPolicyEstimators.Estimate(supported.Feedback, NoBootstrap).Diagnostics;

        Assert.True(warned.UnsupportedShare > 0.1, $"unsupported share {warned.UnsupportedShare}");
        Assert.Contains(warned.Warnings, w => w.StartsWith("support:", StringComparison.Ordinal));
        Assert.Equal(0, fine.UnsupportedShare);
        Assert.DoesNotContain(fine.Warnings, w => w.StartsWith("support:", StringComparison.Ordinal));
    }

    /// <summary>The bandit of <see cref="Make"/> with rewards kept only on <paramref name="keep"/> rewarded matched rounds.</summary>
    private static BanditFeedback WithRewardedMatchedRounds(BanditFeedback feedback, int keep)
    {
        var reward = (double[])feedback.Reward.Clone();
        var kept = 0;
        for (var i = 0; i < reward.Length; i++)
        {
            var matched = feedback.Target[i * Actions + feedback.Action[i]] > 0;
            if (matched && reward[i] != 0 && kept < keep)
            {
                kept++;
            }
            else
            {
                reward[i] = 0;
            }
        }
        Assert.Equal(keep, kept);
        return feedback with { Reward = reward };
    }

    [Fact]
    public void No_rewarded_matched_round_warns_and_gives_the_rule_of_three_interval_not_a_zero_width_one()
    {
        // Every round is matched (softmax target) but no reward survives a rare outcome: IPS, clipped IPS and SNIPS are 0
        // in every resample, so the percentile interval would be [0, 0] against a positive true value.
        var bandit = Make(seed: 31, rounds: 500);
        var feedback = WithRewardedMatchedRounds(bandit.Feedback, keep: 0) with { MaxReward = 1 };
        var options = new EstimatorOptions { BootstrapResamples = 50, BootstrapSeed = 2 };

        var result = OffPolicyEstimators.Estimate(feedback, options);

        var d = result.Diagnostics;
        Assert.Equal(500, d.MatchedRounds);
        Assert.Equal(0, d.RewardedRounds);
        Assert.Contains(d.Warnings, w => w.StartsWith("rewarded rounds: none of the 500 rounds", StringComparison.Ordinal));
        Assert.True(d.MaxPossibleWeight >= d.MaxWeight, $"possible {d.MaxPossibleWeight} < observed {d.MaxWeight}");
        var expected = (1 - Math.Pow(0.05, 1.0 / 500)) * d.MaxPossibleWeight * 1;
        foreach (var id in (string[])[EstimatorIds.Ips, EstimatorIds.ClippedIps, EstimatorIds.Snips])
        {
            var e = result[id];
            Assert.Equal(0, e.Value);
            Assert.Equal(0, e.Low);
            Assert.Equal(expected, e.High, 1e-12);
            Assert.True(e.High > e.Low, $"{id}: zero-width interval [{e.Low}, {e.High}]");
        }
        // The rule of three: about 3·w_max·r_max / n.
        Assert.Equal(3 * d.MaxPossibleWeight / 500, expected, 0.01 * expected);
        // The DR-type intervals, which then vary with the reward model's terms only, are raised by the same bound.
        foreach (var id in (string[])[EstimatorIds.Dr, EstimatorIds.SwitchDr, EstimatorIds.Sndr])
        {
            var e = result[id];
            Assert.True(e.Low <= e.Value && e.High >= e.Value + expected * (id == EstimatorIds.Sndr ? 1 / d.MeanWeight : 1) - 1e-12,
                $"{id}: {e.Value} in [{e.Low}, {e.High}] is not widened by {expected}");
        }
        // DM never rests on the logged rewards, so its bootstrap interval is left as it was.
        Assert.Equal(OffPolicyEstimators.Estimate(bandit.Feedback, options)[EstimatorIds.Dm], result[EstimatorIds.Dm]);
    }

    [Fact]
    public void No_rewarded_round_and_no_reward_bound_leaves_the_interval_undefined_with_the_warning()
    {
        var bandit = Make(seed: 32, rounds: 300);
        var feedback = bandit.Feedback with { Reward = new double[300] };

        var result = OffPolicyEstimators.Estimate(feedback, new EstimatorOptions { BootstrapResamples = 20 });

        Assert.Contains(result.Diagnostics.Warnings, w => w.StartsWith("rewarded rounds: none", StringComparison.Ordinal));
        Assert.True(double.IsNaN(result[EstimatorIds.Ips].Low) && double.IsNaN(result[EstimatorIds.Ips].High),
            $"IPS interval [{result[EstimatorIds.Ips].Low}, {result[EstimatorIds.Ips].High}] should be undefined: nothing bounds the reward");
        Assert.Equal((double.NaN, double.NaN), OffPolicyEstimators.NoRewardInterval(feedback, result.Diagnostics));
        // Without MaxReward the largest logged reward stands in for it.
        var oneReward = (double[])feedback.Reward.Clone();
        oneReward[0] = 2;
        var withBound = feedback with { Reward = oneReward, Target = ZeroTargetOn(feedback, 0) };
        var bounded = OffPolicyEstimators.Estimate(withBound, new EstimatorOptions { BootstrapResamples = 20 });
        Assert.Equal(0, bounded.Diagnostics.RewardedRounds);
        Assert.Equal((0.0, (1 - Math.Pow(0.05, 1.0 / 300)) * bounded.Diagnostics.MaxPossibleWeight * 2),
            (bounded[EstimatorIds.Ips].Low, bounded[EstimatorIds.Ips].High));
    }

    /// <summary>The target policy with round <paramref name="round"/>'s logged action given no mass (spread evenly over the others).</summary>
    private static double[] ZeroTargetOn(BanditFeedback feedback, int round)
    {
        var target = (double[])feedback.Target.Clone();
        var at = round * Actions + feedback.Action[round];
        var freed = target[at];
        target[at] = 0;
        for (var a = 0; a < Actions; a++)
        {
            if (round * Actions + a != at)
            {
                target[round * Actions + a] += freed / (Actions - 1);
            }
        }
        return target;
    }

    /// <summary>
    /// A surplus-like reward: every matched round pays a price (a nonzero reward), and only the rounds marked as events
    /// converted. The warning counts the matched events, not the nonzero rewards, and the rule-of-three interval is not
    /// used (the rewards are not all 0).
    /// </summary>
    [Theory]
    [InlineData(3, true)]
    [InlineData(10, false)]
    public void With_events_given_the_rewarded_rounds_warning_counts_matched_events_not_nonzero_rewards(int converted, bool warns)
    {
        var kept = WithRewardedMatchedRounds(Make(seed: 33, rounds: 800).Feedback, converted);
        var events = kept.Reward.Select(r => r != 0).ToArray();
        var surplus = kept.Reward.Select(r => r - 0.05).ToArray();
        var feedback = kept with { Reward = surplus, Events = events };

        var result = OffPolicyEstimators.Estimate(feedback, new EstimatorOptions { BootstrapResamples = 50, BootstrapSeed = 3 });

        Assert.Equal(result.Diagnostics.MatchedRounds, result.Diagnostics.RewardedRounds);
        Assert.Equal(warns, result.Diagnostics.Warnings.Any(w => w.StartsWith($"rewarded rounds: only {converted} of", StringComparison.Ordinal)
            && w.Contains("converted", StringComparison.Ordinal)));
        Assert.Equal(warns, result.Diagnostics.Warnings.Any(w => w.StartsWith("rewarded rounds:", StringComparison.Ordinal)));
        var ips = result[EstimatorIds.Ips];
        Assert.True(ips.Low < ips.Value && ips.Value < ips.High, $"IPS {ips.Value} outside its bootstrap interval [{ips.Low}, {ips.High}]");
        Assert.Throws<ArgumentException>(() => (feedback with { Events = new bool[3] }).Validate());
    }

    [Theory]
    [InlineData(3, true)]
    [InlineData(9, true)]
    [InlineData(10, false)]
    public void Fewer_rewarded_matched_rounds_than_the_minimum_warn_and_keep_the_bootstrap_interval(int rewarded, bool warns)
    {
        var feedback = WithRewardedMatchedRounds(Make(seed: 33, rounds: 800).Feedback, rewarded);
        var options = new EstimatorOptions { BootstrapResamples = 50, BootstrapSeed = 3 };

        var result = OffPolicyEstimators.Estimate(feedback, options);

        Assert.Equal(rewarded, result.Diagnostics.RewardedRounds);
        Assert.Equal(warns, result.Diagnostics.Warnings.Any(w => w.StartsWith("rewarded rounds:", StringComparison.Ordinal)));
        Assert.Equal(warns, result.Diagnostics.Warnings.Any(w => w.StartsWith($"rewarded rounds: only {rewarded} of", StringComparison.Ordinal)));
        var ips = result[EstimatorIds.Ips];
        Assert.True(ips.Low < ips.Value && ips.Value < ips.High, $"IPS {ips.Value} outside its bootstrap interval [{ips.Low}, {ips.High}]");
    }

    [Fact]
    public void A_reward_outside_the_declared_bound_is_rejected()
    {
        var feedback = Make(seed: 34, rounds: 50).Feedback with { MaxReward = 0.5 };

        var error = Assert.Throws<ArgumentException>(() => OffPolicyEstimators.Estimate(feedback, NoBootstrap));

        Assert.Contains("maxReward", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bootstrap_intervals_hold_the_estimate_and_repeat_exactly()
    {
        var bandit = Make(seed: 21);
        var options = new EstimatorOptions { BootstrapResamples = 100, BootstrapSeed = 4 };

        var first = OffPolicyEstimators.Estimate(bandit.Feedback, options);
        var second = OffPolicyEstimators.Estimate(bandit.Feedback, options);

        Assert.Equal(EstimatorIds.All, first.Estimates.Select(e => e.Estimator));
        foreach (var e in first.Estimates)
        {
            Assert.True(e.Low < e.Value && e.Value < e.High, $"{e.Estimator}: {e.Value} outside [{e.Low}, {e.High}]");
            Assert.Equal(e, second[e.Estimator]);
        }
    }

    [Fact]
    public void Clipping_and_switching_act_only_above_their_thresholds()
    {
        var bandit = Make(seed: 2);
        var loose = OffPolicyEstimators.Estimate(bandit.Feedback, NoBootstrap with { ClipThreshold = 1e9, SwitchThreshold = 1e9 });
        var tight = OffPolicyEstimators.Estimate(bandit.Feedback, NoBootstrap with { ClipThreshold = 0, SwitchThreshold = -1 });

        Assert.Equal(loose[EstimatorIds.Ips].Value, loose[EstimatorIds.ClippedIps].Value, 1e-12);
        Assert.Equal(loose[EstimatorIds.Dr].Value, loose[EstimatorIds.SwitchDr].Value, 1e-12);
        Assert.Equal(0, tight[EstimatorIds.ClippedIps].Value);
        Assert.Equal(tight[EstimatorIds.Dm].Value, tight[EstimatorIds.SwitchDr].Value, 1e-12);
        Assert.Equal(1.0, tight.Diagnostics.ClippedShare);
    }

    [Fact]
    public void Meta_evaluation_reports_squared_and_relative_error_against_the_truth()
    {
        OpeEstimateRow Row(int repeat, double estimate, double truth, double low, double high) =>
            new("", repeat, repeat, "p", EstimatorIds.Ips, estimate, low, high, truth, 100, 1, 1, 0, "");
        var rows = new[] { Row(0, 1.1, 1.0, 0.9, 1.2), Row(1, 0.8, 1.0, 0.85, 0.95), Row(2, 2.2, 2.0, 2.1, 2.3) };

        var summary = Assert.Single(OpeMetaEvaluation.Summarise(rows));

        Assert.Equal(3, summary.Repeats);
        Assert.Equal((0.01 + 0.04 + 0.04) / 3, summary.SquaredError, 1e-12);
        Assert.Equal((0.1 + 0.2 + 0.1) / 3, summary.RelativeError, 1e-12);
        Assert.Equal((0.1 - 0.2 + 0.2) / 3, summary.Bias, 1e-12);
        Assert.Equal(1.0 / 3, summary.Coverage, 1e-12);
        var (low, high) = MetricStatistics.StudentTInterval([0.1, -0.2, 0.2]);
        Assert.Equal(low, summary.BiasLow, 1e-12);
        Assert.Equal(high, summary.BiasHigh, 1e-12);
        Assert.StartsWith(OpeMetaEvaluation.CsvHeader + "\n,0,0,p,ips,1.1,", OpeMetaEvaluation.Csv(rows), StringComparison.Ordinal);
    }
}
