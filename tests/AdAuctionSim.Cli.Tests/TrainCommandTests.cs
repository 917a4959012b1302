using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Runtime;

namespace AdAuctionSim.Cli.Tests;

/// <summary>One small simulation written with <c>adsim simulate</c>, shared by the train tests (each copies it).</summary>
public sealed class TrainSimulationFixture : IDisposable
{
    private readonly CliSandbox _sandbox = new();

    public TrainSimulationFixture()
    {
        _sandbox.Write("tiny.json", Scenarios.Tiny);
        var result = _sandbox.Run("simulate", "tiny.json", "--out", "sim", "--requests", "6000", "--threads", "1");
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException("could not simulate for the train tests: " + result);
        }
        Folder = _sandbox.PathOf("sim");
    }

    public string Folder { get; }

    /// <summary>A sandbox holding a private copy of the simulation as <c>sim/</c>.</summary>
    internal CliSandbox NewSandbox()
    {
        var sandbox = new CliSandbox();
        Directory.CreateDirectory(sandbox.PathOf("sim"));
        foreach (var file in Directory.GetFiles(Folder))
        {
            File.Copy(file, Path.Combine(sandbox.PathOf("sim"), Path.GetFileName(file)));
        }
        return sandbox;
    }

    public void Dispose() => _sandbox.Dispose();
}

/// <summary>
/// <c>adsim train</c>: every kind of bad input exits 2 with a message naming the option or file and leaves no run
/// directory; with a model in the catalog, a tiny run end to end.
/// </summary>
[Collection(TorchTrainingCollection.Name)]
public sealed class TrainCommandTests(TrainSimulationFixture simulation) : IClassFixture<TrainSimulationFixture>
{
    /// <summary>A cheap model of the catalog to run, or null while the catalog is empty.</summary>
    private static string? CheapModel =>
        ModelCatalog.Ids.Count == 0 ? null
        : ModelCatalog.Ids.Contains("esmm") ? "esmm"
        : ModelCatalog.Ids.First();

