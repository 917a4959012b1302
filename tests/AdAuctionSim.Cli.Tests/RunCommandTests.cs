using System.Text;
using AdAuctionSim.Evaluation;
using AdAuctionSim.Reports.Documents;
using AdAuctionSim.Simulation.Output;
using Microsoft.Extensions.DependencyInjection;

namespace AdAuctionSim.Cli.Tests;

/// <summary>Tests that train with TorchSharp share its global seed and thread count, so they never run at the same time.</summary>
[CollectionDefinition(Name)]
public sealed class TorchTrainingCollection
{
    public const string Name = "TorchSharp training";
}

/// <summary>Runs <c>adsim</c> in a sandbox with the fake evaluator registered, as the real one will be.</summary>
internal static class RunCli
{
    public static CliResult Run(CliSandbox sandbox, CancellationToken cancellation, TextWriter? stdout, params string[] args)
    {
        var output = stdout ?? new StringWriter();
        var error = new StringWriter();
        var code = CliApp.RunAsync(args, output, error, cancellation, sandbox.Root,
            services => services.AddSingleton<IRunEvaluator, FakeRunEvaluator>()).GetAwaiter().GetResult();
        return new CliResult(code, output.ToString() ?? "", error.ToString());
    }

    public static CliResult Run(CliSandbox sandbox, params string[] args) => Run(sandbox, CancellationToken.None, null, args);

    /// <summary>The run folders under a reports folder (everything but the registry files).</summary>
    public static string[] RunFolders(string reports) =>
        Directory.Exists(reports) ? Directory.GetDirectories(reports).Order(StringComparer.Ordinal).ToArray() : [];

    public static string Scenario(string name, string models, string extra = "") => $$"""
        {
          // a tiny study for the run tests
          "name": "{{name}}",
          "seed": 7,
          "traffic": { "requests": 12000, "users": 2000, "advertisers": 10 },
          "funnel": { "stages": [ { "name": "click", "rate": 0.05 }, { "name": "convert", "rate": 0.2 } ] },
          "models": [{{models}}],
          "training": { "epochs": 2, "batchSize": 1024, "threads": 1 },
          {{extra}}
        }
        """;
}

/// <summary>One complete sweep run (2 points × 2 repeats × 2 models), shared by the tests that read its outputs.</summary>
public sealed class SweepRunFixture : IDisposable
{
    internal CliSandbox Sandbox { get; } = new();

    public SweepRunFixture()
    {
        Sandbox.Write("study.json", RunCli.Scenario("study", "\"single-task\", \"escm2-ips\"",
            """
            "evaluation": { "repeats": 2, "baseline": "single-task" },
            "sweep": { "path": "bias.clickCvrCorrelation", "values": [0, 0.8] },
            """));
        Result = RunCli.Run(Sandbox, "run", "study.json");
        Folder = RunCli.RunFolders(Sandbox.PathOf("reports")).SingleOrDefault() ?? "";
    }

    internal CliResult Result { get; }

    public string Folder { get; }

    public void Dispose() => Sandbox.Dispose();
}

