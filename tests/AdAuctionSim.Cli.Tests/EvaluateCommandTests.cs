using System.Globalization;
using AdAuctionSim.Evaluation.Metrics;
using AdAuctionSim.Evaluation.Runs;
using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Prediction;
using AdAuctionSim.Simulation.Output;

namespace AdAuctionSim.Cli.Tests;

/// <summary>
/// A tiny simulation with a one-epoch training run of two cheap models and ipw-escm2 (which fits the default win model),
/// shared by the evaluate tests (each copies it).
/// </summary>
public sealed class EvaluateRunFixture : IDisposable
{
    private readonly CliSandbox _sandbox = new();

    public EvaluateRunFixture()
    {
        Models = new[] { "single-task", "esmm", "ipw-escm2" }.Where(ModelCatalog.Ids.Contains).ToArray();
        _sandbox.Write("tiny.json", Scenarios.Tiny);
        var simulate = _sandbox.Run("simulate", "tiny.json", "--out", "sim", "--requests", "6000", "--threads", "1");
        if (simulate.ExitCode != 0)
        {
            throw new InvalidOperationException("could not simulate for the evaluate tests: " + simulate);
        }
        var train = _sandbox.Run("train", "sim", "--models", string.Join(',', Models), "--epochs", "1", "--batch", "1024", "--threads", "1",
            "--device", "cpu");
        if (train.ExitCode != 0)
        {
            throw new InvalidOperationException("could not train for the evaluate tests: " + train);
        }
    }

    /// <summary>The models trained (those of the catalog among single-task, esmm and ipw-escm2).</summary>
    public IReadOnlyList<string> Models { get; }

    /// <summary>A sandbox holding a private copy of the simulation (sim/) and its run (sim/runs/train/).</summary>
    internal CliSandbox NewSandbox()
    {
        var sandbox = new CliSandbox();
        var from = _sandbox.PathOf("sim");
        CopyTree(from, sandbox.PathOf("sim"));
        // train.json names the fixture's folder; point the copy at its own simulation.
        var trainJson = sandbox.PathOf("sim/runs/train/train.json");
        File.WriteAllText(trainJson, File.ReadAllText(trainJson).Replace(System.Text.Json.JsonEncodedText.Encode(from).ToString(),
            System.Text.Json.JsonEncodedText.Encode(sandbox.PathOf("sim")).ToString(), StringComparison.Ordinal));
        return sandbox;
    }

    /// <summary>Copies every file under <paramref name="from"/> to the same place under <paramref name="to"/>.</summary>
    internal static void CopyTree(string from, string to)
    {
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    public void Dispose() => _sandbox.Dispose();
}

/// <summary><c>adsim evaluate</c> end to end on a tiny run, its bad-input exits, and <c>adsim bench metrics</c>.</summary>
// Its fixture trains models: it shares TorchSharp's global seed with the other training tests, so it runs in their collection.
[Collection(TorchTrainingCollection.Name)]
public sealed class EvaluateCommandTests(EvaluateRunFixture run) : IClassFixture<EvaluateRunFixture>
{
    private static Dictionary<(string Model, string Stage, string Space, string Metric), (string Value, string Note)> ReadMetrics(string path)
    {
        var lines = File.ReadAllLines(path);
        Assert.Equal("point,repeat,seed,model,stage,space,metric,value,rows,note", lines[0]);
        var rows = new Dictionary<(string, string, string, string), (string, string)>();
        foreach (var line in lines.Skip(1))
        {
            // Notes may hold commas (quoted by CsvHelper); the first nine fields never do.
            var parts = line.Split(',', 10);
            Assert.True(rows.TryAdd((parts[3], parts[4], parts[5], parts[6]), (parts[7], parts[9].Trim('"'))), line);
        }
        return rows;
    }

