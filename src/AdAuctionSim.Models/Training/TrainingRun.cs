using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Data;
using AdAuctionSim.Models.Debiasing;
using AdAuctionSim.Models.Prediction;
using AdAuctionSim.Models.Runtime;
using AdAuctionSim.Models.WinPropensity;
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

    /// <summary>How escm2-dr and multi-dr pass gradients through their DR terms (models.md §9.5; default joint learning).</summary>
    public DrGradientMode DrGradients { get; init; } = DrGradientMode.JointLearning;

    /// <summary>Options of the win-propensity estimator fitted when <see cref="TrainerOptions.WinPropensity"/> is an estimate.</summary>
    public WinPropensityOptions WinModel { get; init; } = new();

    /// <summary>Folds of the cross-fitted classifier (out-of-fold π̂ on the train split).</summary>
    public int WinPropensityFolds { get; init; } = 2;

    /// <summary>
    /// A win model an earlier run already fitted and applied to this same dataset object, with these options (adsim run
    /// trains each model as its own unit on one loaded dataset). When its source and basis are this run's, it is reused
    /// instead of fitted again: the dataset's win-propensity tensor already holds its estimate. Null: fit when needed.
    /// </summary>
    public WinPropensityFit? SettledWinPropensity { get; init; }
}

/// <summary>How the doubly robust ESCM² variants (escm2-dr, multi-dr) pass gradients (models.md §9.5).</summary>
public enum DrGradientMode
{
    /// <summary>§9.5 recommended: ê ≥ 0, R_DR on sg(ê), L_IMP on sg(δ), the same detached weights.</summary>
    JointLearning,
    /// <summary>PaddleRec's <c>counterfact_dr</c> exactly: capped weight 15, ê = σ(·), nothing but the weight detached.</summary>
    Paddle,
    /// <summary>DR-JL label imputation: the head predicts a pseudo-label, so every impression sends gradient to the tower.</summary>
    LabelImputation,
}

/// <summary>The command-line / <c>train.json</c> ids of <see cref="DrGradientMode"/>.</summary>
public static class DrGradientModes
{
    private static readonly OptionIds<DrGradientMode> Table = new("DR gradient mode",
        (DrGradientMode.JointLearning, "joint-learning"), (DrGradientMode.Paddle, "paddle"), (DrGradientMode.LabelImputation, "label-imputation"));

    /// <summary>Every id, in the order the command line lists them.</summary>
    public static IReadOnlyList<string> Ids => Table.Ids;

    public static string Id(DrGradientMode mode) => Table.Id(mode);

    /// <summary>The mode with this id (exact, lower case), if any.</summary>
    public static bool TryParse(string? id, out DrGradientMode mode) => Table.TryParse(id, out mode);

    /// <summary>Writes and reads <see cref="DrGradientMode"/> by these ids in JSON (<c>train.json</c>).</summary>
    public static JsonConverter<DrGradientMode> Json => Table.Json;

    /// <summary>Why the win-weighted DR model (ipw-escm2-dr) refuses <see cref="DrGradientMode.Paddle"/>.</summary>
    public const string PaddleWithWinWeights = "DR gradients paddle reproduce PaddleRec's unweighted counterfact_dr and are not "
        + $"defined for {Escm2Model.IpwEscm2DrId}'s win-weighted DR over D (models.md §15.3); use joint-learning or label-imputation";

    /// <summary>Why model <paramref name="modelId"/> cannot train with DR gradient mode <paramref name="mode"/>, or null when it can.</summary>
    public static string? Conflict(string modelId, DrGradientMode mode) =>
        mode == DrGradientMode.Paddle && modelId == Escm2Model.IpwEscm2DrId ? PaddleWithWinWeights : null;

    internal static DrGradients ToModel(DrGradientMode mode) => mode switch
    {
        DrGradientMode.Paddle => Debiasing.DrGradients.Paddle,
        DrGradientMode.LabelImputation => Debiasing.DrGradients.LabelImputation,
        _ => Debiasing.DrGradients.JointLearning,
    };
}