/// <summary><c>adsim run</c>, <c>adsim runs</c> and <c>adsim compare</c> end to end with the fake evaluator.</summary>
[Collection(TorchTrainingCollection.Name)]
public sealed class RunCommandTests(SweepRunFixture sweep) : IClassFixture<SweepRunFixture>
{
    [Fact]
    public void A_sweep_run_writes_a_complete_report_and_records_it_in_the_registry()
    {
        Assert.True(sweep.Result.ExitCode == 0, sweep.Result.ToString());
        var id = Path.GetFileName(sweep.Folder);
        foreach (var file in (string[])["report.html", "report.md", "metrics.csv", "summary.csv", "run.json"])
        {
            Assert.True(File.Exists(Path.Combine(sweep.Folder, file)), file);
        }
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(sweep.Folder, "plots"), "*.png"));
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(sweep.Folder, "plots"), "*.svg"));
        // 2 points × 2 repeats × 2 models × 2 stages × 5 spaces × 9 metrics.
        Assert.Equal(2 * 2 * 2 * 2 * 5 * FakeRunEvaluator.Metrics.Length, ReportCsv.ReadMetrics(Path.Combine(sweep.Folder, "metrics.csv")).Count);
        var html = File.ReadAllText(Path.Combine(sweep.Folder, "report.html"));
        Assert.Contains("id=\"main-table\"", html, StringComparison.Ordinal);
        Assert.Contains("bias.clickCvrCorrelation=0.8", html, StringComparison.Ordinal);
        Assert.Contains("escm2-ips", html, StringComparison.Ordinal);
        foreach (var phase in (string[])["simulate", "train", "predict", "evaluate"])
        {
            Assert.Contains($"<tr><td>{phase}</td>", html, StringComparison.Ordinal);
        }
        // Repeats draw fresh world seeds; sweep points share them (common random numbers).
        Assert.Contains("<td>bias.clickCvrCorrelation=0</td><td>0</td><td>7</td>", html, StringComparison.Ordinal);
        Assert.DoesNotContain("<td>bias.clickCvrCorrelation=0</td><td>1</td><td>7</td>", html, StringComparison.Ordinal);
        // run.json holds the resolved scenario as a JSON object, not as a string.
        using (var runFile = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(sweep.Folder, "run.json"))))
        {
            var scenario = runFile.RootElement.GetProperty("scenario");
            Assert.Equal(System.Text.Json.JsonValueKind.Object, scenario.ValueKind);
            Assert.Equal(System.Text.Json.JsonValueKind.Object, scenario.GetProperty("training").ValueKind);
            // The report states the run's finishing time as run.json does (to the second it prints).
            var finished = runFile.RootElement.GetProperty("finishedUtc").GetDateTime();
            Assert.Contains($"| finished | {finished.ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture)}Z |",
                File.ReadAllText(Path.Combine(sweep.Folder, "report.md")), StringComparison.Ordinal);
        }
        // The report's resolved scenario writes every training option, defaults included.
        var markdown = File.ReadAllText(Path.Combine(sweep.Folder, "report.md"));
        Assert.Contains("\"winWeight\": \"policy\"", markdown, StringComparison.Ordinal);
        Assert.Contains("\"ipsNormalizer\": \"paper\"", markdown, StringComparison.Ordinal);
        // The realised bias dials: every stage's target, entire-space and logged rates, each with its meaning.
        foreach (var figure in (string[])["targetRate[click]", "entireSpaceMeanQ[convert]", "loggedParentMeanQ[convert]", "clickRateBySlot[0]"])
        {
            Assert.Contains($"| {figure} |", markdown, StringComparison.Ordinal);
        }
        Assert.Contains(SimulationManifest.Glossary["stages[].counterfactualMeanQ"], markdown, StringComparison.Ordinal);
        Assert.Contains(System.Net.WebUtility.HtmlEncode(SimulationManifest.Glossary["winSelectionRatio"]), html, StringComparison.Ordinal);

        var list = RunCli.Run(sweep.Sandbox, "runs", "list");
        Assert.Equal(0, list.ExitCode);
        Assert.Contains(id, list.Out, StringComparison.Ordinal);
        Assert.Contains("complete", list.Out, StringComparison.Ordinal);
        var show = RunCli.Run(sweep.Sandbox, "runs", "show", id);
        Assert.True(show.ExitCode == 0, show.ToString());
        Assert.Contains("Timings", show.Out, StringComparison.Ordinal);
        Assert.Contains("\"sweep\"", show.Out, StringComparison.Ordinal);
        Assert.Contains("report.html", show.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void A_model_trained_alone_predicts_exactly_as_in_a_run_with_every_model()
    {
        Assert.True(sweep.Result.ExitCode == 0, sweep.Result.ToString());
        var unit = Path.Combine(sweep.Folder, "work", "p00", "r00");
        var together = Path.Combine(sweep.Sandbox.Root, "together");
        var train = RunCli.Run(sweep.Sandbox, "train", Path.Combine(unit, "simulation"), "--models", "escm2-ips,single-task", "--epochs", "2",
            "--batch", "1024", "--threads", "1", "--seed", "1", "--out", together);
        Assert.True(train.ExitCode == 0, train.ToString());
        foreach (var model in (string[])["single-task", "escm2-ips"])
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(together, "predictions", model + ".parquet")),
                File.ReadAllBytes(Path.Combine(unit, "models", model, "predictions", model + ".parquet")));
            Assert.Equal(File.ReadAllBytes(Path.Combine(together, "predictions", model + ".parquet")),
                File.ReadAllBytes(Path.Combine(unit, "train", "predictions", model + ".parquet")));
        }
    }

    [Fact]
    public void Bad_run_sections_exit_2_naming_the_file_and_field_and_write_nothing()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("bad.json", RunCli.Scenario("bad", "\"single-task\", \"no-such-model\"",
            """
            "evaluation": { "baseline": "esmm" },
            "sweep": { "path": "bias.clickCvrCorrelation", "values": [0, 1.5] },
            """));
        var result = RunCli.Run(sandbox, "run", "bad.json");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("bad.json", result.Error, StringComparison.Ordinal);
        Assert.Contains("sweep.values[1]", result.Error, StringComparison.Ordinal);
        sandbox.Write("bad.json", RunCli.Scenario("bad", "\"single-task\", \"no-such-model\"", """ "evaluation": { "baseline": "esmm" }, """));
        result = RunCli.Run(sandbox, "run", "bad.json");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("models[1]: \"no-such-model\" is not a model of the catalog", result.Error, StringComparison.Ordinal);
        Assert.Contains("evaluation.baseline", result.Error, StringComparison.Ordinal);
        Assert.Equal(["bad.json"], sandbox.Entries());
        Assert.Equal(2, RunCli.Run(sandbox, "runs", "list").ExitCode);
    }

    [Fact]
    public void A_run_cancelled_after_its_first_model_and_resumed_gives_the_metrics_of_an_uninterrupted_run()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("pair.json", RunCli.Scenario("pair", "\"single-task\", \"escm2-ips\""));
        var whole = RunCli.Run(sandbox, "run", "pair.json", "--out", "whole");
        Assert.True(whole.ExitCode == 0, whole.ToString());

        using var cancel = new CancellationTokenSource();
        var watcher = new LineWatcher(line => line.Contains("trained single-task", StringComparison.Ordinal), cancel.Cancel);
        var cancelled = RunCli.Run(sandbox, cancel.Token, watcher, "run", "pair.json", "--out", "parts");
        Assert.True(cancelled.ExitCode == ExitCodes.Cancelled, cancelled.ToString());
        var folder = Assert.Single(RunCli.RunFolders(sandbox.PathOf("parts")));
        var id = Path.GetFileName(folder);
        Assert.False(File.Exists(Path.Combine(folder, "report.html")));
        Assert.True(Directory.Exists(Path.Combine(folder, "work", "p00", "r00", "models", "single-task")));
        Assert.False(Directory.Exists(Path.Combine(folder, "work", "p00", "r00", "models", "escm2-ips")));
        Assert.Contains($"--resume {id}", cancelled.Error, StringComparison.Ordinal);
        Assert.Matches($"{id} +cancelled", RunCli.Run(sandbox, "runs", "list").Out);

        var resumed = RunCli.Run(sandbox, "run", "pair.json", "--out", "parts", "--resume", id);
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Contains("simulation reused", resumed.Out, StringComparison.Ordinal);
        Assert.Contains("single-task reused", resumed.Out, StringComparison.Ordinal);
        Assert.Contains("trained escm2-ips", resumed.Out, StringComparison.Ordinal);
        var wholeFolder = Assert.Single(RunCli.RunFolders(sandbox.PathOf("whole")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(wholeFolder, "metrics.csv")), File.ReadAllBytes(Path.Combine(folder, "metrics.csv")));
        Assert.Matches($"{id} +complete", RunCli.Run(sandbox, "runs", "list").Out);

        // A complete run cannot be resumed, and a different scenario cannot resume it.
        Assert.Equal(2, RunCli.Run(sandbox, "run", "pair.json", "--out", "parts", "--resume", id).ExitCode);
        sandbox.Write("other.json", RunCli.Scenario("pair", "\"single-task\""));
        var other = RunCli.Run(sandbox, "run", "other.json", "--resume", Path.GetFileName(wholeFolder));
        Assert.Equal(2, other.ExitCode);

        var compare = RunCli.Run(sandbox, "compare", Path.GetFileName(wholeFolder), id);
        Assert.True(compare.ExitCode == 0, compare.ToString());
        Assert.Contains("0 only in", compare.Out, StringComparison.Ordinal);
        Assert.Contains("Both runs resolved the same scenario", compare.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void A_run_whose_evaluation_fails_is_marked_failed_and_writes_no_report()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("one.json", RunCli.Scenario("one", "\"single-task\""));
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = CliApp.RunAsync(["run", "one.json"], stdout, stderr, CancellationToken.None, sandbox.Root,
            services => services.AddSingleton<IRunEvaluator, FailingEvaluator>()).GetAwaiter().GetResult();
        Assert.True(code == ExitCodes.Failure, $"{code}: {stdout}{stderr}");
        Assert.Contains("evaluator broke", stderr.ToString(), StringComparison.Ordinal);
        var folder = Assert.Single(RunCli.RunFolders(sandbox.PathOf("reports")));
        Assert.False(File.Exists(Path.Combine(folder, "report.html")));
        var show = RunCli.Run(sandbox, "runs", "show", Path.GetFileName(folder));
        Assert.Contains("failed: evaluator broke", show.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void On_an_interactive_terminal_the_run_shows_live_progress_and_completes()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("one.json", RunCli.Scenario("one", "\"single-task\""));
        var screen = new StringWriter();
        var console = Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings
        {
            Ansi = Spectre.Console.AnsiSupport.Yes,
            Interactive = Spectre.Console.InteractionSupport.Yes,
            Out = new Spectre.Console.AnsiConsoleOutput(screen),
        });
        var terminal = new Terminal.CliTerminal(screen, TextWriter.Null, sandbox.Root, console);
        var code = CliApp.RunAsync(["run", "one.json"], terminal, CancellationToken.None,
            services => services.AddSingleton<IRunEvaluator, FakeRunEvaluator>()).GetAwaiter().GetResult();
        Assert.True(code == 0, screen.ToString());
        Assert.Contains("complete", screen.ToString(), StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(Assert.Single(RunCli.RunFolders(sandbox.PathOf("reports"))), "report.html")));
    }

    private sealed class FailingEvaluator : IRunEvaluator
    {
        public EvaluationResult Evaluate(RunEvaluationRequest request, CancellationToken cancellation) =>
            throw new InvalidDataException("evaluator broke");
    }

    /// <summary>
    /// A sweep value can pass the field rules and still leave a world that cannot be built (a reserve price no bid
    /// clears): scenario validate and run build every point's world first, so the file is refused before any work,
    /// naming the point, instead of failing the run at that point's turn.
    /// </summary>
    [Fact]
    public void A_sweep_point_whose_world_cannot_be_built_is_refused_before_any_work()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("reserve.json", RunCli.Scenario("reserve", "\"single-task\"",
            """ "sweep": { "path": "auction.reservePrice", "values": [0, 1000000] }, """));

        var validate = RunCli.Run(sandbox, "scenario", "validate", "reserve.json");
        var run = RunCli.Run(sandbox, "run", "reserve.json");

        foreach (var result in new[] { validate, run })
        {
            Assert.True(result.ExitCode == 2, result.ToString());
            Assert.Contains("auction.reservePrice (sweep point auction.reservePrice=1000000): value 1000000 is too high", result.Error, StringComparison.Ordinal);
        }
        Assert.Equal(["reserve.json"], sandbox.Entries());
    }

    /// <summary>
    /// A resumed run checks what it kept before reusing it: a damaged simulation file makes it redo that unit (the same
    /// metrics as an uninterrupted run); the hint to resume repeats the registry given; a changed scenario is named.
    /// </summary>
    [Fact]
    public void A_resumed_run_redoes_a_unit_whose_kept_simulation_is_damaged()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("one.json", RunCli.Scenario("one", "\"single-task\""));
        var whole = RunCli.Run(sandbox, "run", "one.json", "--out", "whole", "--registry", "my.db");
        Assert.True(whole.ExitCode == 0, whole.ToString());

        using var cancel = new CancellationTokenSource();
        var watcher = new LineWatcher(line => line.Contains("simulated 12000 requests", StringComparison.Ordinal), cancel.Cancel);
        var cancelled = RunCli.Run(sandbox, cancel.Token, watcher, "run", "one.json", "--out", "parts", "--registry", "my.db");
        Assert.True(cancelled.ExitCode == ExitCodes.Cancelled, cancelled.ToString());
        var folder = Assert.Single(RunCli.RunFolders(sandbox.PathOf("parts")));
        var id = Path.GetFileName(folder);
        Assert.Contains($"adsim run one.json --resume {id} --registry my.db", cancelled.Error, StringComparison.Ordinal);
        var truth = Path.Combine(folder, "work", "p00", "r00", "simulation", "truth.parquet");
        File.WriteAllBytes(truth, File.ReadAllBytes(truth)[..1000]);

        sandbox.Write("changed.json", RunCli.Scenario("one", "\"single-task\"").Replace("\"epochs\": 2", "\"epochs\": 3", StringComparison.Ordinal));
        var changed = RunCli.Run(sandbox, "run", "changed.json", "--resume", id, "--registry", "my.db");
        Assert.True(changed.ExitCode == 2, changed.ToString());
        Assert.Contains("it differs in training.epochs 2 in the run, 3 now", changed.Error, StringComparison.Ordinal);

        var resumed = RunCli.Run(sandbox, "run", "one.json", "--resume", id, "--registry", "my.db");

        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Contains("truth.parquet: corrupt or changed", resumed.Out, StringComparison.Ordinal);
        Assert.Contains("this unit is redone from its simulation", resumed.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("simulation reused", resumed.Out, StringComparison.Ordinal);
        var wholeFolder = Assert.Single(RunCli.RunFolders(sandbox.PathOf("whole")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(wholeFolder, "metrics.csv")), File.ReadAllBytes(Path.Combine(folder, "metrics.csv")));
    }

    /// <summary>A damaged registry is bad input naming the file: listing it exits 2, and a run refuses it before making its folder.</summary>
    [Fact]
    public void A_damaged_registry_exits_2_naming_it_and_a_run_leaves_nothing_behind()
    {
        using var sandbox = new CliSandbox();
        var registry = sweep.Sandbox.PathOf("reports/registry.db");
        var bytes = File.ReadAllBytes(registry);
        var damaged = sandbox.PathOf("damaged.db");
        // The header page intact, every later page zeroed: LiteDB's header check passes and its pages do not read.
        File.WriteAllBytes(damaged, [.. bytes[..8192], .. new byte[bytes.Length - 8192]]);
        sandbox.Write("one.json", RunCli.Scenario("one", "\"single-task\""));

        var list = RunCli.Run(sandbox, "runs", "list", "--registry", "damaged.db");
        var run = RunCli.Run(sandbox, "run", "one.json", "--registry", "damaged.db");

        foreach (var result in new[] { list, run })
        {
            Assert.True(result.ExitCode == 2, result.ToString());
            Assert.Contains($"the run registry {damaged} is damaged or not a registry", result.Error, StringComparison.Ordinal);
        }
        Assert.Empty(RunCli.RunFolders(sandbox.PathOf("reports")));
    }

    [Fact]
    public async Task Two_runs_at_once_both_land_in_the_registry()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("one.json", RunCli.Scenario("one", "\"single-task\""));
        var runs = await Task.WhenAll(Task.Run(() => RunCli.Run(sandbox, "run", "one.json")), Task.Run(() => RunCli.Run(sandbox, "run", "one.json")));
        Assert.All(runs, r => Assert.True(r.ExitCode == 0, r.ToString()));
        var folders = RunCli.RunFolders(sandbox.PathOf("reports"));
        Assert.Equal(2, folders.Length);
        var list = RunCli.Run(sandbox, "runs", "list").Out;
        Assert.All(folders, f => Assert.Matches($"{Path.GetFileName(f)} +complete", list));
    }
}

