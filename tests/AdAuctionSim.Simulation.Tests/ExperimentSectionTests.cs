using AdAuctionSim.Simulation.Scenarios;

namespace AdAuctionSim.Simulation.Tests;

/// <summary>The run sections of a scenario file (models, training, evaluation, sweep) and sweep points.</summary>
public sealed class ExperimentSectionTests
{
    private static ScenarioValidationException Invalid(string json) =>
        Assert.Throws<ScenarioValidationException>(() => ScenarioLoader.ParseFile(json, "run.json"));

    [Fact]
    public void Run_sections_are_read_and_the_scenario_alone_ignores_them()
    {
        const string json = """
            {
              "seed": 3,
              "models": ["single-task", "escm2-ips"],
              "training": { "epochs": 3, "batchSize": 512, "learningRate": 0.01, "winPropensity": "oracle", "clickPropensity": "oracle", "threads": 1 },
              "evaluation": { "repeats": 4, "baseline": "single-task" },
              "sweep": { "path": "bias.clickCvrCorrelation", "values": [0, 0.5, 1] },
            }
            """;
        var file = ScenarioLoader.ParseFile(json, "run.json");
        Assert.Equal(["single-task", "escm2-ips"], file.Experiment.Models);
        Assert.Equal((3, 512, 0.01, "oracle", 1), (file.Experiment.Training.Epochs, file.Experiment.Training.BatchSize,
            file.Experiment.Training.LearningRate, file.Experiment.Training.WinPropensity, file.Experiment.Training.Threads));
        Assert.Equal("oracle", file.Experiment.Training.ClickPropensity);
        Assert.Null(file.Experiment.Training.StageWeights);
        Assert.Equal([1, 0.05], ScenarioLoader.ParseFile("""{ "training": { "stageWeights": [1, 0.05] } }""", "w.json").Experiment.Training.StageWeights!);
        Assert.Equal("model", ScenarioLoader.ParseFile("{ }", "plain.json").Experiment.Training.ClickPropensity);
        var capped = ScenarioLoader.ParseFile("""{ "training": { "winWeight": "at-bid", "maxWeight": 50 } }""", "cap.json").Experiment.Training;
        Assert.Equal(("at-bid", 50.0), (capped.WinWeight, capped.MaxWeight!.Value));
        Assert.Equal(("policy", (double?)null), (file.Experiment.Training.WinWeight, file.Experiment.Training.MaxWeight));
        Assert.Equal("impressions", file.Experiment.Training.ValidationLoss);
        Assert.Equal("win-weighted", ScenarioLoader.ParseFile("""{ "training": { "validationLoss": "win-weighted" } }""", "v.json").Experiment.Training.ValidationLoss);
        Assert.Equal((true, (int?)null), (file.Experiment.Training.EarlyStopping, file.Experiment.Training.Patience));
        var fixedEpochs = ScenarioLoader.ParseFile("""{ "training": { "epochs": 4, "earlyStopping": false } }""", "fixed.json").Experiment.Training;
        Assert.Equal((4, false, (int?)null), (fixedEpochs.Epochs, fixedEpochs.EarlyStopping, fixedEpochs.Patience));
        var patient = ScenarioLoader.ParseFile("""{ "training": { "earlyStopping": true, "patience": 5 } }""", "patient.json").Experiment.Training;
        Assert.Equal((true, (int?)5), (patient.EarlyStopping, patient.Patience));
        Assert.Equal(4, file.Experiment.Evaluation.Repeats);
        var dial = Assert.Single(file.Experiment.Sweep!.Dials);
        Assert.Equal([0, 0.5, 1], dial.Values);
        Assert.Equal(ScenarioJson.Serialize(ScenarioLoader.Parse(json, "run.json")), ScenarioJson.Serialize(file.Scenario));
        Assert.Null(ScenarioLoader.ParseFile("{ }", "plain.json").Experiment.Sweep);
        Assert.Empty(ScenarioLoader.ParseFile("{ }", "plain.json").Experiment.Models);
    }