/// <summary>
/// The win propensity of a run (<c>train.json</c>'s <c>winPropensity</c>): where it came from and what the weights
/// 1/max(π̂, ε_w) look like on the training impressions.
/// </summary>
/// <param name="Source">oracle, km, censored-lognormal, classifier or none.</param>
/// <param name="Fitted">Whether a win model was fitted (an estimated source and a model of the run that reads π̂).</param>
/// <param name="CrossFitted">Whether the train split's π̂ are out-of-fold (the classifier).</param>
/// <param name="Folds">Folds of the cross-fit (0 when in-sample or not fitted).</param>
/// <param name="FitRows">Train-split requests (impressions and lost bids) the win model was fitted on.</param>
/// <param name="FitSeconds">Wall time of fitting and scoring every request.</param>
/// <param name="Diagnostics">What the estimator reported (of the fit on the whole train split).</param>
/// <param name="TrainImpressions">Training impressions the summary below is over.</param>
/// <param name="MeanPropensity">Mean π̂ (unfloored) on the training impressions; null when none were computed.</param>
/// <param name="EssShare">Effective sample size (Σw)²/Σw² of w = 1/max(π̂, ε_w) over the training impressions, divided by their number.</param>
/// <param name="FlooredShare">Share of the training impressions whose π̂ is below the floor ε_w.</param>
/// <param name="Note">Why nothing was fitted, when so.</param>
/// <param name="Basis">What the weights divide by: <c>policy</c>, π̂(x), or <c>at-bid</c>, Ŵ(b_i | x_i) (models.md §14.3).</param>
/// <param name="AgainstLogged">A fitted π̂(x) held against the logged true π(x) on the training impressions (policy basis only;
/// null otherwise).</param>
/// <param name="Scores">The fitted model's scores of every request of D, relative to the run folder
/// (<see cref="TrainingRun.WinScoresFile"/>: π̂(x) and Ŵ(b_i | x_i), which <c>adsim evaluate</c> holds against the truth on the
/// test split); null when nothing was fitted.</param>
/// <param name="ScoresSha256">SHA-256 of that file, which the evaluator checks before reading it.</param>
/// <param name="Floor">ε_w, the floor of π̂ in the weights 1/max(π̂, ε_w) that the summary above and the evaluator use.</param>
public sealed record WinPropensityFit(
    string Source,
    bool Fitted,
    bool CrossFitted,
    int Folds,
    int FitRows,
    double FitSeconds,
    IReadOnlyDictionary<string, double> Diagnostics,
    int TrainImpressions,
    double? MeanPropensity,
    double? EssShare,
    double? FlooredShare,
    string? Note,
    string Basis = WinWeightBases.PolicyId,
    WinPropensityCheck? AgainstLogged = null,
    string? Scores = null,
    string? ScoresSha256 = null,
    double? Floor = null)
{
    /// <summary>
    /// π̂(x_i) and Ŵ(b_i | x_i) of every request of D in the dataset's row order (out-of-fold on the train split for a
    /// cross-fitted model), kept with the fit so that every run that reuses it writes the same <see cref="Scores"/> file;
    /// null when nothing was fitted. Not part of train.json.
    /// </summary>
    [JsonIgnore]
    public WinScores? ScoreValues { get; init; }
}

/// <summary>A fitted win model's scores of every request (<see cref="WinPropensityFit.ScoreValues"/>).</summary>
/// <param name="Policy">π̂(x_i) = Σ_m π(m)·Ŵ(b_m | x_i) (models.md §14.3).</param>
/// <param name="AtBid">Ŵ(b_i | x_i) at the request's own logged bid.</param>
public sealed record WinScores(double[] Policy, double[] AtBid);