    [Theory]
    [InlineData("train", "<simulation-dir>", "missing argument")]
    [InlineData("train sim --lr fast", "--lr", "\"fast\" is not a learning rate")]
    [InlineData("train sim --lr -0.1", "--lr", "expected a positive number")]
    [InlineData("train sim --lr 0", "--lr", "expected a positive number")]
    [InlineData("train sim --epochs 0", "--epochs", "out of range")]
    [InlineData("train sim --batch 0", "--batch", "out of range")]
    [InlineData("train sim --threads 0", "--threads", "out of range")]
    [InlineData("train sim --models ,", "--models", "names no model")]
    [InlineData("train sim --device tpu", "--device", "expected one of: auto, cpu, cuda")]
    [InlineData("train sim --label-mode both", "--label-mode", "expected one of: conditional, cumulative")]
    [InlineData("train sim --win-propensity estimated", "--win-propensity", "expected one of: oracle, km, censored-lognormal, classifier, none")]
    [InlineData("train sim --win-propensity", "--win-propensity", "oracle, km, censored-lognormal, classifier, none")]
    [InlineData("train sim --click-propensity true", "--click-propensity", "expected one of: model, oracle")]
    [InlineData("train sim --dr-gradients detached", "--dr-gradients", "expected one of: joint-learning, paddle, label-imputation")]
    [InlineData("train sim --epoch 3", "'--epoch'", "did you mean --epochs?")]
    [InlineData("train sim --patience 0", "--patience", "out of range")]
    [InlineData("train sim --fixed-epochs --patience 3", "--patience", "which --fixed-epochs turns off")]
    [InlineData("train sim --stage-weights 1,x,1", "--stage-weights", "\"x\" is not a stage weight")]
    [InlineData("train sim --stage-weights 1,2e6,1", "--stage-weights", "\"2e6\" is not a stage weight; expected numbers from 0 to 1e6")]
    [InlineData("train sim --stage-weights 0,0,0", "--stage-weights", "weighs every stage 0")]
    [InlineData("train sim --win-weight bid", "--win-weight", "expected one of: policy, at-bid")]
    [InlineData("train sim --win-weight at-bid --win-propensity oracle", "--win-weight", "needs a fitted win model")]
    [InlineData("train sim --win-weight at-bid --win-propensity none", "--win-weight", "not none: the logs carry only the policy propensity")]
    [InlineData("train sim --validation-loss weighted", "--validation-loss", "expected one of: impressions, win-weighted")]
    [InlineData("train sim --validation-loss win-weighted --win-propensity none", "--validation-loss", "needs a win propensity (oracle or a fitted win model), not none")]
    [InlineData("train sim --max-weight 0.5", "--max-weight", "\"0.5\" is not a weight cap; expected a number from 1 to 1e6")]
    [InlineData("train sim --max-weight many", "--max-weight", "\"many\" is not a weight cap")]
    [InlineData("train sim --ips-normalizer hajek", "--ips-normalizer", "expected one of: paper, snips, paddle")]
    [InlineData("train sim --models ipw-escm2 --ips-normalizer paddle", "--ips-normalizer", "not defined with ipw-escm2's inverse-win weights")]
    [InlineData("train sim --models ipw-escm2-dr --dr-gradients paddle", "--dr-gradients", "not defined for ipw-escm2-dr's win-weighted DR over D")]
    public void Bad_options_exit_2_naming_the_option_and_write_nothing(string commandLine, string named, string says)
    {
        using var sandbox = simulation.NewSandbox();
        var before = sandbox.Entries();

        var result = sandbox.Run(commandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries));

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains(named, result.Error, StringComparison.Ordinal);
        Assert.Contains(says, result.Error, StringComparison.Ordinal);
        Assert.Contains("--help' for usage", result.Error, StringComparison.Ordinal);
        Assert.Equal(before, sandbox.Entries());
    }

    [Fact]
    public void A_missing_folder_or_manifest_exits_2_naming_it()
    {
        using var sandbox = simulation.NewSandbox();
        Directory.CreateDirectory(sandbox.PathOf("empty"));
        var before = sandbox.Entries();

        var missing = sandbox.Run("train", "nowhere");
        var empty = sandbox.Run("train", "empty");

        Assert.True(missing.ExitCode == 2, missing.ToString());
        Assert.StartsWith("adsim train: ", missing.Error, StringComparison.Ordinal);
        Assert.Contains(sandbox.PathOf("nowhere"), missing.Error, StringComparison.Ordinal);
        Assert.Contains("no such folder", missing.Error, StringComparison.Ordinal);
        Assert.True(empty.ExitCode == 2, empty.ToString());
        Assert.Contains("manifest.json", empty.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", missing.Error + empty.Error, StringComparison.Ordinal);
        Assert.Equal(before, sandbox.Entries());
    }

    [Fact]
    public void A_corrupt_log_file_exits_2_naming_the_file()
    {
        using var sandbox = simulation.NewSandbox();
        var impressions = sandbox.PathOf("sim/impressions.parquet");
        var bytes = File.ReadAllBytes(impressions);
        bytes[bytes.Length / 3] ^= 0x33;
        File.WriteAllBytes(impressions, bytes);
        var before = sandbox.Entries();

        var result = sandbox.Run("train", "sim", "--epochs", "1");

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("impressions.parquet", result.Error, StringComparison.Ordinal);
        Assert.Contains("SHA-256", result.Error, StringComparison.Ordinal);
        Assert.Equal(before, sandbox.Entries());
    }

    /// <summary>
    /// A hand-edited CSV log whose hash the manifest was made to match: an id beyond its field's cardinality (once a
    /// libtorch allocation failure, exit 1), a negative id or a NaN or negative bid (once trained on, exit 0) exit 2
    /// naming the file, the column, the line and the allowed range, and write nothing.
    /// </summary>
    [Theory]
    [InlineData("site_id", "999999999", "expected an integer from 0 to")]
    [InlineData("site_id", "-8", "expected an integer from 0 to")]
    [InlineData("bid", "NaN", "expected a finite amount of 0 or more")]
    [InlineData("bid", "-5", "expected a finite amount of 0 or more")]
    public void Hand_edited_logs_with_a_matching_hash_exit_2_naming_the_file_column_line_and_range(string column, string value, string says)
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("tiny.json", Scenarios.Tiny);
        var simulated = sandbox.Run("simulate", "tiny.json", "--out", "sim", "--format", "csv", "--requests", "3000", "--threads", "1");
        Assert.True(simulated.ExitCode == 0, simulated.ToString());
        var impressions = sandbox.PathOf("sim/impressions.csv");
        var manifest = sandbox.PathOf("sim/manifest.json");
        var oldHash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(impressions)));
        var lines = File.ReadAllText(impressions).Split('\n');
        var fields = lines[3].Split(',');
        fields[Array.IndexOf(lines[0].Split(','), column)] = value;
        lines[3] = string.Join(',', fields);
        File.WriteAllText(impressions, string.Join('\n', lines));
        var newHash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(impressions)));
        File.WriteAllText(manifest, File.ReadAllText(manifest).Replace(oldHash, newHash, StringComparison.Ordinal));
        var before = sandbox.Entries();

        var result = sandbox.Run("train", "sim", "--models", CheapModel ?? "esmm", "--epochs", "1", "--threads", "1");

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains($"{impressions}: line 4, column \"{column}\": {value} is out of range; {says}", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Error, StringComparison.Ordinal);
        Assert.Equal(before, sandbox.Entries());
    }

    [Fact]
    public void Kaplan_meier_win_propensities_on_a_first_price_simulation_exit_2_naming_the_option()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("first.json", Scenarios.Tiny.Replace("\"traffic\"", "\"auction\": { \"type\": \"first-price\" },\n  \"traffic\"", StringComparison.Ordinal));
        var simulate = sandbox.Run("simulate", "first.json", "--out", "sim", "--requests", "3000", "--threads", "1");
        Assert.True(simulate.ExitCode == 0, simulate.ToString());
        var before = sandbox.Entries();

        var result = sandbox.Run("train", "sim", "--models", "ipw-escm2", "--win-propensity", "km", "--epochs", "1", "--out", "run");

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("--win-propensity km", result.Error, StringComparison.Ordinal);
        Assert.Contains("first-price", result.Error, StringComparison.Ordinal);
        Assert.Equal(before, sandbox.Entries());
    }

    [Fact]
    public void Unknown_model_ids_exit_2_listing_the_valid_ones()
    {
        using var sandbox = simulation.NewSandbox();
        var before = sandbox.Entries();

        var result = sandbox.Run("train", "sim", "--models", "no-such-model,other");

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("\"no-such-model\"", result.Error, StringComparison.Ordinal);
        Assert.Contains("\"other\"", result.Error, StringComparison.Ordinal);
        Assert.Contains(ModelCatalog.Ids.Count == 0 ? "catalog of this build is empty" : "expected one or more of: " + string.Join(", ", ModelCatalog.Ids),
            result.Error, StringComparison.Ordinal);
        Assert.Equal(before, sandbox.Entries());
    }

    [Fact]
    public void An_existing_run_directory_needs_force()
    {
        if (CheapModel is not { } model)
        {
            return; // Nothing to train yet: the catalog is empty (the unknown-model test covers that message).
        }
        using var sandbox = simulation.NewSandbox();
        Directory.CreateDirectory(sandbox.PathOf("sim/runs/train"));
        var before = sandbox.Entries();

        var result = sandbox.Run("train", "sim", "--models", model);

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("sim/runs/train", result.Error, StringComparison.Ordinal);
        Assert.Contains("--force", result.Error, StringComparison.Ordinal);
        Assert.Equal(before, sandbox.Entries());
    }

    [Fact]
    public void Asking_for_cuda_without_it_exits_2()
    {
        if (CheapModel is not { } model || TorchRuntime.IsCudaAvailable())
        {
            return; // Needs a model to get past the model check, and a machine without CUDA.
        }
        using var sandbox = simulation.NewSandbox();
        var before = sandbox.Entries();

        var result = sandbox.Run("train", "sim", "--models", model, "--device", "cuda");

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("--device cuda", result.Error, StringComparison.Ordinal);
        Assert.Contains("CUDA", result.Error, StringComparison.Ordinal);
        Assert.Equal(before, sandbox.Entries());
    }

    [Fact]
    public void Trains_one_catalog_model_end_to_end_on_a_tiny_simulation()
    {
        if (CheapModel is not { } model)
        {
            return; // The catalog is empty: nothing the command line could train.
        }
        using var sandbox = simulation.NewSandbox();

        var result = sandbox.Run("train", "sim", "--models", model, "--epochs", "1", "--batch", "1024", "--threads", "1", "--device", "cpu",
            "--stage-weights", "1, 0.5,0.25");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("", result.Error);
        Assert.Contains(result.OutLines, l => l.EndsWith(", stage weights 1, 0.5, 0.25", StringComparison.Ordinal));
        var run = sandbox.PathOf("sim/runs/train");
        Assert.True(File.Exists(Path.Combine(run, "predictions", model + ".parquet")));
        Assert.True(File.Exists(Path.Combine(run, "checkpoints", model + ".bin")));
        Assert.True(File.Exists(Path.Combine(run, "curves", model + ".csv")));
        using (var manifest = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "train.json"))))
        {
            Assert.Equal([1, 0.5, 0.25], manifest.RootElement.GetProperty("model").GetProperty("stageWeights").EnumerateArray().Select(e => e.GetDouble()));
            Assert.Equal(2, manifest.RootElement.GetProperty("trainer").GetProperty("patience").GetInt32());
            Assert.True(manifest.RootElement.GetProperty("trainer").GetProperty("earlyStopping").GetBoolean());
        }
        Assert.Contains(result.OutLines, l => l.StartsWith($"{model}: 1 epoch (best 1)", StringComparison.Ordinal)
            && l.Contains("best validation log loss", StringComparison.Ordinal)
            && l.Contains("samples/s (cpu, 1 thread, batch 1024)", StringComparison.Ordinal));
        Assert.Contains("Run: sim/runs/train", result.OutLines);
        Assert.DoesNotContain(sandbox.Entries(), e => e.Contains(".partial-", StringComparison.Ordinal));
    }

    /// <summary>--fixed-epochs trains every epoch and keeps the last: the heading, the summary line and train.json say so.</summary>
    [Fact]
    public void Fixed_epochs_train_every_epoch_and_say_so()
    {
        if (CheapModel is not { } model)
        {
            return; // The catalog is empty: nothing the command line could train.
        }
        using var sandbox = simulation.NewSandbox();

        var result = sandbox.Run("train", "sim", "--models", model, "--epochs", "2", "--fixed-epochs", "--batch", "1024", "--threads", "1", "--device", "cpu");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains(result.OutLines, l => l.Contains(", batch 1024, 2 epochs, the last kept (no early stopping), ", StringComparison.Ordinal));
        using var manifest = System.Text.Json.JsonDocument.Parse(File.ReadAllText(sandbox.PathOf("sim/runs/train/train.json")));
        Assert.False(manifest.RootElement.GetProperty("trainer").GetProperty("earlyStopping").GetBoolean());
        Assert.False(manifest.RootElement.GetProperty("trainer").TryGetProperty("patience", out _), "patience plays no part without early stopping");
        var training = manifest.RootElement.GetProperty("models")[0].GetProperty("training");
        Assert.Equal(2, training.GetProperty("epochsRun").GetInt32());
        Assert.Equal(2, training.GetProperty("keptEpoch").GetInt32());
        var best = training.GetProperty("bestEpoch").GetInt32();
        Assert.Contains(result.OutLines, l => l.StartsWith($"{model}: 2 epochs (best {best}{(best == 2 ? ")" : "; epoch 2 kept, validation log loss ")}", StringComparison.Ordinal));
    }

    [Fact]
    public void Stage_weights_not_one_per_stage_exit_2_naming_the_depth_and_write_nothing()
    {
        using var sandbox = simulation.NewSandbox();
        var before = sandbox.Entries();

        var result = sandbox.Run("train", "sim", "--stage-weights", "1,0.5", "--threads", "1", "--device", "cpu");

        Assert.True(result.ExitCode == 2, result.ToString());
        // The tiny scenario keeps the built-in funnel.
        Assert.Contains("option --stage-weights: 2 weights for a funnel of depth 3 (click, authorize, convert)", result.Error, StringComparison.Ordinal);
        Assert.Equal(before, sandbox.Entries());
    }

    [Fact]
    public void The_win_and_click_propensity_sources_and_dr_gradients_reach_train_json()
    {
        if (!ModelCatalog.Ids.Contains("ipw-escm2") || !ModelCatalog.Ids.Contains("escm2-dr"))
        {
            return; // Needs the win-weighted and the DR model in the catalog.
        }
        using var sandbox = simulation.NewSandbox();

        var result = sandbox.Run("train", "sim", "--models", "ipw-escm2,escm2-dr", "--epochs", "1", "--batch", "1024", "--threads", "1",
            "--device", "cpu", "--win-propensity", "KM", "--dr-gradients", "label-imputation", "--click-propensity", "oracle",
            "--validation-loss", "win-weighted");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains(result.OutLines, l => l.StartsWith("win propensity km: fitted on ", StringComparison.Ordinal)
            && l.Contains("ESS share of 1/π̂", StringComparison.Ordinal) && l.Contains("; against the logged true π(x): mean |π̂ − π| ", StringComparison.Ordinal));
        using var manifest = System.Text.Json.JsonDocument.Parse(File.ReadAllText(sandbox.PathOf("sim/runs/train/train.json")));
        var win = manifest.RootElement.GetProperty("winPropensity");
        Assert.Equal("km", win.GetProperty("source").GetString());
        Assert.True(win.GetProperty("fitted").GetBoolean());
        Assert.InRange(win.GetProperty("againstLogged").GetProperty("loggedMean").GetDouble(), 0.01, 1);
        Assert.Equal("label-imputation", manifest.RootElement.GetProperty("drGradients").GetString());
        Assert.Equal("oracle", manifest.RootElement.GetProperty("trainer").GetProperty("clickPropensity").GetString());
        Assert.Equal("km", manifest.RootElement.GetProperty("trainer").GetProperty("winPropensity").GetString());
        Assert.Contains(result.OutLines, l => l.Contains("click propensity oracle", StringComparison.Ordinal));
        Assert.Equal("win-weighted", manifest.RootElement.GetProperty("trainer").GetProperty("validationLoss").GetString());
        Assert.Contains(result.OutLines, l => l.Contains("(early stopping on the win-weighted validation log loss, patience 2)", StringComparison.Ordinal));
        Assert.Contains(result.OutLines, l => l.EndsWith("files: checkpoints/, curves/, predictions/, win_propensity.parquet (the win model's scores), train.json",
            StringComparison.Ordinal));
    }

    [Fact]
    public void The_at_bid_win_weight_the_weight_cap_and_the_ips_normaliser_reach_the_heading_and_train_json()
    {
        if (!ModelCatalog.Ids.Contains("ipw-escm2"))
        {
            return; // Needs the win-weighted model in the catalog.
        }
        using var sandbox = simulation.NewSandbox();

        var result = sandbox.Run("train", "sim", "--models", "ipw-escm2", "--epochs", "1", "--batch", "1024", "--threads", "1",
            "--device", "cpu", "--win-weight", "at-bid", "--max-weight", "50", "--ips-normalizer", "snips");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains(result.OutLines, l => l.Contains("win propensity censored-lognormal (weights 1/Ŵ(b | x) at the bid), max weight 50, IPS normaliser snips, ", StringComparison.Ordinal));
        Assert.Contains(result.OutLines, l => l.StartsWith("win propensity censored-lognormal: fitted on ", StringComparison.Ordinal)
            && l.Contains("ESS share of 1/Ŵ", StringComparison.Ordinal));
        using var manifest = System.Text.Json.JsonDocument.Parse(File.ReadAllText(sandbox.PathOf("sim/runs/train/train.json")));
        Assert.Equal("at-bid", manifest.RootElement.GetProperty("winPropensity").GetProperty("basis").GetString());
        // The logs carry π(x), not W(b_i | x_i): nothing to hold an at-bid estimate against.
        Assert.Equal(System.Text.Json.JsonValueKind.Null, manifest.RootElement.GetProperty("winPropensity").GetProperty("againstLogged").ValueKind);
        Assert.Equal(50, manifest.RootElement.GetProperty("model").GetProperty("maxWeight").GetDouble());
        Assert.Equal("snips", manifest.RootElement.GetProperty("model").GetProperty("ipsNormalizer").GetString());
        // The trainer section spells the options as the command line and scenario files do.
        var trainer = manifest.RootElement.GetProperty("trainer");
        Assert.Equal("at-bid", trainer.GetProperty("winWeight").GetString());
        Assert.Equal("censored-lognormal", trainer.GetProperty("winPropensity").GetString());
    }
}
