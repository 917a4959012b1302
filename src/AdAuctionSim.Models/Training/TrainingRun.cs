using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Data;
using AdAuctionSim.Models.Prediction;
using AdAuctionSim.Models.Runtime;
using AdAuctionSim.Simulation.Output;
using TorchSharp;

namespace AdAuctionSim.Models.Training;

/// <summary>Where and how <see cref="TrainingRun.Execute"/> trains and writes.</summary>
public sealed record TrainingRunOptions
{
    /// <summary>The run folder; it must not exist unless <see cref="Force"/> is set.</summary>
    public required string OutputDirectory { get; init; }

    /// <summary>Replace an existing run folder (only once the new one is complete).</summary>
    public bool Force { get; init; }

    public TrainerOptions Trainer { get; init; } = new();

    /// <summary>Hyper-parameters handed to every model through its <see cref="ModelContext"/> (label mode, …).</summary>
    public ModelOptions Model { get; init; } = new();
}

/// <summary>Callbacks of a run, all on the training thread.</summary>
public sealed class TrainingRunCallbacks
{
    /// <summary>A model is about to be built: its id, 0-based position and the number of models.</summary>
    public Action<string, int, int>? ModelStarted { get; init; }

    public Action<EpochRecord>? EpochFinished { get; init; }

    public Action<ModelRunResult>? ModelFinished { get; init; }
}

/// <summary>One model of a run: how it trained and where its files are.</summary>
/// <param name="ModelId">The model's stable id.</param>
/// <param name="Training">How training went.</param>
/// <param name="PredictSeconds">Wall time of scoring every request of D and writing the predictions.</param>
/// <param name="Checkpoint">The best epoch's state dict, relative to the run folder.</param>
/// <param name="Curves">The per-epoch curves file, relative to the run folder.</param>
/// <param name="Predictions">The predictions file, relative to the run folder.</param>
public sealed record ModelRunResult(string ModelId, TrainingResult Training, double PredictSeconds, string Checkpoint, string Curves, string Predictions);

/// <summary>A finished run folder.</summary>
public sealed record TrainingRunResult(string Directory, IReadOnlyList<ModelRunResult> Models);

/// <summary>
/// Trains a list of models on one dataset and writes the run folder:
/// <c>checkpoints/&lt;model&gt;.bin</c> (best epoch's state dict), <c>curves/&lt;model&gt;.csv</c> (one row per epoch),
/// <c>predictions/&lt;model&gt;.parquet</c> (q̂_k and r̂_k for every request of D) and <c>train.json</c> (resolved
/// options, runtime and results). Everything is written into a temporary sibling folder and renamed into place at the
/// end, like a simulation output: the folder appears complete or not at all.
/// </summary>
public static class TrainingRun
{
    public const string CheckpointsFolder = "checkpoints";
    public const string CurvesFolder = "curves";
    public const string PredictionsFolder = "predictions";
    public const string ManifestFile = "train.json";

