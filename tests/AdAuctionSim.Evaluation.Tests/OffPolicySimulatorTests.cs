using AdAuctionSim.Evaluation.OffPolicy;
using AdAuctionSim.Evaluation.Statistics;
using AdAuctionSim.Simulation.Engine;
using AdAuctionSim.Simulation.OffPolicy;
using AdAuctionSim.Simulation.Scenarios;
using AdAuctionSim.Simulation.World;

namespace AdAuctionSim.Evaluation.Tests;

/// <summary>
/// The estimators on the simulator's logs (every bid, lost ones as reward 0, pscore as logged) against the exact truth of
/// the same requests: unbiased across independent blocks of requests under win–value correlation and hidden confounding,
/// and the support warning for a target that bids a level the logging policy never bids.
/// </summary>
public sealed class OffPolicySimulatorTests
{
    private sealed class Logs : ISimulationSink
    {
        public List<long> RequestId { get; } = [];
        public List<long> Timestamp { get; } = [];
        public List<int> Action { get; } = [];
        public List<double> Pscore { get; } = [];
        public List<double> Reward { get; } = [];
        public List<double> Surplus { get; } = [];

        public void Write(RequestBatch b)
        {
            var depth = b.Depth;
            for (var i = 0; i < b.Count; i++)
            {
                RequestId.Add(b.RequestId[i]);
                Timestamp.Add(b.Timestamp[i]);
                Action.Add(b.Action[i] * Multipliers + b.MultiplierIndex[i]);
                Pscore.Add(b.PscoreAd[i] * b.PscoreMultiplier[i]);
                Reward.Add(b.Reached(i, depth - 1) ? b.ValuePerConversion[i] : 0);
                Surplus.Add(Reward[^1] - (b.Won[i] ? b.Price[i] : 0));
            }
        }
    }

    private const int Multipliers = 4;

    private static readonly Lazy<(Logs Logs, ActionTable Table)> Simulated = new(() =>
    {
        var scenario = new Scenario
        {
            Name = "ope-tests",
            Seed = 17,
            Traffic = new TrafficOptions { Requests = 40_000, Days = 1, Users = 1500, Advertisers = 4, CampaignsPerAdvertiser = 3, AdsPerCampaign = 3, CandidateAds = 3, Sites = 20 },
            Funnel = new FunnelOptions { Stages = [new("click", 0.1), new("convert", 0.3)] },
            Bias = new BiasOptions { WinValueCorrelation = 1.0, HiddenConfounding = 1.0 },
            // The 8x level is never bid by the logger: no logging support for a policy that needs it.
            LoggingPolicy = new LoggingPolicyOptions { BidMultipliers = [0.5, 1, 2, 8], MultiplierProbabilities = [0.3, 0.4, 0.3, 0] },
        };
        var world = WorldModel.Build(scenario);
        var logs = new Logs();
        Simulator.Run(world, logs, new SimulationOptions { Threads = 2 });
        return (logs, ActionTable.Build(world, [.. logs.RequestId], [.. logs.Timestamp], threads: 2));
    });

    /// <summary>Block b's rounds as bandit feedback for a target distribution and a reward model over the whole table.</summary>
    private static BanditFeedback Block(int start, int length, double[] target, double[] model, double[] logging, int actions,
        OpeReward reward = OpeReward.Value)
    {
        var (logs, _) = Simulated.Value;
        var rewards = reward == OpeReward.Surplus ? logs.Surplus : logs.Reward;
        return new BanditFeedback(
            [.. logs.RequestId.Skip(start).Take(length)], actions, [.. logs.Action.Skip(start).Take(length)], [.. rewards.Skip(start).Take(length)],
            [.. logs.Pscore.Skip(start).Take(length)], target.AsSpan(start * actions, length * actions).ToArray(),
            model.AsSpan(start * actions, length * actions).ToArray(), logging.AsSpan(start * actions, length * actions).ToArray());
    }

