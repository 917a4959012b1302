using AdAuctionSim.Simulation.Engine;
using AdAuctionSim.Simulation.World;

namespace AdAuctionSim.Simulation.OffPolicy;

/// <summary>What a policy's value is measured in (the reward of a request under an action).</summary>
public enum OpeReward
{
    /// <summary>1{won}·y_K: conversions (final-stage events) per request.</summary>
    Conversions,
    /// <summary>1{won}·y_K·value per conversion of the shown ad: conversion value per request (the default).</summary>
    Value,
    /// <summary>1{won}·(y_K·value − price paid): the advertiser's surplus per request.</summary>
    Surplus,
}

/// <summary>The ids of <see cref="OpeReward"/> as scenario files and options write them.</summary>
public static class OpeRewards
{
    /// <summary><c>value</c>, <c>conversions</c>, <c>surplus</c>.</summary>
    public static IReadOnlyList<string> Ids { get; } = ["value", "conversions", "surplus"];

    /// <summary>The reward of an id of <see cref="Ids"/>.</summary>
    /// <exception cref="ArgumentException">Not one of <see cref="Ids"/>.</exception>
    public static OpeReward Parse(string id) => id switch
    {
        "value" => OpeReward.Value,
        "conversions" => OpeReward.Conversions,
        "surplus" => OpeReward.Surplus,
        _ => throw new ArgumentException($"unknown reward \"{id}\"; expected one of {string.Join(", ", Ids)}", nameof(id)),
    };
}

/// <summary>
/// The logged action space of off-policy evaluation over a set of bid requests, with the simulator's truth for every
/// action (evaluators only: this reads the world). An action is a pair (candidate ad j, bid multiplier m), index
/// <c>a = j·M + m</c>; its bid is the logging bidder's bid for that pair, <c>value_j · r̂_log(x, j) · m</c>, so that the
/// logs can stand for it: a target policy chooses among the bids the logging policy could have placed (see
/// <see cref="TargetPolicy"/>). Per-candidate arrays are [round × N], per-action arrays [round × A].
/// </summary>
/// <remarks>
/// Every request is replayed by <see cref="RequestKernel.Replay"/> with the simulation's counter-based random numbers,
/// so each action's outcome here is what the simulation would have produced had the logging policy drawn it: the same
/// competitors' noise (their bids shift with the shown ad's value signal, κ) and the same outcome uniforms (stage k of
/// ad j happens when u_k &lt; q_k(x, j)). The exact expectations use the world's closed forms: P(win | x, b) =
/// 1[b ≥ reserve]·Π_c Φ((ln b − μ_c − κ·v(x, j)) / σ), r_K(x, j) = Π_k q_k(x, j) (hidden trait included) and the expected
/// payment of <see cref="WorldModel.ExpectedPayment"/>; the outcomes are drawn independently of the auction, so
/// E[1{won}·y_K | x, a] = P(win | x, b_a)·r_K(x, j) exactly.
/// </remarks>
public sealed class ActionTable
{
    private ActionTable(int rounds, int candidates, int multipliers, int depth)
    {
        Rounds = rounds;
        Candidates = candidates;
        Multipliers = multipliers;
        Depth = depth;
        RequestId = new long[rounds];
        RequestBase = new ulong[rounds];
        LoggedAction = new int[rounds];
        LoggedPscore = new double[rounds];
        CandidateAd = new int[rounds * candidates];
        Value = new double[rounds * candidates];
        TrueRate = new double[rounds * candidates];
        LoggingRate = new double[rounds * candidates];
        LoggingAdProbability = new double[rounds * candidates];
        Converts = new bool[rounds * candidates];
        var actions = rounds * candidates * multipliers;
        LogBid = new double[actions];
        WinProbability = new double[actions];
        ExpectedPayment = new double[actions];
        Wins = new bool[actions];
        Payment = new double[actions];
    }

    public int Rounds { get; }
    /// <summary>Candidate ads per request N.</summary>
    public int Candidates { get; }
    /// <summary>Bid multipliers of the logging policy M.</summary>
    public int Multipliers { get; }
    /// <summary>Actions per request A = N·M.</summary>
    public int Actions => Candidates * Multipliers;
    public int Depth { get; }
    public long[] RequestId { get; }
    internal ulong[] RequestBase { get; }
    /// <summary>The logging policy's action of each request (as logged: action·M + multiplier index).</summary>
    public int[] LoggedAction { get; }
    /// <summary>Its probability π_log(j)·π(m), computed as the logged <c>pscore</c>.</summary>
    public double[] LoggedPscore { get; }
    public int[] CandidateAd { get; }
    /// <summary>Value per conversion of each candidate's ad.</summary>
    public double[] Value { get; }
    /// <summary>True r_K(x, j) of each candidate (hidden trait and slot examination included).</summary>
    public double[] TrueRate { get; }
    /// <summary>The logging model's estimate of r_K(x, j) (what its bid is proportional to).</summary>
    public double[] LoggingRate { get; }
    /// <summary>The logging policy's probability of each candidate ad.</summary>
    public double[] LoggingAdProbability { get; }
    public IReadOnlyList<double> MultiplierValues { get; private init; } = [];
    public IReadOnlyList<double> MultiplierProbabilities { get; private init; } = [];
    /// <summary>ln of each action's bid.</summary>
    public double[] LogBid { get; }
    /// <summary>True P(win | x, b_a) of each action.</summary>
    public double[] WinProbability { get; }
    /// <summary>True E[price·1{win} | x, a] of each action.</summary>
    public double[] ExpectedPayment { get; }
    /// <summary>Whether each action would have won under the request's common random numbers.</summary>
    public bool[] Wins { get; }
    /// <summary>Price each action would have paid under the common random numbers (0 when it would have lost).</summary>
    public double[] Payment { get; }
    /// <summary>Whether each candidate, shown, would have converted (every stage's potential outcome 1).</summary>
    public bool[] Converts { get; }