    [Fact]
    public void Evaluates_a_run_writes_metrics_csv_and_prints_the_headline_table()
    {
        using var sandbox = run.NewSandbox();

        var result = sandbox.Run("evaluate", "sim/runs/train", "--bootstrap", "20");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("", result.Error);
        var metrics = ReadMetrics(sandbox.PathOf("sim/runs/train/metrics.csv"));
        string[] models = [RunEvaluator.TruthModel, RunEvaluator.LoggingModel, .. run.Models];
        foreach (var model in models)
        {
            foreach (var stage in new[] { "click", "convert" })
            {
                foreach (var space in new[] { "D", "O", "C", "O\\C", "D\\O" })
                {
                    Assert.True(metrics.ContainsKey((model, stage, space, MetricIds.Bias)), $"{model} {stage} {space}");
                    Assert.True(metrics.ContainsKey((model, stage, space, MetricIds.AucPotential)), $"{model} {stage} {space}");
                    Assert.Equal(space is "O" or "C" or "O\\C", metrics.ContainsKey((model, stage, space, MetricIds.AucObserved)));
                }
            }
            Assert.True(metrics.ContainsKey((model, "convert", "D", MetricIds.Bias + MetricIds.CumulativeSuffix)));
            Assert.False(metrics.ContainsKey((model, "click", "D", MetricIds.Bias + MetricIds.CumulativeSuffix)));
        }
        // The truth reference row has no error against itself; O\C has no conditional labels and says so.
        Assert.Equal("0", metrics[(RunEvaluator.TruthModel, "convert", "D", MetricIds.Bias)].Value);
        Assert.Equal("1", metrics[(RunEvaluator.TruthModel, "convert", "D", MetricIds.CalibrationRatio)].Value);
        // The dependence ratio (post-click stages, every space): 1 for the truth; for a model it closes the cumulative
        // calibration ratio from the parent stage's cumulative one and the stage's own, on the same rows (so not on C,
        // whose rows differ between stages). The tiny scenario keeps the built-in funnel: click, authorize, convert.
        Assert.False(metrics.ContainsKey((run.Models[0], "click", "D", MetricIds.DependenceRatio)));
        var onC = metrics[(run.Models[0], "convert", "C", MetricIds.DependenceRatio)];
        Assert.Equal("NaN", onC.Value);
        Assert.Contains("the rows depend on the stage", onC.Note, StringComparison.Ordinal);
        Assert.Equal(1, double.Parse(metrics[(RunEvaluator.TruthModel, "convert", "D", MetricIds.DependenceRatio)].Value, CultureInfo.InvariantCulture), 12);
        foreach (var model in run.Models)
        {
            foreach (var space in new[] { "D", "O", "D\\O" })
            {
                double Value(string stage, string metric) => double.Parse(metrics[(model, stage, space, metric)].Value, CultureInfo.InvariantCulture);
                var parent = Value("click", MetricIds.CalibrationRatio);
                foreach (var stage in new[] { "authorize", "convert" })
                {
                    var (cumulative, own, dependence) = (Value(stage, MetricIds.CalibrationRatio + MetricIds.CumulativeSuffix),
                        Value(stage, MetricIds.CalibrationRatio), Value(stage, MetricIds.DependenceRatio));
                    Assert.True(Math.Abs(cumulative - (parent * own * dependence)) <= 1e-9 * cumulative,
                        $"{model} {stage} on {space}: cumulative calibration ratio {cumulative:R}, parent {parent:R} × own {own:R} × dependence {dependence:R}");
                    parent = cumulative;
                }
            }
        }
        var unobserved = metrics[(run.Models[0], "convert", "O\\C", MetricIds.AucObserved)];
        Assert.Equal("NaN", unobserved.Value);
        Assert.Contains("0 by construction", unobserved.Note, StringComparison.Ordinal);
        Assert.Equal("no rows", metrics[(run.Models[0], "click", "O\\C", MetricIds.Bias)].Note);
        Assert.Contains(result.OutLines, l => l.Contains("AUC y (D)", StringComparison.Ordinal) && l.Contains("bias (D) [95%]", StringComparison.Ordinal));
        Assert.Contains(result.OutLines, l => l.TrimStart().StartsWith("truth", StringComparison.Ordinal) && l.Contains("convert", StringComparison.Ordinal));
        Assert.Contains(result.OutLines, l => l.Contains("baseline " + (run.Models.Contains("single-task") ? "single-task" : "logging"), StringComparison.Ordinal));
        Assert.Contains(result.OutLines, l => l.Contains("rows written to sim/runs/train/metrics.csv", StringComparison.Ordinal));
        Assert.DoesNotContain(sandbox.Entries(), e => e.Contains(".partial-", StringComparison.Ordinal));

        // ipw-escm2's fitted win model, held against the auction outcomes and the truth on the same held-out requests.
        var win = result.OutLines.SkipWhile(l => !l.StartsWith("  win model censored-lognormal on the held-out requests", StringComparison.Ordinal)).Take(5).ToList();
        Assert.Equal(5, win.Count);
        Assert.Matches(@"^    Ŵ\(b \| x\) at the logged bid against won \(D, \d+ requests\): log loss 0\.\d{4}, AUC 0\.\d{4}, ECE 0\.\d{4}; MAE against the true P\(win \| x, b\) 0\.\d{4}$", win[1]);
        Assert.Matches(@"^    π̂\(x\) against the true P\(win \| x\) \(D\): bias [+-]0\.\d{4}, MAE 0\.\d{4}, ECE 0\.\d{4}$", win[2]);
        Assert.Matches(@"^    weights 1/max\(π̂, 0\.01\) on the impressions \(O, \d+\): correlation of ln π̂ with ln π -?[01]\.\d{3}, ESS share 0\.\d{3} \(true weights 0\.\d{3}\)$", win[3]);
        Assert.StartsWith("    win selection: mean true r_K on D minus on O ", win[4], StringComparison.Ordinal);
    }

