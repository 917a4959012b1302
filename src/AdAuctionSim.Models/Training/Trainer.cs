using System.Diagnostics;
using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Data;
using AdAuctionSim.Models.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Training;

/// <summary>
/// Trains one <see cref="MultiTaskModel"/> on a <see cref="LoggedDataset"/>: mini-batches of the train split
/// (impressions, plus lost bids when <see cref="MultiTaskModel.UsesLostBids"/>), Adam with weight decay on the
/// embedding tables only, early stopping on the validation impressions' log loss with the best epoch's state kept (or,
/// without <see cref="TrainerOptions.EarlyStopping"/>, every epoch trained and the last one's state kept).
/// </summary>
/// <remarks>
/// <para>TorchSharp habits (CONVENTIONS.md): the columns stay on the device as a few large tensors and a batch is an
/// <c>index_select</c> over a <c>randperm</c> of the row indices; one dispose scope per step; no <c>.item()</c> per
/// batch. Batch losses go into a device vector read once per epoch; every
/// <see cref="TrainerOptions.DivergenceCheckInterval"/> batches one device read checks that none is NaN or infinite,
/// and the first bad one is named in a <see cref="TrainingDivergedException"/>.</para>
/// <para>The caller seeds torch (<see cref="Runtime.TorchRuntime.Initialize"/> or <c>torch.manual_seed</c>) before
/// building the model, so that initialisation and batch order follow from the seed.</para>
/// </remarks>
public static class Trainer
{
    /// <summary>
    /// Trains <paramref name="model"/> in place (moving it to the dataset's device) and leaves it in its best epoch's
    /// state, or in its last epoch's without <see cref="TrainerOptions.EarlyStopping"/> (<see cref="TrainingResult.KeptEpoch"/>).
    /// <paramref name="onEpoch"/> is called after each epoch, on the training thread.
    /// </summary>
    /// <exception cref="ArgumentException">Invalid options, or a model built for another funnel depth or schema.</exception>
    /// <exception cref="InvalidDataException">The train or the validation split has no impressions.</exception>
    /// <exception cref="TrainingDivergedException">A loss became NaN or infinite.</exception>
    /// <exception cref="OperationCanceledException">Cancelled (checked between batches).</exception>
    public static TrainingResult Fit(MultiTaskModel model, LoggedDataset data, TrainerOptions options,
        Action<EpochRecord>? onEpoch = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        CheckCompatible(model, data);
        HostThreads.FollowIntraOpCount();
        var trainImpressions = data.CountOf(DatasetSplit.Train, includeLostBids: false);
        if (trainImpressions == 0)
        {
            throw new InvalidDataException($"{data.ImpressionsFile}: the train split has no impressions; there is nothing to train on");
        }
        if (data.CountOf(DatasetSplit.Validation, includeLostBids: false) == 0)
        {
            throw new InvalidDataException($"{data.ImpressionsFile}: the validation split has no impressions; early stopping needs some "
                + "(give the scenario's split.validation a larger share or simulate more requests)");
        }

        var total = Stopwatch.StartNew();
        model.to(data.Device);
        model.train();
        if (model is ILabelRateInitialised initialised)
        {
            initialised.InitialiseFromLabelRates(CumulativeLabelRates(data));
        }
        using var trainRows = data.RowIndex(DatasetSplit.Train, model.UsesLostBids);
        using var validationRows = data.RowIndex(DatasetSplit.Validation, includeLostBids: false);
        using var validationWeights = options.ValidationLoss == ValidationWeighting.WinWeighted
            ? InverseWinWeights(data, validationRows, model.Context.Options.WinPropensityFloor)
            : null;
        var rows = (int)trainRows.shape[0];
        var batchRows = BatchRows(model, data, options);
        var batches = (rows + batchRows - 1) / batchRows;
        var totalSteps = (long)batches * options.Epochs;
        using var optimizer = CreateOptimizer(model, options);

        var curve = new List<EpochRecord>();
        var best = double.PositiveInfinity;
        var bestEpoch = 0;
        var trainSeconds = 0.0;
        long samples = 0;
        Dictionary<string, Tensor>? bestState = null;
        try
        {
            for (var epoch = 1; epoch <= options.Epochs; epoch++)
            {
                cancellation.ThrowIfCancellationRequested();
                var clock = Stopwatch.StartNew();
                var trainLoss = RunEpoch(model, data, optimizer, trainRows, options, batchRows, epoch, batches, (epoch - 1L) * batches, totalSteps, cancellation);
                var epochTrainSeconds = clock.Elapsed.TotalSeconds;
                trainSeconds += epochTrainSeconds;
                samples += rows;

                var (validation, byStage, calibration) = ValidationLogLoss(model, data, validationRows, options.EvaluationBatchSize, validationWeights);
                if (!double.IsFinite(validation))
                {
                    throw new TrainingDivergedException(model.Id, epoch, null, batches, validation);
                }
                var diagnostics = model.Diagnostics();
                var improved = validation < best;
                if (improved)
                {
                    best = validation;
                    bestEpoch = epoch;
                    if (options.EarlyStopping)
                    {
                        var previous = bestState;
                        bestState = Snapshot(model);
                        DisposeState(previous);
                    }
                }
                var record = new EpochRecord(model.Id, epoch, trainLoss, validation, byStage, clock.Elapsed.TotalSeconds,
                    epochTrainSeconds, rows, improved, diagnostics)
                {
                    ValidationCalibrationByStage = calibration,
                };
                curve.Add(record);
                onEpoch?.Invoke(record);
                if (options.EarlyStopping && epoch - bestEpoch >= options.Patience)
                {
                    break;
                }
            }
            if (bestState is not null)
            {
                model.load_state_dict(bestState);
            }
        }
        finally
        {
            DisposeState(bestState);
        }
        return new TrainingResult(model.Id, curve.Count, bestEpoch, best, curve.Count < options.Epochs, total.Elapsed.TotalSeconds,
            trainSeconds, samples, rows, data.Device.ToString(), get_num_threads(), options.BatchSize, curve)
        {
            KeptEpoch = options.EarlyStopping ? bestEpoch : curve.Count,
        };
    }