/// <summary>A writer that calls an action the first time a written line matches.</summary>
internal sealed class LineWatcher(Func<string, bool> match, Action action) : StringWriter
{
    private bool _fired;

    public override void WriteLine(string? value)
    {
        base.WriteLine(value);
        if (!_fired && value is not null && match(value))
        {
            _fired = true;
            action();
        }
    }

    public override Encoding Encoding => Encoding.UTF8;
}

/// <summary>The shipped scenario files resolve to run plans: their model ids, options and sweep settings are valid.</summary>
public sealed class ShippedRunScenarioTests
{
    [Theory]
    [InlineData("quickstart.json", 1)]
    [InlineData("click-bias-sweep.json", 3)]
    [InlineData("win-bias-sweep.json", 4)]
    [InlineData("win-bias-repeats.json", 1)]
    [InlineData("hidden-confounding-sweep.json", 3)]
    [InlineData("funnel-depth-sweep.json", 4)]
    [InlineData("task-correlation-sweep.json", 5)]
    public void Shipped_scenarios_resolve_to_run_plans(string file, int points)
    {
        var root = AppContext.BaseDirectory;
        while (!Directory.Exists(Path.Combine(root, "scenarios")))
        {
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("scenarios/ not found above the test assembly");
        }
        var terminal = new Terminal.CliTerminal(TextWriter.Null, TextWriter.Null, Path.Combine(root, "scenarios"));
        var plan = Runs.RunPlan.Load(terminal, file);
        Assert.Equal(points, plan.Points.Count);
        Assert.NotEmpty(plan.Models);
        Assert.Contains(plan.Models, m => m.Id == plan.Baseline);
    }