    [Fact]
    public void A_changed_or_missing_win_model_scores_file_or_a_bad_floor_exits_2_naming_it()
    {
        using var sandbox = run.NewSandbox();
        var scores = sandbox.PathOf("sim/runs/train/win_propensity.parquet");
        Assert.True(File.Exists(scores));
        var bytes = File.ReadAllBytes(scores);
        bytes[bytes.Length / 2] ^= 0x5A;
        File.WriteAllBytes(scores, bytes);
        var before = sandbox.Entries();

        var changed = sandbox.Run("evaluate", "sim");
        File.Delete(scores);
        var missing = sandbox.Run("evaluate", "sim");
        var trainJson = sandbox.PathOf("sim/runs/train/train.json");
        var text = File.ReadAllText(trainJson);
        Assert.Contains("\"floor\": 0.01", text, StringComparison.Ordinal);
        File.WriteAllText(trainJson, text.Replace("\"floor\": 0.01", "\"floor\": 0", StringComparison.Ordinal));
        var floor = sandbox.Run("evaluate", "sim");
        File.WriteAllText(trainJson, text);

        Assert.True(changed.ExitCode == 2, changed.ToString());
        Assert.Contains("win_propensity.parquet: corrupt or changed", changed.Error, StringComparison.Ordinal);
        Assert.True(missing.ExitCode == 2, missing.ToString());
        Assert.Contains("win_propensity.parquet: missing; train.json lists it", missing.Error, StringComparison.Ordinal);
        Assert.True(floor.ExitCode == 2, floor.ToString());
        Assert.Contains("train.json: field winPropensity.floor: missing or not a number in (0, 1)", floor.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", changed.Error + missing.Error + floor.Error, StringComparison.Ordinal);
        Assert.Equal(before.Where(e => !e.EndsWith("win_propensity.parquet", StringComparison.Ordinal)), sandbox.Entries());
    }

    [Fact]
    public void An_existing_metrics_file_is_kept_without_force_and_replaced_with_it()
    {
        using var sandbox = run.NewSandbox();
        var existing = sandbox.Write("sim/runs/train/metrics.csv", EarlierMetrics);
        var before = sandbox.Entries();

        var refused = sandbox.Run("evaluate", "sim", "--bootstrap", "0");

        Assert.True(refused.ExitCode == 2, refused.ToString());
        Assert.Contains("sim/runs/train/metrics.csv already exists; nothing was changed. Use --force", refused.Error, StringComparison.Ordinal);
        Assert.Equal(EarlierMetrics, File.ReadAllText(existing));
        Assert.Equal(before, sandbox.Entries());

        var replaced = sandbox.Run("evaluate", "sim", "--bootstrap", "0", "--force");

        Assert.True(replaced.ExitCode == 0, replaced.ToString());
        Assert.StartsWith("point,repeat,seed,", File.ReadAllText(existing), StringComparison.Ordinal);
        Assert.NotEqual(EarlierMetrics, File.ReadAllText(existing));
    }

    /// <summary>A metrics file as an earlier evaluation would have written it (its header, one row).</summary>
    private const string EarlierMetrics = "point,repeat,seed,model,stage,space,metric,value,rows,note\n,0,7,esmm,click,D,auc,0.5,10,\n";

    /// <summary>--force replaces a metrics file, never an input of the evaluation or another file.</summary>
    [Fact]
    public void Force_replaces_only_a_metrics_file()
    {
        using var sandbox = run.NewSandbox();
        var notes = sandbox.Write("notes.txt", "my notes\n");
        var truth = sandbox.PathOf("sim/truth.parquet");
        var truthBytes = File.ReadAllBytes(truth);
        var before = sandbox.Entries();

        var overTruth = sandbox.Run("evaluate", "sim", "--out", "sim/truth.parquet", "--force");
        var overTrainJson = sandbox.Run("evaluate", "sim", "--out", "sim/runs/train/train.json", "--force");
        var overNotes = sandbox.Run("evaluate", "sim", "--out", "notes.txt", "--force");

        foreach (var (result, file) in new[] { (overTruth, "sim/truth.parquet"), (overTrainJson, "sim/runs/train/train.json"), (overNotes, "notes.txt") })
        {
            Assert.True(result.ExitCode == 2, result.ToString());
            Assert.Contains($"option --out: {file} is", result.Error, StringComparison.Ordinal);
            Assert.Contains("nothing was changed", result.Error, StringComparison.Ordinal);
        }
        Assert.Contains("is an input of this command", overTrainJson.Error, StringComparison.Ordinal);
        Assert.Contains("is not a metrics file", overNotes.Error, StringComparison.Ordinal);
        Assert.Equal(truthBytes, File.ReadAllBytes(truth));
        Assert.Equal("my notes\n", File.ReadAllText(notes));
        Assert.Equal(before, sandbox.Entries());
    }

    /// <summary>
    /// train.json records the SHA-256 of the simulation's manifest and of each predictions file: predictions copied from
    /// a run on another simulation, or a run folder pointed at another simulation, are refused instead of scored.
    /// </summary>
    [Fact]
    public void Predictions_or_a_simulation_other_than_those_train_json_records_exit_2()
    {
        using var sandbox = run.NewSandbox();
        var trainJson = sandbox.PathOf("sim/runs/train/train.json");
        Assert.Matches("\"simulationManifestSha256\": \"[0-9a-f]{64}\"", File.ReadAllText(trainJson));
        Assert.Matches("\"predictionsSha256\": \"[0-9a-f]{64}\"", File.ReadAllText(trainJson));
        // Another model's predictions: a valid file with the same rows, but not the one this run wrote.
        var predictions = sandbox.PathOf("sim/runs/train/predictions");
        var own = Path.Combine(predictions, run.Models[0] + ".parquet");
        File.Copy(Path.Combine(predictions, run.Models[^1] + ".parquet"), own, overwrite: true);

        var swapped = sandbox.Run("evaluate", "sim", "--bootstrap", "0");

        Assert.True(swapped.ExitCode == 2, swapped.ToString());
        Assert.Contains(run.Models[0] + ".parquet: corrupt or changed", swapped.Error, StringComparison.Ordinal);
        Assert.Contains("differs from the one train.json records", swapped.Error, StringComparison.Ordinal);

        // The same simulation re-written with another seed (same layout and row counts): another manifest.
        using var other = run.NewSandbox();
        var manifest = other.PathOf("sim/manifest.json");
        File.WriteAllText(manifest, File.ReadAllText(manifest).Replace("\"seed\": 7", "\"seed\": 8", StringComparison.Ordinal));

        var elsewhere = other.Run("evaluate", "sim", "--bootstrap", "0");

        Assert.True(elsewhere.ExitCode == 2, elsewhere.ToString());
        Assert.Contains("field simulationManifestSha256: the run was trained on another simulation", elsewhere.Error, StringComparison.Ordinal);
        Assert.False(File.Exists(other.PathOf("sim/runs/train/metrics.csv")));
    }

    [Fact]
    public void A_named_simulation_folder_is_scored_against_its_own_truth_even_when_train_json_names_another()
    {
        using var sandbox = run.NewSandbox();
        var copy = sandbox.PathOf("copy");
        EvaluateRunFixture.CopyTree(sandbox.PathOf("sim"), copy);
        // The copy's train.json still names sim/; the copy's truth is damaged, which only scoring the copy can notice.
        var truth = Path.Combine(copy, "truth.parquet");
        File.WriteAllBytes(truth, File.ReadAllBytes(truth)[..200]);

        var result = sandbox.Run("evaluate", "copy");

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("copy/truth.parquet", result.Error, StringComparison.Ordinal);
        Assert.Contains("names the simulation", result.Out, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(copy, "runs/train/metrics.csv")));
    }