    /// <summary>Expected reward E[R | x_i, a] of every action, [round × A] (the true reward function).</summary>
    public double[] ExpectedReward(OpeReward reward)
    {
        var result = new double[Rounds * Actions];
        for (var i = 0; i < Rounds; i++)
        {
            for (var a = 0; a < Actions; a++)
            {
                result[i * Actions + a] = ExpectedReward(reward, i, a);
            }
        }
        return result;
    }

    /// <summary>E[R | x_i, a].</summary>
    public double ExpectedReward(OpeReward reward, int round, int action)
    {
        var c = round * Candidates + action / Multipliers;
        var at = round * Actions + action;
        var conversions = WinProbability[at] * TrueRate[c];
        return reward switch
        {
            OpeReward.Conversions => conversions,
            OpeReward.Value => conversions * Value[c],
            _ => conversions * Value[c] - ExpectedPayment[at],
        };
    }

    /// <summary>The reward action <paramref name="action"/> would have realised under the common random numbers.</summary>
    public double RealisedReward(OpeReward reward, int round, int action)
    {
        var c = round * Candidates + action / Multipliers;
        var at = round * Actions + action;
        if (!Wins[at])
        {
            return 0;
        }
        var converted = Converts[c] ? 1.0 : 0.0;
        return reward switch
        {
            OpeReward.Conversions => converted,
            OpeReward.Value => converted * Value[c],
            _ => converted * Value[c] - Payment[at],
        };
    }

    /// <summary>
    /// Replays the requests (ids and simulated timestamps as logged) in <paramref name="world"/>; rounds are independent,
    /// so the table is identical for any thread count.
    /// </summary>
    public static ActionTable Build(WorldModel world, long[] requestId, long[] timestamp, int threads = 0, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(world);
        ArgumentNullException.ThrowIfNull(requestId);
        ArgumentNullException.ThrowIfNull(timestamp);
        if (requestId.Length != timestamp.Length)
        {
            throw new ArgumentException($"{requestId.Length} request ids for {timestamp.Length} timestamps", nameof(timestamp));
        }
        var n = requestId.Length;
        var candidates = world.CandidateCount;
        var m = world.Multiplier.Length;
        var k = world.Depth;
        var table = new ActionTable(n, candidates, m, k)
        {
            MultiplierValues = [.. world.Multiplier],
            MultiplierProbabilities = [.. world.MultiplierProbability],
        };
        var kernel = new RequestKernel(world, world.RequestKey);
        const int Block = 1024;
        var blocks = (n + Block - 1) / Block;
        var options = new ParallelOptions
        {
            MaxDegreeOfParallelism = threads > 0 ? threads : Environment.ProcessorCount,
            CancellationToken = cancellation,
        };
        Parallel.For(0, blocks, options, () => new ReplayedRequest(candidates, k, world.CompetitorMu.Length), (b, _, replay) =>
        {
            var end = Math.Min(n, (b + 1) * Block);
            for (var i = b * Block; i < end; i++)
            {
                kernel.Replay(requestId[i], timestamp[i], replay);
                table.Fill(world, i, replay);
            }
            return replay;
        }, _ => { });
        return table;
    }

    private void Fill(WorldModel w, int i, ReplayedRequest r)
    {
        var n = Candidates;
        var m = Multipliers;
        var k = Depth;
        RequestId[i] = r.RequestId;
        RequestBase[i] = r.RequestBase;
        LoggedAction[i] = r.Action * m + r.Multiplier;
        LoggedPscore[i] = r.AdProbability[r.Action] * w.MultiplierProbability[r.Multiplier];
        var mu = w.CompetitorMu;
        for (var j = 0; j < n; j++)
        {
            var c = i * n + j;
            var ad = r.Candidates[j];
            CandidateAd[c] = ad;
            Value[c] = w.AdValue[ad];
            TrueRate[c] = r.TrueRate[j];
            LoggingRate[c] = r.LoggingRate[j];
            LoggingAdProbability[c] = r.AdProbability[j];
            var converts = true;
            for (var stage = 0; stage < k; stage++)
            {
                converts &= r.OutcomeUniform[stage] < r.Q[j * k + stage];
            }
            Converts[c] = converts;
            var shift = r.Shift[j];
            // The market price with ad j shown, exactly as the simulation forms it.
            var maxLog = double.NegativeInfinity;
            for (var q = 0; q < mu.Length; q++)
            {
                maxLog = Math.Max(maxLog, mu[q] + shift + r.CompetitorNoise[q]);
            }
            for (var mi = 0; mi < m; mi++)
            {
                var a = (i * n + j) * m + mi;
                var logBid = r.LogBidBase[j] + w.LogMultiplier[mi];
                LogBid[a] = logBid;
                WinProbability[a] = logBid >= w.LogReserve ? w.WinCurve(logBid - shift) : 0.0;
                ExpectedPayment[a] = w.ExpectedPayment(logBid, shift);
                var won = logBid > maxLog && logBid >= w.LogReserve;
                Wins[a] = won;
                Payment[a] = won ? (w.SecondPrice ? Math.Max(Math.Exp(maxLog), w.Reserve) : Math.Exp(logBid)) : 0.0;
            }
        }
    }
}
