using AdAuctionSim.Evaluation.Statistics;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using AdAuctionSim.Cli.Runs;
using AdAuctionSim.Cli.Terminal;
using AdAuctionSim.Evaluation;
using AdAuctionSim.Models.Runtime;
using AdAuctionSim.Reports.Documents;
using AdAuctionSim.Reports.Registry;
using Microsoft.Extensions.Logging;

namespace AdAuctionSim.Cli.Commands;

/// <summary>
/// <c>adsim run &lt;scenario.json&gt;</c>: resolves and checks the plan (exit 2 before anything is written), records the
/// run in the registry as running, runs its units (<see cref="ExperimentRunner"/>), summarises the metrics across
/// repeats and writes the report; the registry then says complete. Ctrl+C marks the run cancelled and an error marks it
/// failed; either way the finished units stay for <c>--resume</c>, and no report.html is written.
/// </summary>
internal sealed class RunCommand(
    RunArguments arguments,
    CliTerminal terminal,
    IEnumerable<IRunEvaluator> evaluators,
    ILogger<RunCommand> logger) : ICliCommand
{
    public const string RunFile = "run.json";
    public const string LockFile = "run.lock";

    public async Task<int> RunAsync(CancellationToken cancellation)
    {
        var plan = RunPlan.Load(terminal, arguments.Scenario);
        var evaluator = evaluators.LastOrDefault()
            ?? throw new InvalidOperationException("this build registers no run evaluator (IRunEvaluator) in the command's services; nothing was run");
        var runtime = await CliTorchRuntime.InitializeAsync(plan.Trainer.Device, plan.Trainer.Threads, plan.Trainer.Seed,
            $"{arguments.Scenario}: training.device \"{plan.Trainer.Device}\"", cancellation).ConfigureAwait(false);
        var registryPath = terminal.Resolve(arguments.Registry ?? RunPlan.DefaultRegistry);
        var outRoot = terminal.Resolve(arguments.Out ?? RunPlan.DefaultOut);
        if (arguments.Resume is { } resumeId && !RunIdentity.IsValid(resumeId))
        {
            throw new CliInputException($"option --resume: \"{resumeId}\" is not a run id; see 'adsim runs list'");
        }
        if (arguments.Resume is not null && !File.Exists(registryPath))
        {
            throw new CliInputException($"option --resume: there is no registry at {terminal.Display(registryPath)}; give its path with --registry");
        }

        IReadOnlyList<PreparedWorld>? worlds = null;
        if (arguments.Resume is null)
        {
            OutputTarget.CheckWritable(terminal, outRoot, "option --out");
            OutputTarget.CheckWritable(terminal, Path.GetDirectoryName(registryPath)!, "option --registry");
            // Every point's world is built before the run is recorded: a point whose world cannot be built is bad input.
            (worlds, _) = await ProgressDisplay.StatusAsync(terminal, $"building {plan.WorldsText} ...", () => plan.BuildWorlds(cancellation), cancellation)
                .ConfigureAwait(false);
        }
        using var registry = new RunRegistry(registryPath);
        var (record, directory) = arguments.Resume is { } id ? Resume(registry, id, plan) : Start(registry, plan, outRoot, runtime);
        using var runLock = Lock(directory, record.Id);
        if (arguments.Resume is not null)
        {
            registry.Update(record);
        }
        var started = DateTime.UtcNow;
        WriteRunFile(directory, record, plan);
        terminal.Heading($"Run {record.Id}{(record.Resumes > 0 ? $" (resumed, attempt {record.Resumes + 1})" : "")}: {plan.Scenario.Name} "
            + $"({arguments.Scenario}) -> {terminal.Display(directory)}");
        terminal.WriteLine($"  {plan.Describe()}");
        terminal.WriteLine($"  {Describe(runtime)}; simulation on cpu, {plan.SimulationThreads} threads; code {record.CodeVersion}; registry {terminal.Display(registryPath)}");
        try
        {
            var runner = new ExperimentRunner(plan, directory, evaluator, runtime, worlds: worlds);
            worlds = null;
            var outcome = await LiveRunProgress.RunAsync(terminal, runner.Units, p => TorchThread.Invoke(() => runner.Execute(p, cancellation), cancellation), cancellation).ConfigureAwait(false);
            cancellation.ThrowIfCancellationRequested();

            // One finishing time for the report, the registry and run.json: when the last unit was done (the report, written
            // after it, cannot state a later time of its own).
            var finished = DateTimeOffset.UtcNow;
            var clock = Stopwatch.StartNew();
            var summaries = MetricStatistics.Summarise(outcome.Metrics, plan.Baseline, outcome.Intervals);
            var data = new RunReportData
            {
                RunId = record.Id,
                ScenarioName = plan.Scenario.Name,
                ScenarioFile = arguments.Scenario,
                ResolvedScenario = plan.CompleteJson,
                CodeVersion = record.CodeVersion,
                Device = record.Device,
                Threads = record.Threads,
                Status = RunStatus.Complete,
                Started = new DateTimeOffset(record.StartedUtc, TimeSpan.Zero),
                Finished = finished,
                Models = plan.Models.Select(m => m.Id).ToList(),
                Stages = plan.Scenario.Funnel.Stages.Select(stage => stage.Name).ToList(),
                Baseline = plan.Baseline,
                Dials = plan.Dials,
                Points = plan.Points.Select(p => new ReportPoint(p.Label, p.Values)).ToList(),
                Seeds = outcome.Seeds,
                Timings = outcome.Timings,
                RealisedBias = outcome.RealisedBias,
                RealisedBiasMeanings = ExperimentRunner.RealisedBiasMeanings,
                Metrics = outcome.Metrics,
                Summaries = summaries,
                Reliability = outcome.Reliability,
                Deciles = outcome.Deciles,
                Curves = outcome.Curves,
                EarlyStopping = plan.Trainer.EarlyStopping,
                Ope = plan.Ope is { } ope
                    ? new OpeReportData(ope.Options.Reward, ope.Options.Split, [.. plan.Points.Select(p => p.Label)], outcome.OpeEstimates, outcome.OpeTruths)
                    : null,
            };
            var files = WriteReport(directory, data, cancellation);
            var reportSeconds = clock.Elapsed.TotalSeconds;

            record.Status = RunStatus.Complete;
            record.FinishedUtc = finished.UtcDateTime;
            record.Timings = [.. outcome.Timings.Select(RegistryTiming.From),
                RegistryTiming.From(new PhaseTiming("report", "all", reportSeconds, "summaries, plots (ScottPlot), HTML, Markdown, CSV; cpu, 1 thread"))];
            record.Metrics = [.. summaries.Select(RegistryMetric.From)];
            record.ReportHtml = Path.Combine(directory, files.Html);
            record.ReportMarkdown = Path.Combine(directory, files.Markdown);
            record.MetricsCsv = Path.Combine(directory, files.Metrics);
            record.Error = "";
            registry.Update(record);
            WriteRunFile(directory, record, plan);

            terminal.WriteLine();
            terminal.Heading($"Run {record.Id} complete in {S((DateTime.UtcNow - started).TotalSeconds)}: {terminal.Display(record.ReportHtml)}");
            var table = new TextTable("phase", "units", "seconds", "covers").RightAlign(1, 2);
            foreach (var g in record.Timings.GroupBy(t => t.Phase))
            {
                table.Add(g.Key, g.Count().ToString(CultureInfo.InvariantCulture), g.Sum(t => t.Seconds).ToString("F1", CultureInfo.InvariantCulture),
                    g.First().Covers + (g.Any(t => t.Reused) ? " (some reused)" : ""));
            }
            table.Write(terminal);
            terminal.WriteLine($"  also: {files.Markdown}, {files.Metrics} ({outcome.Metrics.Count} rows), {files.Summary}, {RunReportWriter.PlotsFolder}/ ({files.Plots.Count} plots)");
            return ExitCodes.Success;
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            Finish(registry, record, plan, directory, RunStatus.Cancelled, "cancelled by the user");
            terminal.Error.WriteLine($"adsim run: run {record.Id} cancelled; its finished phases are kept in {terminal.Display(directory)}.");
            terminal.Error.WriteLine($"Resume it with: {ResumeCommand(record.Id)}");
            return ExitCodes.Cancelled;
        }
        catch (Exception e)
        {
            Finish(registry, record, plan, directory, RunStatus.Failed, e.Message.ReplaceLineEndings(" "));
            terminal.Error.WriteLine($"adsim run: run {record.Id} failed; its finished phases are kept: {ResumeCommand(record.Id)}");
            throw;
        }
    }

    private (RunRecord Record, string Directory) Start(RunRegistry registry, RunPlan plan, string outRoot, TorchRuntimeInfo runtime)
    {
        var now = DateTime.UtcNow;
        var id = RunIdentity.NewId(plan.Scenario.Name, now);
        var directory = Path.Combine(outRoot, id);
        var record = new RunRecord
        {
            Id = id,
            ScenarioName = plan.Scenario.Name,
            ScenarioFile = terminal.Resolve(arguments.Scenario),
            Scenario = plan.ResolvedJson,
            CodeVersion = RunIdentity.CodeVersion(terminal.WorkingDirectory),
            Status = RunStatus.Running,
            StartedUtc = now,
            Device = runtime.Device.ToString().ToLowerInvariant(),
            Threads = runtime.ThreadCount,
            Machine = Environment.MachineName,
            ProcessId = Environment.ProcessId,
            Models = plan.Models.Select(m => m.Id).ToList(),
            Baseline = plan.Baseline,
            Points = plan.Points.Count,
            Repeats = plan.Repeats,
            Directory = directory,
        };
        // Recorded first: a registry that cannot take the run leaves no folder behind.
        registry.Add(record);
        Directory.CreateDirectory(directory);
        return (record, directory);
    }

    private (RunRecord Record, string Directory) Resume(RunRegistry registry, string id, RunPlan plan)
    {
        var record = registry.Find(id) ?? throw new CliInputException($"option --resume: there is no run {id} in {terminal.Display(registry.Path)}; see 'adsim runs list'");
        if (record.Status == RunStatus.Complete)
        {
            throw new CliInputException($"option --resume: run {id} is already complete ({terminal.Display(record.ReportHtml)}); nothing was changed");
        }
        if (!string.Equals(record.Scenario, plan.ResolvedJson, StringComparison.Ordinal))
        {
            throw new CliInputException($"option --resume: {arguments.Scenario} does not resolve to the scenario of run {id} (see 'adsim runs show {id}'); "
                + $"{Differences(record.Scenario, plan.ResolvedJson)}a resumed run must use the same scenario, models, training, evaluation and sweep. "
                + "Nothing was changed.");
        }
        if (!Directory.Exists(record.Directory))
        {
            throw new CliInputException($"option --resume: the folder of run {id} ({record.Directory}) is gone; start a new run instead");
        }
        record.Status = RunStatus.Running;
        record.Resumes++;
        record.Error = "";
        record.Machine = Environment.MachineName;
        record.ProcessId = Environment.ProcessId;
        return (record, record.Directory);
    }

    /// <summary>The command that resumes run <paramref name="id"/>: this one's scenario file and registry, as the user gave them.</summary>
    private string ResumeCommand(string id) =>
        $"adsim run {Quote(arguments.Scenario)} --resume {id}" + (arguments.Registry is { } registry ? $" --registry {Quote(registry)}" : "");

    private static string Quote(string path) => path.Any(c => char.IsWhiteSpace(c) || c is '\'' or '"' or '$' or '&' or ';' or '|')
        ? "'" + path.Replace("'", "'\\''", StringComparison.Ordinal) + "'"
        : path;

    /// <summary>"field: run value → file value; " for the first differing fields, or "" when they cannot be listed.</summary>
    private static string Differences(string recorded, string now)
    {
        try
        {
            var differences = ScenarioDifferences.Between(recorded, now);
            if (differences.Count == 0)
            {
                return "";
            }
            var shown = differences.Take(5).Select(d => $"{d.Path} {d.First} in the run, {d.Second} now");
            return $"it differs in {string.Join("; ", shown)}{(differences.Count > 5 ? $" and {differences.Count - 5} more" : "")}; ";
        }
        catch (JsonException)
        {
            return "";
        }
    }

    /// <summary>Holds the run folder's lock file for the process's lifetime, so that one run is never executed twice at once.</summary>
    private static FileStream Lock(string directory, string id)
    {
        try
        {
            return new FileStream(Path.Combine(directory, LockFile), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
        }
        catch (IOException)
        {
            throw new CliInputException($"run {id} is being run by another process (its folder {directory} is locked); nothing was changed");
        }
    }

    private void Finish(RunRegistry registry, RunRecord record, RunPlan plan, string directory, string status, string error)
    {
        record.Status = status;
        record.FinishedUtc = DateTime.UtcNow;
        record.Error = error;
        try
        {
            registry.Update(record);
            WriteRunFile(directory, record, plan);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or RegistryUnreadableException or InvalidOperationException)
        {
            logger.LogWarning(e, "Could not record run {Id} as {Status}", record.Id, status);
        }
    }

    /// <summary>
    /// <c>run.json</c>: the registry record, with the scenario written as a JSON object in its complete form (every
    /// default written out, readable as a scenario file, as the report prints it); the registry keeps the run's identity
    /// text, which <c>--resume</c> compares.
    /// </summary>
    private static void WriteRunFile(string directory, RunRecord record, RunPlan plan)
    {
        var root = JsonSerializer.SerializeToNode(record, ExperimentRunner.Json)!.AsObject();
        root["scenario"] = JsonNode.Parse(plan.CompleteJson);
        ExperimentRunner.WriteAtomically(Path.Combine(directory, RunFile), root.ToJsonString(ExperimentRunner.Json));
    }

    /// <summary>Writes the report into a sibling folder, then moves its files into the run folder, report.html last.</summary>
    private static ReportFiles WriteReport(string directory, RunReportData data, CancellationToken cancellation)
    {
        var temp = Path.Combine(directory, $"report.partial-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}");
        try
        {
            var files = RunReportWriter.Write(temp, data);
            cancellation.ThrowIfCancellationRequested();
            var plots = Path.Combine(directory, RunReportWriter.PlotsFolder);
            if (Directory.Exists(plots))
            {
                Directory.Delete(plots, recursive: true);
            }
            Directory.Move(Path.Combine(temp, RunReportWriter.PlotsFolder), plots);
            foreach (var file in (string[])[files.Metrics, files.Summary, .. files.Tables ?? [], files.Markdown, files.Html])
            {
                File.Move(Path.Combine(temp, file), Path.Combine(directory, file), overwrite: true);
            }
            return files;
        }
        finally
        {
            if (Directory.Exists(temp))
            {
                Directory.Delete(temp, recursive: true);
            }
        }
    }

    private static string Describe(TorchRuntimeInfo runtime) =>
        $"training on {runtime.Device.ToString().ToLowerInvariant()}, {runtime.ThreadCount} thread{(runtime.ThreadCount == 1 ? "" : "s")}";

    private static string S(double seconds) => seconds.ToString("F1", CultureInfo.InvariantCulture) + " s";
}