/// <summary>
/// models.md §14.4's check of a fitted win model, over the training impressions: its π̂(x) against the logged
/// <c>win_propensity</c> column, the simulator's true π(x), which the simulation logs for oracle runs and checks like
/// this one (the win model itself never reads it). The weights are w = 1/max(p, ε_w).
/// </summary>
/// <param name="MeanAbsoluteError">Mean |π̂ − π|.</param>
/// <param name="LogCorrelation">Pearson correlation of ln max(π̂, ε_w) with ln max(π, ε_w): how well π̂ ranks the requests
/// by how hard they are to win, which is what the weights correct with.</param>
/// <param name="LoggedMean">Mean true π.</param>
/// <param name="LoggedEssShare">ESS share of the true weights (compare <see cref="WinPropensityFit.EssShare"/>: a fit smoother than the
/// truth has the higher share and corrects less).</param>
/// <param name="WeightP99">99th percentile of the fitted weights.</param>
/// <param name="LoggedWeightP99">99th percentile of the true weights.</param>
/// <param name="WeightMax">Largest fitted weight.</param>
/// <param name="LoggedWeightMax">Largest true weight.</param>
public sealed record WinPropensityCheck(double MeanAbsoluteError, double LogCorrelation, double LoggedMean, double LoggedEssShare,
    double WeightP99, double LoggedWeightP99, double WeightMax, double LoggedWeightMax)
{
    /// <summary>The check over <paramref name="rows"/> of the fitted <paramref name="fitted"/> and the logged <paramref name="logged"/>.</summary>
    /// <param name="fitted">π̂ of every request.</param>
    /// <param name="logged">The logged true π of every request.</param>
    /// <param name="rows">The rows to summarise (the training impressions).</param>
    /// <param name="floor">ε_w.</param>
    public static WinPropensityCheck? Of(double[] fitted, double[] logged, int[] rows, double floor)
    {
        ArgumentNullException.ThrowIfNull(fitted);
        ArgumentNullException.ThrowIfNull(logged);
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Length < 2)
        {
            return null;
        }
        double absolute = 0, sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
        var fittedWeights = new double[rows.Length];
        var loggedWeights = new double[rows.Length];
        for (var i = 0; i < rows.Length; i++)
        {
            var (p, q) = (fitted[rows[i]], logged[rows[i]]);
            absolute += Math.Abs(p - q);
            var (x, y) = (Math.Log(Math.Max(p, floor)), Math.Log(Math.Max(q, floor)));
            sx += x;
            sy += y;
            sxx += x * x;
            syy += y * y;
            sxy += x * y;
            fittedWeights[i] = 1 / Math.Max(p, floor);
            loggedWeights[i] = 1 / Math.Max(q, floor);
        }
        var (mean, ess, _) = TrainingRun.Summary(logged, rows, floor, constant: false);
        var n = (double)rows.Length;
        var covariance = (sxy / n) - (sx / n * (sy / n));
        var spread = ((sxx / n) - (sx / n * (sx / n))) * ((syy / n) - (sy / n * (sy / n)));
        Array.Sort(fittedWeights);
        Array.Sort(loggedWeights);
        return new WinPropensityCheck(absolute / n, spread > 0 ? covariance / Math.Sqrt(spread) : double.NaN, mean!.Value, ess!.Value,
            Percentile(fittedWeights, 0.99), Percentile(loggedWeights, 0.99), fittedWeights[^1], loggedWeights[^1]);
    }

    /// <summary>The q-quantile of sorted values, the lower of the two neighbours (no interpolation).</summary>
    private static double Percentile(double[] sorted, double q) => sorted[(int)Math.Floor(q * (sorted.Length - 1))];
}

/// <summary>Callbacks of a run, all on the training thread.</summary>
public sealed class TrainingRunCallbacks
{
    /// <summary>A model is about to be built: its id, 0-based position and the number of models.</summary>
    public Action<string, int, int>? ModelStarted { get; init; }

    public Action<EpochRecord>? EpochFinished { get; init; }

    public Action<ModelRunResult>? ModelFinished { get; init; }

    /// <summary>The run's win propensity is settled (fitted when estimated), before the first model is built.</summary>
    public Action<WinPropensityFit>? WinPropensityReady { get; init; }
}

/// <summary>One model of a run: how it trained and where its files are.</summary>
/// <param name="ModelId">The model's stable id.</param>
/// <param name="Training">How training went.</param>
/// <param name="PredictSeconds">Wall time of scoring every request of D and writing the predictions.</param>
/// <param name="Checkpoint">The kept epoch's state dict (<see cref="TrainingResult.KeptEpoch"/>), relative to the run folder.</param>
/// <param name="Curves">The per-epoch curves file, relative to the run folder.</param>
/// <param name="Predictions">The predictions file, relative to the run folder.</param>
/// <param name="PredictionsSha256">SHA-256 of the predictions file, which the evaluator checks before scoring it.</param>
public sealed record ModelRunResult(string ModelId, TrainingResult Training, double PredictSeconds, string Checkpoint, string Curves, string Predictions,
    string PredictionsSha256);

