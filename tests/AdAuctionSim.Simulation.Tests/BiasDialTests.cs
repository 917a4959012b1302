using AdAuctionSim.Simulation.Scenarios;

namespace AdAuctionSim.Simulation.Tests;

/// <summary>Every bias dial does what DESIGN.md §3 says, measured against the truth with bounds from the sample size.</summary>
public sealed class BiasDialTests
{
    /// <summary>
    /// A world where requests are close to independent draws: users are uniformly popular, so bounds computed from
    /// request counts are honest (with Zipf-popular users, requests cluster by user and the bounds would be too narrow).
    /// </summary>
    private static Scenario Marketplace(long requests, double rho = 0, double gamma = 0, double kappa = 0, double eta = 0, double quality = 0) => new()
    {
        Name = "dial-test",
        Seed = 303,
        Traffic = new TrafficOptions { Requests = requests, Users = 100_000, UserZipf = 0, Sites = 100 },
        Funnel = new FunnelOptions { Stages = [new("click", 0.1), new("authorize", 0.3), new("convert", 0.4)] },
        Bias = new BiasOptions { ClickCvrCorrelation = rho, HiddenConfounding = gamma, WinValueCorrelation = kappa, PositionEffect = eta },
        LoggingPolicy = new LoggingPolicyOptions { EstimateQuality = quality },
        Values = new ValueOptions { ValueSpread = quality == 0 ? 0 : 0.5 },
    };

    [Fact]
    public void WithEveryDialZeroClickedCvrEqualsEntireSpaceCvr()
    {
        var run = InMemoryRun.Of(Marketplace(2_000_000));
        foreach (var stage in run.Summary.Bias.Stages.Skip(1))
        {
            // Observed CVR on the logged parent population (C for the first post-click stage) against the mean
            // counterfactual rate over all of D.
            var logged = stage.LoggedRate;
            var target = stage.CounterfactualMeanQ;
            var se = Math.Sqrt(target * (1 - target) / logged.Trials);
            var z = Bounds.BonferroniZ(run.Depth - 1);
            Assert.True(Math.Abs(logged.Rate - target) <= z * se,
                $"{stage.Stage}: CVR on the logged parent {logged.Rate:F5} (n = {logged.Trials}) vs counterfactual mean on D {target:F5}; bound ±{z * se:F5}");
        }
    }

    [Fact]
    public void ClickCvrDialRaisesTheSelectionRatioAboveOneAndItGrowsWithTheDial()
    {
        double previous = 0, previousSe = 0;
        foreach (var rho in new[] { 0.0, 0.4, 0.8 })
        {
            var (ratio, se) = ClickSelection(InMemoryRun.Of(Marketplace(600_000, rho: rho)));
            if (rho > 0)
            {
                Assert.True(ratio - Bounds.Z * se > 1, $"ρ = {rho}: ratio {ratio:F4} ± {Bounds.Z * se:F4} is not above 1");
                Assert.True(ratio - previous > Bounds.Z * Math.Sqrt(se * se + previousSe * previousSe),
                    $"ρ = {rho}: ratio {ratio:F4} does not exceed {previous:F4} beyond the bound");
            }
            (previous, previousSe) = (ratio, se);
        }
    }

