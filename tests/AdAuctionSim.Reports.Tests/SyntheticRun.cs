using AdAuctionSim.Evaluation;
using AdAuctionSim.Reports.Documents;
using AdAuctionSim.Evaluation.Statistics;

namespace AdAuctionSim.Reports.Tests;

/// <summary>
/// A plausible report's data without a simulation: what a run evaluator would return for a sweep of two points, three
/// repeats, three models (or those given) and two stages (deterministic pseudo-random noise around chosen means), with
/// the <c>truth</c> reference row's metrics (near the ends of their ranges: AUC close to 1, errors close to 0).
/// </summary>
internal static class SyntheticRun
{
    public static readonly string[] Models = ["single-task", "esmm", "escm2-ips"];
    public static readonly string[] Stages = ["click", "convert"];
    public static readonly double[] Dial = [0, 0.8];

    public const string Truth = "truth";

    /// <summary><paramref name="models"/> ids like the catalog's: the first three of <see cref="Models"/>, then m3, m4, ….</summary>
    public static string[] ManyModels(int models) => [.. Enumerable.Range(0, models).Select(i => i < Models.Length ? Models[i] : $"m{i}")];

    public static RunReportData Create(int repeats = 3, string[]? models = null)
    {
        var ids = models ?? Models;
        var random = new Random(5);
        var metrics = new List<MetricRow>();
        var bins = new List<ReliabilityBin>();
        var deciles = new List<DecileError>();
        var curves = new List<TrainingCurvePoint>();
        var points = Dial.Select(d => new ReportPoint($"bias.clickCvrCorrelation={d}", [d])).ToList();
        foreach (var point in points)
        {
            for (var r = 0; r < repeats; r++)
            {
                for (var m = 0; m < ids.Length; m++)
                {
                    foreach (var stage in Stages)
                    {
                        foreach (var space in (EvaluationSpace[])[EvaluationSpace.D, EvaluationSpace.O])
                        {
                            // The naive model's bias grows with the dial; the debiased ones hold it lower.
                            var bias = (m == 0 ? 0.05 : 0.01) * point.Values[0] + 0.002 * random.NextDouble();
                            metrics.Add(new MetricRow(point.Label, r, 100 + r, ids[m], stage, space, "bias", bias, 1000));
                            metrics.Add(new MetricRow(point.Label, r, 100 + r, ids[m], stage, space, "auc_potential", 0.7 + 0.02 * (m % 3) + 0.01 * random.NextDouble(), 1000));
                            metrics.Add(new MetricRow(point.Label, r, 100 + r, ids[m], stage, space, "log_loss", 0.3 - 0.01 * m + 0.01 * random.NextDouble(), 1000));
                            metrics.Add(new MetricRow(point.Label, r, 100 + r, ids[m], stage, space, "ece", double.NaN, 1000, "single class"));
                        }
                        for (var b = 0; b < 20; b++)
                        {
                            var p = (b + 0.5) / 20 * 0.2;
                            bins.Add(new ReliabilityBin(point.Label, r, ids[m], stage, EvaluationSpace.D, b, p, p * (1 + 0.1 * m), p, 50));
                        }
                        for (var d = 0; d < 10; d++)
                        {
                            deciles.Add(new DecileError(point.Label, r, ids[m], stage, EvaluationSpace.D, d, 0.01 * (d + 1), 0.01 * (m - 1) * d, 0.02, 0.03, 100));
                        }
                    }
                    for (var e = 1; e <= 4; e++)
                    {
                        curves.Add(new TrainingCurvePoint(point.Label, r, ids[m], e, 0.5 / e, 0.3 + 0.1 / e, 0.8 + (0.1 * m) + (0.05 * e)));
                    }
                }
                // The oracle: no bias or error and the best AUC, spread over repeats as the evaluation of finite samples spreads it.
                foreach (var stage in Stages)
                {
                    metrics.Add(new MetricRow(point.Label, r, 100 + r, Truth, stage, EvaluationSpace.D, "bias", 0.0005 * (random.NextDouble() - 0.5), 1000));
                    metrics.Add(new MetricRow(point.Label, r, 100 + r, Truth, stage, EvaluationSpace.D, "mae", 0.002 * random.NextDouble(), 1000));
                    metrics.Add(new MetricRow(point.Label, r, 100 + r, Truth, stage, EvaluationSpace.D, "auc_potential", 0.96 + 0.04 * random.NextDouble(), 1000));
                    metrics.Add(new MetricRow(point.Label, r, 100 + r, Truth, stage, EvaluationSpace.D, "calibration_ratio", 0.5 + random.NextDouble(), 1000));
                }
            }
        }
        var seeds = points.SelectMany(p => Enumerable.Range(0, repeats).Select(r => new RepeatSeeds(p.Label, r, 100 + r, 1 + r))).ToList();
        return new RunReportData
        {
            RunId = "20250101-000000-synthetic-abcdef",
            ScenarioName = "synthetic",
            ScenarioFile = "synthetic.json",
            ResolvedScenario = "{ \"name\": \"synthetic\" }\n",
            CodeVersion = "test",
            Device = "cpu",
            Threads = 2,
            Status = "complete",
            Models = ids,
            Stages = Stages,
            Baseline = ids[0],
            Dials = ["bias.clickCvrCorrelation"],
            Points = points,
            Seeds = seeds,
            Timings = [new PhaseTiming("simulate", "repeat 0", 1.5, "cpu, 2 threads"), new PhaseTiming("train", "repeat 0, esmm", 3.25, "cpu, 2 threads", Reused: true)],
            RealisedBias = [.. points.Select(p => new RealisedBiasFigure(p.Label, 0, "clickSelectionRatio[convert]", 1 + p.Values[0]))],
            Metrics = metrics,
            Summaries = MetricStatistics.Summarise(metrics, ids[0]),
            Reliability = bins,
            Deciles = deciles,
            Curves = curves,
        };
    }
}

/// <summary>A temporary folder deleted afterwards.</summary>
internal sealed class TempFolder : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"adsim-reports-tests-{Guid.NewGuid():N}");

    public TempFolder() => Directory.CreateDirectory(Path);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
