using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using AdAuctionSim.Evaluation;

namespace AdAuctionSim.Cli.Tests;

/// <summary>
/// A stand-in for the real run evaluator (which lands from another branch): it returns plausible rows of every kind for
/// every model of the training run, each value drawn from a hash of that model's predictions file, so that equal
/// metrics mean byte-identical predictions, and a retrained model that came out differently shows.
/// </summary>
internal sealed class FakeRunEvaluator : IRunEvaluator
{
    public static readonly string[] Metrics = ["auc_observed", "auc_potential", "log_loss", "ne", "ece", "calibration_ratio", "bias", "mae", "rmse"];

    private int _calls;

    public int Calls => _calls;

    public EvaluationResult Evaluate(RunEvaluationRequest request, CancellationToken cancellation)
    {
        Interlocked.Increment(ref _calls);
        var train = JsonNode.Parse(File.ReadAllText(Path.Combine(request.TrainDirectory, "train.json")))!;
        var stages = train["stages"]!.AsArray().Select(s => s!.GetValue<string>()).ToList();
        var models = train["models"]!.AsArray().Select(m => m!["modelId"]!.GetValue<string>()).ToList();
        if (!File.Exists(Path.Combine(request.SimulationDirectory, "truth.parquet")))
        {
            throw new InvalidOperationException("the simulation has no truth");
        }
        var metrics = new List<MetricRow>();
        var bins = new List<ReliabilityBin>();
        var deciles = new List<DecileError>();
        foreach (var model in models)
        {
            var predictions = File.ReadAllBytes(Path.Combine(request.TrainDirectory, "predictions", model + ".parquet"));
            foreach (var stage in stages)
            {
                foreach (var space in Enum.GetValues<EvaluationSpace>())
                {
                    foreach (var metric in Metrics)
                    {
                        var u = Draw(predictions, $"{stage}|{space}|{metric}");
                        var value = metric switch
                        {
                            "auc_observed" or "auc_potential" => 0.6 + 0.2 * u,
                            "bias" => (u - 0.5) * 0.02,
                            "calibration_ratio" => 0.8 + 0.4 * u,
                            _ => 0.1 * u,
                        };
                        metrics.Add(new MetricRow(request.Point, request.Repeat, request.Seed, model, stage, space, metric, value, 1000));
                    }
                }
                for (var b = 0; b < 20; b++)
                {
                    var p = (b + 0.5) / 20 * 0.3;
                    bins.Add(new ReliabilityBin(request.Point, request.Repeat, model, stage, EvaluationSpace.D, b, p,
                        p * (0.8 + 0.4 * Draw(predictions, $"{stage}|bin{b}")), p, 50));
                }
                if (stage != stages[0])
                {
                    for (var d = 0; d < 10; d++)
                    {
                        var u = Draw(predictions, $"{stage}|decile{d}");
                        deciles.Add(new DecileError(request.Point, request.Repeat, model, stage, EvaluationSpace.D, d, 0.01 * (d + 1), (u - 0.5) * 0.02,
                            0.01 + 0.01 * u, 0.02 + 0.01 * u, 100));
                    }
                }
            }
        }
        return new EvaluationResult(metrics, bins, deciles);
    }

    /// <summary>A number in [0, 1) from the SHA-256 of the bytes and a label.</summary>
    private static double Draw(byte[] bytes, string label)
    {
        var hash = SHA256.HashData([.. bytes, .. Encoding.UTF8.GetBytes(label)]);
        return (BitConverter.ToUInt64(hash, 0) >> 11) * (1.0 / (1UL << 53));
    }
}