    /// <summary>
    /// The validation log loss of a model as it stands: mean over stages of BCE(s_k, r̂_k) on the validation impressions,
    /// r̂_k from <see cref="ModelOutput.LogCumulative"/> (log space, models.md §0.3).
    /// </summary>
    public static double ValidationLogLoss(MultiTaskModel model, LoggedDataset data, int batchSize = TrainerOptions.DefaultEvaluationBatchSize)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        CheckCompatible(model, data);
        using var rows = data.RowIndex(DatasetSplit.Validation, includeLostBids: false);
        return ValidationLogLoss(model, data, rows, batchSize).Mean;
    }

    /// <summary>Saves the model's parameters and buffers (TorchSharp's state-dict format).</summary>
    public static void SaveCheckpoint(MultiTaskModel model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }
        model.save(path);
    }

    /// <summary>Loads a checkpoint written by <see cref="SaveCheckpoint"/> into a model of the same architecture.</summary>
    /// <exception cref="InvalidDataException">The file is missing, or is not a checkpoint of this architecture.</exception>
    public static void LoadCheckpoint(MultiTaskModel model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
        {
            throw new InvalidDataException($"{path}: no such checkpoint");
        }
        try
        {
            model.load(path);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException or NotImplementedException)
        {
            throw new InvalidDataException($"{path}: not a checkpoint of model \"{model.Id}\" as built now: {e.Message}", e);
        }
    }

    private static void CheckCompatible(MultiTaskModel model, LoggedDataset data)
    {
        if (model.Depth != data.Depth)
        {
            throw new ArgumentException($"model \"{model.Id}\" was built for depth {model.Depth}, but the data has {data.Depth} stages", nameof(model));
        }
        if (model.Context.Schema.TotalRows != data.Schema.TotalRows || model.Context.Schema.Count != data.Schema.Count)
        {
            throw new ArgumentException($"model \"{model.Id}\" was built for another feature schema than the data's", nameof(model));
        }
    }

    /// <summary>Per stage, the share of the train impressions that reached it (s_k = 1), summed on the host in row order.</summary>
    internal static double[] CumulativeLabelRates(LoggedDataset data)
    {
        var rows = data.Rows(DatasetSplit.Train, includeLostBids: false);
        var depth = data.Depth;
        // The dataset's own tensor when it is on the host (not disposed here), else a host copy.
        var onHost = data.Labels.device_type == TorchSharp.DeviceType.CPU;
        var labels = onHost ? data.Labels : data.Labels.cpu();
        var values = labels.data<float>().ToArray();
        if (!onHost)
        {
            labels.Dispose();
        }
        var rates = new double[depth];
        foreach (var row in rows)
        {
            for (var k = 0; k < depth; k++)
            {
                rates[k] += values[((long)row * depth) + k];
            }
        }
        for (var k = 0; k < depth; k++)
        {
            rates[k] /= Math.Max(1, rows.Length);
        }
        return rates;
    }

    /// <summary>
    /// Rows per training batch: <see cref="TrainerOptions.BatchSize"/> impressions, and for a model that also trains on lost
    /// bids (<see cref="MultiTaskModel.UsesLostBids"/>) the train split's lost bids in their proportion on top (models.md
    /// §15.3: B_D = B_O ∪ B_L drawn in proportion |L|/|O|), so that its batches hold as many impressions, and its epochs
    /// as many steps, as every other model's.
    /// </summary>
    /// <remarks>Counting rows of D instead left ipw-escm2-dr about 600 impressions a batch at batch 2048 on the quickstart
    /// data (win rate 0.3), 3.3× the steps per epoch, and early stopping at epoch 4 with the convert rate on D 30% low
    /// (calibration ratio 0.70, against 0.88 with impression-sized batches).</remarks>
    internal static int BatchRows(MultiTaskModel model, LoggedDataset data, TrainerOptions options)
    {
        if (!model.UsesLostBids)
        {
            return options.BatchSize;
        }
        var impressions = data.CountOf(DatasetSplit.Train, includeLostBids: false);
        var requests = data.CountOf(DatasetSplit.Train, includeLostBids: true);
        var scaled = Math.Round(options.BatchSize * (double)requests / Math.Max(impressions, 1));
        return (int)Math.Clamp(scaled, options.BatchSize, int.MaxValue);
    }

    /// <summary>One pass over the shuffled train rows; returns the batch-size-weighted mean training loss.</summary>
    private static double RunEpoch(MultiTaskModel model, LoggedDataset data, ModelOptimizer optimizer, Tensor trainRows,
        TrainerOptions options, int batchRows, int epoch, int batches, long firstStep, long totalSteps, CancellationToken cancellation)
    {
        var rows = trainRows.shape[0];
        var device = data.Device;
        using var epochScope = NewDisposeScope();
        var order = trainRows.index_select(0, randperm(rows, device: device));
        var losses = empty(batches, ScalarType.Float32, device);
        var checkedUpTo = 0;
        for (var b = 0; b < batches; b++)
        {
            cancellation.ThrowIfCancellationRequested();
            var start = (long)b * batchRows;
            var size = Math.Min(batchRows, rows - start);
            using (NewDisposeScope())
            {
                var index = order.narrow(0, start, size);
                var loss = Step(model, data, optimizer, index, options, new TrainingStep(firstStep + b, totalSteps, epoch));
                losses.narrow(0, b, 1).copy_(loss.reshape(1));
            }
            if ((b + 1) % options.DivergenceCheckInterval == 0 || b == batches - 1)
            {
                CheckFinite(model.Id, losses, checkedUpTo, b + 1, epoch, batches);
                checkedUpTo = b + 1;
            }
        }
        var values = losses.cpu().data<float>().ToArray();
        double sum = 0;
        for (var b = 0; b < batches; b++)
        {
            var size = Math.Min(batchRows, rows - (long)b * batchRows);
            sum += values[b] * (double)size;
        }
        return sum / rows;
    }

    /// <summary>
    /// One optimisation step on the train rows <paramref name="index"/>: gather the batch, forward, loss, backward, update.
    /// Returns the detached loss (a device scalar, in the caller's dispose scope). Shared by <see cref="Fit"/> and the
    /// training benchmark, so that the benchmark times exactly what training does.
    /// </summary>
    internal static Tensor Step(MultiTaskModel model, LoggedDataset data, ModelOptimizer optimizer, Tensor index,
        TrainerOptions options, TrainingStep step, StepPhases? phases = null)
    {
        var start = phases is null ? 0 : Stopwatch.GetTimestamp();
        var size = index.shape[0];
        var device = data.Device;
        // The dataset's tensor holds the oracle column, or the run's estimate once FitWinPropensity has filled it. Passed
        // unfloored: the model applies ε_w and reports how many rows hit it (win_weight.floor_rate).
        var winPropensity = options.WinPropensity == WinPropensitySource.None
            ? ones(size, ScalarType.Float32, device)
            : data.WinPropensity.index_select(0, index);
        var reach = options.ClickPropensity == ClickPropensitySource.Oracle ? data.ReachPropensity.index_select(0, index) : null;
        var batch = new TrainingBatch(data.Features.index_select(0, index), data.Labels.index_select(0, index),
            data.Won.index_select(0, index), winPropensity, reach);
        var output = model.forward(batch.Features);
        var loss = model.Loss(batch, output, step);
        if (loss.numel() != 1)
        {
            throw new InvalidOperationException($"model \"{model.Id}\": Loss returned a tensor of shape [{string.Join(", ", loss.shape)}]; expected a scalar");
        }
        if (!loss.requires_grad)
        {
            throw new InvalidOperationException($"model \"{model.Id}\": Loss returned a tensor that does not depend on any parameter");
        }
        var forward = phases is null ? 0 : Stopwatch.GetTimestamp();
        optimizer.ZeroGrad();
        loss.backward();
        var backward = phases is null ? 0 : Stopwatch.GetTimestamp();
        optimizer.Step();
        if (phases is not null)
        {
            var end = Stopwatch.GetTimestamp();
            phases.Forward += Stopwatch.GetElapsedTime(start, forward).TotalSeconds;
            phases.Backward += Stopwatch.GetElapsedTime(forward, backward).TotalSeconds;
            phases.Update += Stopwatch.GetElapsedTime(backward, end).TotalSeconds;
        }
        return loss.detach();
    }

    /// <summary>
    /// Seconds spent in each part of <see cref="Step"/>, summed over steps (host clock; on a GPU the parts overlap with
    /// queued kernels, so only their sum is exact).
    /// </summary>
    internal sealed class StepPhases
    {
        /// <summary>Batch gather, forward pass and loss.</summary>
        public double Forward { get; set; }

        /// <summary>Zeroing the gradients and the backward pass.</summary>
        public double Backward { get; set; }

        /// <summary>The optimiser update (dense Adam and the row-wise embedding update).</summary>
        public double Update { get; set; }
    }

    /// <summary>One device read: are the batch losses [from, to) finite? If not, names the first bad batch.</summary>
    private static void CheckFinite(string modelId, Tensor losses, int from, int to, int epoch, int batches)
    {
        using var scope = NewDisposeScope();
        var window = losses.narrow(0, from, to - from);
        if (window.isfinite().all().item<bool>())
        {
            return;
        }
        var values = window.cpu().data<float>().ToArray();
        for (var i = 0; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i]))
            {
                throw new TrainingDivergedException(modelId, epoch, from + i + 1, batches, values[i]);
            }
        }
    }

    /// <summary>1/max(π, ε_w) of the given rows (float64, on the data's device), π from the dataset's win-propensity tensor.</summary>
    internal static Tensor InverseWinWeights(LoggedDataset data, Tensor rows, double floor)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var minimum = floor.ToScalar();
        return data.WinPropensity.index_select(0, rows).to_type(ScalarType.Float64).clamp_min(minimum).reciprocal().DetachFromDisposeScope();
    }

    /// <summary>
    /// Mean over stages of BCE(s_k, r̂_k) on <paramref name="rows"/>, each stage's, and each stage's calibration ratio
    /// Σ r̂_k / Σ s_k (NaN when no row reached the stage); with <paramref name="weights"/> (one per row) each stage's mean
    /// is Σ w·BCE / Σ w and its ratio Σ w·r̂_k / Σ w·s_k.
    /// </summary>
    internal static (double Mean, double[] ByStage, double[] Calibration) ValidationLogLoss(MultiTaskModel model, LoggedDataset data, Tensor rows, int batchSize,
        Tensor? weights = null)
    {
        var wasTraining = model.training;
        model.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var n = rows.shape[0];
            var sums = zeros(data.Depth, ScalarType.Float64, data.Device);
            var predicted = zeros(data.Depth, ScalarType.Float64, data.Device);
            var observed = zeros(data.Depth, ScalarType.Float64, data.Device);
            for (long start = 0; start < n; start += batchSize)
            {
                using (NewDisposeScope())
                {
                    var index = rows.narrow(0, start, Math.Min(batchSize, n - start));
                    var output = model.forward(data.Features.index_select(0, index));
                    var labels = data.Labels.index_select(0, index);
                    var logCumulative = output.LogCumulative();
                    var bce = Losses.BceFromLog(logCumulative, labels).to_type(ScalarType.Float64);
                    var rate = logCumulative.to_type(ScalarType.Float64).exp();
                    var label = labels.to_type(ScalarType.Float64);
                    if (weights is not null)
                    {
                        var w = weights.narrow(0, start, index.shape[0]).unsqueeze(1);
                        bce = bce.mul(w);
                        rate = rate.mul(w);
                        label = label.mul(w);
                    }
                    // dim: named, because a literal 0 would bind to sum(ScalarType? type) (0 converts to any enum) and sum everything as bytes.
                    sums.PlusInPlace(bce.sum(dim: 0));
                    predicted.PlusInPlace(rate.sum(dim: 0));
                    observed.PlusInPlace(label.sum(dim: 0));
                }
            }
            var byStage = sums.cpu().data<double>().ToArray();
            var total = weights is null ? n : weights.sum().cpu().item<double>();
            for (var k = 0; k < byStage.Length; k++)
            {
                byStage[k] /= total;
            }
            var numerator = predicted.cpu().data<double>().ToArray();
            var denominator = observed.cpu().data<double>().ToArray();
            var calibration = numerator.Select((p, k) => denominator[k] > 0 ? p / denominator[k] : double.NaN).ToArray();
            return (byStage.Average(), byStage, calibration);
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <summary>
    /// Adam over the dense parameters and lazy row-wise Adam over the embedding tables (<see cref="ModelOptimizer"/>),
    /// with L2 weight decay on the embedding tables only.
    /// </summary>
    internal static ModelOptimizer CreateOptimizer(MultiTaskModel model, TrainerOptions options) => new(model, options);

    private static Dictionary<string, Tensor> Snapshot(MultiTaskModel model)
    {
        var copy = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        // The scope holds each detached view until its clone is made (a temporary's finalizer must not run mid-call).
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (name, value) in model.state_dict())
        {
            copy[name] = value.detach().clone().DetachFromDisposeScope();
        }
        return copy;
    }

    private static void DisposeState(Dictionary<string, Tensor>? state)
    {
        if (state is null)
        {
            return;
        }
        foreach (var t in state.Values)
        {
            t.Dispose();
        }
    }
}
