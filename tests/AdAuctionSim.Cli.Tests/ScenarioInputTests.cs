using AdAuctionSim.Simulation.Scenarios;

namespace AdAuctionSim.Cli.Tests;

/// <summary>
/// Every kind of bad scenario file is bad input: exit code 2, a message naming the file and the field, no stack trace,
/// and nothing written (no output directory, no leftovers beside it).
/// </summary>
public sealed class ScenarioInputTests
{
    private const string Traffic = "\"traffic\": { \"requests\": 20000, \"users\": 2000, \"advertisers\": 10 }";

    /// <summary>(case, file text or null for a missing file, the field path the message must name).</summary>
    public static TheoryData<string, string?, string> BadScenarios => new()
    {
        { "unknown-field", $$"""{ "name": "x", {{Traffic}}, "colour": "red" }""", "colour" },
        { "unknown-nested-field", """{ "name": "x", "traffic": { "requests": 20000, "users": 2000, "userz": 5 } }""", "traffic.userz" },
        { "wrong-type", $$"""{ "name": "x", {{Traffic}}, "auction": { "competitors": "four" } }""", "auction.competitors" },
        { "out-of-range", """{ "name": "x", "traffic": { "requests": -5, "users": 2000 } }""", "traffic.requests" },
        {
            "missing-stage-rate",
            $$"""{ "name": "x", {{Traffic}}, "funnel": { "stages": [ { "name": "click", "rate": 0.05 }, { "name": "buy" } ] } }""",
            "funnel.stages[1].rate"
        },
        {
            "probabilities-not-summing-to-1",
            $$"""{ "name": "x", {{Traffic}}, "loggingPolicy": { "multiplierProbabilities": [0.1, 0.2, 0.4, 0.2, 0.2] } }""",
            "loggingPolicy.multiplierProbabilities"
        },
        { "one-stage", $$"""{ "name": "x", {{Traffic}}, "funnel": { "stages": [ { "name": "click", "rate": 0.05 } ] } }""", "funnel.stages" },
        {
            "seven-stages",
            $$"""
            { "name": "x", {{Traffic}}, "funnel": { "stages": [
              { "name": "click", "rate": 0.05 }, { "name": "s2", "rate": 0.5 }, { "name": "s3", "rate": 0.5 }, { "name": "s4", "rate": 0.5 },
              { "name": "s5", "rate": 0.5 }, { "name": "s6", "rate": 0.5 }, { "name": "s7", "rate": 0.5 } ] } }
            """,
            "funnel.stages"
        },
        {
            "duplicate-stage-names",
            $$"""{ "name": "x", {{Traffic}}, "funnel": { "stages": [ { "name": "click", "rate": 0.05 }, { "name": "click", "rate": 0.3 } ] } }""",
            "funnel.stages[1].name"
        },
        { "invalid-json", "{ \"name\": \"x\",\n  \"traffic\": { \"requests\": 20000 \n}", "line " },
        { "missing-file", null, "(file)" },
        { "duplicate-section", """{ "name": "dup", "traffic": { "requests": 5000, "users": 500 }, "traffic": { "sites": 20 } }""", "traffic: the key \"traffic\" appears twice" },
        { "duplicate-seed", $$"""{ "name": "x", {{Traffic}}, "seed": 1, "seed": 2 }""", "seed: the key \"seed\" appears twice" },
        { "null-seed", $$"""{ "name": "x", {{Traffic}}, "seed": null }""", "seed: is null" },
        { "null-bias", $$"""{ "name": "x", {{Traffic}}, "bias": null }""", "bias: is null; expected an object" },
        { "dot-dot-name", $$"""{ "name": "..", {{Traffic}} }""", "name: value \"..\" is not allowed" },
        { "unreachable-reserve-price", $$"""{ "name": "x", {{Traffic}}, "auction": { "reservePrice": 100000 } }""", "auction.reservePrice" },
    };

    [Theory]
    [MemberData(nameof(BadScenarios))]
    public void Simulate_with_default_output_rejects_the_scenario_and_writes_nothing(string name, string? text, string field)
    {
        using var sandbox = new CliSandbox();
        var file = Prepare(sandbox, name, text);
        var before = sandbox.Entries();

        var result = sandbox.Run("simulate", file);

        AssertBadScenario(result, file, field);
        Assert.Equal(before, sandbox.Entries());
        Assert.False(Directory.Exists(sandbox.PathOf("simulations")), result.ToString());
    }

