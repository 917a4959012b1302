using System.Globalization;
using AdAuctionSim.Cli.Terminal;
using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Data;
using AdAuctionSim.Models.Runtime;
using AdAuctionSim.Models.Training;
using AdAuctionSim.Models.WinPropensity;
using AdAuctionSim.Simulation.Output;
using Microsoft.Extensions.Logging;

namespace AdAuctionSim.Cli.Commands;

/// <summary>
/// <c>adsim train &lt;simulation-dir&gt;</c>: opens the logged view (never the truth), checks the models against the
/// catalog and the funnel depth, loads the dataset onto the device and runs <see cref="TrainingRun"/>, which creates the
/// run directory only when every model is trained and scored. Bad input (folder, files, model ids, options, a CUDA
/// request without CUDA) is a <see cref="CliInputException"/>: exit 2 before anything is written.
/// </summary>
internal sealed class TrainCommand(TrainArguments arguments, CliTerminal terminal, ILogger<TrainCommand> logger) : ICliCommand
{
    public async Task<int> RunAsync(CancellationToken cancellation)
    {
        var simulation = terminal.Resolve(arguments.Simulation);
        var view = Open(simulation);
        var models = ResolveModels(view);
        if (models.Select(m => IpsNormalizers.Conflict(m.Id, arguments.IpsNormalizer)).FirstOrDefault(c => c is not null) is { } conflict)
        {
            throw new CliInputException($"option --ips-normalizer: {conflict}; nothing was written. Run 'adsim train --help' for usage");
        }
        if (models.Select(m => DrGradientModes.Conflict(m.Id, arguments.DrGradients)).FirstOrDefault(c => c is not null) is { } drConflict)
        {
            throw new CliInputException($"option --dr-gradients: {drConflict}; nothing was written. Run 'adsim train --help' for usage");
        }
        var directory = terminal.Resolve(arguments.Out ?? Path.Combine(arguments.Simulation, TrainCommandSpec.DefaultOut));
        OutputTarget.CheckFolder(terminal, directory, OutputKind.Training, arguments.Force, simulation);
        var trainer = new TrainerOptions
        {
            Device = arguments.Device,
            BatchSize = arguments.BatchSize,
            Epochs = arguments.Epochs,
            EarlyStopping = !arguments.FixedEpochs,
            Patience = arguments.Patience ?? new TrainerOptions().Patience,
            LearningRate = arguments.LearningRate,
            Seed = arguments.Seed,
            Threads = arguments.Threads,
            WinPropensity = arguments.WinPropensity,
            WinWeight = arguments.WinWeight,
            ValidationLoss = arguments.ValidationLoss,
            ClickPropensity = arguments.ClickPropensity,
        };
        var options = new TrainingRunOptions
        {
            OutputDirectory = directory,
            Force = arguments.Force,
            Trainer = trainer,
            Model = new ModelOptions
            {
                LabelMode = arguments.LabelMode, StageWeights = arguments.StageWeights, MaxWeight = arguments.MaxWeight,
                IpsNormalizer = arguments.IpsNormalizer,
                Seed = (int)(arguments.Seed % int.MaxValue),
            },
            DrGradients = arguments.DrGradients,
        };

        var runtime = await CliTorchRuntime.InitializeAsync(arguments.Device, arguments.Threads, arguments.Seed, $"option --device {arguments.Device}", cancellation).ConfigureAwait(false);
        logger.LogInformation("TorchSharp {Version} ({Backend}) on {Device}, {Threads} threads, seed {Seed}", runtime.TorchSharpVersion,
            runtime.TorchBackend, runtime.Device, runtime.ThreadCount, runtime.Seed);

        var (data, loadTime) = await ProgressDisplay.StatusAsync(terminal, $"loading the logged view of {terminal.Display(simulation)} ...",
            () => TorchThread.Invoke(() => Load(view, runtime), cancellation), cancellation).ConfigureAwait(false);
        using (data)
        {
            if (arguments.StageWeights is { } weights && weights.Count != data.Depth)
            {
                throw new CliInputException($"option --stage-weights: {weights.Count} weight{(weights.Count == 1 ? "" : "s")} for a funnel of "
                    + $"depth {data.Depth} ({string.Join(", ", data.Stages)}) in {terminal.Display(simulation)}; expected one weight per stage; "
                    + "nothing was written");
            }
            var source = WinPropensitySources.Id(trainer.WinPropensity);
            if (WinPropensityModels.FirstPriceProblem(source) is { } problem && !data.SecondPrice && models.Any(m => TrainingRun.ReadsWinPropensity(m.Id)))
            {
                throw new CliInputException($"option --win-propensity {source}: the {source} win model {problem}, and {terminal.Display(simulation)} was simulated with a "
                    + $"first-price auction; expected one of {string.Join(", ", WinPropensitySources.Ids.Where(id => WinPropensityModels.FirstPriceProblem(id) is null))}; "
                    + "nothing was written");
            }
            logger.LogInformation("Loaded {Rows} requests in {Seconds:F2} s; columns read: {Columns}", data.Count, loadTime.TotalSeconds,
                string.Join(", ", data.ColumnsRead));
            var mode = arguments.LabelMode == LabelMode.Cumulative ? "cumulative" : "conditional";
            var stageWeights = arguments.StageWeights is { } w
                ? ", stage weights " + string.Join(", ", w.Select(x => x.ToString("R", CultureInfo.InvariantCulture)))
                : "";
            terminal.Heading($"Training {models.Count} model{(models.Count == 1 ? "" : "s")} on {terminal.Display(simulation)} -> {terminal.Display(directory)}");
            terminal.WriteLine($"  data: {data.Count} requests ({data.CountOf(DatasetSplit.Train, false)} train / "
                + $"{data.CountOf(DatasetSplit.Validation, false)} validation impressions), depth {data.Depth} ({string.Join(", ", data.Stages)}), "
                + $"{data.Schema.Count} fields, {data.Schema.TotalRows} embedding rows; loaded in {S(loadTime.TotalSeconds)}");
            var validation = trainer.ValidationLoss == ValidationWeighting.WinWeighted ? " on the win-weighted validation log loss" : "";
            var schedule = trainer.EarlyStopping
                ? $"up to {trainer.Epochs} epoch{(trainer.Epochs == 1 ? "" : "s")} (early stopping{validation}, patience {trainer.Patience})"
                : $"{trainer.Epochs} epoch{(trainer.Epochs == 1 ? "" : "s")}, the last kept (no early stopping)";
            terminal.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {Describe(runtime)}, batch {trainer.BatchSize}, {schedule}, "
                + $"Adam lr {trainer.LearningRate:R}, seed {trainer.Seed}, label mode {mode}, win propensity {WinPropensitySources.Id(trainer.WinPropensity)} "
                + $"(weights 1/{(trainer.WinWeight == WinWeightBasis.AtBid ? "Ŵ(b | x) at the bid" : "π(x)")}), "
                + $"{(options.Model.MaxWeight is { } cap ? $"max weight {cap:R}, " : "")}"
                + $"IPS normaliser {IpsNormalizers.Id(options.Model.IpsNormalizer)}, "
                + $"click propensity {ClickPropensitySources.Id(trainer.ClickPropensity)}, "
                + $"DR gradients {DrGradientModes.Id(options.DrGradients)}{stageWeights}"));

