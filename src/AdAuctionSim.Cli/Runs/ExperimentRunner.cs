using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using AdAuctionSim.Cli.Commands;
using AdAuctionSim.Evaluation;
using AdAuctionSim.Evaluation.Metrics;
using AdAuctionSim.Evaluation.OffPolicy;
using AdAuctionSim.Evaluation.Runs;
using AdAuctionSim.Models.Data;
using AdAuctionSim.Models.Runtime;
using AdAuctionSim.Models.Training;
using AdAuctionSim.Reports.Documents;
using AdAuctionSim.Simulation.Engine;
using AdAuctionSim.Simulation.Output;
using AdAuctionSim.Simulation.Scenarios;

namespace AdAuctionSim.Cli.Runs;

/// <summary>Everything the units of a run produced, in plan order.</summary>
internal sealed record ExperimentOutcome(
    IReadOnlyList<MetricRow> Metrics,
    IReadOnlyList<ReliabilityBin> Reliability,
    IReadOnlyList<DecileError> Deciles,
    IReadOnlyList<RepeatSeeds> Seeds,
    IReadOnlyList<RealisedBiasFigure> RealisedBias,
    IReadOnlyList<TrainingCurvePoint> Curves,
    IReadOnlyList<PhaseTiming> Timings,
    IReadOnlyList<MetricInterval> Intervals,
    IReadOnlyList<OpeEstimateRow> OpeEstimates,
    IReadOnlyList<PolicyTruthRow> OpeTruths);

