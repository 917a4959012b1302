using AdAuctionSim.Simulation.Scenarios;

namespace AdAuctionSim.Simulation.Tests;

/// <summary>Scenario files: defaults, comments, and errors that name the field, the value and what is allowed.</summary>
public sealed class ScenarioLoaderTests
{
    private static ScenarioValidationException Invalid(string json) =>
        Assert.Throws<ScenarioValidationException>(() => ScenarioLoader.Parse(json, "test.json"));

    [Fact]
    public void EmptyObjectGivesTheBuiltInDefaults()
    {
        var s = ScenarioLoader.Parse("// only a comment\n{ }", "test.json", "fallback");
        Assert.Equal("fallback", s.Name);
        Assert.Equal(new Scenario().Traffic.Requests, s.Traffic.Requests);
        Assert.Equal(3, s.Depth);
        Assert.Equal(AuctionType.SecondPrice, s.Auction.Type);
    }

    [Fact]
    public void CommentsAndTrailingCommasAreAllowed()
    {
        var s = ScenarioLoader.Parse("""
            { /* block */ "seed": 9, // line
              "auction": { "type": "first-price", },
            }
            """, "test.json");
        Assert.Equal(9, s.Seed);
        Assert.Equal(AuctionType.FirstPrice, s.Auction.Type);
    }