    [Fact]
    public void The_seed_column_is_the_simulations_world_seed()
    {
        using var sandbox = run.NewSandbox();
        var seed = SimulationManifest.Read(sandbox.PathOf("sim")).Seed;
        Assert.NotEqual(0, seed);   // the column once held 0 whatever the seed

        var result = sandbox.Run("evaluate", "sim", "--bootstrap", "0", "--out", "metrics.csv");

        Assert.True(result.ExitCode == 0, result.ToString());
        var seeds = File.ReadAllLines(sandbox.PathOf("metrics.csv")).Skip(1).Select(l => l.Split(',')[2]).Distinct().ToList();
        Assert.Equal([seed.ToString(System.Globalization.CultureInfo.InvariantCulture)], seeds);
    }

    [Fact]
    public void A_simulation_folder_means_its_run_and_the_output_does_not_depend_on_threads()
    {
        using var sandbox = run.NewSandbox();

        var one = sandbox.Run("evaluate", "sim", "--threads", "1", "--bootstrap", "10", "--out", "one.csv");
        var two = sandbox.Run("evaluate", "sim", "--threads", "2", "--bootstrap", "10", "--out", "two.csv", "--baseline", "truth");

        Assert.True(one.ExitCode == 0, one.ToString());
        Assert.True(two.ExitCode == 0, two.ToString());
        Assert.Equal(File.ReadAllBytes(sandbox.PathOf("one.csv")), File.ReadAllBytes(sandbox.PathOf("two.csv")));
    }