    [Theory]
    [MemberData(nameof(BadScenarios))]
    public void Simulate_with_out_rejects_the_scenario_and_leaves_no_directory(string name, string? text, string field)
    {
        using var sandbox = new CliSandbox();
        var file = Prepare(sandbox, name, text);
        Directory.CreateDirectory(sandbox.PathOf("runs"));
        var before = sandbox.Entries();

        var result = sandbox.Run("simulate", file, "--out", "runs/sim", "--requests", "1000", "--threads", "1");

        AssertBadScenario(result, file, field);
        Assert.False(Directory.Exists(sandbox.PathOf("runs/sim")));
        Assert.Equal(before, sandbox.Entries());
    }

    [Theory]
    [MemberData(nameof(BadScenarios))]
    public void Scenario_validate_rejects_the_scenario(string name, string? text, string field)
    {
        using var sandbox = new CliSandbox();
        var file = Prepare(sandbox, name, text);

        var result = sandbox.Run("scenario", "validate", file);

        AssertBadScenario(result, file, field);
        Assert.DoesNotContain("OK:", result.Out, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("missing.json", "(file)")]
    [InlineData("bad.json", "traffic.users")]
    public void Bench_with_a_bad_scenario_file_exits_2(string file, string field)
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("bad.json", """{ "traffic": { "users": 1 } }""");

        var result = sandbox.Run("bench", "simulate", "--scenario", file, "--requests", "1000");

        AssertBadScenario(result, file, field);
        Assert.Equal(["bad.json"], sandbox.Entries());
    }

    [Fact]
    public void A_folder_given_as_the_scenario_file_is_named_as_a_folder()
    {
        using var sandbox = new CliSandbox();
        Directory.CreateDirectory(sandbox.PathOf("scenario.json"));

        var result = sandbox.Run("simulate", "scenario.json");

        AssertBadScenario(result, "scenario.json", "is a folder; expected the path of a scenario JSON file");
        Assert.DoesNotContain("denied", result.Error, StringComparison.Ordinal);
        Assert.Equal(["scenario.json"], sandbox.Entries());
    }

    [Fact]
    public void One_bad_bid_multiplier_is_the_only_problem_reported()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("m.json", $$"""{ "name": "m", {{Traffic}}, "loggingPolicy": { "bidMultipliers": [1, 1e300], "multiplierProbabilities": [0.5, 0.5] } }""");

        var result = sandbox.Run("scenario", "validate", "m.json");

        AssertBadScenario(result, "m.json", "loggingPolicy.bidMultipliers[1]: value 1e300 is out of range");
        Assert.Contains("(1 problem)", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("one per bid multiplier", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void All_problems_of_a_file_are_listed_at_once()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("many.json", """
            { "traffic": { "requests": 0, "userz": 1 }, "auction": { "competitors": "four" },
              "funnel": { "stages": [ { "name": "click", "rate": 0.05 }, { "name": "buy" } ] } }
            """);

        var result = sandbox.Run("simulate", "many.json");

        Assert.Equal(2, result.ExitCode);
        foreach (var field in new[] { "traffic.requests", "traffic.userz", "auction.competitors", "funnel.stages[1].rate" })
        {
            Assert.Contains(field, result.Error, StringComparison.Ordinal);
        }
        Assert.Equal(["many.json"], sandbox.Entries());
    }

    [Fact]
    public void Scenario_validate_accepts_a_good_file_and_prints_its_summary()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("tiny.json", Scenarios.Tiny);

        var result = sandbox.Run("scenario", "validate", "tiny.json");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("OK: tiny.json (tiny, depth 3, 20000 requests)", result.OutLines);
        Assert.Contains("click 0.04 -> authorize 0.3 -> convert 0.4", result.Out, StringComparison.Ordinal);
        Assert.Equal("", result.Error);
        Assert.Equal(["tiny.json"], sandbox.Entries());
    }

    [Fact]
    public void Scenario_show_prints_the_resolved_scenario_as_a_valid_scenario_file()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("tiny.json", Scenarios.Tiny);

        var result = sandbox.Run("scenario", "show", "tiny.json");

