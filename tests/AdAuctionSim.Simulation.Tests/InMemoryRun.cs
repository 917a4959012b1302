using AdAuctionSim.Simulation.Engine;
using AdAuctionSim.Simulation.Scenarios;
using AdAuctionSim.Simulation.World;

namespace AdAuctionSim.Simulation.Tests;

/// <summary>Runs a scenario in memory and keeps the per-request columns the statistical tests read.</summary>
internal sealed class InMemoryRun : ISimulationSink
{
    private readonly List<bool> _won = [];
    private readonly List<int> _slot = [];
    private readonly List<double> _bid = [];
    private readonly List<double> _price = [];
    private readonly List<double> _market = [];
    private readonly List<double> _winAtBid = [];
    private readonly List<double> _winPropensity = [];
    private readonly List<double> _q = [];
    private readonly List<bool> _outcome = [];
    private readonly List<int> _user = [];
    private readonly List<double> _hidden = [];
    private readonly List<double> _explained = [];

    private InMemoryRun(WorldModel world) => World = world;

    public WorldModel World { get; }
    public SimulationSummary Summary { get; private set; } = null!;
    public int Depth => World.Depth;
    public int Count => _won.Count;
    public bool Won(int i) => _won[i];
    public int Slot(int i) => _slot[i];
    public double Bid(int i) => _bid[i];
    public double Price(int i) => _price[i];
    public double MarketPrice(int i) => _market[i];
    public double WinProbabilityAtBid(int i) => _winAtBid[i];
    public double WinPropensity(int i) => _winPropensity[i];
    public double Q(int i, int stage) => _q[i * Depth + stage];
    public bool Outcome(int i, int stage) => _outcome[i * Depth + stage];
    public int User(int i) => _user[i];
    public double HiddenTrait(int i) => _hidden[i];
    public double ExplainedQ(int i, int stage) => _explained[i * Depth + stage];

    /// <summary>Potential outcomes of stages 0..stage−1 all 1 (the request reaches the parent of <paramref name="stage"/>).</summary>
    public bool ReachesParent(int i, int stage)
    {
        for (var k = 0; k < stage; k++)
        {
            if (!Outcome(i, k))
            {
                return false;
            }
        }
        return true;
    }

    public static InMemoryRun Of(Scenario scenario, int threads = 2)
    {
        var run = new InMemoryRun(WorldModel.Build(scenario));
        run.Summary = Simulator.Run(run.World, run, new SimulationOptions { Threads = threads, ChunkSize = 1 << 14 });
        return run;
    }

    public void Write(RequestBatch b)
    {
        for (var i = 0; i < b.Count; i++)
        {
            _won.Add(b.Won[i]);
            _slot.Add(b.Slot[i]);
            _bid.Add(b.Bid[i]);
            _price.Add(b.Price[i]);
            _market.Add(b.MarketPrice[i]);
            _winAtBid.Add(b.WinProbabilityAtBid[i]);
            _winPropensity.Add(b.WinPropensity[i]);
            _user.Add(b.User[i]);
            _hidden.Add(b.HiddenTrait[i]);
            for (var k = 0; k < b.Depth; k++)
            {
                _q.Add(b.Q[i * b.Depth + k]);
                _explained.Add(b.ExplainedQ[i * b.Depth + k]);
                _outcome.Add(b.Outcome[i * b.Depth + k]);
            }
        }
    }
}

/// <summary>Confidence bounds used by the statistical tests.</summary>
internal static class Bounds
{
    /// <summary>Two-sided 99.9% normal quantile: one test fails by chance at most once in a thousand seeds.</summary>
    public const double Z = 3.2905267314919255;

    /// <summary>
    /// Checks calibration of probabilities against 0/1 outcomes: rows sorted by probability into equal-count bins;
    /// in each bin the outcome frequency must be within z·√(Σp(1−p))/n of the mean probability, with z Bonferroni-
    /// corrected for the number of bins (family-wise 99.9%).
    /// </summary>
    public static void AssertCalibrated(IReadOnlyList<double> probability, IReadOnlyList<bool> outcome, int bins, string what)
    {
        var order = Enumerable.Range(0, probability.Count).OrderBy(i => probability[i]).ToArray();
        var z = BonferroniZ(bins);
        for (var b = 0; b < bins; b++)
        {
            var from = (int)((long)b * order.Length / bins);
            var to = (int)((long)(b + 1) * order.Length / bins);
            double sumP = 0, sumVar = 0, hits = 0;
            for (var j = from; j < to; j++)
            {
                var p = probability[order[j]];
                sumP += p;
                sumVar += p * (1 - p);
                if (outcome[order[j]])
                {
                    hits++;
                }
            }
            var n = to - from;
            var bound = z * Math.Sqrt(sumVar) / n + 1e-12;
            var gap = Math.Abs(hits / n - sumP / n);
            Assert.True(gap <= bound,
                $"{what}, bin {b} of {bins} (p̄ = {sumP / n:F5}, n = {n}): observed {hits / n:F5}, |gap| {gap:G4} > bound {bound:G4}");
        }
    }

    /// <summary>z for a two-sided family-wise 99.9% level over <paramref name="tests"/> comparisons.</summary>
    public static double BonferroniZ(int tests) => -NormalDistribution.InverseCdf(0.0005 / tests);

    /// <summary>Mean and standard error of the mean.</summary>
    public static (double Mean, double Se) MeanSe(IEnumerable<double> values)
    {
        double n = 0, sum = 0, sumSq = 0;
        foreach (var v in values)
        {
            n++;
            sum += v;
            sumSq += v * v;
        }
        var mean = sum / n;
        var variance = Math.Max(sumSq / n - mean * mean, 0) * n / (n - 1);
        return (mean, Math.Sqrt(variance / n));
    }
}