    /// <summary>
    /// Also for the surplus, whose logged reward subtracts the second price actually paid and whose truth subtracts the
    /// exact expected payment: IPS is unbiased for it with no payment model at all.
    /// </summary>
    [Theory]
    [InlineData(OpeReward.Value)]
    [InlineData(OpeReward.Surplus)]
    public void Ips_and_dr_are_unbiased_on_the_simulators_logs_across_independent_request_blocks(OpeReward reward)
    {
        var (logs, table) = Simulated.Value;
        Assert.Equal(Multipliers, table.Multipliers);
        Assert.Equal(logs.Action, table.LoggedAction);
        var target = new TargetPolicy("softmax-truth", TargetPolicy.TruthScores, AdRule.Softmax, Temperature: 0.7, Bid: BidRule.Logging).Distribution(table, table.TrueRate);
        var logging = TargetPolicy.Logging.Distribution(table, null);
        // A deliberately wrong reward model: half the true expected reward. DR must stay unbiased regardless.
        var model = table.ExpectedReward(reward).Select(q => 0.5 * q).ToArray();
        const int Blocks = 80;
        var length = table.Rounds / Blocks;
        var truths = new double[Blocks];
        var errors = new Dictionary<string, double[]> { [EstimatorIds.Ips] = new double[Blocks], [EstimatorIds.Dr] = new double[Blocks], [EstimatorIds.Dm] = new double[Blocks] };
        for (var b = 0; b < Blocks; b++)
        {
            var feedback = Block(b * length, length, target, model, logging, table.Actions, reward);
            var truth = 0.0;
            for (var i = b * length; i < (b + 1) * length; i++)
            {
                for (var a = 0; a < table.Actions; a++)
                {
                    truth += target[i * table.Actions + a] * table.ExpectedReward(reward, i, a);
                }
            }
            truth /= length;
            truths[b] = truth;
            var result = OffPolicyEstimators.Estimate(feedback, new EstimatorOptions { BootstrapResamples = 0 });
            foreach (var (id, e) in errors)
            {
                e[b] = result[id].Value - truth;
            }
        }
        foreach (var id in (string[])[EstimatorIds.Ips, EstimatorIds.Dr])
        {
            var (low, high) = MetricStatistics.StudentTInterval(errors[id]);
            Assert.True(low <= 0 && 0 <= high, $"{id}: mean error {errors[id].Average():G4}, 95% interval [{low:G4}, {high:G4}]");
        }
        // Half the true reward pulls DM towards 0: low for a positive value, high for a negative surplus.
        var (dmLow, dmHigh) = MetricStatistics.StudentTInterval(errors[EstimatorIds.Dm]);
        Assert.True(truths.Average() > 0 ? dmHigh < 0 : dmLow > 0,
            $"DM with half the true reward should be biased towards 0 from {truths.Average():G4}: [{dmLow:G4}, {dmHigh:G4}]");
    }

    [Fact]
    public void A_policy_that_bids_a_level_the_logger_never_bids_triggers_the_support_warning()
    {
        var (_, table) = Simulated.Value;
        var logging = TargetPolicy.Logging.Distribution(table, null);
        var top = new TargetPolicy("top-bid", TargetPolicy.LoggingScores, AdRule.Logging, Bid: BidRule.Fixed, Multiplier: 8).Distribution(table, null);
        var model = table.ExpectedReward(OpeReward.Value);

        var result = OffPolicyEstimators.Estimate(Block(0, 5000, top, model, logging, table.Actions), new EstimatorOptions { BootstrapResamples = 0 });

        Assert.Equal(1.0, result.Diagnostics.UnsupportedShare, 1e-12);
        Assert.Contains(result.Diagnostics.Warnings, w => w.StartsWith("support:", StringComparison.Ordinal));
        Assert.Equal(0, result[EstimatorIds.Ips].Value);
    }
}