            var callbacks = new TrainingRunCallbacks
            {
                ModelStarted = (id, index, count) => terminal.WriteLine($"[{index + 1}/{count}] {id}"),
                EpochFinished = e => terminal.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {e.ModelId} epoch {e.Epoch}: train loss {e.TrainLoss:F5}, validation log loss {e.ValidationLogLoss:F5}"
                    + $"{(e.ValidationCalibrationByStage.Count > 0 ? $" (Σr̂/Σs of {data.Stages[^1]} {e.ValidationCalibrationByStage[^1]:F3})" : "")}"
                    + $"{(e.Improved ? " (best)" : "")}, {S(e.Seconds)}, {e.Samples / Math.Max(e.TrainSeconds, 1e-9):F0} samples/s")),
                ModelFinished = m => terminal.WriteLine(Summary(m.Training, runtime)),
                WinPropensityReady = w => terminal.WriteLine(Describe(w)),
            };
            var parent = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(directory));
            var parentExisted = parent is null || Directory.Exists(parent);
            TrainingRunResult result;
            try
            {
                result = await TorchThread.RunAsync(() => TrainingRun.Execute(data, models, options, callbacks, cancellation), cancellation).ConfigureAwait(false);
            }
            catch (InvalidDataException e)
            {
                RemoveEmptyParent(parent, parentExisted);
                throw new CliInputException(e.Message);
            }
            catch
            {
                RemoveEmptyParent(parent, parentExisted);
                throw;
            }

            terminal.WriteLine();
            terminal.Heading($"Run: {terminal.Display(result.Directory)}");
            var table = new TextTable("model", "epochs", "best epoch", "kept epoch", "best validation log loss", "seconds", "samples/s").RightAlign(1, 2, 3, 4, 5, 6);
            foreach (var m in result.Models)
            {
                var t = m.Training;
                table.Add(m.ModelId, t.EpochsRun.ToString(CultureInfo.InvariantCulture), t.BestEpoch.ToString(CultureInfo.InvariantCulture),
                    t.KeptEpoch.ToString(CultureInfo.InvariantCulture),
                    t.BestValidationLogLoss.ToString("F5", CultureInfo.InvariantCulture), t.Seconds.ToString("F1", CultureInfo.InvariantCulture),
                    t.SamplesPerSecond.ToString("F0", CultureInfo.InvariantCulture));
            }
            table.Write(terminal);
            terminal.WriteLine($"  {Describe(runtime)}, batch {trainer.BatchSize}; files: {TrainingRun.CheckpointsFolder}/, {TrainingRun.CurvesFolder}/, "
                + $"{TrainingRun.PredictionsFolder}/, {(result.WinPropensity?.Scores is { } scores ? $"{scores} (the win model's scores), " : "")}{TrainingRun.ManifestFile}");
        }
        return ExitCodes.Success;
    }

    private static LoggedView Open(string simulation)
    {
        try
        {
            return LoggedView.Open(simulation);
        }
        catch (InvalidDataException e)
        {
            throw new CliInputException(e.Message);
        }
    }

    private static LoggedDataset Load(LoggedView view, TorchRuntimeInfo runtime)
    {
        try
        {
            return LoggedDataset.Load(view, runtime.Device);
        }
        catch (InvalidDataException e)
        {
            throw new CliInputException(e.Message);
        }
    }

    /// <summary>The catalog entries asked for (all by default), each able to serve the funnel's depth.</summary>
    private List<ModelEntry> ResolveModels(LoggedView view)
    {
        var available = ModelCatalog.Ids;
        if (arguments.Models is null && available.Count == 0)
        {
            throw new CliInputException("there are no models to train: the model catalog of this build is empty.");
        }
        var ids = arguments.Models ?? available.ToList();
        var unknown = ids.Where(id => !ModelCatalog.TryGet(id, out _)).ToList();
        if (unknown.Count > 0)
        {
            throw new CliInputException($"option --models: unknown model{(unknown.Count == 1 ? "" : "s")} {string.Join(", ", unknown.Select(u => $"\"{u}\""))}; "
                + (available.Count == 0 ? "the model catalog of this build is empty." : $"expected one or more of: {string.Join(", ", available)}."));
        }
        var entries = ids.Select(ModelCatalog.Get).ToList();
        var refused = entries
            .Select(e => (e.Id, Why: e.Unsupported(view.Depth)))
            .Where(r => r.Why is not null)
            .ToList();
        if (refused.Count > 0)
        {
            throw new CliInputException($"{Path.Combine(view.Folder, LogColumns.ManifestFile)} describes a funnel of depth {view.Depth} "
                + $"({string.Join(", ", view.Stages)}), which "
                + string.Join("; ", refused.Select(r => $"model \"{r.Id}\" cannot serve: {r.Why}"))
                + ". Leave it out with --models.");
        }
        return entries;
    }

    private void RemoveEmptyParent(string? parent, bool existed)
    {
        if (existed || parent is null)
        {
            return;
        }
        try
        {
            if (Directory.Exists(parent) && !Directory.EnumerateFileSystemEntries(parent).Any())
            {
                Directory.Delete(parent);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogDebug(e, "Could not remove {Directory}", parent);
        }
    }

    private static string Summary(TrainingResult t, TorchRuntimeInfo runtime) => string.Create(CultureInfo.InvariantCulture,
        $"{t.ModelId}: {t.DescribeEpochs()}, "
        + $"best validation log loss {t.BestValidationLogLoss:F5}, {S(t.Seconds)}, {t.SamplesPerSecond:F0} samples/s "
        + $"({Describe(runtime)}, batch {t.BatchSize})");

    private static string Describe(WinPropensityFit w) => w.Fitted
        ? string.Create(CultureInfo.InvariantCulture,
            $"win propensity {w.Source}: fitted on {w.FitRows} train requests{(w.CrossFitted ? $" ({w.Folds}-fold cross-fit)" : "")} in {S(w.FitSeconds)} (fits on 1 thread, scoring included); "
            + $"mean {(w.Basis == WinWeightBases.AtBidId ? "Ŵ(b | x) at the bid" : "π̂")} {w.MeanPropensity:F4}, "
            + $"ESS share of 1/{(w.Basis == WinWeightBases.AtBidId ? "Ŵ" : "π̂")} {w.EssShare:F3} on {w.TrainImpressions} training impressions")
            + (w.AgainstLogged is { } c ? Describe(c) : "")
        : w.MeanPropensity is { } mean && w.EssShare is { } ess
            ? string.Create(CultureInfo.InvariantCulture,
                $"win propensity {w.Source}: {w.Note}; mean {mean:F4}, ESS share of the weights {ess:F3} on {w.TrainImpressions} training impressions")
            : $"win propensity {w.Source}: {w.Note}";

    private static string Describe(WinPropensityCheck c) => string.Create(CultureInfo.InvariantCulture,
        $"; against the logged true π(x): mean |π̂ − π| {c.MeanAbsoluteError:F4}, correlation of the logs {c.LogCorrelation:F3}, true ESS share "
        + $"{c.LoggedEssShare:F3}, weights' 99th percentile {c.WeightP99:F1} (true {c.LoggedWeightP99:F1}) and largest {c.WeightMax:F1} (true {c.LoggedWeightMax:F1})");

    private static string Describe(TorchRuntimeInfo runtime) =>
        $"{runtime.Device.ToString().ToLowerInvariant()}, {runtime.ThreadCount} thread{(runtime.ThreadCount == 1 ? "" : "s")}";

    private static string S(double seconds) => seconds.ToString(seconds < 10 ? "F2" : "F1", CultureInfo.InvariantCulture) + " s";
}