    /// <summary>
    /// What <c>adsim scenario show</c> prints for a shipped scenario (<see cref="Runs.RunPlan.CompleteJson"/>) reads back as
    /// the same complete text and as the same run (its identity, which <c>--resume</c> compares).
    /// </summary>
    [Theory]
    [InlineData("baseline.json")]
    [InlineData("quickstart.json")]
    [InlineData("win-bias-sweep.json")]
    [InlineData("task-correlation-sweep.json")]
    [InlineData("ope-bias.json")]
    [InlineData("deep-funnel.json")]
    public void The_complete_form_of_a_shipped_scenario_reads_back_as_the_same_run(string file)
    {
        var root = AppContext.BaseDirectory;
        while (!Directory.Exists(Path.Combine(root, "scenarios")))
        {
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("scenarios/ not found above the test assembly");
        }
        var terminal = new Terminal.CliTerminal(TextWriter.Null, TextWriter.Null, Path.Combine(root, "scenarios"));
        var plan = Runs.RunPlan.Load(terminal, file);

        var again = Runs.RunPlan.Create(Simulation.Scenarios.ScenarioLoader.ParseFile(plan.CompleteJson, "shown.json"), "shown.json");

        Assert.Equal(plan.CompleteJson, again.CompleteJson);
        Assert.Equal(plan.ResolvedJson, again.ResolvedJson);
        // Not pinned to this machine: no shipped file sets training.threads, so it shows 0, the processor count wherever it runs.
        Assert.Contains("\"threads\": 0", plan.CompleteJson, StringComparison.Ordinal);
    }