        Assert.True(result.ExitCode == 0, result.ToString());
        var shown = ScenarioLoader.Parse(result.Out, "stdout");
        Assert.Equal("tiny", shown.Name);
        Assert.Equal(7, shown.Seed);
        Assert.Equal(10, shown.Traffic.Advertisers);
        Assert.Equal(new Scenario().Funnel.Stages.Count, shown.Depth);
        // The world as the simulation manifest writes it, then the run sections with every default written out.
        var root = System.Text.Json.Nodes.JsonNode.Parse(result.Out)!.AsObject();
        var training = root["training"]!.AsObject();
        Assert.Equal("policy", (string?)training["winWeight"]);
        Assert.Equal("impressions", (string?)training["validationLoss"]);
        Assert.Equal("paper", (string?)training["ipsNormalizer"]);
        Assert.True(training.ContainsKey("maxWeight") && training["maxWeight"] is null);
        Assert.Equal("censored-lognormal", (string?)training["winPropensity"]);
        Assert.Equal(0, (int)training["threads"]!);
        Assert.Equal(1, (int)root["evaluation"]!["repeats"]!);
        foreach (var run in new[] { "models", "training", "evaluation", "sweep", "ope" })
        {
            root.Remove(run);
        }
        Assert.Equal(System.Text.Json.Nodes.JsonNode.Parse(ScenarioJson.Serialize(shown, allFields: true))!.ToJsonString(), root.ToJsonString());
        Assert.Equal(0, (double)root["bias"]!["hiddenPerRequest"]!);
        // Shown again, the output is the same file.
        sandbox.Write("shown.json", result.Out);
        Assert.Equal(result.Out, sandbox.Run("scenario", "show", "shown.json").Out);
    }

    [Fact]
    public void Scenario_show_writes_a_one_dial_sweep_as_a_scenario_file_does_and_reads_back_the_same()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("swept.json", """
            {
              "name": "swept", "seed": 7,
              "traffic": { "requests": 20000, "users": 2000, "advertisers": 10 },
              "models": ["esmm"],
              "training": { "maxWeight": 50, "stageWeights": [1, 0.5, 0.25] },
              "sweep": { "path": "bias.winValueCorrelation", "values": [0, 1] }
            }
            """);

        var first = sandbox.Run("scenario", "show", "swept.json");

        Assert.True(first.ExitCode == 0, first.ToString());
        var sweep = System.Text.Json.Nodes.JsonNode.Parse(first.Out)!["sweep"]!.AsObject();
        Assert.Equal("bias.winValueCorrelation", (string?)sweep["path"]);
        Assert.False(sweep.ContainsKey("grid"));
        Assert.Equal(50, (double)System.Text.Json.Nodes.JsonNode.Parse(first.Out)!["training"]!["maxWeight"]!);
        sandbox.Write("shown.json", first.Out);
        var second = sandbox.Run("scenario", "show", "shown.json");
        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.Equal(first.Out, second.Out);
    }

    /// <summary>
    /// The scenario loader (Simulation, which cannot reference Models) spells the training enums' ids itself; they must be
    /// the ids the trainer parses (Models' tables), defaults included, or a scenario that validates would fail at training.
    /// </summary>
    [Theory]
    [InlineData("winWeight")]
    [InlineData("validationLoss")]
    [InlineData("ipsNormalizer")]
    [InlineData("clickPropensity")]
    public void ScenarioTrainingEnumIds_AreTheTrainersIds(string key)
    {
        var (ids, read) = key switch
        {
            "winWeight" => (Models.Training.WinWeightBases.Ids, (Func<RunTrainingOptions, string>)(t => t.WinWeight)),
            "validationLoss" => (Models.Training.ValidationWeightings.Ids, t => t.ValidationLoss),
            "ipsNormalizer" => (Models.Core.IpsNormalizers.Ids, t => t.IpsNormalizer),
            _ => (Models.Training.ClickPropensitySources.Ids, t => t.ClickPropensity),
        };

        Assert.Equal(ids[0], read(new RunTrainingOptions()));
        foreach (var id in ids)
        {
            var file = ScenarioLoader.ParseFile($$"""{ "training": { "{{key}}": "{{id}}" } }""", "ids.json");
            Assert.Equal(id, read(file.Experiment.Training));
        }
        var error = Assert.Throws<ScenarioValidationException>(() =>
            ScenarioLoader.ParseFile($$"""{ "training": { "{{key}}": "{{ids[0]}}-x" } }""", "ids.json"));
        Assert.Contains($"training.{key}", error.Message, StringComparison.Ordinal);
    }

    /// <summary>The scenario's defaults for the ids it checks only by pattern are ids the trainer knows.</summary>
    [Fact]
    public void ScenarioTrainingDefaults_AreTrainerIds()
    {
        var defaults = new RunTrainingOptions();
        Assert.True(Models.Training.WinPropensitySources.TryParse(defaults.WinPropensity, out _), defaults.WinPropensity);
        Assert.True(Models.Training.DrGradientModes.TryParse(defaults.DrGradients, out _), defaults.DrGradients);
    }

    private static string Prepare(CliSandbox sandbox, string name, string? text)
    {
        var file = $"{name}.json";
        if (text is not null)
        {
            sandbox.Write(file, text);
        }
        return file;
    }

    private static void AssertBadScenario(CliResult result, string file, string field)
    {
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains(file, result.Error, StringComparison.Ordinal);
        Assert.Contains(field, result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Error, StringComparison.Ordinal);
    }
}
