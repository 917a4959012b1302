using AdAuctionSim.Simulation.Engine;
using AdAuctionSim.Simulation.OffPolicy;
using AdAuctionSim.Simulation.Scenarios;
using AdAuctionSim.Simulation.World;

namespace AdAuctionSim.Simulation.Tests;

/// <summary>
/// The off-policy truth: replaying a request reproduces what the simulation logged; the exact value of a policy agrees
/// with its on-policy Monte Carlo run within the Monte Carlo interval; the logging policy's Monte Carlo value is the
/// logged average reward.
/// </summary>
public sealed class OffPolicyTruthTests
{
    /// <summary>The logged columns of every request (what the logs and the truth say), in request order.</summary>
    private sealed class LoggedRequests : ISimulationSink
    {
        public List<long> RequestId { get; } = [];
        public List<long> Timestamp { get; } = [];
        public List<int> Action { get; } = [];
        public List<double> Pscore { get; } = [];
        public List<bool> Won { get; } = [];
        public List<double> Price { get; } = [];
        public List<double> WinAtBid { get; } = [];
        public List<double> Value { get; } = [];
        public List<bool> Converted { get; } = [];

        public void Write(RequestBatch b)
        {
            for (var i = 0; i < b.Count; i++)
            {
                RequestId.Add(b.RequestId[i]);
                Timestamp.Add(b.Timestamp[i]);
                Action.Add(b.Action[i]);
                Pscore.Add(b.PscoreAd[i] * b.PscoreMultiplier[i]);
                Won.Add(b.Won[i]);
                Price.Add(b.Price[i]);
                WinAtBid.Add(b.WinProbabilityAtBid[i]);
                Value.Add(b.ValuePerConversion[i]);
                Converted.Add(b.Reached(i, b.Depth - 1));
                Multiplier.Add(b.MultiplierIndex[i]);
            }
        }

        public List<int> Multiplier { get; } = [];
    }

    private static (WorldModel World, LoggedRequests Logs, ActionTable Table) Run(Scenario scenario, int threads = 2)
    {
        var world = WorldModel.Build(scenario);
        var logs = new LoggedRequests();
        Simulator.Run(world, logs, new SimulationOptions { Threads = 2, ChunkSize = 1 << 13 });
        var table = ActionTable.Build(world, [.. logs.RequestId], [.. logs.Timestamp], threads);
        return (world, logs, table);
    }

    private static readonly Lazy<(WorldModel World, LoggedRequests Logs, ActionTable Table)> Small = new(() => Run(TestScenarios.Small with
    {
        Traffic = TestScenarios.Small.Traffic with { Requests = 12_000 },
    }));

    [Fact]
    public void Replaying_a_request_reproduces_the_logged_action_pscore_auction_and_outcome()
    {
        var (_, logs, table) = Small.Value;
        var m = table.Multipliers;
        for (var i = 0; i < table.Rounds; i++)
        {
            var a = logs.Action[i] * m + logs.Multiplier[i];
            Assert.Equal(a, table.LoggedAction[i]);
            Assert.Equal(logs.Pscore[i], table.LoggedPscore[i]);
            var at = i * table.Actions + a;
            Assert.Equal(logs.Won[i], table.Wins[at]);
            Assert.Equal(logs.Price[i], table.Payment[at]);
            Assert.Equal(logs.WinAtBid[i], table.WinProbability[at]);
            Assert.Equal(logs.Won[i] && logs.Converted[i], table.Wins[at] && table.Converts[i * table.Candidates + logs.Action[i]]);
        }
    }

    [Fact]
    public void The_action_table_is_identical_for_any_thread_count()
    {
        var (world, logs, table) = Small.Value;
        var single = ActionTable.Build(world, [.. logs.RequestId], [.. logs.Timestamp], threads: 1);
        Assert.Equal(table.WinProbability, single.WinProbability);
        Assert.Equal(table.ExpectedPayment, single.ExpectedPayment);
        Assert.Equal(table.Payment, single.Payment);
        Assert.Equal(table.TrueRate, single.TrueRate);
    }