    /// <summary>
    /// training.stageWeights reaches the models' options and the run's identity, one weight per stage of every point's
    /// funnel; a list of the wrong length, or of zeros only, is refused naming the field.
    /// </summary>
    [Fact]
    public void Stage_weights_reach_the_models_and_are_checked_against_every_points_depth()
    {
        static Runs.RunPlan Plan(string training, string sweep = "") => Runs.RunPlan.Create(Simulation.Scenarios.ScenarioLoader.ParseFile(
            $$"""{ "models": ["shared-bottom"], "training": { {{training}} }, {{sweep}} }""", "w.json"), "w.json");

        var plan = Plan("\"stageWeights\": [1, 0.05, 0.5]");
        Assert.Equal([1, 0.05, 0.5], plan.Model.StageWeights!);
        Assert.Contains("stage weights 1, 0.05, 0.5", plan.Describe(), StringComparison.Ordinal);
        Assert.Contains("\"stageWeights\"", plan.ResolvedJson, StringComparison.Ordinal);
        Assert.Null(Plan("\"epochs\": 1").Model.StageWeights);
        Assert.DoesNotContain("stageWeights", Plan("\"epochs\": 1").ResolvedJson, StringComparison.Ordinal);

        var wrong = Assert.Throws<Simulation.Scenarios.ScenarioValidationException>(() => Plan("\"stageWeights\": [1, 1]",
            "\"sweep\": { \"path\": \"funnel.depth\", \"values\": [2, 3] }"));
        Assert.Contains(wrong.Errors, e => e.Path == "training.stageWeights" && e.Message.Contains("funnel of depth 3", StringComparison.Ordinal));
        Assert.DoesNotContain(wrong.Errors, e => e.Message.Contains("funnel of depth 2", StringComparison.Ordinal));
        var zeros = Assert.Throws<Simulation.Scenarios.ScenarioValidationException>(() => Plan("\"stageWeights\": [0, 0, 0]"));
        Assert.Contains(zeros.Errors, e => e.Path == "training.stageWeights" && e.Message.Contains("at least one weight above 0", StringComparison.Ordinal));
    }

