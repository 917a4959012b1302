using System.Diagnostics;
using AdAuctionSim.Cli.Commands;
using AdAuctionSim.Evaluation.OffPolicy;
using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Data;
using AdAuctionSim.Models.Prediction;
using AdAuctionSim.Models.Runtime;
using AdAuctionSim.Models.Training;
using AdAuctionSim.Simulation.OffPolicy;
using AdAuctionSim.Simulation.Output;

namespace AdAuctionSim.Cli.Runs;

/// <summary>What one OPE unit produced: every estimate and every policy's truth, and how long its parts took.</summary>
internal sealed record OpeUnitResult(IReadOnlyList<OpeEstimateRow> Estimates, IReadOnlyList<PolicyTruthRow> Truths, double ScoreSeconds,
    double TruthSeconds, double EstimateSeconds);

/// <summary>
/// Off-policy evaluation of one simulation (one sweep point and repeat): the estimators read the logged bandit feedback
/// (<see cref="LoggedFeedback"/>, the logged view only) with each target policy's action probabilities and a reward
/// model; the truth replays the same requests in the world (<see cref="ActionTable"/>, <see cref="PolicyTruth"/>).
/// </summary>
/// <remarks>
/// What the estimator side may know: the logs, the advertiser's own logging policy (its probabilities and its bid for
/// every candidate ad and multiplier: the advertiser runs that bidder, so it can recompute them; here they come from the
/// replay), the target policy's probabilities, and a reward model built from the logs: r̂_K(x, j) of every candidate from
/// a trained model (scored through its feature pipeline, <see cref="CandidatePredictions"/>) or the logging model's own
/// estimates, times the candidate's value, times Ŵ(b | x) of a win model fitted on the train split's censored auctions
/// at the action's bid. The win model sees the request's logged features, so it cannot tell that competitors bid on the
/// shown ad's value (κ): that is part of DM's bias under the win–value dial. <c>rewardModel: "truth"</c> uses the true
/// reward function instead, as a reference (DR's correction then has mean 0): E[R | x, a] of the replay, with the true
/// win probability at the action's bid, so no win model is fitted and the dataset is loaded only when a policy scores
/// with a trained model.
/// </remarks>
internal static class OpeUnit
{
    /// <param name="plan">The resolved section.</param>
    /// <param name="simulation">The simulation folder.</param>
    /// <param name="train">A training run folder with checkpoints of the plan's models (null when the plan needs none).</param>
    /// <param name="training">The options the models were trained with (architecture and DR gradient mode).</param>
    /// <param name="runtime">TorchSharp runtime (device for the dataset and candidate scoring).</param>
    /// <param name="point">Sweep point label.</param>
    /// <param name="repeat">Repeat index.</param>
    /// <param name="seed">World seed of the repeat.</param>
    /// <param name="threads">Threads for the replay.</param>
    /// <param name="scenarioFile">For messages.</param>
    /// <param name="cancellation">Cancels between steps.</param>
    public static OpeUnitResult Run(OpePlan plan, string simulation, string? train, TrainingRunOptions training, TorchRuntimeInfo runtime,
        string point, int repeat, long seed, int threads, string scenarioFile, CancellationToken cancellation)
    {
        var clock = Stopwatch.StartNew();
        var view = LoggedView.Open(simulation);
        byte? split = plan.Options.Split switch
        {
            "train" => 0,
            "validation" => 1,
            "test" => 2,
            _ => null,
        };
        var logs = LoggedFeedback.Read(view, split);
        if (logs.Rounds == 0)
        {
            throw new InvalidDataException($"{simulation}: the {plan.Options.Split} split has no requests to value the policies on");
        }
        cancellation.ThrowIfCancellationRequested();

        // The truth side: replay the same requests in the world the simulation was drawn from.
        var world = ScenarioFiles.BuildWorld(view.ReadScenario(), scenarioFile, cancellation);
        var table = ActionTable.Build(world, logs.RequestId, logs.Timestamp, threads, cancellation);
        for (var i = 0; i < logs.Rounds; i++)
        {
            if (table.LoggedAction[i] != logs.Action(i) || table.LoggedPscore[i] != logs.Pscore[i])
            {
                throw new InvalidDataException($"{simulation}: request {logs.RequestId[i]}: the logged action {logs.Action(i)} (pscore {logs.Pscore[i]}) "
                    + $"is not what its world replays ({table.LoggedAction[i]}, pscore {table.LoggedPscore[i]}); the logs do not belong to this scenario and seed");
            }
        }
        var truthSeconds = clock.Elapsed.TotalSeconds;

        // Scores of every candidate: the truth, the logging model's estimates, and each trained model's.
        clock.Restart();
        var scores = new Dictionary<string, double[]>(StringComparer.Ordinal)
        {
            [TargetPolicy.TruthScores] = table.TrueRate,
            [TargetPolicy.LoggingScores] = table.LoggingRate,
        };
        double[]? rewardModel = null;
        var needsData = plan.Models.Count > 0 || plan.Options.RewardModel != TargetPolicy.TruthScores;
        if (needsData)
        {
            using var data = LoggedDataset.Load(view, runtime.Device, cancellation);
            var rows = DatasetRows(data, logs);
            if (plan.Models.Count > 0)
            {
                var catalog = ReadCatalog(view);
                foreach (var id in plan.Models)
                {
                    cancellation.ThrowIfCancellationRequested();
                    var checkpoint = Path.Combine(train ?? throw new InvalidOperationException("the OPE plan needs trained models but no training run was given"),
                        TrainingRun.CheckpointsFolder, id + ".bin");
                    using var model = TrainingRun.LoadModel(data, ModelCatalog.Get(id), training, checkpoint);
                    scores[id] = CandidatePredictions.Score(model, data, rows, logs.CandidateAds, logs.Candidates, catalog, training.Trainer.EvaluationBatchSize);
                }
            }
            if (plan.Options.RewardModel != TargetPolicy.TruthScores)
            {
                rewardModel = RewardModel(plan, table, data, rows, scores[plan.Options.RewardModel], cancellation);
            }
        }
        rewardModel ??= table.ExpectedReward(plan.Reward);
        var scoreSeconds = clock.Elapsed.TotalSeconds;
        var maxReward = MaxReward(plan.Reward, table, logs);

        // Every policy: distribution, exact value, Monte Carlo, estimates.
        clock.Restart();
        var logging = TargetPolicy.Logging.Distribution(table, null);
        var rewards = logs.Rewards(plan.Reward);
        // The surplus is nonzero on every won round (its price): the rewarded-rounds warning counts the conversions.
        bool[]? events = null;
        if (plan.Reward == OpeReward.Surplus)
        {
            events = new bool[logs.Rounds];
            for (var i = 0; i < events.Length; i++)
            {
                events[i] = logs.Won[i] && logs.Converted[i];
            }
        }
        var actions = new int[logs.Rounds];
        for (var i = 0; i < actions.Length; i++)
        {
            actions[i] = logs.Action(i);
        }
        var estimates = new List<OpeEstimateRow>();
        var truths = new List<PolicyTruthRow>();
        for (var p = 0; p < plan.Policies.Count; p++)
        {
            cancellation.ThrowIfCancellationRequested();
            var policy = plan.Policies[p];
            var distribution = policy.IsLogging ? logging : policy.Distribution(table, scores.GetValueOrDefault(policy.Scores));
            var exact = PolicyTruth.Exact(table, distribution, plan.Reward);
            var mc = PolicyTruth.MonteCarlo(table, distribution, plan.Reward, p, policy.IsLogging);
            truths.Add(new PolicyTruthRow(point, repeat, seed, policy.Name, table.Rounds, exact.Wins, exact.Conversions, exact.Value, exact.Cost,
                exact.Reward, mc.Reward, mc.RewardHalfWidth));
            var feedback = new BanditFeedback(logs.RequestId, table.Actions, actions, rewards, logs.Pscore, distribution, rewardModel, logging)
            {
                MaxReward = maxReward,
                Events = events,
            };
            var result = OffPolicyEstimators.Estimate(feedback, plan.Estimators with { BootstrapSeed = seed });
            var d = result.Diagnostics;
            var warnings = string.Join(" | ", d.Warnings);
            foreach (var e in result.Estimates)
            {
                estimates.Add(new OpeEstimateRow(point, repeat, seed, policy.Name, e.Estimator, e.Value, e.Low, e.High, exact.Reward, d.Rounds,
                    d.EssShare, d.MaxWeight, d.UnsupportedShare, warnings));
            }
        }
        return new OpeUnitResult(estimates, truths, scoreSeconds, truthSeconds, clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// The largest reward one round can earn: one conversion, or the largest value per conversion among the requests'
    /// candidate ads (values the advertiser knows; the logged rewards are included in case they were stored rounded).
    /// Null for the surplus, which can be negative: the estimators then bound it by the logged rewards.
    /// </summary>
    private static double? MaxReward(OpeReward reward, ActionTable table, LoggedFeedback logs)
    {
        if (reward == OpeReward.Conversions)
        {
            return 1;
        }
        if (reward != OpeReward.Value)
        {
            return null;
        }
        var max = 0.0;
        foreach (var v in table.Value)
        {
            max = Math.Max(max, v);
        }
        foreach (var r in logs.Rewards(reward))
        {
            max = Math.Max(max, r);
        }
        return max;
    }

    /// <summary>The dataset row of each round (both are in request-id order; the rounds are a subset).</summary>
    private static int[] DatasetRows(LoggedDataset data, LoggedFeedback logs)
    {
        var rows = new int[logs.Rounds];
        var at = 0;
        for (var i = 0; i < rows.Length; i++)
        {
            while (at < data.Count && data.RequestId[at] < logs.RequestId[i])
            {
                at++;
            }
            if (at == data.Count || data.RequestId[at] != logs.RequestId[i])
            {
                throw new InvalidDataException($"{data.Source}: request {logs.RequestId[i]} of the logs is not in the dataset");
            }
            rows[i] = at;
        }
        return rows;
    }

    /// <summary>
    /// q̂(x, a) = Ŵ(b_a | x)·r̂_K(x, j)·(value_j for the value and surplus rewards), less the win model's expected payment
    /// Ĉ(b_a | x) for the surplus, [round × A].
    /// </summary>
    private static double[] RewardModel(OpePlan plan, ActionTable table, LoggedDataset data, int[] rows, double[] rate, CancellationToken cancellation)
    {
        var bids = new double[table.Actions][];
        for (var a = 0; a < table.Actions; a++)
        {
            bids[a] = new double[table.Rounds];
            for (var i = 0; i < table.Rounds; i++)
            {
                bids[a][i] = Math.Exp(table.LogBid[i * table.Actions + a]);
            }
        }
        var curves = CandidatePredictions.WinCurves(data, plan.Options.WinModel, rows, bids, payments: plan.Reward == OpeReward.Surplus, cancellation);
        var win = curves.Win;
        var model = new double[table.Rounds * table.Actions];
        for (var i = 0; i < table.Rounds; i++)
        {
            for (var a = 0; a < table.Actions; a++)
            {
                var c = i * table.Candidates + a / table.Multipliers;
                var conversions = win[a][i] * rate[c];
                model[i * table.Actions + a] = plan.Reward switch
                {
                    OpeReward.Conversions => conversions,
                    OpeReward.Value => conversions * table.Value[c],
                    _ => (conversions * table.Value[c]) - curves.Payment![a][i],
                };
            }
        }
        return model;
    }

    private static AdCatalog ReadCatalog(LoggedView view)
    {
        var ads = view.Read(LoggedProduct.Ads, "ad_id", "campaign_id", "advertiser_id", "category", "creative");
        var id = ads.Int32("ad_id");
        var size = id.Length == 0 ? 0 : id.Max() + 1;
        int[] campaign = new int[size], advertiser = new int[size], category = new int[size], creative = new int[size];
        Array.Fill(campaign, -1);
        Array.Fill(advertiser, -1);
        Array.Fill(category, -1);
        Array.Fill(creative, -1);
        for (var r = 0; r < id.Length; r++)
        {
            campaign[id[r]] = ads.Int32("campaign_id")[r];
            advertiser[id[r]] = ads.Int32("advertiser_id")[r];
            category[id[r]] = ads.Int32("category")[r];
            creative[id[r]] = ads.Int32("creative")[r];
        }
        return new AdCatalog(campaign, advertiser, category, creative);
    }
}
