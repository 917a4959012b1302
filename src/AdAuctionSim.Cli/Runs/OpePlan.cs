using System.Globalization;
using AdAuctionSim.Cli.Commands;
using AdAuctionSim.Evaluation.OffPolicy;
using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.WinPropensity;
using AdAuctionSim.Simulation.OffPolicy;
using AdAuctionSim.Simulation.Scenarios;

namespace AdAuctionSim.Cli.Runs;

/// <summary>
/// The <c>ope</c> section resolved and checked: the policies (the logging policy first), the reward, the reward model,
/// the estimators' options and the models the policies and the reward model need trained. Every problem is a
/// <see cref="ScenarioError"/> with its field path.
/// </summary>
internal sealed record OpePlan(
    OpeOptions Options,
    IReadOnlyList<TargetPolicy> Policies,
    OpeReward Reward,
    EstimatorOptions Estimators,
    IReadOnlyList<string> Models)
{
    /// <summary>Resolves the section against the model catalog and every sweep point's logging multipliers.</summary>
    /// <param name="options">The parsed section.</param>
    /// <param name="points">The scenarios of every sweep point.</param>
    /// <param name="trained">Models a run trains anyway (null: train whatever the section needs).</param>
    /// <param name="errors">Receives every problem.</param>
    public static OpePlan Create(OpeOptions options, IReadOnlyList<Scenario> points, IReadOnlyList<string>? trained, List<ScenarioError> errors)
    {
        var models = new List<string>();
        void Source(string path, string id)
        {
            if (id is TargetPolicy.TruthScores or TargetPolicy.LoggingScores)
            {
                return;
            }
            if (!ModelCatalog.TryGet(id, out var entry))
            {
                errors.Add(new ScenarioError(path, $"\"{id}\" is not a score source; expected \"truth\", \"logging\" or a model of the catalog: {string.Join(", ", ModelCatalog.Ids)}"));
                return;
            }
            foreach (var depth in points.Select(p => p.Depth).Distinct())
            {
                if (entry.Unsupported(depth) is { } why)
                {
                    errors.Add(new ScenarioError(path, $"\"{id}\" cannot serve a funnel of depth {depth}: {why}"));
                }
            }
            if (trained is not null && !trained.Contains(id, StringComparer.Ordinal))
            {
                errors.Add(new ScenarioError(path, $"model \"{id}\" is not trained by this run; expected one of the run's models ({string.Join(", ", trained)}), or add it to \"models\""));
            }
            if (!models.Contains(id, StringComparer.Ordinal))
            {
                models.Add(id);
            }
        }

        var policies = new List<TargetPolicy> { TargetPolicy.Logging };
        for (var i = 0; i < options.Policies.Count; i++)
        {
            var p = options.Policies[i];
            var where = $"ope.policies[{i}]";
            var ad = p.Ad switch
            {
                "softmax" => AdRule.Softmax,
                "uniform" => AdRule.Uniform,
                "logging" => AdRule.Logging,
                _ => AdRule.Greedy,
            };
            var bid = p.Bid switch
            {
                "logging" => BidRule.Logging,
                "fixed" => BidRule.Fixed,
                _ => BidRule.Own,
            };
            if (ad is AdRule.Greedy or AdRule.Softmax || bid == BidRule.Own)
            {
                Source($"{where}.scores", p.Scores);
            }
            if (bid == BidRule.Fixed)
            {
                foreach (var s in points)
                {
                    if (!s.LoggingPolicy.BidMultipliers.Contains(p.Multiplier))
                    {
                        errors.Add(new ScenarioError($"{where}.multiplier", $"value {ScenarioFiles.F(p.Multiplier)} is not a bid level of the logging policy; expected one of "
                            + string.Join(", ", s.LoggingPolicy.BidMultipliers.Select(ScenarioFiles.F)) + " (loggingPolicy.bidMultipliers)"));
                        break;
                    }
                }
            }
            policies.Add(new TargetPolicy(p.Name, p.Scores, ad, p.Temperature, bid, p.BidScale, p.Multiplier));
        }
        Source("ope.rewardModel", options.RewardModel);
        if (options.RewardModel != TargetPolicy.TruthScores && WinPropensityModels.FirstPriceProblem(options.WinModel) is { } problem
            && points.Any(p => p.Auction.Type == AuctionType.FirstPrice))
        {
            errors.Add(new ScenarioError("ope.winModel", $"\"{options.WinModel}\" {problem}, and auction.type is \"first-price\"; expected "
                + RunPlan.Quoted(WinPropensityModels.Ids.Where(id => WinPropensityModels.FirstPriceProblem(id) is null))
                + " (or rewardModel \"truth\", which fits no win model)"));
        }
        var estimators = new EstimatorOptions
        {
            ClipThreshold = options.Clip,
            SwitchThreshold = options.Switch,
            BootstrapResamples = options.Bootstrap,
        };
        var reward = OpeRewards.Parse(options.Reward);
        return new OpePlan(options, policies, reward, estimators, models);
    }

    /// <summary>
    /// Whether DM's and DR's reward model is the simulator's true reward function (<c>rewardModel: "truth"</c>): then
    /// <see cref="OpeUnit"/> neither loads the dataset for it nor fits a win model, and <c>winModel</c> is not used.
    /// </summary>
    public bool TruthRewardModel => Options.RewardModel == TargetPolicy.TruthScores;

    /// <summary>What DM's and DR's reward model q̂(x, a) is, as <see cref="OpeUnit"/> builds it (the report's facts).</summary>
    public string RewardModelText
    {
        get
        {
            var value = Reward == OpeReward.Conversions ? "" : "·value_j";
            if (TruthRewardModel)
            {
                var cost = Reward == OpeReward.Surplus ? " − E[price·1{win} | x, b_a]" : "";
                return $"the simulator's true E[R | x, a] = P(win | x, b_a)·r_K(x, j){value}{cost} (rewardModel \"truth\": an oracle reference, nothing is fitted)";
            }
            var payment = Reward == OpeReward.Surplus ? ", less the expected payment Ĉ(b_a | x) that the same win model implies" : "";
            return $"Ŵ(b_a | x) of the {Options.WinModel} win model fitted on the train split's auctions × r̂_K(x, j) from {Options.RewardModel}{value}{payment}";
        }
    }

    /// <summary>What the "ope scores" phase of a unit does (the timings' covers column).</summary>
    public string ScoresCovers(string device)
    {
        var parts = new List<string>();
        if (Models.Count > 0)
        {
            parts.Add($"loading the logged dataset and scoring every candidate ad with {string.Join(", ", Models)}");
        }
        parts.Add(TruthRewardModel
            ? "taking the true expected reward of every action as the reward model (rewardModel truth: nothing fitted)"
            : $"{(Models.Count > 0 ? "" : "loading the logged dataset, ")}fitting the {Options.WinModel} win model on the train split and scoring every action's bid with it for the reward model");
        return $"{string.Join("; ", parts)}; {device}";
    }

    /// <summary>A one-line description for the command's heading.</summary>
    public string Describe()
    {
        var model = TruthRewardModel ? "reward model truth (the true reward function)" : $"reward model {Options.RewardModel} × {Options.WinModel} win model";
        return string.Create(CultureInfo.InvariantCulture,
            $"ope: {Policies.Count} policies ({string.Join(", ", Policies.Select(p => p.Name))}), reward {Options.Reward} on the {Options.Split} split, "
            + $"{model}, {Options.Bootstrap} bootstrap resamples");
    }
}