    [Theory]
    [InlineData("""{ "sed": 1 }""", "sed", "not a known field")]
    [InlineData("""{ "traffic": { "request": 10 } }""", "traffic.request", "did you mean \"requests\"")]
    [InlineData("""{ "traffic": { "requests": "many" } }""", "traffic.requests", "expected an integer")]
    [InlineData("""{ "traffic": { "requests": 0 } }""", "traffic.requests", "out of range")]
    [InlineData("""{ "traffic": { "slots": 2.5 } }""", "traffic.slots", "expected an integer")]
    [InlineData("""{ "traffic": { "hourProfile": [1, 2] } }""", "traffic.hourProfile", "has 2 entries; expected exactly 24")]
    [InlineData("""{ "funnel": { "stages": [ { "name": "click", "rate": 0.1 } ] } }""", "funnel.stages", "has 1 entry; expected 2 to 6")]
    [InlineData("""{ "funnel": { "stages": [ { "name": "click", "rate": 0.1 }, { "name": "buy" } ] } }""", "funnel.stages[1].rate", "is missing")]
    [InlineData("""{ "funnel": { "stages": [ { "name": "click", "rate": 0.1 }, { "name": "click", "rate": 0.5 } ] } }""", "funnel.stages[1].name", "unique")]
    [InlineData("""{ "funnel": { "stages": [ { "name": "Click!", "rate": 0.1 }, { "name": "buy", "rate": 0.5 } ] } }""", "funnel.stages[0].name", "lower-case identifier")]
    [InlineData("""{ "funnel": { "stages": [ { "name": "click", "rate": 1.0 }, { "name": "buy", "rate": 0.5 } ] } }""", "funnel.stages[0].rate", "less than 1")]
    [InlineData("""{ "funnel": { "stages": [ { "name": "click", "rate": 0.1 }, { "name": "price", "rate": 0.5 } ] } }""", "funnel.stages[1].name", "reserved")]
    [InlineData("""{ "funnel": { "stages": [ { "name": "click", "rate": 0.1 }, { "name": "q_buy", "rate": 0.5 } ] } }""", "funnel.stages[1].name", "reserved")]
    [InlineData("""{ "bias": { "clickCvrCorrelation": 1.5 } }""", "bias.clickCvrCorrelation", "from 0 to 1")]
    [InlineData("""{ "bias": { "hiddenPerRequest": -0.1 } }""", "bias.hiddenPerRequest", "from 0 to 1")]
    [InlineData("""{ "auction": { "type": "vickrey" } }""", "auction.type", "\"second-price\", \"first-price\"")]
    [InlineData("""{ "auction": { "competitors": 0 } }""", "auction.competitors", "from 1 to 64")]
    [InlineData("""{ "loggingPolicy": { "multiplierProbabilities": [0.5, 0.2, 0.2, 0.2] } }""", "loggingPolicy.multiplierProbabilities", "sum to 1")]
    [InlineData("""{ "loggingPolicy": { "bidMultipliers": [1, 2] } }""", "loggingPolicy.multiplierProbabilities", "one per bid multiplier")]
    [InlineData("""{ "split": { "train": 0.5 } }""", "split.test", "expected 1")]
    [InlineData("""{ "traffic": [] }""", "traffic", "expected an object")]
    [InlineData("""[1, 2]""", "(root)", "expected an object")]
    [InlineData("""{ "seed": 1, """, "line", "not valid JSON")]
    [InlineData("""{ "seed": 1, "seed": 2 }""", "seed", "appears twice in the same object")]
    [InlineData("""{ "traffic": { "requests": 5000, "users": 500 }, "traffic": { "sites": 20 } }""", "traffic", "appears twice")]
    [InlineData("""{ "traffic": { "sites": 20, "sites": 30, "sites": 40 } }""", "traffic.sites", "appears 3 times")]
    [InlineData("""{ "funnel": { "stages": [ { "name": "click", "rate": 0.1 }, { "name": "buy", "rate": 0.2, "rate": 0.3 } ] } }""", "funnel.stages[1].rate", "appears twice")]
    [InlineData("""{ "ope": { "policies": [ { "name": "a", "bid": "own", "bid": "fixed" } ] } }""", "ope.policies[0].bid", "appears twice")]
    [InlineData("""{ "seed": null }""", "seed", "is null; expected an integer")]
    [InlineData("""{ "bias": null }""", "bias", "is null; expected an object")]
    [InlineData("""{ "bias": { "positionEffect": null } }""", "bias.positionEffect", "is null; expected a number")]
    [InlineData("""{ "training": { "epochs": null } }""", "training.epochs", "is null; expected an integer")]
    [InlineData("""{ "name": ".." }""", "name", "not \".\" or \"..\"")]
    [InlineData("""{ "name": "." }""", "name", "a plain file name")]
    [InlineData("""{ "loggingPolicy": { "bidMultipliers": [1, 1e300], "multiplierProbabilities": [0.5, 0.5] } }""", "loggingPolicy", "value 1e300 is out of range")]
    [InlineData("""{ "split": { "train": 2, "validation": 0.1, "test": 0.1 } }""", "split", "value 2 is out of range")]
    public void BadFieldsAreNamedWithWhatIsAllowed(string json, string path, string expected)
    {
        var e = Invalid(json);
        Assert.Contains("test.json", e.Message);
        var error = Assert.Single(e.Errors, x => x.Path.StartsWith(path, StringComparison.Ordinal));
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void EveryProblemIsReportedAtOnce()
    {
        var e = Invalid("""{ "seed": -1, "traffic": { "users": 1 }, "bias": { "positionEffect": 9 } }""");
        Assert.Equal(["seed", "traffic.users", "bias.positionEffect"], e.Errors.Select(x => x.Path).ToArray());
    }

    [Fact]
    public void UnreachableClickRateUnderPositionEffectIsRejected()
    {
        var e = Invalid("""{ "traffic": { "slots": 10 }, "bias": { "positionEffect": 3 }, "funnel": { "stages": [ { "name": "click", "rate": 0.5 }, { "name": "buy", "rate": 0.5 } ] } }""");
        Assert.Contains(e.Errors, x => x.Path == "funnel.stages[0].rate" && x.Message.Contains("examination"));
    }

    [Fact]
    public void DuplicateKeysAreNamedWithTheLinesOfEachAppearance()
    {
        var e = Invalid("""
            {
              "name": "dup",
              "traffic": { "requests": 5000, "users": 500 },
              "traffic": { "sites": 20 }
            }
            """);

        var error = Assert.Single(e.Errors);
        Assert.Equal("traffic", error.Path);
        Assert.Contains("\"traffic\" appears twice", error.Message, StringComparison.Ordinal);
        Assert.Contains("line 3, column 3 and line 4, column 3", error.Message, StringComparison.Ordinal);
        Assert.Contains("test.json", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EqualKeysInDifferentObjectsAreNotDuplicates()
    {
        var s = ScenarioLoader.Parse("""
            { "funnel": { "stages": [ { "name": "click", "rate": 0.05 }, { "name": "buy", "rate": 0.3 } ] },
              "split": { "train": 0.6, "validation": 0.2, "test": 0.2 }, "name": "ok" }
            """, "test.json");
        Assert.Equal("buy", s.Funnel.Stages[1].Name);
    }

    [Fact]
    public void NullMeansNoneOnlyForTheOptionalTrainingSettings()
    {
        // The settings whose absence means "none" accept null, as adsim scenario show writes them.
        var file = ScenarioLoader.ParseFile("""{ "training": { "maxWeight": null, "stageWeights": null, "patience": null } }""", "test.json");
        Assert.Null(file.Experiment.Training.MaxWeight);
        Assert.Null(file.Experiment.Training.StageWeights);
        Assert.Null(file.Experiment.Training.Patience);

        var e = Invalid("""{ "seed": null, "bias": null, "models": null }""");
        Assert.Equal(["seed", "bias", "models"], e.Errors.Select(x => x.Path).ToArray());
    }

    [Fact]
    public void AFolderGivenAsTheScenarioFileSaysItIsAFolder()
    {
        var folder = Path.Combine(Path.GetTempPath(), "adsim-scenario-folder-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            var e = Assert.Throws<ScenarioValidationException>(() => ScenarioLoader.Load(folder));
            var error = Assert.Single(e.Errors);
            Assert.Equal(ScenarioValidationException.FilePath, error.Path);
            Assert.Contains("is a folder; expected the path of a scenario JSON file", error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("denied", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder);
        }
    }

    [Fact]
    public void MissingFileIsAClearError()
    {
        var e = Assert.Throws<ScenarioValidationException>(() => ScenarioLoader.Load("/nonexistent/scenario.json"));
        Assert.Contains("/nonexistent/scenario.json", e.Message);
    }

    [Fact]
    public void ShippedScenariosAllLoad()
    {
        var folder = Path.Combine(RepositoryRoot(), "scenarios");
        var files = Directory.GetFiles(folder, "*.json");
        Assert.Contains(files, f => f.EndsWith("quickstart.json", StringComparison.Ordinal));
        foreach (var file in files)
        {
            var s = ScenarioLoader.Load(file);
            Assert.Equal(Path.GetFileNameWithoutExtension(file), s.Name);
            Assert.False(string.IsNullOrWhiteSpace(s.Description), $"{file} has no description");
        }
    }

    internal static string RepositoryRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "AdAuctionSim.sln")))
        {
            dir = Path.GetDirectoryName(dir);
        }
        return dir ?? throw new InvalidOperationException("repository root not found");
    }
}