/// <summary>
/// Runs the units of a plan inside a run folder, each one atomic and skipped when an earlier attempt finished it:
/// per sweep point and repeat, the simulation (<c>work/pNN/rNN/simulation</c>), each model's training run
/// (<c>models/&lt;id&gt;</c>), their joined run folder (<c>train</c>) and its evaluation (<c>evaluation.json</c>).
/// A folder exists only once complete (written beside and renamed), so whatever a crash or Ctrl+C leaves is either
/// finished or absent, and <c>--resume</c> redoes exactly what is missing. Timings go to <c>work/timings.json</c>.
/// With an <c>ope</c> section each unit also values the target policies (<c>ope.json</c>); for <c>adsim ope</c>
/// (<paramref name="opeOnly"/>) that replaces the evaluation. Repeat 0 of each point simulates the point's
/// <paramref name="worlds"/> entry when given (<see cref="RunPlan.BuildWorlds"/>), instead of building it again.
/// </summary>
internal sealed class ExperimentRunner(RunPlan plan, string runDirectory, IRunEvaluator? evaluator, TorchRuntimeInfo runtime, bool opeOnly = false,
    IReadOnlyList<PreparedWorld>? worlds = null)
{
    private readonly PreparedWorld?[] _worlds = worlds is null ? new PreparedWorld?[plan.Points.Count] : [.. worlds];

    public const string WorkFolder = "work";
    public const string SimulationFolder = "simulation";
    public const string ModelsFolder = "models";
    public const string TrainFolder = "train";
    public const string EvaluationFile = "evaluation.json";
    public const string OpeFile = "ope.json";
    public const string TimingsFile = "timings.json";

    /// <summary>Units of work, for the progress count: per point and repeat, a simulation, each model and an evaluation.</summary>
    public int Units => plan.Points.Count * plan.Repeats * (plan.Models.Count + 1 + (opeOnly ? 0 : 1) + (plan.Ope is null ? 0 : 1));

    private string Work => Path.Combine(runDirectory, WorkFolder);

    public string UnitFolder(int point, int repeat) =>
        Path.Combine(Work, $"p{point.ToString("D2", CultureInfo.InvariantCulture)}", $"r{repeat.ToString("D2", CultureInfo.InvariantCulture)}");

    private string Device => runtime.Device.ToString().ToLowerInvariant();

    public ExperimentOutcome Execute(IRunProgress progress, CancellationToken cancellation)
    {
        Directory.CreateDirectory(Work);
        var timings = new TimingLog(Path.Combine(Work, TimingsFile));
        var metrics = new List<MetricRow>();
        var reliability = new List<ReliabilityBin>();
        var deciles = new List<DecileError>();
        var intervals = new List<MetricInterval>();
        var seeds = new List<RepeatSeeds>();
        var bias = new List<RealisedBiasFigure>();
        var curves = new List<TrainingCurvePoint>();
        var opeEstimates = new List<OpeEstimateRow>();
        var opeTruths = new List<PolicyTruthRow>();
        foreach (var point in plan.Points)
        {
            for (var repeat = 0; repeat < plan.Repeats; repeat++)
            {
                cancellation.ThrowIfCancellationRequested();
                var label = Where(point, repeat);
                var worldSeed = plan.WorldSeed(repeat);
                var trainingSeed = plan.TrainingSeed(repeat);
                seeds.Add(new RepeatSeeds(point.Label, repeat, worldSeed, trainingSeed));
                var folder = UnitFolder(point.Index, repeat);
                if (Damaged(folder) is { } damage)
                {
                    // A resumed run's kept files are checked before reuse; the unit is deterministic, so it is simply redone.
                    progress.Note($"{label}: a kept file is damaged ({damage}); this unit is redone from its simulation");
                    Directory.Delete(folder, recursive: true);
                }
                Directory.CreateDirectory(folder);

                var simulation = Path.Combine(folder, SimulationFolder);
                var prepared = repeat == 0 ? _worlds[point.Index] : null;
                _worlds[point.Index] = null;   // held only until its point's first simulation
                Simulate(point.Scenario with { Seed = worldSeed }, prepared, simulation, label, timings, progress, cancellation);
                bias.AddRange(RealisedBias(point.Label, repeat, SimulationManifest.Read(Path.Combine(simulation, LogColumns.ManifestFile))));

                var train = Path.Combine(folder, TrainFolder);
                var parts = plan.Models.Select(m => Path.Combine(folder, ModelsFolder, m.Id)).ToList();
                if (plan.Models.Count == 0)
                {
                    // Nothing to train (an ope section whose policies use the truth or the logging model's scores).
                }
                else if (!Directory.Exists(train))
                {
                    TrainModels(simulation, parts, trainingSeed, label, timings, progress, cancellation);
                    cancellation.ThrowIfCancellationRequested();
                    var clock = Stopwatch.StartNew();
                    TrainFolders.Merge(parts, train);
                    timings.Add(new PhaseTiming("merge", label, clock.Elapsed.TotalSeconds, "joining the models' run folders (copy, train.json)"));
                }
                else
                {
                    foreach (var m in plan.Models)
                    {
                        progress.UnitDone($"{label}: {m.Id} reused");
                    }
                }
                foreach (var m in plan.Models)
                {
                    curves.AddRange(ReadCurves(point.Label, repeat, m.Id, Path.Combine(train, TrainingRun.CurvesFolder, m.Id + ".csv")));
                }
                if (plan.Models.Count > 0)
                {
                    bias.AddRange(WinModelCheck(point.Label, repeat, Path.Combine(train, TrainingRun.ManifestFile)));
                }

                if (!opeOnly)
                {
                    var result = Evaluate(new RunEvaluationRequest(simulation, train, point.Label, repeat, worldSeed), folder, label, timings, progress, cancellation);
                    metrics.AddRange(result.Metrics);
                    reliability.AddRange(result.Reliability);
                    deciles.AddRange(result.Deciles);
                    intervals.AddRange(result.Intervals);
                    bias.AddRange(WinModelHeldOut(point.Label, repeat, result.WinModel));
                }
                if (plan.Ope is { } ope)
                {
                    var result = OffPolicy(ope, simulation, plan.Models.Count == 0 ? null : train, trainingSeed, point.Label, repeat, worldSeed, folder, label, timings,
                        progress, cancellation);
                    opeEstimates.AddRange(result.Estimates);
                    opeTruths.AddRange(result.Truths);
                }
            }
        }
        return new ExperimentOutcome(metrics, reliability, deciles, seeds, bias, curves, timings.All, intervals, opeEstimates, opeTruths);
    }

    /// <summary>
    /// Why a unit folder kept from an earlier attempt cannot be reused, or null when it can (or does not exist): its
    /// simulation's products and truth must match their manifest's SHA-256, every kept training run's predictions the
    /// SHA-256 its train.json records, and its stored evaluation and off-policy results must read.
    /// </summary>
    private string? Damaged(string folder)
    {
        if (!Directory.Exists(folder))
        {
            return null;
        }
        try
        {
            var simulation = Path.Combine(folder, SimulationFolder);
            if (Directory.Exists(simulation))
            {
                LoggedView.Open(simulation);
                TruthView.Open(simulation);
            }
            var runs = plan.Models.Select(m => Path.Combine(folder, ModelsFolder, m.Id)).Append(Path.Combine(folder, TrainFolder));
            foreach (var run in runs.Where(Directory.Exists))
            {
                foreach (var model in TrainRunFile.Read(run).Models.Where(m => m.PredictionsSha256 is not null))
                {
                    LoggedView.VerifyHash(model.PredictionsPath, model.PredictionsSha256!, TrainRunFile.FileName);
                }
            }
            foreach (var file in ((string[])[EvaluationFile, OpeFile]).Select(f => Path.Combine(folder, f)).Where(File.Exists))
            {
                using var json = JsonDocument.Parse(File.ReadAllText(file), new JsonDocumentOptions { AllowDuplicateProperties = false });
            }
            return null;
        }
        catch (Exception e) when (e is InvalidDataException or JsonException)
        {
            return e.Message;
        }
    }

    /// <summary>The stored result of one unit's off-policy evaluation.</summary>
    internal sealed record OpeUnitFile(IReadOnlyList<OpeEstimateRow> Estimates, IReadOnlyList<PolicyTruthRow> Truths);

    private OpeUnitFile OffPolicy(OpePlan ope, string simulation, string? train, long trainingSeed, string point, int repeat, long worldSeed, string folder,
        string label, TimingLog timings, IRunProgress progress, CancellationToken cancellation)
    {
        var file = Path.Combine(folder, OpeFile);
        if (File.Exists(file))
        {
            progress.UnitDone($"{label}: off-policy evaluation reused");
            return JsonSerializer.Deserialize<OpeUnitFile>(File.ReadAllText(file), Json) ?? throw new InvalidDataException($"{file} holds no off-policy evaluation");
        }
        progress.Phase($"{label}: off-policy evaluation of {ope.Policies.Count} policies", 1, "evaluations");
        var clock = Stopwatch.StartNew();
        var options = new TrainingRunOptions
        {
            OutputDirectory = "",
            Trainer = plan.Trainer with { Seed = trainingSeed },
            Model = plan.Model with { Seed = (int)(trainingSeed % int.MaxValue) },
            DrGradients = plan.DrGradients,
        };
        var result = OpeUnit.Run(ope, simulation, train, options, runtime, point, repeat, worldSeed, plan.SimulationThreads, plan.ScenarioFile, cancellation);
        cancellation.ThrowIfCancellationRequested();
        var stored = new OpeUnitFile(result.Estimates, result.Truths);
        WriteAtomically(file, JsonSerializer.Serialize(stored, Json));
        timings.Add(new PhaseTiming("ope replay", label, result.TruthSeconds,
            string.Create(CultureInfo.InvariantCulture, $"reading the logged feedback and replaying its requests' {ope.Options.Split}-split actions in the world; cpu, {plan.SimulationThreads} threads")));
        timings.Add(new PhaseTiming("ope scores", label, result.ScoreSeconds, ope.ScoresCovers(Device)));
        timings.Add(new PhaseTiming("ope estimate", label, result.EstimateSeconds,
            string.Create(CultureInfo.InvariantCulture, $"per policy: exact value, Monte Carlo run and 7 estimators with {ope.Options.Bootstrap} bootstrap resamples; cpu, 1 thread")));
        progress.UnitDone(string.Create(CultureInfo.InvariantCulture,
            $"{label}: valued {ope.Policies.Count} policies off-policy in {clock.Elapsed.TotalSeconds:F1} s"));
        return stored;
    }

    private static string Where(SweepPoint point, int repeat) =>
        (point.Label.Length == 0 ? "" : $"{point.Label}, ") + $"repeat {repeat.ToString(CultureInfo.InvariantCulture)}";

    private void Simulate(Scenario scenario, PreparedWorld? prepared, string directory, string label, TimingLog timings, IRunProgress progress,
        CancellationToken cancellation)
    {
        if (Directory.Exists(directory))
        {
            progress.UnitDone($"{label}: simulation reused");
            return;
        }
        progress.Phase($"{label}: simulate {scenario.Traffic.Requests} requests (seed {scenario.Seed})", scenario.Traffic.Requests, "requests");
        var clock = Stopwatch.StartNew();
        var world = prepared?.World ?? ScenarioFiles.BuildWorld(scenario, plan.ScenarioFile, cancellation);
        var build = prepared?.Seconds ?? clock.Elapsed.TotalSeconds;
        var options = new SimulationOptions { Threads = plan.SimulationThreads };
        SimulationOutput.Write(world, new SimulationOutputOptions(directory), options, new Progress(progress), cancellation);
        var seconds = clock.Elapsed.TotalSeconds + (prepared?.Seconds ?? 0);
        timings.Add(new PhaseTiming("simulate", label, seconds,
            string.Create(CultureInfo.InvariantCulture, $"world build ({build:F2} s) + simulation and Parquet output of {scenario.Traffic.Requests} requests; cpu, {options.Threads} threads")));
        progress.UnitDone(string.Create(CultureInfo.InvariantCulture, $"{label}: simulated {scenario.Traffic.Requests} requests in {seconds:F1} s"));
    }

    private void TrainModels(string simulation, IReadOnlyList<string> parts, long seed, string label, TimingLog timings, IRunProgress progress,
        CancellationToken cancellation)
    {
        var missing = Enumerable.Range(0, plan.Models.Count).Where(i => !Directory.Exists(parts[i])).ToList();
        foreach (var i in Enumerable.Range(0, plan.Models.Count).Except(missing))
        {
            progress.UnitDone($"{label}: {plan.Models[i].Id} reused");
        }
        if (missing.Count == 0)
        {
            return;
        }
        var clock = Stopwatch.StartNew();
        using var data = LoggedDataset.Load(LoggedView.Open(simulation), runtime.Device, cancellation);
        timings.Add(new PhaseTiming("load", label, clock.Elapsed.TotalSeconds, $"reading the logged view into tensors on {Device}"));
        var options = new TrainingRunOptions
        {
            OutputDirectory = "",
            Trainer = plan.Trainer with { Seed = seed },
            Model = plan.Model with { Seed = (int)(seed % int.MaxValue) },
            DrGradients = plan.DrGradients,
        };
        var covers = $"{Device}, {runtime.ThreadCount} threads, batch {options.Trainer.BatchSize}";
        var predictCovers = $"{Device}, {runtime.ThreadCount} threads, batch {options.Trainer.EvaluationBatchSize} (no gradients)";
        WinPropensityFit? settled = null;   // fitted by the first unit that reads it, reused by the others on this dataset
        foreach (var i in missing)
        {
            cancellation.ThrowIfCancellationRequested();
            var entry = plan.Models[i];
            progress.Phase($"{label}: train {entry.Id}", options.Trainer.Epochs, "epochs");
            var callbacks = new TrainingRunCallbacks { EpochFinished = e => progress.Report(e.Epoch) };
            var result = TrainingRun.Execute(data, [entry], options with { OutputDirectory = parts[i], SettledWinPropensity = settled },
                callbacks, cancellation);
            var model = result.Models[0];
            var t = model.Training;
            var unit = $"{label}, {entry.Id}";
            // The phase table sums the units of a phase under the first unit's text, so the per-model epochs go in the unit.
            timings.Add(new PhaseTiming("train", $"{unit}, {t.DescribeEpochs()}", t.Seconds,
                options.Trainer.EarlyStopping
                    ? $"up to {options.Trainer.Epochs} epochs each with validation (batch {options.Trainer.EvaluationBatchSize}) and early stopping; {covers}"
                    : $"{options.Trainer.Epochs} epochs each with validation (batch {options.Trainer.EvaluationBatchSize}), no early stopping; {covers}"));
            timings.Add(new PhaseTiming("predict", unit, model.PredictSeconds, $"scoring every request of D and writing predictions; {predictCovers}"));
            if (result.WinPropensity is { Fitted: true } win && !ReferenceEquals(win, settled))
            {
                settled = win;
                timings.Add(new PhaseTiming("win propensity", unit, win.FitSeconds, $"fitting the {win.Source} win model on the train split (1 thread){(win.CrossFitted ? $", {win.Folds} out-of-fold fits" : "")} and scoring every request; cpu"));
            }
            progress.UnitDone(string.Create(CultureInfo.InvariantCulture,
                $"{label}: trained {entry.Id}: {t.DescribeEpochs()}, best validation log loss {t.BestValidationLogLoss:F5}, "
                + $"{t.Seconds:F1} s ({covers}) + {model.PredictSeconds:F1} s predict (batch {options.Trainer.EvaluationBatchSize})"));
        }
    }

    private EvaluationResult Evaluate(RunEvaluationRequest request, string folder, string label, TimingLog timings, IRunProgress progress,
        CancellationToken cancellation)
    {
        var file = Path.Combine(folder, EvaluationFile);
        if (File.Exists(file))
        {
            progress.UnitDone($"{label}: evaluation reused");
            return JsonSerializer.Deserialize<EvaluationResult>(File.ReadAllText(file), Json)
                ?? throw new InvalidDataException($"{file} holds no evaluation");
        }
        progress.Phase($"{label}: evaluate", 1, "evaluations");
        var clock = Stopwatch.StartNew();
        var result = (evaluator ?? throw new InvalidOperationException("no run evaluator was given")).Evaluate(request, cancellation);
        cancellation.ThrowIfCancellationRequested();
        WriteAtomically(file, JsonSerializer.Serialize(result, Json));
        timings.Add(new PhaseTiming("evaluate", label, clock.Elapsed.TotalSeconds,
            $"every model × stage × space against the truth{(result.WinModel.Count > 0 ? ", and the win model's scores" : "")}; cpu"));
        progress.UnitDone(string.Create(CultureInfo.InvariantCulture,
            $"{label}: evaluated {result.Metrics.Count} metric rows in {clock.Elapsed.TotalSeconds:F1} s"));
        return result;
    }

    /// <summary>The realised-bias figures of a simulation as name/value pairs (per-stage ones suffixed with the stage).</summary>
    public static IEnumerable<RealisedBiasFigure> RealisedBias(string point, int repeat, SimulationManifest manifest)
    {
        if (manifest.RealisedBias is not { } b)
        {
            yield break;
        }
        yield return new(point, repeat, "winRate", b.WinRate);
        yield return new(point, repeat, "winSelectionRatio", b.WinSelectionRatio);
        yield return new(point, repeat, "inverseWinPropensityEssShare", b.InverseWinPropensityEssShare);
        for (var slot = 0; slot < b.ClickRateBySlot.Count; slot++)
        {
            yield return new(point, repeat, $"clickRateBySlot[{slot}]", b.ClickRateBySlot[slot].Rate);
        }
        foreach (var s in b.Stages)
        {
            yield return new(point, repeat, $"targetRate[{s.Stage}]", s.TargetRate);
            yield return new(point, repeat, $"entireSpaceMeanQ[{s.Stage}]", s.EntireSpaceMeanQ);
            yield return new(point, repeat, $"loggedRate[{s.Stage}]", s.LoggedRate.Rate);
            yield return new(point, repeat, $"loggedParentMeanQ[{s.Stage}]", s.LoggedParentMeanQ);
            yield return new(point, repeat, $"counterfactualMeanQ[{s.Stage}]", s.CounterfactualMeanQ);
            if (s.ClickSelectionRatio is { } ratio)
            {
                yield return new(point, repeat, $"clickSelectionRatio[{s.Stage}]", ratio);
            }
            if (s.WinSelectionPart is { } win && s.FunnelSelectionPart is { } funnel)
            {
                yield return new(point, repeat, $"winSelectionPart[{s.Stage}]", win);
                yield return new(point, repeat, $"funnelSelectionPart[{s.Stage}]", funnel);
            }
            if (s.HiddenSelectionPart is { } hidden)
            {
                yield return new(point, repeat, $"hiddenSelectionPart[{s.Stage}]", hidden);
            }
        }
    }

    /// <summary>
    /// A fitted win model's check against the logged true π(x) (<see cref="WinPropensityCheck"/>, in train.json's
    /// <c>winPropensity.againstLogged</c>), beside the true weights' ESS share of <see cref="RealisedBias"/>; nothing when
    /// the unit fitted no win model or weighs at the bid.
    /// </summary>
    public static IEnumerable<RealisedBiasFigure> WinModelCheck(string point, int repeat, string trainJson)
    {
        var root = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(trainJson));
        if (root?["winPropensity"] is not { } win || win["fitted"]?.GetValue<bool>() != true || win["againstLogged"] is not System.Text.Json.Nodes.JsonObject check)
        {
            yield break;
        }
        yield return new(point, repeat, "winModelEssShare", win["essShare"]!.GetValue<double>());
        yield return new(point, repeat, "winModelLogCorrelation", check["logCorrelation"]!.GetValue<double>());
        yield return new(point, repeat, "winModelMeanAbsoluteError", check["meanAbsoluteError"]!.GetValue<double>());
    }

    /// <summary>
    /// The fitted win model on the unit's held-out requests (<see cref="EvaluationResult.WinModel"/>): the calibration of
    /// Ŵ(b | x) against the auction outcomes, the error of π̂(x), and the share of the win selection its weights close
    /// beside the true weights' share; undefined figures are left out.
    /// </summary>
    public static IEnumerable<RealisedBiasFigure> WinModelHeldOut(string point, int repeat, IReadOnlyList<WinModelFigure> figures) =>
        figures.Where(f => HeldOutNames.ContainsKey(f.Metric) && !double.IsNaN(f.Value))
            .Select(f => new RealisedBiasFigure(point, repeat, HeldOutNames[f.Metric], f.Value));

    private static readonly Dictionary<string, string> HeldOutNames = new(StringComparer.Ordinal)
    {
        [WinModelMetrics.AtBidEce] = "winModelTestEce",
        [WinModelMetrics.PolicyMae] = "winModelTestMeanAbsoluteError",
        [WinModelMetrics.GapRecovered] = "winModelTestGapClosed",
        [WinModelMetrics.TrueGapRecovered] = "trueWeightsTestGapClosed",
    };

    /// <summary>
    /// What each figure of <see cref="RealisedBias"/> means, by its name before any "[…]" (from the manifest's glossary,
    /// <see cref="SimulationManifest.Glossary"/>). Where a glossary entry leans on its neighbour in the manifest or
    /// describes an interval the table leaves out, the table's own wording replaces it.
    /// </summary>
    public static IReadOnlyDictionary<string, string> RealisedBiasMeanings { get; } = BuildMeanings();

    private static Dictionary<string, string> BuildMeanings()
    {
        var meanings = SimulationManifest.Glossary.ToDictionary(
            g => g.Key.StartsWith("stages[].", StringComparison.Ordinal) ? g.Key["stages[].".Length..] : g.Key, g => g.Value, StringComparer.Ordinal);
        meanings["entireSpaceMeanQ"] = "mean true q_k over the requests of D whose potential outcomes reach the stage before: the true funnel as if "
            + "every request were shown (close to targetRate)";
        meanings["clickRateBySlot"] = "click rate of the impressions in slot j (the position effect)";
        meanings["inverseWinPropensityEssShare"] = "effective sample size of the true inverse-win weights 1/P(win | x) over the impressions, "
            + "divided by the impressions (1 = uniform weights)";
        meanings["winModelEssShare"] = "the same for the fitted win model's weights 1/max(π̂, ε_w), over the train impressions (a share above the true "
            + "weights' means a fit smoother than the truth, which corrects less of the win selection)";
        meanings["winModelLogCorrelation"] = "correlation of ln π̂ with the logged true ln π over the train impressions (models.md §14.4)";
        meanings["winModelMeanAbsoluteError"] = "mean |π̂ − π| of the fitted win model over the train impressions";
        meanings["winModelTestEce"] = $"on the held-out requests (test split): expected calibration error of the win model's Ŵ(b | x) at each logged bid against whether it won ({BinaryMetrics.CalibrationBins} equal-mass bins; models.md §14.4)";
        meanings["winModelTestMeanAbsoluteError"] = "mean |π̂(x) − P(win | x)| over the held-out requests";
        meanings["winModelTestGapClosed"] = "share of the gap between mean true r_K on all held-out requests (D) and on the held-out impressions (O) that weighting the impressions "
            + "by 1/max(π̂, ε_w) closes (1 = all the win selection corrected; left out when the gap is within two standard errors of 0)";
        meanings["trueWeightsTestGapClosed"] = "the same with the true weights 1/max(P(win | x), ε_w): what an exact win model would close";
        return meanings;
    }

    /// <summary>
    /// Epoch, train loss, validation log loss and the deepest stage's validation calibration (the last
    /// <c>validation_calibration_</c> column; NaN without one) from a curves file of <see cref="TrainingRun.CurvesCsv"/>.
    /// </summary>
    public static IEnumerable<TrainingCurvePoint> ReadCurves(string point, int repeat, string model, string path)
    {
        var lines = File.ReadAllLines(path);
        if (lines.Length == 0)
        {
            yield break;
        }
        var header = lines[0].Split(',');
        int epoch = Array.IndexOf(header, "epoch"), train = Array.IndexOf(header, "train_loss"), validation = Array.IndexOf(header, "validation_log_loss");
        var calibration = Array.FindLastIndex(header, h => h.StartsWith(TrainingRun.CalibrationColumnPrefix, StringComparison.Ordinal));
        foreach (var line in lines.Skip(1).Where(l => l.Length > 0))
        {
            var f = line.Split(',');
            yield return new TrainingCurvePoint(point, repeat, model, int.Parse(f[epoch], CultureInfo.InvariantCulture),
                double.Parse(f[train], CultureInfo.InvariantCulture), double.Parse(f[validation], CultureInfo.InvariantCulture),
                calibration < 0 ? double.NaN : double.Parse(f[calibration], CultureInfo.InvariantCulture));
        }
    }

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new EvaluationSpaceJsonConverter(), new JsonStringEnumConverter() },
        AllowDuplicateProperties = false,
    };

    /// <summary>Writes a file beside its target and renames it into place.</summary>
    internal static void WriteAtomically(string path, string text)
    {
        var temp = $"{path}.partial-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}";
        File.WriteAllText(temp, text, new UTF8Encoding(false));
        File.Move(temp, path, overwrite: true);
    }

    private sealed class Progress(IRunProgress progress) : IProgress<long>
    {
        public void Report(long value) => progress.Report(value);
    }

    /// <summary>The run's phase timings, kept in a file so that a resumed run reports what earlier attempts measured.</summary>
    private sealed class TimingLog
    {
        private readonly string _path;
        private readonly List<PhaseTiming> _timings = [];

        public TimingLog(string path)
        {
            _path = path;
            if (File.Exists(path))
            {
                var earlier = JsonSerializer.Deserialize<List<PhaseTiming>>(File.ReadAllText(path), Json) ?? [];
                _timings.AddRange(earlier.Select(t => t with { Reused = true }));
            }
        }

        public IReadOnlyList<PhaseTiming> All => _timings;

        public void Add(PhaseTiming timing)
        {
            _timings.RemoveAll(t => t.Phase == timing.Phase && t.Unit == timing.Unit);
            _timings.Add(timing);
            WriteAtomically(_path, JsonSerializer.Serialize(_timings, Json));
        }
    }
}
