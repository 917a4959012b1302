using AdAuctionSim.Simulation.Scenarios;

namespace AdAuctionSim.Simulation.Tests;

/// <summary>The funnel: stage rates hit their targets, and the truth is honest about its own probabilities.</summary>
public sealed class FunnelTests
{
    private static Scenario Funnel(params double[] rates) => new()
    {
        Name = "funnel-test",
        Seed = 101,
        Traffic = new TrafficOptions { Requests = 400_000, Users = 20_000, Advertisers = 10, CampaignsPerAdvertiser = 4, AdsPerCampaign = 5, Sites = 50 },
        Funnel = new FunnelOptions { Stages = rates.Select((r, i) => new StageOptions($"stage{i}", r)).ToArray() },
    };

    [Fact]
    public void EachStageMeanRateIsWithinItsConfidenceIntervalOfTheTarget()
    {
        foreach (var scenario in new[] { Funnel(0.04, 0.3, 0.4), Funnel(0.1, 0.5, 0.5, 0.5) })
        {
            var bias = InMemoryRun.Of(scenario).Summary.Bias;
            for (var k = 0; k < scenario.Depth; k++)
            {
                var stage = bias.Stages[k];
                var target = stage.TargetRate;
                var n = stage.EntireSpaceRate.Trials;
                // Sampling error of this run's outcomes plus that of the world's calibration sample, which has an
                // effective size of at least WorldModel's CalibrationTargetEss (20 000) rows at every stage.
                var se = Math.Sqrt(target * (1 - target) * (1.0 / n + 1.0 / 20_000));
                var z = Bounds.BonferroniZ(scenario.Depth);
                Assert.True(Math.Abs(stage.EntireSpaceRate.Rate - target) <= z * se,
                    $"depth {scenario.Depth}, stage {k}: realised {stage.EntireSpaceRate.Rate:F5} over {n} requests, target {target}, bound ±{z * se:F5}");
            }
        }
    }

    [Fact]
    public void PotentialOutcomeFrequencyMatchesTrueRateInEveryBin()
    {
        var run = InMemoryRun.Of(Funnel(0.05, 0.3, 0.5));
        for (var k = 0; k < run.Depth; k++)
        {
            var q = new double[run.Count];
            var y = new bool[run.Count];
            for (var i = 0; i < run.Count; i++)
            {
                q[i] = run.Q(i, k);
                y[i] = run.Outcome(i, k);
            }
            Bounds.AssertCalibrated(q, y, 10, $"stage {k} potential outcomes against q_{k + 1}");
        }
    }

    [Fact]
    public void ObservedLabelsAreCumulativeAndEqualThePotentialOutcomes()
    {
        var scenario = Funnel(0.2, 0.5, 0.5);
        var world = World.WorldModel.Build(scenario with { Traffic = scenario.Traffic with { Requests = 20_000 } });
        var sink = new CheckingSink();
        Engine.Simulator.Run(world, sink, new Engine.SimulationOptions { Threads = 1 });
        Assert.True(sink.Impressions > 1000);
        Assert.True(sink.DeepestLabels > 0, "some impressions reach the last stage");
    }

    private sealed class CheckingSink : Engine.ISimulationSink
    {
        public int Impressions { get; private set; }
        public int DeepestLabels { get; private set; }

        public void Write(Engine.RequestBatch b)
        {
            for (var i = 0; i < b.Count; i++)
            {
                if (!b.Won[i])
                {
                    Assert.False(b.Reached(i, 0), "a lost request has no labels");
                    continue;
                }
                Impressions++;
                var reached = true;
                for (var k = 0; k < b.Depth; k++)
                {
                    reached &= b.Outcome[i * b.Depth + k];
                    Assert.Equal(reached, b.Reached(i, k));
                    if (k > 0 && b.Reached(i, k))
                    {
                        Assert.True(b.Reached(i, k - 1), $"stage {k} label without stage {k - 1}");
                    }
                }
                if (b.Reached(i, b.Depth - 1))
                {
                    DeepestLabels++;
                }
            }
        }
    }
}
