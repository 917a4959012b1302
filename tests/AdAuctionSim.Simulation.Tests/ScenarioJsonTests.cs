using System.Text.Json;
using AdAuctionSim.Simulation.Scenarios;

namespace AdAuctionSim.Simulation.Tests;

/// <summary><see cref="ScenarioJson"/> writes exactly what <see cref="ScenarioLoader"/> reads, and nothing else.</summary>
public sealed class ScenarioJsonTests
{
    [Fact]
    public void TheDefaultScenarioRoundTripsThroughTheLoaderToTheIdenticalText()
    {
        var json = ScenarioJson.Serialize(new Scenario());

        var back = ScenarioLoader.Parse(json, "default.json");

        Assert.Equal(json, ScenarioJson.Serialize(back));
    }

    [Fact]
    public void ANonDefaultScenarioRoundTripsWithEveryValueExact()
    {
        var s = TestScenarios.NonDefault;
        var json = ScenarioJson.Serialize(s);

        var back = ScenarioLoader.Parse(json, "non-default.json");

        Assert.Equal(json, ScenarioJson.Serialize(back));
        // Text equality could hide a value the writer and the loader both drop; check the awkward ones directly.
        Assert.Equal(s.Seed, back.Seed);
        Assert.Equal(s.Description, back.Description);
        Assert.Equal(AuctionType.FirstPrice, back.Auction.Type);
        Assert.Equal(s.Funnel.Stages, back.Funnel.Stages);
        Assert.Equal(1.0 / 3, back.Funnel.Stages[1].Rate);
        Assert.Equal(0.1 + 0.2, back.Funnel.Stages[3].Rate);
        Assert.Equal(1e-7, back.Bias.HiddenConfounding);
        Assert.Equal(s.Traffic.HourProfile, back.Traffic.HourProfile);
        Assert.Equal(s.LoggingPolicy.BidMultipliers, back.LoggingPolicy.BidMultipliers);
        Assert.Equal(s.Split, back.Split);
        Assert.Equal(s.Values, back.Values);
        Assert.Equal(s.Bias, back.Bias);
    }

    [Fact]
    public void UsesTheLoadersCamelCaseNamesAndNoComputedProperties()
    {
        using var doc = JsonDocument.Parse(ScenarioJson.Serialize(new Scenario()));
        var root = doc.RootElement;

        Assert.Equal(["name", "description", "seed", "traffic", "funnel", "bias", "auction", "loggingPolicy", "values", "split"], Names(root));
        Assert.Equal(
            ["requests", "days", "users", "userZipf", "advertisers", "campaignsPerAdvertiser", "adsPerCampaign", "candidateAds", "sites",
                "siteZipf", "slots", "hourProfile"],
            Names(root.GetProperty("traffic")));
        Assert.Equal(["stages", "signal"], Names(root.GetProperty("funnel")));
        Assert.Equal(["name", "rate"], Names(root.GetProperty("funnel").GetProperty("stages")[0]));
        Assert.Equal(["clickCvrCorrelation", "hiddenConfounding", "winValueCorrelation", "positionEffect"], Names(root.GetProperty("bias")));
        Assert.Equal(["type", "competitors", "competitorSpread", "competitorNoise", "targetWinRate", "reservePrice"], Names(root.GetProperty("auction")));
        Assert.Equal(["estimateQuality", "temperature", "bidMultipliers", "multiplierProbabilities"], Names(root.GetProperty("loggingPolicy")));
        Assert.Equal(["meanValuePerConversion", "valueSpread"], Names(root.GetProperty("values")));
        Assert.Equal(["train", "validation", "test"], Names(root.GetProperty("split")));
        Assert.Equal("second-price", root.GetProperty("auction").GetProperty("type").GetString());
        Assert.Equal(24, root.GetProperty("traffic").GetProperty("hourProfile").GetArrayLength());
    }

    /// <summary>
    /// bias.hiddenPerRequest, added after the format settled, is written only when set (so that the resolved text of an
    /// older scenario, a run's identity, does not change) or when every field is asked for; either text loads back.
    /// </summary>
    [Fact]
    public void The_per_request_hidden_share_is_written_when_set_or_asked_for_and_loads_back()
    {
        var plain = new Scenario();
        Assert.DoesNotContain("hiddenPerRequest", ScenarioJson.Serialize(plain), StringComparison.Ordinal);
        var all = ScenarioJson.Serialize(plain, allFields: true);
        Assert.Contains("\"hiddenPerRequest\": 0", all, StringComparison.Ordinal);
        Assert.Equal(ScenarioJson.Serialize(plain), ScenarioJson.Serialize(ScenarioLoader.Parse(all, "all.json")));

        var set = plain with { Bias = plain.Bias with { HiddenPerRequest = 0.25 } };
        var json = ScenarioJson.Serialize(set);
        Assert.Contains("\"hiddenPerRequest\": 0.25", json, StringComparison.Ordinal);
        Assert.Equal(0.25, ScenarioLoader.Parse(json, "set.json").Bias.HiddenPerRequest);
        // A sweep may name it although the scenario leaves it at its default.
        Assert.Null(ScenarioSweep.PathError(plain, "bias.hiddenPerRequest"));
        Assert.Equal(0.5, ScenarioSweep.Apply(plain, "bias.hiddenPerRequest", 0.5, "sweep.json").Bias.HiddenPerRequest);
    }

    [Fact]
    public void IsDeterministicIndentedWithLineFeedsOnly()
    {
        var a = ScenarioJson.Serialize(TestScenarios.NonDefault);
        var b = ScenarioJson.Serialize(TestScenarios.NonDefault with { });

        Assert.Equal(a, b);
        Assert.DoesNotContain('\r', a);
        Assert.StartsWith("{\n  \"name\": \"non-default_1.0\",\n", a, StringComparison.Ordinal);
        Assert.Contains("\"type\": \"first-price\"", a, StringComparison.Ordinal);
        // Readable free text: no \uXXXX escapes for ordinary characters.
        Assert.Contains("<angle> & unicode — ρ=0.3+γ", a, StringComparison.Ordinal);
    }

    [Fact]
    public void EveryShippedScenarioFileRoundTrips()
    {
        var files = Directory.GetFiles(Path.Combine(TestScenarios.RepositoryRoot(), "scenarios"), "*.json");
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            var json = ScenarioJson.Serialize(ScenarioLoader.Load(file));
            Assert.Equal(json, ScenarioJson.Serialize(ScenarioLoader.Parse(json, file)));
        }
    }

    [Fact]
    public void RefusesNumbersThatJsonCannotHold()
    {
        var bad = new Scenario { Funnel = new FunnelOptions { Signal = double.NaN } };

        var e = Assert.Throws<ArgumentException>(() => ScenarioJson.Serialize(bad));

        Assert.Contains("signal", e.Message, StringComparison.Ordinal);
    }

    private static List<string> Names(JsonElement e) => e.EnumerateObject().Select(p => p.Name).ToList();
}
