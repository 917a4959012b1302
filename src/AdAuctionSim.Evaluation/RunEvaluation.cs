using AdAuctionSim.Evaluation.Metrics;
namespace AdAuctionSim.Evaluation;

/// <summary>What to evaluate: one simulation, the training run that scored it, and where it sits in a sweep.</summary>
/// <param name="SimulationDirectory">Folder written by <c>adsim simulate</c> (manifest, logs, truth).</param>
/// <param name="TrainDirectory">Folder written by <c>adsim train</c> (train.json, predictions/).</param>
/// <param name="Point">Sweep point label, empty without a sweep.</param>
/// <param name="Repeat">Repeat index (0-based).</param>
/// <param name="Seed">World seed of this repeat.</param>
public sealed record RunEvaluationRequest(string SimulationDirectory, string TrainDirectory, string Point, int Repeat, long Seed);

/// <summary>Everything one evaluation produces: metric rows, reliability-diagram bins and per-decile errors.</summary>
public sealed record EvaluationResult(
    IReadOnlyList<MetricRow> Metrics, IReadOnlyList<ReliabilityBin> Reliability, IReadOnlyList<DecileError> Deciles)
{
    /// <summary>Bootstrap intervals of this run's headline figures (empty when the evaluator was asked for none).</summary>
    public IReadOnlyList<MetricInterval> Intervals { get; init; } = [];

    /// <summary>The run's fitted win model on the held-out requests (empty when the run fitted none).</summary>
    public IReadOnlyList<WinModelFigure> WinModel { get; init; } = [];
}

/// <summary>Evaluates every model of a training run (and the reference rows) on the held-out requests.</summary>
public interface IRunEvaluator
{
    /// <summary>Computes every metric of DESIGN.md §6 for one simulation and its predictions.</summary>
    EvaluationResult Evaluate(RunEvaluationRequest request, CancellationToken cancellationToken);
}
