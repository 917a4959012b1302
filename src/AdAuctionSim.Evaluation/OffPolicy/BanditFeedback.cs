namespace AdAuctionSim.Evaluation.OffPolicy;

/// <summary>
/// Logged bandit feedback with the action distributions the estimators need (Open Bandit Pipeline's
/// <c>bandit_feedback</c> plus <c>action_dist</c> and <c>estimated_rewards_by_reg_model</c>), as plain arrays. One round
/// is one bid request of D (impressions and lost bids: a lost bid is a round whose reward is 0), and the action space
/// has <see cref="Actions"/> discrete actions per round. Per-action arrays are row-major: <c>Target[i * Actions + a]</c>.
/// </summary>
/// <remarks>
/// Win selection: the logs hold every bid, won or lost, with the logging policy's action and its probability, so the
/// auction outcome is part of the reward, not of the propensity: <c>Pscore</c> is π_log(a_i | x_i) and a lost bid's
/// reward is 0. IPS then estimates V(π) = E_x Σ_a π(a | x)·E[R | x, a], the value per request including the chance of
/// winning at the policy's bid. Weighting the won rows alone by 1 / (π_log·P(win | x, b)) would estimate the value the
/// policy would have if every bid won, another quantity, and would need the true win probability besides.
/// </remarks>
/// <param name="RequestId">Request id of each round (keys the bootstrap's resampling weights).</param>
/// <param name="Actions">Actions per round, A.</param>
/// <param name="Action">Logged action a_i ∈ [0, A).</param>
/// <param name="Reward">Observed reward r_i (0 for a lost bid).</param>
/// <param name="Pscore">Logging policy's probability of the logged action, π_log(a_i | x_i) &gt; 0.</param>
/// <param name="Target">Target policy's action distribution π_e(a | x_i), [n × A].</param>
/// <param name="RewardModel">Reward model q̂(x_i, a), [n × A] (DM, DR and their variants).</param>
/// <param name="Logging">Logging policy's full action distribution π_log(a | x_i), [n × A], for the support diagnostic.</param>
public sealed record BanditFeedback(
    long[] RequestId,
    int Actions,
    int[] Action,
    double[] Reward,
    double[] Pscore,
    double[] Target,
    double[] RewardModel,
    double[] Logging)
{
    /// <summary>
    /// The largest reward one round can earn, when known (rewards then lie in [0, MaxReward]; <see cref="Validate"/> checks
    /// it). It bounds IPS's interval when no matched round is rewarded (<see cref="OffPolicyEstimators.NoRewardInterval"/>);
    /// null: the largest logged reward stands in for it.
    /// </summary>
    public double? MaxReward { get; init; }

    /// <summary>
    /// The rounds whose reward holds the rare event it is scored on (a conversion), when the reward is nonzero on other
    /// rounds too: the surplus, which every won round has (its price). The rewarded-rounds warning then counts the
    /// matched rounds among these, the only ones the reward's value part rests on. Null: a round counts when its reward
    /// is nonzero.
    /// </summary>
    public bool[]? Events { get; init; }

    /// <summary>Rounds n.</summary>
    public int Rounds => Action.Length;

    /// <summary>Checks shapes and ranges; throws <see cref="ArgumentException"/> naming the array and the round.</summary>
    public void Validate()
    {
        var n = Rounds;
        if (Actions < 1)
        {
            throw new ArgumentException($"actions per round must be at least 1; got {Actions}");
        }
        foreach (var (name, length) in (ReadOnlySpan<(string, int)>)[("requestId", RequestId.Length), ("reward", Reward.Length), ("pscore", Pscore.Length),
            ("events", Events?.Length ?? n)])
        {
            if (length != n)
            {
                throw new ArgumentException($"{name} has {length} entries for {n} rounds");
            }
        }
        foreach (var (name, length) in (ReadOnlySpan<(string, int)>)[("target", Target.Length), ("rewardModel", RewardModel.Length), ("logging", Logging.Length)])
        {
            if (length != (long)n * Actions)
            {
                throw new ArgumentException($"{name} has {length} entries; expected rounds × actions = {(long)n * Actions}");
            }
        }
        if (MaxReward is { } max && !(max >= 0 && double.IsFinite(max)))
        {
            throw new ArgumentException($"max reward {max} is not a finite number of at least 0");
        }
        for (var i = 0; i < n; i++)
        {
            if ((uint)Action[i] >= (uint)Actions)
            {
                throw new ArgumentException($"round {i}: action {Action[i]} is outside [0, {Actions})");
            }
            if (!(Pscore[i] > 0 && Pscore[i] <= 1))
            {
                throw new ArgumentException($"round {i}: pscore {Pscore[i]} is not in (0, 1]");
            }
            if (!double.IsFinite(Reward[i]))
            {
                throw new ArgumentException($"round {i}: reward {Reward[i]} is not finite");
            }
            if (MaxReward is { } bound && !(Reward[i] >= 0 && Reward[i] <= bound))
            {
                throw new ArgumentException($"round {i}: reward {Reward[i]} is outside [0, {bound}] (maxReward)");
            }
        }
    }
}