/// <summary>A finished run folder.</summary>
public sealed record TrainingRunResult(string Directory, IReadOnlyList<ModelRunResult> Models, WinPropensityFit? WinPropensity = null);

/// <summary>
/// Trains a list of models on one dataset and writes the run folder:
/// <c>checkpoints/&lt;model&gt;.bin</c> (the kept epoch's state dict: the best, or the last without early stopping), <c>curves/&lt;model&gt;.csv</c> (one row per epoch),
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

    /// <summary>
    /// A fitted win model's scores of every request of D: int64 <c>request_id</c>, float64 <see cref="WinScoresPolicyColumn"/>
    /// (π̂(x)) and <see cref="WinScoresAtBidColumn"/> (Ŵ(b_i | x_i)), in the layout of a predictions file.
    /// </summary>
    public const string WinScoresFile = "win_propensity.parquet";
    public const string WinScoresPolicyColumn = "pi_hat";
    public const string WinScoresAtBidColumn = "w_hat_at_bid";

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
        options.WinModel.Validate();
        if (!Enum.IsDefined(options.DrGradients))
        {
            throw new ArgumentException($"DR gradient mode {(int)options.DrGradients} is not one of {string.Join(", ", DrGradientModes.Ids)}", nameof(options));
        }
        ArgumentOutOfRangeException.ThrowIfLessThan(options.WinPropensityFolds, 2, nameof(options));
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
        var temp = OutputFolder.CreatePartial(target);
        try
        {
            foreach (var folder in (string[])[CheckpointsFolder, CurvesFolder, PredictionsFolder])
            {
                Directory.CreateDirectory(Path.Combine(temp, folder));
            }
            // Two-stage (models.md §15.4): the win model is fitted once, before any multi-task model, and never trained by them.
            var win = !models.Any(m => ReadsWinPropensity(m.Id)) && options.Trainer.ValidationLoss != ValidationWeighting.WinWeighted
                ? Unused(data, options.Trainer.WinPropensity)
                : options.SettledWinPropensity is { Fitted: true } settled
                    && settled.Source == WinPropensitySources.Id(options.Trainer.WinPropensity)
                    && settled.Basis == WinWeightBases.Id(options.Trainer.WinWeight)
                    ? settled
                    : FitWinPropensity(data, options.Trainer.WinPropensity, options.Model.WinPropensityFloor, options.WinModel,
                        options.WinPropensityFolds, cancellation, options.Trainer.WinWeight);
            if (win.ScoreValues is { } scores)
            {
                var path = Path.Combine(temp, WinScoresFile);
                Predictions.WriteColumns(path, data.RequestId, ["request_id", WinScoresPolicyColumn, WinScoresAtBidColumn], [scores.Policy, scores.AtBid]);
                var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path)));
                if (win.Scores != WinScoresFile || win.ScoresSha256 != hash)
                {
                    win = win with { Scores = WinScoresFile, ScoresSha256 = hash };
                }
            }
            callbacks?.WinPropensityReady?.Invoke(win);
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
            var manifest = RunManifest.Build(data, options, win, results);
            File.WriteAllText(Path.Combine(temp, ManifestFile), JsonSerializer.Serialize(manifest, JsonOptions) + "\n", new UTF8Encoding(false));
            cancellation.ThrowIfCancellationRequested();
            OutputFolder.Publish(temp, target, options.Force);
            return new TrainingRunResult(target, results, win);
        }
        catch
        {
            OutputFolder.TryDelete(temp);
            throw;
        }
    }

    /// <summary>The curves file's column prefix of each stage's validation calibration ratio, Σ r̂_k / Σ s_k.</summary>
    public const string CalibrationColumnPrefix = "validation_calibration_";

    /// <summary>The curves file text: one header row, then one row per epoch (invariant culture, round-trip doubles).</summary>
    public static string CurvesCsv(IReadOnlyList<string> stages, IReadOnlyList<EpochRecord> curve)
    {
        var text = new StringBuilder();
        text.Append("epoch,train_loss,validation_log_loss");
        foreach (var stage in stages)
        {
            text.Append(",validation_log_loss_").Append(stage);
        }
        foreach (var stage in stages)
        {
            text.Append(',').Append(CalibrationColumnPrefix).Append(stage);
        }
        text.Append(",seconds,train_seconds,improved\n");
        foreach (var e in curve)
        {
            text.Append(e.Epoch.ToString(CultureInfo.InvariantCulture)).Append(',').Append(R(e.TrainLoss)).Append(',').Append(R(e.ValidationLogLoss));
            foreach (var v in e.ValidationLogLossByStage)
            {
                text.Append(',').Append(R(v));
            }
            for (var k = 0; k < stages.Count; k++)
            {
                text.Append(',').Append(k < e.ValidationCalibrationByStage.Count ? R(e.ValidationCalibrationByStage[k]) : "");
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
        using var model = Build(entry, context, options);
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
        var predictionsPath = Path.Combine(folder, predictionsFile);
        predictions.WriteParquet(predictionsPath);
        var predictionsHash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(predictionsPath)));
        return new ModelRunResult(entry.Id, training, clock.Elapsed.TotalSeconds, checkpoint, curves, predictionsFile, predictionsHash);
    }

    /// <summary>Ids of the catalog models whose loss reads the batch's win propensity (inverse-win weighting, §15).</summary>
    public static IReadOnlyList<string> WinPropensityReaders { get; } = [Escm2Model.IpwEscm2Id, Escm2Model.IpwEscm2DrId];

    /// <summary>Whether the model with this id reads win propensities (the run then fits its win model).</summary>
    public static bool ReadsWinPropensity(string modelId) => WinPropensityReaders.Contains(modelId, StringComparer.Ordinal);

    /// <summary>
    /// Settles the win propensity of <paramref name="data"/> for <paramref name="source"/>. For an estimated source the
    /// win model is fitted on the train split's requests (impressions and lost bids: features, bid, multiplier, won,
    /// price; never the logged <c>win_propensity</c> column) and π̂(x) (models.md §14.3) of every request of D replaces
    /// the dataset's win-propensity tensor: in-sample for km and censored-lognormal; for the classifier the train split
    /// gets out-of-fold π̂ (<see cref="WinPropensityModels.CrossFit"/>) and the other splits the fit on the whole train
    /// split. With <paramref name="basis"/> at-bid the estimate is Ŵ(b_i | x_i) at each request's own bid instead of π̂(x)
    /// (out-of-fold on the train split for the classifier alike). The oracle and none leave the tensor as it is. The floor ε_w is applied by the model that reads the
    /// propensity (ipw-escm2); here it only enters the weight summary.
    /// </summary>
    /// <exception cref="InvalidDataException">The train split has no requests, or the estimate is not a probability.</exception>
    /// <exception cref="ArgumentException"><paramref name="basis"/> at-bid with a source that is not a fitted model.</exception>
    public static WinPropensityFit FitWinPropensity(LoggedDataset data, WinPropensitySource source, double floor,
        WinPropensityOptions? options = null, int folds = 2, CancellationToken cancellation = default,
        WinWeightBasis basis = WinWeightBasis.Policy)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfLessThan(folds, 2);
        if (WinWeightBases.Conflict(basis, source) is { } conflict)
        {
            throw new ArgumentException(conflict, nameof(basis));
        }
        var basisId = WinWeightBases.Id(basis);
        var id = WinPropensitySources.Id(source);
        var trainImpressions = data.Rows(DatasetSplit.Train, includeLostBids: false);
        if (!WinPropensitySources.IsEstimated(source))
        {
            double[] current = source == WinPropensitySource.None ? [] : Read(data.WinPropensity);
            var (mean, ess, floored) = Summary(current, trainImpressions, floor, source == WinPropensitySource.None);
            return new WinPropensityFit(id, false, false, 0, 0, 0, new Dictionary<string, double>(), trainImpressions.Length,
                mean, ess, floored, source == WinPropensitySource.Oracle ? "the logged win_propensity column" : "no inverse-win weighting (all 1)");
        }

        var clock = Stopwatch.StartNew();
        options ??= new WinPropensityOptions();
        var all = data.WinLog();
        var trainRows = data.Rows(DatasetSplit.Train, includeLostBids: true);
        if (trainRows.Length == 0)
        {
            throw new InvalidDataException($"{data.ImpressionsFile}: the train split has no requests to fit the {id} win model on");
        }
        var train = all.Select(trainRows);
        double[] policy, atBid;
        IReadOnlyDictionary<string, double> diagnostics;
        using (var model = WinPropensityModels.Create(id, options))
        {
            model.Fit(train, cancellation);
            cancellation.ThrowIfCancellationRequested();
            policy = model.WinPropensity(all);
            atBid = model.WinProbabilityAtBid(all);
            diagnostics = new Dictionary<string, double>(model.Diagnostics, StringComparer.Ordinal);
        }
        var crossFitted = source == WinPropensitySource.Classifier;
        if (crossFitted)
        {
            var (outOfFold, outOfFoldAtBid) = WinPropensityModels.CrossFit(id, train, folds, options, cancellation);
            for (var j = 0; j < trainRows.Length; j++)
            {
                policy[trainRows[j]] = outOfFold[j];
                atBid[trainRows[j]] = outOfFoldAtBid[j];
            }
        }
        foreach (var (scores, what) in (ReadOnlySpan<(double[], string)>)[(policy, "win propensity"), (atBid, "win probability at its bid")])
        {
            for (var i = 0; i < scores.Length; i++)
            {
                if (!(scores[i] >= 0 && scores[i] <= 1 + 1e-9))
                {
                    throw new InvalidDataException($"the {id} win model gave request {data.RequestId[i]} a {what} of {scores[i]}; expected a probability");
                }
                scores[i] = Math.Min(scores[i], 1);
            }
        }
        var pi = basis == WinWeightBasis.AtBid ? atBid : policy;
        var values = new float[pi.Length];
        for (var i = 0; i < pi.Length; i++)
        {
            values[i] = (float)pi[i];
        }
        // The dataset's tensor still holds the logged column here: the check reads it, the win model above did not.
        var check = basis == WinWeightBasis.Policy ? WinPropensityCheck.Of(pi, Read(data.WinPropensity), trainImpressions, floor) : null;
        using (torch.no_grad())
        using (var host = torch.tensor(values, torch.ScalarType.Float32))
        using (var estimate = host.to(data.Device))
        {
            data.WinPropensity.copy_(estimate);
        }
        var seconds = clock.Elapsed.TotalSeconds;
        var (m, e, f) = Summary(pi, trainImpressions, floor, constant: false);
        return new WinPropensityFit(id, true, crossFitted, crossFitted ? folds : 0, trainRows.Length, seconds, diagnostics,
            trainImpressions.Length, m, e, f, null, basisId, check, Floor: floor)
        {
            ScoreValues = new WinScores(policy, atBid),
        };
    }

    private static WinPropensityFit Unused(LoggedDataset data, WinPropensitySource source) => new(WinPropensitySources.Id(source), false, false,
        0, 0, 0, new Dictionary<string, double>(), data.CountOf(DatasetSplit.Train, includeLostBids: false), null, null, null,
        "no model of this run reads win propensities (" + string.Join(", ", WinPropensityReaders) + " do) and the validation loss is not "
        + ValidationWeightings.WinWeightedId);

    private static double[] Read(torch.Tensor values)
    {
        using var host = values.cpu();
        using var wide = host.to_type(torch.ScalarType.Float64);
        return wide.data<double>().ToArray();
    }

    /// <summary>Mean π̂, ESS share of w = 1/max(π̂, ε_w) and share below ε_w over the given rows (all 1 when constant).</summary>
    internal static (double? Mean, double? EssShare, double? FlooredShare) Summary(double[] pi, int[] rows, double floor, bool constant)
    {
        if (rows.Length == 0)
        {
            return (null, null, null);
        }
        if (constant)
        {
            return (1, 1, 0);
        }
        double sum = 0, weights = 0, squares = 0;
        var floored = 0;
        foreach (var r in rows)
        {
            sum += pi[r];
            if (pi[r] < floor)
            {
                floored++;
            }
            var w = 1 / Math.Max(pi[r], floor);
            weights += w;
            squares += w * w;
        }
        return (sum / rows.Length, weights * weights / squares / rows.Length, (double)floored / rows.Length);
    }

    /// <summary>
    /// The catalog's model, except that the DR variants of ESCM² take the run's gradient mode (the catalog builds them
    /// with joint learning): rebuilt from the same options and the same seed.
    /// </summary>
    /// <summary>
    /// A trained model back from its checkpoint (as <see cref="Execute"/> wrote it for <paramref name="data"/>'s schema and
    /// these options), for scoring beyond the predictions file: for example every candidate ad of a request.
    /// </summary>
    /// <exception cref="InvalidDataException">The checkpoint is missing or not of this architecture.</exception>
    public static MultiTaskModel LoadModel(LoggedDataset data, ModelEntry entry, TrainingRunOptions options, string checkpoint)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(options);
        var model = Build(entry, new ModelContext(data.Depth, data.Stages, data.Schema, options.Model), options);
        try
        {
            Trainer.LoadCheckpoint(model, checkpoint);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static MultiTaskModel Build(ModelEntry entry, ModelContext context, TrainingRunOptions options)
    {
        var model = entry.Create(context);
        var mode = DrGradientModes.ToModel(options.DrGradients);
        if (model is not Escm2Model { Options.Risk: CounterfactualRisk.DoublyRobust } dr || dr.Options.DrGradients == mode)
        {
            return model;
        }
        var adjusted = dr.Options with { DrGradients = mode };
        model.Dispose();
        torch.manual_seed(options.Trainer.Seed);
        if (torch.cuda.is_available())
        {
            torch.cuda.manual_seed_all(options.Trainer.Seed);
        }
        return new Escm2Model(entry.Id, context, adjusted);
    }

    private static string R(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        NewLine = "\n",
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        // The option enums by the ids the command line and scenario files use; any other enum camel-cased.
        Converters =
        {
            WinPropensitySources.Json, WinWeightBases.Json, ValidationWeightings.Json, ClickPropensitySources.Json, IpsNormalizers.Json, DrGradientModes.Json,
            new JsonStringEnumConverter(JsonNamingPolicy.CamelCase),
        },
    };

    /// <summary><c>train.json</c>: what was trained, on what, how, and how it went.</summary>
    private sealed record RunManifest(
        string Simulation,
        string SimulationCodeVersion,
        long SimulationSeed,
        string SimulationManifestSha256,
        IReadOnlyList<string> Stages,
        IReadOnlyList<string> Fields,
        IReadOnlyList<int> Cardinalities,
        RunRows Rows,
        TrainerOptions Trainer,
        ModelOptions Model,
        RunRuntime Runtime,
        WinPropensityFit WinPropensity,
        string DrGradients,
        IReadOnlyList<ModelRunResult> Models)
    {
        public static RunManifest Build(LoggedDataset data, TrainingRunOptions options, WinPropensityFit win, IReadOnlyList<ModelRunResult> results) => new(
            data.Source,
            data.CodeVersion,
            data.SimulationSeed,
            data.ManifestSha256,
            data.Stages,
            data.Schema.Fields,
            data.Schema.Cardinalities,
            new RunRows(data.Count, data.CountOf(DatasetSplit.Train, false), data.CountOf(DatasetSplit.Train, true),
                data.CountOf(DatasetSplit.Validation, false)),
            options.Trainer,
            options.Model,
            new RunRuntime(data.Device.ToString(), torch.get_num_threads(), TorchRuntime.TorchSharpVersion, TorchRuntime.Backend,
                Environment.ProcessorCount),
            win,
            DrGradientModes.Id(options.DrGradients),
            results);
    }

    private sealed record RunRows(int Requests, int TrainImpressions, int TrainRequests, int ValidationImpressions);

    private sealed record RunRuntime(string Device, int Threads, string TorchSharpVersion, string TorchBackend, int ProcessorCount);
}
