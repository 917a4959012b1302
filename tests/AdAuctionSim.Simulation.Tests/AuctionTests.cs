using AdAuctionSim.Simulation.Engine;
using AdAuctionSim.Simulation.Scenarios;

namespace AdAuctionSim.Simulation.Tests;

/// <summary>The auction: the exact win probabilities are honest, and prices follow the auction rule.</summary>
public sealed class AuctionTests
{
    private static Scenario Market(AuctionType type, double reserve) => new()
    {
        Name = "auction-test",
        Seed = 202,
        Traffic = new TrafficOptions { Requests = 300_000, Users = 10_000, Advertisers = 10, CampaignsPerAdvertiser = 4, AdsPerCampaign = 5, Sites = 50 },
        Auction = new AuctionOptions { Type = type, ReservePrice = reserve, Competitors = 3, TargetWinRate = 0.35 },
    };

    [Fact]
    public void EmpiricalWinRateMatchesTrueWinProbabilityAtTheBid()
    {
        var run = InMemoryRun.Of(Market(AuctionType.SecondPrice, 0));
        var p = Enumerable.Range(0, run.Count).Select(run.WinProbabilityAtBid).ToArray();
        var won = Enumerable.Range(0, run.Count).Select(run.Won).ToArray();
        Bounds.AssertCalibrated(p, won, 20, "won against P(win | x, b)");
    }

    [Fact]
    public void MeanTrueWinPropensityMatchesTheRealisedWinRate()
    {
        var run = InMemoryRun.Of(Market(AuctionType.SecondPrice, 0));
        var (mean, _) = Bounds.MeanSe(Enumerable.Range(0, run.Count).Select(run.WinPropensity));
        var variance = Enumerable.Range(0, run.Count).Sum(i => run.WinPropensity(i) * (1 - run.WinPropensity(i)));
        var bound = Bounds.Z * Math.Sqrt(variance) / run.Count;
        Assert.InRange(run.Summary.Bias.WinRate, mean - bound, mean + bound);
    }

    [Fact]
    public void SecondPricePaysTheMarketPriceOrTheReserve()
    {
        const double reserve = 0.02;
        var run = InMemoryRun.Of(Market(AuctionType.SecondPrice, reserve));
        var reserveBound = 0;
        for (var i = 0; i < run.Count; i++)
        {
            if (run.Won(i))
            {
                Assert.True(run.Bid(i) > run.MarketPrice(i) && run.Bid(i) >= reserve, $"row {i} won without beating the market and the reserve");
                Assert.Equal(Math.Max(run.MarketPrice(i), reserve), run.Price(i));
                if (run.MarketPrice(i) < reserve)
                {
                    reserveBound++;
                }
            }
            else
            {
                Assert.True(run.Bid(i) <= run.MarketPrice(i) || run.Bid(i) < reserve, $"row {i} lost although it beat the market and the reserve");
                Assert.Equal(0, run.Price(i));
            }
        }
        Assert.True(reserveBound > 0, "the reserve price binds on some auctions");
    }

    [Fact]
    public void FirstPricePaysTheBid()
    {
        var run = InMemoryRun.Of(Market(AuctionType.FirstPrice, 0));
        for (var i = 0; i < run.Count; i++)
        {
            Assert.Equal(run.Won(i) ? run.Bid(i) : 0, run.Price(i));
        }
    }

    [Fact]
    public void TabulatedNormalCdfMatchesTheExactOne()
    {
        var worst = 0.0;
        for (var x = -10.0; x <= 10.0; x += 0.000_731)
        {
            worst = Math.Max(worst, Math.Abs(NormalDistribution.Cdf(x) - NormalDistribution.CdfExact(x)));
        }
        Assert.True(worst < 1e-13, $"max |Φ table − Φ| = {worst:G3}");
    }

    [Fact]
    public void InverseCdfInvertsTheCdf()
    {
        foreach (var p in new[] { 1e-12, 1e-6, 0.01, 0.02425, 0.3, 0.5, 0.7, 0.97575, 0.999, 1 - 1e-9 })
        {
            Assert.Equal(p, NormalDistribution.CdfExact(NormalDistribution.InverseCdf(p)), Math.Min(p, 1 - p) * 1e-9);
        }
    }

    [Fact]
    public void AliasTableDrawsFollowTheWeights()
    {
        double[] weights = [5, 1, 0.5, 3, 0.01, 0];
        var alias = new AliasTable(weights);
        var counts = new int[weights.Length];
        const int n = 2_000_000;
        var rng = new SequentialRng(42);
        for (var i = 0; i < n; i++)
        {
            counts[alias.Sample(rng.NextBits())]++;
        }
        var total = weights.Sum();
        var z = Bounds.BonferroniZ(weights.Length);
        for (var j = 0; j < weights.Length; j++)
        {
            var p = weights[j] / total;
            Assert.InRange((double)counts[j] / n, p - z * Math.Sqrt(p * (1 - p) / n) - 1e-9, p + z * Math.Sqrt(p * (1 - p) / n) + 1e-9);
        }
    }
}