    [Fact]
    public void An_unknown_baseline_exits_2_listing_the_models_and_writes_nothing()
    {
        using var sandbox = run.NewSandbox();
        var before = sandbox.Entries();

        var result = sandbox.Run("evaluate", "sim", "--baseline", "no-such-model");

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("option --baseline: \"no-such-model\"", result.Error, StringComparison.Ordinal);
        Assert.Contains("expected one of: truth, logging, " + string.Join(", ", run.Models), result.Error, StringComparison.Ordinal);
        Assert.Equal(before, sandbox.Entries());
    }

    [Fact]
    public void Missing_folders_and_files_exit_2_naming_them()
    {
        using var sandbox = run.NewSandbox();
        Directory.CreateDirectory(sandbox.PathOf("empty"));
        File.Delete(sandbox.PathOf("sim/runs/train/predictions/" + run.Models[0] + ".parquet"));
        var before = sandbox.Entries();

        var missing = sandbox.Run("evaluate", "nowhere");
        var empty = sandbox.Run("evaluate", "empty");
        var predictions = sandbox.Run("evaluate", "sim");

        Assert.True(missing.ExitCode == 2, missing.ToString());
        Assert.Contains("nowhere: no such folder", missing.Error, StringComparison.Ordinal);
        Assert.True(empty.ExitCode == 2, empty.ToString());
        Assert.Contains("train.json: missing", empty.Error, StringComparison.Ordinal);
        Assert.True(predictions.ExitCode == 2, predictions.ToString());
        Assert.Contains(run.Models[0] + ".parquet: missing", predictions.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", missing.Error + empty.Error + predictions.Error, StringComparison.Ordinal);
        Assert.Equal(before, sandbox.Entries());
    }

    [Fact]
    public void Corrupt_files_exit_2_naming_them_and_keep_an_existing_metrics_file()
    {
        using var sandbox = run.NewSandbox();
        var existing = sandbox.Write("sim/runs/train/metrics.csv", EarlierMetrics);
        var predictions = sandbox.PathOf("sim/runs/train/predictions/" + run.Models[0] + ".parquet");
        File.WriteAllBytes(predictions, File.ReadAllBytes(predictions)[..100]);
        var before = sandbox.Entries();

        // --force: the existing file may be replaced, but only by a complete one.
        var corruptPredictions = sandbox.Run("evaluate", "sim", "--force");
        var truth = sandbox.PathOf("sim/truth.parquet");
        var bytes = File.ReadAllBytes(truth);
        bytes[bytes.Length / 2] ^= 0x5A;
        File.WriteAllBytes(truth, bytes);
        var corruptTruth = sandbox.Run("evaluate", "sim", "--force");
        File.WriteAllText(sandbox.PathOf("sim/runs/train/train.json"), "{ \"simulation\": 3 }");
        var corruptTrain = sandbox.Run("evaluate", "sim", "--force");
        // A key given twice: a JSON reader would keep the last copy silently.
        File.WriteAllText(sandbox.PathOf("sim/runs/train/train.json"), "{\n  \"simulation\": \"sim\",\n  \"simulation\": \"other\"\n}");
        var twiceTrain = sandbox.Run("evaluate", "sim", "--force");

        Assert.True(corruptPredictions.ExitCode == 2, corruptPredictions.ToString());
        Assert.Contains(run.Models[0] + ".parquet: corrupt or changed", corruptPredictions.Error, StringComparison.Ordinal);
        Assert.True(corruptTruth.ExitCode == 2, corruptTruth.ToString());
        Assert.Contains("truth.parquet: corrupt or changed", corruptTruth.Error, StringComparison.Ordinal);
        Assert.True(corruptTrain.ExitCode == 2, corruptTrain.ToString());
        Assert.Contains("train.json: field simulation", corruptTrain.Error, StringComparison.Ordinal);
        Assert.True(twiceTrain.ExitCode == 2, twiceTrain.ToString());
        Assert.Contains("train.json: field simulation: the key \"simulation\" appears twice in the same object, at line 2, column 3 and line 3, column 3",
            twiceTrain.Error, StringComparison.Ordinal);
        Assert.Equal(EarlierMetrics, File.ReadAllText(existing));
        Assert.Equal(before, sandbox.Entries());
    }

    [Fact]
    public void The_predictions_layout_is_the_model_suites()
    {
        string[] stages = ["click", "authorize", "convert"];

        Assert.Equal(Predictions.Columns(stages), PredictionFile.Columns(stages));
        Assert.Equal(["request_id", AdAuctionSim.Models.Training.TrainingRun.WinScoresPolicyColumn, AdAuctionSim.Models.Training.TrainingRun.WinScoresAtBidColumn],
            WinScoreFile.Columns);
    }

    [Fact]
    public void Bench_metrics_ends_with_the_summary_line()
    {
        using var sandbox = new CliSandbox();

        var result = sandbox.Run("bench", "metrics", "--rows", "20000");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Matches(@"^metrics: \d+\.\d{3} s for 20000 rows$", result.OutLines[^1]);
        Assert.Contains(result.OutLines, l => l.StartsWith("run 3: ", StringComparison.Ordinal) && l.Contains("radix sort", StringComparison.Ordinal));
    }
}