    /// <summary>
    /// training.winWeight and training.maxWeight reach the trainer, the models' options, the heading and the run's identity
    /// (only when set, so older runs keep theirs); at-bid weights with the oracle source are refused naming the field.
    /// </summary>
    /// <summary>
    /// training.earlyStopping and training.patience reach the trainer, the heading and the run's identity (only when they
    /// differ from the defaults, so that runs recorded before they existed keep theirs).
    /// </summary>
    [Fact]
    public void The_early_stopping_settings_reach_the_plan()
    {
        static Runs.RunPlan Plan(string training) => Runs.RunPlan.Create(Simulation.Scenarios.ScenarioLoader.ParseFile(
            $$"""{ "models": ["esmm"], "training": { {{training}} } }""", "e.json"), "e.json");

        var plain = Plan("\"epochs\": 3");
        Assert.Equal((true, 2), (plain.Trainer.EarlyStopping, plain.Trainer.Patience));
        Assert.Contains("up to 3 epochs (early stopping, patience 2)", plain.Describe(), StringComparison.Ordinal);
        Assert.DoesNotContain("earlyStopping", plain.ResolvedJson, StringComparison.Ordinal);
        Assert.DoesNotContain("patience", plain.ResolvedJson, StringComparison.Ordinal);
        Assert.Contains("\"earlyStopping\": true", plain.CompleteJson, StringComparison.Ordinal);
        Assert.Contains("\"patience\": 2", plain.CompleteJson, StringComparison.Ordinal);
        Assert.Equal(plain.ResolvedJson, Plan("\"epochs\": 3, \"patience\": 2, \"earlyStopping\": true").ResolvedJson);

        var patient = Plan("\"epochs\": 3, \"patience\": 4");
        Assert.Equal((true, 4), (patient.Trainer.EarlyStopping, patient.Trainer.Patience));
        Assert.Contains("(early stopping, patience 4)", patient.Describe(), StringComparison.Ordinal);
        Assert.Contains("\"patience\": 4", patient.ResolvedJson, StringComparison.Ordinal);

        var fixedEpochs = Plan("\"epochs\": 3, \"earlyStopping\": false");
        Assert.False(fixedEpochs.Trainer.EarlyStopping);
        Assert.Contains("; 3 epochs, the last kept (no early stopping)", fixedEpochs.Describe(), StringComparison.Ordinal);
        Assert.Contains("\"earlyStopping\": false", fixedEpochs.ResolvedJson, StringComparison.Ordinal);
        Assert.DoesNotContain("patience", fixedEpochs.CompleteJson, StringComparison.Ordinal);
        Assert.NotEqual(plain.ResolvedJson, fixedEpochs.ResolvedJson);
        // The complete form is itself a valid scenario file with the same settings.
        var again = Simulation.Scenarios.ScenarioLoader.ParseFile(fixedEpochs.CompleteJson, "complete.json").Experiment.Training;
        Assert.Equal((false, (int?)null), (again.EarlyStopping, again.Patience));
    }