    /// <summary>
    /// bias.hiddenPerRequest = s redraws that share of the hidden trait's variance for every request: a user's requests
    /// keep one trait at s = 0, and at s = 0.64 the pooled within-user variance of the trait is s (chi-square bound
    /// from its degrees of freedom), while the funnel still selects on it.
    /// </summary>
    [Fact]
    public void HiddenPerRequestRedrawsThatShareOfTheTraitForEveryRequest()
    {
        foreach (var share in new[] { 0.0, 0.64 })
        {
            var scenario = Marketplace(200_000, gamma: 1.0) with
            {
                Traffic = new TrafficOptions { Requests = 200_000, Users = 2_000, UserZipf = 0, Sites = 100 },
            };
            scenario = scenario with { Bias = scenario.Bias with { HiddenPerRequest = share } };
            var run = InMemoryRun.Of(scenario);
            var byUser = Enumerable.Range(0, run.Count).GroupBy(run.User).Where(g => g.Count() >= 2).ToList();
            double squares = 0;
            long df = 0;
            foreach (var g in byUser)
            {
                var mean = g.Average(run.HiddenTrait);
                squares += g.Sum(i => (run.HiddenTrait(i) - mean) * (run.HiddenTrait(i) - mean));
                df += g.Count() - 1;
            }
            var within = squares / df;
            if (share == 0)
            {
                Assert.Equal(0, within, 1e-20);
            }
            else
            {
                var bound = Bounds.Z * share * Math.Sqrt(2.0 / df);
                Assert.True(Math.Abs(within - share) <= bound, $"s = {share}: within-user variance {within:F4} (df {df}), bound ±{bound:F4}");
            }
            var (ratio, se) = ClickSelection(run);
            Assert.True(ratio - Bounds.Z * se > 1, $"s = {share}, γ = 1: ratio {ratio:F4} ± {Bounds.Z * se:F4} is not above 1");

            // E[q | x] averages the rate over the per-request part: equal to q without one; with one, its mean over the
            // impressions (won on x alone) is the mean of q (tower property) within the bound of the per-request
            // differences, and the features leave a part of the funnel's selection unexplained.
            var stage = run.Summary.Bias.Stages[1];
            if (share == 0)
            {
                Assert.All(Enumerable.Range(0, run.Count), i => Assert.Equal(run.Q(i, 1), run.ExplainedQ(i, 1)));
                Assert.Equal(1.0, stage.HiddenSelectionPart);
            }
            else
            {
                var (meanGap, gapSe) = Bounds.MeanSe(Enumerable.Range(0, run.Count).Where(run.Won).Select(i => run.Q(i, 1) - run.ExplainedQ(i, 1)));
                Assert.True(Math.Abs(meanGap) <= Bounds.Z * gapSe, $"mean q − E[q | x] over O {meanGap:E3}, bound ±{Bounds.Z * gapSe:E3}");
                var (clickedGap, clickedSe) = Bounds.MeanSe(Enumerable.Range(0, run.Count).Where(i => run.Won(i) && run.Outcome(i, 0))
                    .Select(i => run.Q(i, 1) - run.ExplainedQ(i, 1)));
                Assert.True(clickedGap - Bounds.Z * clickedSe > 0, $"on C, q exceeds E[q | x] by {clickedGap:E3} ± {Bounds.Z * clickedSe:E3}: not above 0");
                Assert.True(stage.HiddenSelectionPart > 1.05, $"hidden selection part {stage.HiddenSelectionPart}");
            }
        }
    }

    /// <summary>Gauss–Hermite weights integrate the standard normal's moments exactly, and E_ε[σ(a + cε)] matches a fine trapezoid rule.</summary>
    [Fact]
    public void The_explained_rate_is_the_logistic_rate_averaged_over_a_standard_normal()
    {
        var (nodes, weights) = World.GaussHermite.Standard(World.WorldModel.ExplainedRateNodes);
        Assert.Equal(1, weights.Sum(), 1e-13);
        Assert.Equal(0, nodes.Zip(weights, (x, w) => w * x).Sum(), 1e-13);
        Assert.Equal(1, nodes.Zip(weights, (x, w) => w * x * x).Sum(), 1e-12);
        Assert.Equal(3, nodes.Zip(weights, (x, w) => w * Math.Pow(x, 4)).Sum(), 1e-11);
        Assert.Equal(15, nodes.Zip(weights, (x, w) => w * Math.Pow(x, 6)).Sum(), 1e-10);

        var world = World.WorldModel.Build(Marketplace(1_000, gamma: 1.2) with { Bias = new BiasOptions { HiddenConfounding = 1.2, HiddenPerRequest = 0.5 } });
        var c = 1.2 * Math.Sqrt(0.5);
        foreach (var a in new[] { -4.0, -1.5, 0.0, 2.0 })
        {
            // Trapezoid over [−12, 12] with step 1e-3: error far below 1e-9 for this smooth, rapidly decaying integrand.
            var h = 1e-3;
            var sum = 0.0;
            for (var e = -12.0; e <= 12.0 + (h / 2); e += h)
            {
                sum += Math.Exp(-0.5 * e * e) / Math.Sqrt(2 * Math.PI) / (1 + Math.Exp(-(a + (c * e))));
            }
            Assert.Equal(sum * h, world.ExplainedRate(a), 1e-9);
        }
    }