    [Theory]
    [InlineData("""{ "models": "mmoe" }""", "models", "expected an array")]
    [InlineData("""{ "models": ["Bad Id"] }""", "models[0]", "is not allowed")]
    [InlineData("""{ "models": ["mmoe", "mmoe"] }""", "models[1]", "listed twice")]
    [InlineData("""{ "training": { "epochs": 0 } }""", "training.epochs", "out of range")]
    [InlineData("""{ "training": { "device": "tpu" } }""", "training.device", "\"auto\", \"cpu\", \"cuda\"")]
    [InlineData("""{ "training": { "clickPropensity": "true" } }""", "training.clickPropensity", "\"model\", \"oracle\"")]
    [InlineData("""{ "training": { "epoch": 3 } }""", "training.epoch", "did you mean \"epochs\"")]
    [InlineData("""{ "training": { "winWeight": "bid" } }""", "training.winWeight", "\"policy\", \"at-bid\"")]
    [InlineData("""{ "training": { "validationLoss": "weighted" } }""", "training.validationLoss", "\"impressions\", \"win-weighted\"")]
    [InlineData("""{ "training": { "ipsNormalizer": "hajek" } }""", "training.ipsNormalizer", "\"paper\", \"snips\", \"paddle\"")]
    [InlineData("""{ "training": { "maxWeight": 0.5 } }""", "training.maxWeight", "expected a number from 1 to 1000000")]
    [InlineData("""{ "training": { "maxWeight": "big" } }""", "training.maxWeight", "expected a number")]
    [InlineData("""{ "training": { "stageWeights": [1, -0.5] } }""", "training.stageWeights[1]", "out of range")]
    [InlineData("""{ "training": { "stageWeights": [] } }""", "training.stageWeights", "expected 1 to 16")]
    [InlineData("""{ "training": { "earlyStopping": "no" } }""", "training.earlyStopping", "is the string \"no\"; expected true or false")]
    [InlineData("""{ "training": { "patience": 0 } }""", "training.patience", "expected an integer from 1 to 10000")]
    [InlineData("""{ "training": { "earlyStopping": false, "patience": 3 } }""", "training.patience", "earlyStopping is false")]
    [InlineData("""{ "evaluation": { "repeats": 0 } }""", "evaluation.repeats", "out of range")]
    [InlineData("""{ "sweep": { "values": [0, 1] } }""", "sweep.path", "is missing")]
    [InlineData("""{ "sweep": { "path": "bias.nope", "values": [0] } }""", "sweep.path", "bias.nope does not exist")]
    [InlineData("""{ "sweep": { "path": "funnel.stages", "values": [0] } }""", "sweep.path", "not a numeric field")]
    [InlineData("""{ "sweep": { "path": "bias.clickCvrCorrelation", "values": [0, 2] } }""", "sweep.values[1]", "expected a number from 0 to 1")]
    [InlineData("""{ "sweep": { "path": "bias.clickCvrCorrelation", "values": [0, 0] } }""", "sweep.values", "repeated values")]
    [InlineData("""{ "sweep": { "path": "traffic.slots", "values": [2.5] } }""", "sweep.values[0]", "expected an integer")]
    [InlineData("""{ "sweep": { "path": "funnel.depth", "values": [2, 4] } }""", "sweep.values[1]", "from 2 to 3")]
    [InlineData("""{ "sweep": { "grid": [ { "path": "bias.positionEffect", "values": [0] } ] } }""", "sweep.grid", "has 1 entry; expected exactly 2")]
    [InlineData("""{ "sweep": { "grid": [ { "path": "bias.positionEffect", "values": [0] }, { "path": "bias.positionEffect", "values": [1] } ] } }""",
        "sweep.grid[1].path", "swept twice")]
    public void Bad_run_sections_are_named_with_what_is_allowed(string json, string path, string expected)
    {
        var e = Invalid(json);
        Assert.Contains(e.Errors, x => x.Path == path && x.Message.Contains(expected, StringComparison.Ordinal));
        Assert.StartsWith("run.json", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_grid_gives_every_combination_with_the_first_dial_outermost()
    {
        var file = ScenarioLoader.ParseFile("""
            { "sweep": { "grid": [ { "path": "bias.clickCvrCorrelation", "values": [0, 1] },
                                   { "path": "funnel.stages[1].rate", "values": [0.2, 0.4, 0.6] } ] } }
            """, "grid.json");
        var points = ScenarioSweep.Points(file.Scenario, file.Experiment.Sweep, "grid.json");
        Assert.Equal(6, points.Count);
        Assert.Equal("bias.clickCvrCorrelation=0, funnel.stages[1].rate=0.2", points[0].Label);
        Assert.Equal("bias.clickCvrCorrelation=1, funnel.stages[1].rate=0.6", points[5].Label);
        Assert.Equal(1, points[5].Scenario.Bias.ClickCvrCorrelation);
        Assert.Equal(0.6, points[5].Scenario.Funnel.Stages[1].Rate);
        Assert.Equal(file.Scenario.Funnel.Stages[2], points[5].Scenario.Funnel.Stages[2]);
    }

    [Fact]
    public void The_depth_path_keeps_the_first_stages()
    {
        var scenario = ScenarioLoader.Parse("{ }", "d.json");
        var two = ScenarioSweep.Apply(scenario, ScenarioSweep.DepthPath, 2, "d.json");
        Assert.Equal(2, two.Depth);
        Assert.Equal(scenario.Funnel.Stages.Take(2), two.Funnel.Stages);
        Assert.Single(ScenarioSweep.Points(scenario, null, "d.json"));
    }
}