    [Fact]
    public void The_win_weight_basis_and_the_weight_cap_reach_the_plan()
    {
        static Runs.RunPlan Plan(string training) => Runs.RunPlan.Create(Simulation.Scenarios.ScenarioLoader.ParseFile(
            $$"""{ "models": ["ipw-escm2"], "training": { {{training}} } }""", "w.json"), "w.json");

        var plan = Plan("\"winWeight\": \"at-bid\", \"maxWeight\": 200");
        Assert.Equal(Models.Training.WinWeightBasis.AtBid, plan.Trainer.WinWeight);
        Assert.Equal(200, plan.Model.MaxWeight);
        Assert.Contains("; win weight at-bid; max weight 200", plan.Describe(), StringComparison.Ordinal);
        Assert.Contains("\"winWeight\": \"at-bid\"", plan.ResolvedJson, StringComparison.Ordinal);
        Assert.Contains("\"maxWeight\": 200", plan.ResolvedJson, StringComparison.Ordinal);
        var plain = Plan("\"epochs\": 1");
        Assert.Equal((Models.Training.WinWeightBasis.Policy, (double?)null), (plain.Trainer.WinWeight, plain.Model.MaxWeight));
        Assert.DoesNotContain("winWeight", plain.ResolvedJson, StringComparison.Ordinal);
        Assert.DoesNotContain("maxWeight", plain.ResolvedJson, StringComparison.Ordinal);

        var oracle = Assert.Throws<Simulation.Scenarios.ScenarioValidationException>(() => Plan("\"winWeight\": \"at-bid\", \"winPropensity\": \"oracle\""));
        Assert.Contains(oracle.Errors, e => e.Path == "training.winWeight" && e.Message.Contains("needs a fitted win model", StringComparison.Ordinal));

        // training.validationLoss: win-weighted reaches the trainer, the heading and the identity; it needs a win propensity.
        var weighted = Plan("\"validationLoss\": \"win-weighted\"");
        Assert.Equal(Models.Training.ValidationWeighting.WinWeighted, weighted.Trainer.ValidationLoss);
        Assert.Contains("; validation loss win-weighted", weighted.Describe(), StringComparison.Ordinal);
        Assert.Contains("\"validationLoss\": \"win-weighted\"", weighted.ResolvedJson, StringComparison.Ordinal);
        Assert.DoesNotContain("validationLoss", plain.ResolvedJson, StringComparison.Ordinal);
        Assert.Contains("\"validationLoss\": \"impressions\"", plain.CompleteJson, StringComparison.Ordinal);
        var none = Assert.Throws<Simulation.Scenarios.ScenarioValidationException>(() => Plan("\"validationLoss\": \"win-weighted\", \"winPropensity\": \"none\""));
        Assert.Contains(none.Errors, e => e.Path == "training.validationLoss" && e.Message.Contains("needs a win propensity", StringComparison.Ordinal));

        // training.ipsNormalizer: snips for every IPS model; paddle is refused for ipw-escm2, naming the field.
        var snips = Plan("\"ipsNormalizer\": \"snips\"");
        Assert.Equal(Models.Core.IpsNormalizer.Snips, snips.Model.IpsNormalizer);
        Assert.Contains("; IPS normaliser snips", snips.Describe(), StringComparison.Ordinal);
        Assert.Contains("\"ipsNormalizer\": \"snips\"", snips.ResolvedJson, StringComparison.Ordinal);
        Assert.DoesNotContain("ipsNormalizer", plain.ResolvedJson, StringComparison.Ordinal);
        var paddle = Assert.Throws<Simulation.Scenarios.ScenarioValidationException>(() => Plan("\"ipsNormalizer\": \"paddle\""));
        Assert.Contains(paddle.Errors, e => e.Path == "training.ipsNormalizer" && e.Message.Contains("ipw-escm2", StringComparison.Ordinal));
        var drPaddle = Assert.Throws<Simulation.Scenarios.ScenarioValidationException>(() => Runs.RunPlan.Create(Simulation.Scenarios.ScenarioLoader.ParseFile(
            """{ "models": ["ipw-escm2-dr"], "training": { "drGradients": "paddle" } }""", "w.json"), "w.json"));
        Assert.Contains(drPaddle.Errors, e => e.Path == "training.drGradients" && e.Message.Contains("ipw-escm2-dr", StringComparison.Ordinal));
    }
}