    [Theory]
    [InlineData(OpeReward.Value)]
    [InlineData(OpeReward.Surplus)]
    public void The_logging_policys_monte_carlo_value_is_the_logged_average_reward(OpeReward reward)
    {
        var (_, logs, table) = Small.Value;
        var logging = TargetPolicy.Logging.Distribution(table, null);

        var mc = PolicyTruth.MonteCarlo(table, logging, reward, 0, isLogging: true);

        var logged = 0.0;
        for (var i = 0; i < logs.Won.Count; i++)
        {
            if (logs.Won[i])
            {
                logged += (logs.Converted[i] ? logs.Value[i] : 0) - (reward == OpeReward.Surplus ? logs.Price[i] : 0);
            }
        }
        Assert.Equal(logged / logs.Won.Count, mc.Reward, 1e-12);
    }

    public static TheoryData<string, OpeReward> Policies => new()
    {
        { "logging", OpeReward.Value },
        { "logging", OpeReward.Surplus },
        { "greedy-truth-own", OpeReward.Value },
        { "greedy-truth-own", OpeReward.Surplus },
        { "softmax-logging-own", OpeReward.Conversions },
        { "uniform-top-bid", OpeReward.Surplus },
    };

    internal static (TargetPolicy Policy, double[]? Scores) Make(string name, ActionTable table) => name switch
    {
        "logging" => (TargetPolicy.Logging, null),
        "greedy-truth-own" => (new TargetPolicy(name, TargetPolicy.TruthScores, AdRule.Greedy, BidScale: 1.5), table.TrueRate),
        "softmax-logging-own" => (new TargetPolicy(name, TargetPolicy.LoggingScores, AdRule.Softmax, Temperature: 0.5), table.LoggingRate),
        "uniform-top-bid" => (new TargetPolicy(name, TargetPolicy.TruthScores, AdRule.Uniform, Bid: BidRule.Fixed, Multiplier: table.MultiplierValues.Max()), null),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    [Theory]
    [MemberData(nameof(Policies))]
    public void The_exact_true_value_lies_within_the_monte_carlo_interval(string name, OpeReward reward)
    {
        var (_, _, table) = Small.Value;
        var (policy, scores) = Make(name, table);
        var distribution = policy.Distribution(table, scores);

        var exact = PolicyTruth.Exact(table, distribution, reward);
        var mc = PolicyTruth.MonteCarlo(table, distribution, reward, policyIndex: 1);

        Assert.True(mc.Low <= exact.Reward && exact.Reward <= mc.High,
            $"{name} ({reward}): exact {exact.Reward:G6} outside the Monte Carlo interval [{mc.Low:G6}, {mc.High:G6}]");
        Assert.True(mc.RewardHalfWidth > 0);
    }

    [Fact]
    public void The_expected_second_price_payment_matches_its_definition_by_quadrature()
    {
        var world = Small.Value.World;
        foreach (var (logBid, shift) in new[] { (-3.0, 0.0), (-1.0, 0.4), (0.5, -0.7), (-6.0, 0.2) })
        {
            // E[M·1{M < b}] = ∫_{−∞}^{ln b} e^y g(y − s) dy with g = G′, by the trapezoidal rule on a fine grid.
            const int Steps = 400_000;
            double sum = 0, step = 40.0 / Steps, previous = world.WinCurveExact(logBid - shift - 40);
            for (var s = 1; s <= Steps; s++)
            {
                var y = logBid - 40 + s * step;
                var g = world.WinCurveExact(y - shift);
                sum += Math.Exp(y - step / 2) * (g - previous);
                previous = g;
            }
            Assert.Equal(sum, world.ExpectedPayment(logBid, shift), Math.Max(1e-9, 1e-5 * sum));
        }
    }

    [Fact]
    public void Greedy_policies_put_all_mass_on_one_action_and_every_distribution_sums_to_one()
    {
        var (_, _, table) = Small.Value;
        foreach (var name in new[] { "logging", "greedy-truth-own", "softmax-logging-own", "uniform-top-bid" })
        {
            var (policy, scores) = Make(name, table);
            var d = policy.Distribution(table, scores);
            for (var i = 0; i < table.Rounds; i++)
            {
                var row = d.AsSpan(i * table.Actions, table.Actions);
                var sum = 0.0;
                var positive = 0;
                foreach (var p in row)
                {
                    sum += p;
                    positive += p > 0 ? 1 : 0;
                }
                Assert.Equal(1.0, sum, 1e-12);
                if (name == "greedy-truth-own")
                {
                    Assert.Equal(1, positive);
                }
            }
        }
    }
}
