using AdAuctionSim.Models.Runtime;

namespace AdAuctionSim.Models.Training;

/// <summary>Where the win propensity a batch carries comes from (<see cref="Core.TrainingBatch.WinPropensity"/>).</summary>
public enum WinPropensitySource
{
    /// <summary>The logged oracle column <c>win_propensity</c> (true P(win | x) as the simulator logs it), floored.</summary>
    Oracle,
    /// <summary>Every row gets 1: no inverse-win weighting.</summary>
    None,
}

/// <summary>
/// How the trainer runs, with the defaults of models.md §16.3 (2-core CPU, 10⁵–10⁶ impressions). Validated by
/// <see cref="Validate"/> before any work.
/// </summary>
public sealed record TrainerOptions
{
    /// <summary>
    /// auto, cpu or cuda (<see cref="TorchRuntime.ParseDevice"/>): what the caller initialises the runtime with and loads
    /// the dataset onto. <see cref="Trainer.Fit"/> itself trains on the dataset's device.
    /// </summary>
    public string Device { get; init; } = "auto";

    public int BatchSize { get; init; } = 2048;

    /// <summary>Most epochs; early stopping may end training sooner.</summary>
    public int Epochs { get; init; } = 10;

    /// <summary>Adam learning rate (β = 0.9, 0.999, ε = 1e-8, as PyTorch).</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>L2 weight decay of Adam on the embedding tables only; every other parameter has none (models.md §16.3).</summary>
    public double EmbeddingWeightDecay { get; init; } = 1e-6;

    /// <summary>Epochs without a better validation log loss before training stops.</summary>
    public int Patience { get; init; } = 2;

    /// <summary>Seed of torch's generators: parameter initialisation and batch order.</summary>
    public long Seed { get; init; } = 1;

    /// <summary>Intra-op threads for <see cref="TorchRuntime.Initialize"/>; 0 keeps libtorch's default (one per physical core).</summary>
    public int Threads { get; init; }

    public WinPropensitySource WinPropensity { get; init; } = WinPropensitySource.Oracle;

    /// <summary>Rows per forward pass when validating and predicting (no gradients, so larger than training batches).</summary>
    public int EvaluationBatchSize { get; init; } = 16384;

    /// <summary>Batches between two cheap checks for a non-finite loss (one device read each); also checked at epoch end.</summary>
    public int DivergenceCheckInterval { get; init; } = 50;

    /// <summary>Every problem with these options, or none.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (!TorchRuntime.DeviceNames.Contains(Device.Trim().ToLowerInvariant(), StringComparer.Ordinal))
        {
            problems.Add($"device \"{Device}\" is not one of {string.Join(", ", TorchRuntime.DeviceNames)}");
        }
        if (BatchSize < 1)
        {
            problems.Add($"batch size {BatchSize} must be at least 1");
        }
        if (Epochs < 1)
        {
            problems.Add($"epochs {Epochs} must be at least 1");
        }
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
        {
            problems.Add($"learning rate {LearningRate} must be a finite number above 0");
        }
        if (!(EmbeddingWeightDecay >= 0) || double.IsInfinity(EmbeddingWeightDecay))
        {
            problems.Add($"embedding weight decay {EmbeddingWeightDecay} must be a finite number ≥ 0");
        }
        if (Patience < 1)
        {
            problems.Add($"patience {Patience} must be at least 1");
        }
        if (Threads < 0)
        {
            problems.Add($"threads {Threads} must be ≥ 0 (0: libtorch's default)");
        }
        if (EvaluationBatchSize < 1)
        {
            problems.Add($"evaluation batch size {EvaluationBatchSize} must be at least 1");
        }
        if (DivergenceCheckInterval < 1)
        {
            problems.Add($"divergence check interval {DivergenceCheckInterval} must be at least 1");
        }
        return problems;
    }

    /// <exception cref="ArgumentException">Lists every problem at once.</exception>
    public void Validate()
    {
        var problems = Problems();
        if (problems.Count > 0)
        {
            throw new ArgumentException("invalid trainer options: " + string.Join("; ", problems));
        }
    }
}