/// <summary>
/// The report's realised-bias table carries a fitted win model's check from the unit's train.json and its held-out
/// figures from the unit's evaluation, and nothing else.
/// </summary>
public sealed class WinModelCheckFigureTests
{
    [Fact]
    public void A_fitted_win_models_check_becomes_three_figures_and_an_oracle_run_none()
    {
        var folder = Directory.CreateTempSubdirectory("adsim-win-check-");
        try
        {
            var fitted = Path.Combine(folder.FullName, "fitted.json");
            File.WriteAllText(fitted, """
                { "winPropensity": { "source": "censored-lognormal", "fitted": true, "essShare": 0.502,
                  "againstLogged": { "meanAbsoluteError": 0.118, "logCorrelation": 0.799, "loggedEssShare": 0.399 } } }
                """);
            var oracle = Path.Combine(folder.FullName, "oracle.json");
            File.WriteAllText(oracle, """{ "winPropensity": { "source": "oracle", "fitted": false, "essShare": 0.4, "againstLogged": null } }""");
            var atBid = Path.Combine(folder.FullName, "at-bid.json");
            File.WriteAllText(atBid, """{ "winPropensity": { "source": "km", "fitted": true, "essShare": 0.7, "basis": "at-bid", "againstLogged": null } }""");

            var figures = Runs.ExperimentRunner.WinModelCheck("p", 1, fitted).ToList();

            Assert.Equal(
                [new("p", 1, "winModelEssShare", 0.502), new("p", 1, "winModelLogCorrelation", 0.799), new("p", 1, "winModelMeanAbsoluteError", 0.118)],
                figures);
            Assert.All(figures, f => Assert.False(string.IsNullOrEmpty(Runs.ExperimentRunner.RealisedBiasMeanings[f.Name])));
            Assert.Empty(Runs.ExperimentRunner.WinModelCheck("p", 1, oracle));
            Assert.Empty(Runs.ExperimentRunner.WinModelCheck("p", 1, atBid));
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void The_held_out_figures_of_the_evaluation_give_four_defined_figures_and_leave_out_undefined_ones()
    {
        Evaluation.Metrics.WinModelFigure F(string metric, double value, string note = "") => new("p", 2, "km", metric, value, 100, note);
        var figures = new[]
        {
            F(Evaluation.Metrics.WinModelMetrics.AtBidLogLoss, 0.33), F(Evaluation.Metrics.WinModelMetrics.AtBidEce, 0.007),
            F(Evaluation.Metrics.WinModelMetrics.PolicyMae, 0.049), F(Evaluation.Metrics.WinModelMetrics.GapRecovered, 0.43),
            F(Evaluation.Metrics.WinModelMetrics.TrueGapRecovered, double.NaN, "no win selection to recover"),
        };

        var bias = Runs.ExperimentRunner.WinModelHeldOut("p", 2, figures).ToList();

        Assert.Equal(
            [new("p", 2, "winModelTestEce", 0.007), new("p", 2, "winModelTestMeanAbsoluteError", 0.049), new("p", 2, "winModelTestGapClosed", 0.43)],
            bias);
        Assert.All(bias.Append(new("p", 2, "trueWeightsTestGapClosed", 1)),
            f => Assert.False(string.IsNullOrEmpty(Runs.ExperimentRunner.RealisedBiasMeanings[f.Name])));
    }
}

/// <summary>Joining one-model training runs into the run's train folder.</summary>
public sealed class TrainFoldersTests
{
    [Fact]
    public void The_joined_folder_takes_the_win_model_and_its_scores_from_the_first_part_that_fitted_it()
    {
        var root = Directory.CreateTempSubdirectory("adsim-merge-");
        try
        {
            string Part(string id, bool fitted, string scores)
            {
                var part = Path.Combine(root.FullName, id);
                foreach (var folder in (string[])["checkpoints", "curves", "predictions"])
                {
                    Directory.CreateDirectory(Path.Combine(part, folder));
                }
                File.WriteAllText(Path.Combine(part, "predictions", id + ".parquet"), id);
                File.WriteAllText(Path.Combine(part, "train.json"), $$"""
                    { "models": [ { "modelId": "{{id}}" } ],
                      "winPropensity": { "source": "km", "fitted": {{(fitted ? "true" : "false")}}, "scores": {{(fitted ? "\"win_propensity.parquet\"" : "null")}} } }
                    """);
                if (fitted)
                {
                    File.WriteAllText(Path.Combine(part, "win_propensity.parquet"), scores);
                }
                return part;
            }
            var parts = new[] { Part("esmm", false, ""), Part("ipw-escm2", true, "first"), Part("ipw-escm2-dr", true, "second") };
            var target = Path.Combine(root.FullName, "train");

            Runs.TrainFolders.Merge(parts, target);

            Assert.Equal("first", File.ReadAllText(Path.Combine(target, "win_propensity.parquet")));
            var merged = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(target, "train.json")))!;
            Assert.True(merged["winPropensity"]!["fitted"]!.GetValue<bool>());
            Assert.Equal(["esmm", "ipw-escm2", "ipw-escm2-dr"], merged["models"]!.AsArray().Select(m => m!["modelId"]!.GetValue<string>()));
            Assert.Equal(["esmm.parquet", "ipw-escm2-dr.parquet", "ipw-escm2.parquet"],
                Directory.GetFiles(Path.Combine(target, "predictions")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }
}
