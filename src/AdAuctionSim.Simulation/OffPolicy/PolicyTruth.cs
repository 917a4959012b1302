using AdAuctionSim.Simulation.Engine;

namespace AdAuctionSim.Simulation.OffPolicy;

/// <summary>
/// A policy's value per request on a set of requests: expected wins (impressions), conversions (final-stage events),
/// conversion value and cost (price paid), and the reward the estimators estimate.
/// </summary>
/// <param name="Rounds">Requests.</param>
/// <param name="Wins">Mean of P(win) (exact) or of 1{won} (Monte Carlo).</param>
/// <param name="Conversions">Mean conversions per request.</param>
/// <param name="Value">Mean conversion value per request.</param>
/// <param name="Cost">Mean price paid per request.</param>
/// <param name="Reward">Mean of the chosen reward.</param>
/// <param name="RewardHalfWidth">Half-width of the reward's 95% interval (Monte Carlo: 1.96·sd/√n; 0 for the exact value).</param>
public sealed record PolicyValue(int Rounds, double Wins, double Conversions, double Value, double Cost, double Reward, double RewardHalfWidth)
{
    public double Low => Reward - RewardHalfWidth;
    public double High => Reward + RewardHalfWidth;
}

/// <summary>The true value of a policy from the simulator's probabilities, and its on-policy Monte Carlo cross-check.</summary>
/// <remarks>
/// The exact value is V(π) = (1/n) Σ_i Σ_a π(a | x_i)·E[R | x_i, a] on the same requests, with E[R | x, a] from
/// <see cref="ActionTable.ExpectedReward(OpeReward, int, int)"/>: P(win at the action's bid)·r_K·(value) − expected payment.
/// The Monte Carlo run draws one action per request from π (a counter-based draw keyed by the request, so it is the
/// same for any thread count) and takes the reward that action realises under the request's common random numbers:
/// the competitors and potential outcomes the logs were drawn with. The logging policy is replayed with its own draws,
/// so its Monte Carlo value is exactly the logged average reward.
/// </remarks>
public static class PolicyTruth
{
    /// <summary>Stream of the Monte Carlo action draws (apart from every simulation stream).</summary>
    private const ulong MonteCarloStream = 0x4D43_4F50_4531UL;

    /// <summary>The exact value of the policy whose action distribution is <paramref name="distribution"/> ([round × A]).</summary>
    public static PolicyValue Exact(ActionTable table, double[] distribution, OpeReward reward)
    {
        ArgumentNullException.ThrowIfNull(table);
        Check(table, distribution);
        double wins = 0, conversions = 0, value = 0, cost = 0, total = 0;
        var n = table.Candidates;
        var m = table.Multipliers;
        for (var i = 0; i < table.Rounds; i++)
        {
            for (var a = 0; a < table.Actions; a++)
            {
                var p = distribution[i * table.Actions + a];
                if (p == 0)
                {
                    continue;
                }
                var c = i * n + a / m;
                var at = i * table.Actions + a;
                var win = table.WinProbability[at];
                wins += p * win;
                conversions += p * win * table.TrueRate[c];
                value += p * win * table.TrueRate[c] * table.Value[c];
                cost += p * table.ExpectedPayment[at];
                total += p * table.ExpectedReward(reward, i, a);
            }
        }
        var rounds = Math.Max(table.Rounds, 1);
        return new PolicyValue(table.Rounds, wins / rounds, conversions / rounds, value / rounds, cost / rounds, total / rounds, 0);
    }

    /// <summary>
    /// On-policy Monte Carlo with common random numbers: one action per request drawn from the distribution (the logged
    /// action for the logging policy), its realised reward, and the mean with its normal 95% interval.
    /// </summary>
    /// <param name="table">The replayed requests.</param>
    /// <param name="distribution">π(a | x_i), [round × A].</param>
    /// <param name="reward">What the value is measured in.</param>
    /// <param name="policyIndex">Tells apart the draws of different policies.</param>
    /// <param name="isLogging">Replay the logging policy's own draws.</param>
    public static PolicyValue MonteCarlo(ActionTable table, double[] distribution, OpeReward reward, int policyIndex, bool isLogging = false)
    {
        ArgumentNullException.ThrowIfNull(table);
        Check(table, distribution);
        double wins = 0, conversions = 0, value = 0, cost = 0, sum = 0, sumSq = 0;
        var n = table.Candidates;
        var m = table.Multipliers;
        var actions = table.Actions;
        for (var i = 0; i < table.Rounds; i++)
        {
            int action;
            if (isLogging)
            {
                action = table.LoggedAction[i];
            }
            else
            {
                var u = CounterRng.Uniform(CounterRng.Mix(CounterRng.Bits(table.RequestBase[i], MonteCarloStream) + (ulong)policyIndex * 0x9E3779B97F4A7C15UL));
                action = actions - 1;
                var acc = 0.0;
                for (var a = 0; a < actions; a++)
                {
                    acc += distribution[i * actions + a];
                    if (u < acc)
                    {
                        action = a;
                        break;
                    }
                }
                while (distribution[i * actions + action] == 0 && action > 0)
                {
                    action--; // rounding left u above the last positive cumulative sum
                }
            }
            var at = i * actions + action;
            var c = i * n + action / m;
            if (table.Wins[at])
            {
                wins++;
                cost += table.Payment[at];
                if (table.Converts[c])
                {
                    conversions++;
                    value += table.Value[c];
                }
            }
            var r = table.RealisedReward(reward, i, action);
            sum += r;
            sumSq += r * r;
        }
        var rounds = Math.Max(table.Rounds, 1);
        var mean = sum / rounds;
        var variance = table.Rounds > 1 ? Math.Max(0, (sumSq - rounds * mean * mean) / (rounds - 1)) : 0;
        return new PolicyValue(table.Rounds, wins / rounds, conversions / rounds, value / rounds, cost / rounds, mean,
            1.959963984540054 * Math.Sqrt(variance / rounds));
    }

    private static void Check(ActionTable table, double[] distribution)
    {
        ArgumentNullException.ThrowIfNull(distribution);
        if (distribution.Length != table.Rounds * table.Actions)
        {
            throw new ArgumentException($"the distribution has {distribution.Length} entries; expected rounds × actions = {table.Rounds * table.Actions}", nameof(distribution));
        }
    }
}