    /// <summary>Trains every model of <paramref name="models"/> in turn (each seeded afresh with the trainer's seed).</summary>
    /// <exception cref="ArgumentException">No models, a duplicate id, a model that cannot serve the data's depth, or invalid options.</exception>
    /// <exception cref="OutputExistsException">The run folder exists and Force is not set (thrown before any work).</exception>
    /// <exception cref="TrainingDivergedException">A model's loss became NaN or infinite; nothing is written.</exception>
    public static TrainingRunResult Execute(LoggedDataset data, IReadOnlyList<ModelEntry> models, TrainingRunOptions options,
        TrainingRunCallbacks? callbacks = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(models);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.OutputDirectory);
        options.Trainer.Validate();
        if (models.Count == 0)
        {
            throw new ArgumentException("no models to train", nameof(models));
        }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in models)
        {
            if (!seen.Add(entry.Id))
            {
                throw new ArgumentException($"model \"{entry.Id}\" is listed twice", nameof(models));
            }
            if (entry.Id.Length == 0 || entry.Id.IndexOfAny([.. Path.GetInvalidFileNameChars(), '/', '\\']) >= 0 || entry.Id is "." or "..")
            {
                throw new ArgumentException($"model id \"{entry.Id}\" cannot name a file", nameof(models));
            }
            if (entry.Unsupported(data.Depth) is { } why)
            {
                throw new ArgumentException($"model \"{entry.Id}\" cannot serve a funnel of depth {data.Depth}: {why}", nameof(models));
            }
        }
        var target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.OutputDirectory));
        if (Path.Exists(target) && !options.Force)
        {
            throw new OutputExistsException(options.OutputDirectory);
        }
        var parent = Path.GetDirectoryName(target)
            ?? throw new ArgumentException($"{options.OutputDirectory} is a root folder; expected a folder to create", nameof(options));
        Directory.CreateDirectory(parent);
        var temp = Path.Combine(parent, $"{Path.GetFileName(target)}.partial-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}");
        Directory.CreateDirectory(temp);
        try
        {
            foreach (var folder in (string[])[CheckpointsFolder, CurvesFolder, PredictionsFolder])
            {
                Directory.CreateDirectory(Path.Combine(temp, folder));
            }
            var results = new List<ModelRunResult>();
            for (var m = 0; m < models.Count; m++)
            {
                cancellation.ThrowIfCancellationRequested();
                var entry = models[m];
                callbacks?.ModelStarted?.Invoke(entry.Id, m, models.Count);
                var result = TrainOne(data, entry, options, temp, callbacks, cancellation);
                results.Add(result);
                callbacks?.ModelFinished?.Invoke(result);
            }
            var manifest = RunManifest.Build(data, options, results);
            File.WriteAllText(Path.Combine(temp, ManifestFile), JsonSerializer.Serialize(manifest, JsonOptions) + "\n", new UTF8Encoding(false));
            cancellation.ThrowIfCancellationRequested();
            Publish(temp, target, options);
            return new TrainingRunResult(target, results);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>The curves file text: one header row, then one row per epoch (invariant culture, round-trip doubles).</summary>
    public static string CurvesCsv(IReadOnlyList<string> stages, IReadOnlyList<EpochRecord> curve)
    {
        var text = new StringBuilder();
        text.Append("epoch,train_loss,validation_log_loss");
        foreach (var stage in stages)
        {
            text.Append(",validation_log_loss_").Append(stage);
        }
        text.Append(",seconds,train_seconds,improved\n");
        foreach (var e in curve)
        {
            text.Append(e.Epoch.ToString(CultureInfo.InvariantCulture)).Append(',').Append(R(e.TrainLoss)).Append(',').Append(R(e.ValidationLogLoss));
            foreach (var v in e.ValidationLogLossByStage)
            {
                text.Append(',').Append(R(v));
            }
            text.Append(',').Append(R(e.Seconds)).Append(',').Append(R(e.TrainSeconds)).Append(',').Append(e.Improved ? "true" : "false").Append('\n');
        }
        return text.ToString();
    }

    private static ModelRunResult TrainOne(LoggedDataset data, ModelEntry entry, TrainingRunOptions options, string folder,
        TrainingRunCallbacks? callbacks, CancellationToken cancellation)
    {
        // Each model starts from the same seed, so its result does not depend on which models ran before it.
        torch.manual_seed(options.Trainer.Seed);
        if (torch.cuda.is_available())
        {
            torch.cuda.manual_seed_all(options.Trainer.Seed);
        }
        var context = new ModelContext(data.Depth, data.Stages, data.Schema, options.Model);
        using var model = entry.Create(context);
        if (model.Id != entry.Id)
        {
            throw new InvalidOperationException($"catalog entry \"{entry.Id}\" built a model with id \"{model.Id}\"");
        }
        var training = Trainer.Fit(model, data, options.Trainer, callbacks?.EpochFinished, cancellation);

        var checkpoint = Path.Combine(CheckpointsFolder, entry.Id + ".bin");
        Trainer.SaveCheckpoint(model, Path.Combine(folder, checkpoint));
        var curves = Path.Combine(CurvesFolder, entry.Id + ".csv");
        File.WriteAllText(Path.Combine(folder, curves), CurvesCsv(data.Stages, training.Curve), new UTF8Encoding(false));
        cancellation.ThrowIfCancellationRequested();

        var clock = Stopwatch.StartNew();
        var predictions = Predictions.Score(model, data, options.Trainer.EvaluationBatchSize);
        var predictionsFile = Path.Combine(PredictionsFolder, entry.Id + ".parquet");
        predictions.WriteParquet(Path.Combine(folder, predictionsFile));
        return new ModelRunResult(entry.Id, training, clock.Elapsed.TotalSeconds, checkpoint, curves, predictionsFile);
    }

    private static string R(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Renames the finished folder into place; with Force, an existing folder is moved aside first and deleted after.</summary>
    private static void Publish(string temp, string target, TrainingRunOptions options)
    {
        if (!Path.Exists(target))
        {
            Directory.Move(temp, target);
            return;
        }
        if (!options.Force)
        {
            throw new OutputExistsException(options.OutputDirectory);
        }
        var aside = $"{target}.old-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}";
        Move(target, aside);
        try
        {
            Directory.Move(temp, target);
        }
        catch
        {
            if (!Path.Exists(target))
            {
                Move(aside, target);
            }
            throw;
        }
        TryDelete(aside);
    }

    private static void Move(string from, string to)
    {
        if (File.Exists(from))
        {
            File.Move(from, to);
        }
        else
        {
            Directory.Move(from, to);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            if (File.Exists(path))
            {
                File.Delete(path);
            }
            else if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: a leftover partial folder is only clutter.
        }
    }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        NewLine = "\n",
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    /// <summary><c>train.json</c>: what was trained, on what, how, and how it went.</summary>
    private sealed record RunManifest(
        string Simulation,
        string SimulationCodeVersion,
        long SimulationSeed,
        IReadOnlyList<string> Stages,
        IReadOnlyList<string> Fields,
        IReadOnlyList<int> Cardinalities,
        RunRows Rows,
        TrainerOptions Trainer,
        ModelOptions Model,
        RunRuntime Runtime,
        IReadOnlyList<ModelRunResult> Models)
    {
        public static RunManifest Build(LoggedDataset data, TrainingRunOptions options, IReadOnlyList<ModelRunResult> results) => new(
            data.Source,
            data.CodeVersion,
            data.SimulationSeed,
            data.Stages,
            data.Schema.Fields,
            data.Schema.Cardinalities,
            new RunRows(data.Count, data.CountOf(DatasetSplit.Train, false), data.CountOf(DatasetSplit.Train, true),
                data.CountOf(DatasetSplit.Validation, false)),
            options.Trainer,
            options.Model,
            new RunRuntime(data.Device.ToString(), torch.get_num_threads(), TorchRuntime.TorchSharpVersion, TorchRuntime.Backend,
                Environment.ProcessorCount),
            results);
    }

    private sealed record RunRows(int Requests, int TrainImpressions, int TrainRequests, int ValidationImpressions);

    private sealed record RunRuntime(string Device, int Threads, string TorchSharpVersion, string TorchBackend, int ProcessorCount);
}