    [Fact]
    public void HiddenConfoundingRaisesTheSelectionRatio()
    {
        var (ratio, se) = ClickSelection(InMemoryRun.Of(Marketplace(600_000, gamma: 1.0)));
        Assert.True(ratio - Bounds.Z * se > 1, $"γ = 1: ratio {ratio:F4} ± {Bounds.Z * se:F4} is not above 1");
    }

    /// <summary>
    /// κ > 0: competitors bid up the requests that are worth more to us, so we win a slice of lower value and the
    /// ratio of mean r_K on O to mean r_K on D falls; κ &lt; 0 does the opposite.
    /// </summary>
    [Fact]
    public void WinValueDialLowersTheWonSliceValueAsItRises()
    {
        var ratios = new[] { -1.0, 0.0, 1.0 }
            .Select(kappa => WinSelection(InMemoryRun.Of(Marketplace(400_000, kappa: kappa, quality: 0.7))))
            .ToArray();
        for (var i = 1; i < ratios.Length; i++)
        {
            var margin = Bounds.Z * Math.Sqrt(ratios[i].Se * ratios[i].Se + ratios[i - 1].Se * ratios[i - 1].Se);
            Assert.True(ratios[i - 1].Ratio - ratios[i].Ratio > margin,
                $"O/D ratio of r_K does not fall with κ: {string.Join(", ", ratios.Select(r => r.Ratio.ToString("F4")))}");
        }
        Assert.True(ratios[2].Ratio + Bounds.Z * ratios[2].Se < 1, $"κ = 1 should leave us the less valuable slice, ratio {ratios[2].Ratio:F4}");
    }

    [Fact]
    public void PositionEffectScalesTheClickRateBySlotExaminationAndIsFlatWithoutIt()
    {
        foreach (var eta in new[] { 0.0, 1.0 })
        {
            var run = InMemoryRun.Of(Marketplace(400_000, eta: eta));
            var slots = run.World.Examination.Count;
            var clicks = new double[slots];
            var shown = new double[slots];
            for (var i = 0; i < run.Count; i++)
            {
                shown[run.Slot(i)]++;
                clicks[run.Slot(i)] += run.Outcome(i, 0) ? 1 : 0;
            }
            // Slot is drawn independently of everything else, so on D the click rate of slot j is exam_j × (a common
            // rate): the ratio to slot 0 must equal the examination ratio.
            var rate0 = clicks[0] / shown[0];
            for (var j = 1; j < slots; j++)
            {
                var rate = clicks[j] / shown[j];
                var expected = run.World.Examination[j] / run.World.Examination[0];
                var se = Math.Sqrt(rate * (1 - rate) / shown[j] / (rate0 * rate0) + rate * rate * (1 - rate0) / (rate0 * shown[0] * rate0 * rate0));
                var z = Bounds.BonferroniZ(slots - 1);
                Assert.True(Math.Abs(rate / rate0 - expected) <= z * se,
                    $"η = {eta}, slot {j}: click-rate ratio {rate / rate0:F4}, examination ratio {expected:F4}, bound ±{z * se:F4}");
            }
        }
    }

    /// <summary>Mean q₂ over the clicked impressions divided by its mean over D, with the standard error of the numerator.</summary>
    private static (double Ratio, double Se) ClickSelection(InMemoryRun run)
    {
        var clicked = Enumerable.Range(0, run.Count).Where(i => run.Won(i) && run.Outcome(i, 0)).Select(i => run.Q(i, 1));
        var (mean, se) = Bounds.MeanSe(clicked);
        var entire = run.Summary.Bias.Stages[1].CounterfactualMeanQ;
        return (mean / entire, se / entire);
    }

    private static (double Ratio, double Se) WinSelection(InMemoryRun run)
    {
        double R(int i)
        {
            var r = 1.0;
            for (var k = 0; k < run.Depth; k++)
            {
                r *= run.Q(i, k);
            }
            return r;
        }
        var (won, se) = Bounds.MeanSe(Enumerable.Range(0, run.Count).Where(run.Won).Select(R));
        var (entire, _) = Bounds.MeanSe(Enumerable.Range(0, run.Count).Select(R));
        return (won / entire, se / entire);
    }
}
