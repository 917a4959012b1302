namespace AdAuctionSim.Models.Training;

/// <summary>One epoch of one model: the row of its curves file.</summary>
/// <param name="ModelId">The model's stable id.</param>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="TrainLoss">Mean of the model's own training loss over the epoch's batches, weighted by batch size.</param>
/// <param name="ValidationLogLoss">Mean over stages of BCE(s_k, r̂_k) on the validation impressions (models.md §0.3).</param>
/// <param name="ValidationLogLossByStage">BCE(s_k, r̂_k) of each stage on the validation impressions.</param>
/// <param name="Seconds">Wall time of the epoch: training steps and validation.</param>
/// <param name="TrainSeconds">Wall time of the training steps alone.</param>
/// <param name="Samples">Rows the training steps went through.</param>
/// <param name="Improved">Whether this epoch set a new best validation log loss (with early stopping, the state kept is
/// the last such epoch's).</param>
/// <param name="Diagnostics">What the model reported for the epoch (<see cref="Core.MultiTaskModel.Diagnostics"/>).</param>
public sealed record EpochRecord(
    string ModelId,
    int Epoch,
    double TrainLoss,
    double ValidationLogLoss,
    IReadOnlyList<double> ValidationLogLossByStage,
    double Seconds,
    double TrainSeconds,
    long Samples,
    bool Improved,
    IReadOnlyDictionary<string, double> Diagnostics)
{
    /// <summary>
    /// Σ r̂_k / Σ s_k of each stage over the validation impressions (weighted as the validation log loss is; NaN when no
    /// row reached the stage): how the level of the cumulative rates moves from epoch to epoch, which the log loss hides.
    /// </summary>
    public IReadOnlyList<double> ValidationCalibrationByStage { get; init; } = [];
}

/// <summary>
/// What <see cref="Trainer.Fit"/> did. The model holds the state of <see cref="KeptEpoch"/> afterwards: the best epoch
/// with early stopping, the last one without (<see cref="TrainerOptions.EarlyStopping"/>).
/// </summary>
/// <param name="ModelId">The model's stable id.</param>
/// <param name="EpochsRun">Epochs trained (fewer than asked when early stopping ended training).</param>
/// <param name="BestEpoch">1-based epoch with the lowest validation log loss.</param>
/// <param name="BestValidationLogLoss">Its validation log loss.</param>
/// <param name="StoppedEarly">Whether early stopping ended training before the last epoch asked for.</param>
/// <param name="Seconds">Wall time of the whole fit.</param>
/// <param name="TrainSeconds">Wall time of the training steps (validation excluded).</param>
/// <param name="Samples">Rows the training steps went through, over all epochs.</param>
/// <param name="TrainRows">Rows of one epoch (train impressions, plus train lost bids when the model uses them).</param>
/// <param name="Device">Device the model trained on (cpu, cuda, cuda:0, …).</param>
/// <param name="Threads">torch.get_num_threads() while training.</param>
/// <param name="BatchSize">Rows per training batch.</param>
/// <param name="Curve">One record per epoch.</param>
public sealed record TrainingResult(
    string ModelId,
    int EpochsRun,
    int BestEpoch,
    double BestValidationLogLoss,
    bool StoppedEarly,
    double Seconds,
    double TrainSeconds,
    long Samples,
    int TrainRows,
    string Device,
    int Threads,
    int BatchSize,
    IReadOnlyList<EpochRecord> Curve)
{
    /// <summary>
    /// 1-based epoch whose state the model holds after the fit: <see cref="BestEpoch"/> with early stopping,
    /// <see cref="EpochsRun"/> (the last) without.
    /// </summary>
    public int KeptEpoch { get; init; }

    /// <summary>Whether the model holds the last epoch's state rather than the best one's (training without early stopping).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool KeptLast => KeptEpoch != BestEpoch;

    /// <summary>
    /// "3 epochs (best 1, stopped early)", or "8 epochs (best 5; epoch 8 kept, validation log loss 0.21489)" when the
    /// model holds a later epoch's state than the best one's.
    /// </summary>
    public string DescribeEpochs() => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"{EpochsRun} epoch{(EpochsRun == 1 ? "" : "s")} (best {BestEpoch}{(StoppedEarly ? ", stopped early" : "")}"
        + $"{(KeptLast ? $"; epoch {KeptEpoch} kept, validation log loss {Curve[KeptEpoch - 1].ValidationLogLoss:F5}" : "")})");

    /// <summary>Training throughput: rows per second of training steps.</summary>
    public double SamplesPerSecond => TrainSeconds > 0 ? Samples / TrainSeconds : double.NaN;
}

/// <summary>
/// The training loss (or the validation log loss) of a model became NaN or infinite. The message names the model, the
/// 1-based epoch and the 1-based batch (or the validation pass) where it happened first.
/// </summary>
public sealed class TrainingDivergedException : Exception
{
    public TrainingDivergedException(string modelId, int epoch, int? batch, int batches, double value)
        : base(batch is { } b
            ? $"model \"{modelId}\" diverged: its training loss is {Describe(value)} at epoch {epoch}, batch {b} of {batches}; "
                + "training stopped. Try a lower learning rate (--lr) or check the model's loss."
            : $"model \"{modelId}\" diverged: its validation log loss is {Describe(value)} after epoch {epoch}; "
                + "training stopped. Try a lower learning rate (--lr) or check the model's outputs.")
    {
        ModelId = modelId;
        Epoch = epoch;
        Batch = batch;
        Value = value;
    }

    public string ModelId { get; }

    /// <summary>1-based epoch.</summary>
    public int Epoch { get; }

    /// <summary>1-based batch of the epoch, or null when the validation pass diverged.</summary>
    public int? Batch { get; }

    /// <summary>The non-finite value (NaN or ±∞).</summary>
    public double Value { get; }

    private static string Describe(double value) =>
        double.IsNaN(value) ? "NaN" : double.IsPositiveInfinity(value) ? "+infinity" : double.IsNegativeInfinity(value) ? "-infinity" : value.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
}
