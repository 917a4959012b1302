using AdAuctionSim.Evaluation;
using AdAuctionSim.Reports.Documents;
using AdAuctionSim.Evaluation.Statistics;

namespace AdAuctionSim.Reports.Tests;

/// <summary>
/// A plausible report's data without a simulation: what a run evaluator would return for a sweep of two points, three
/// repeats, three models and two stages (deterministic pseudo-random noise around chosen means).
/// </summary>
internal static class SyntheticRun
{
    public static readonly string[] Models = ["single-task", "esmm", "escm2-ips"];
    public static readonly string[] Stages = ["click", "convert"];
    public static readonly double[] Dial = [0, 0.8];

    public static RunReportData Create(int repeats = 3)
    {
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
                for (var m = 0; m < Models.Length; m++)
                {
                    foreach (var stage in Stages)
                    {
                        foreach (var space in (EvaluationSpace[])[EvaluationSpace.D, EvaluationSpace.O])
                        {
                            // The naive model's bias grows with the dial; the debiased ones hold it lower.
                            var bias = (m == 0 ? 0.05 : 0.01) * point.Values[0] + 0.002 * random.NextDouble();
                            metrics.Add(new MetricRow(point.Label, r, 100 + r, Models[m], stage, space, "bias", bias, 1000));
                            metrics.Add(new MetricRow(point.Label, r, 100 + r, Models[m], stage, space, "auc_potential", 0.7 + 0.02 * m + 0.01 * random.NextDouble(), 1000));
                            metrics.Add(new MetricRow(point.Label, r, 100 + r, Models[m], stage, space, "log_loss", 0.3 - 0.01 * m + 0.01 * random.NextDouble(), 1000));
                            metrics.Add(new MetricRow(point.Label, r, 100 + r, Models[m], stage, space, "ece", double.NaN, 1000, "single class"));
                        }
                        for (var b = 0; b < 20; b++)
                        {
                            var p = (b + 0.5) / 20 * 0.2;
                            bins.Add(new ReliabilityBin(point.Label, r, Models[m], stage, EvaluationSpace.D, b, p, p * (1 + 0.1 * m), p, 50));
                        }
                        if (stage != Stages[0])
                        {
                            for (var d = 0; d < 10; d++)
                            {
                                deciles.Add(new DecileError(point.Label, r, Models[m], stage, EvaluationSpace.D, d, 0.01 * (d + 1), 0.01 * (m - 1) * d, 0.02, 0.03, 100));
                            }
                        }
                    }
                    for (var e = 1; e <= 4; e++)
                    {
                        curves.Add(new TrainingCurvePoint(point.Label, r, Models[m], e, 0.5 / e, 0.3 + 0.1 / e));
                    }
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
            Models = Models,
            Baseline = Models[0],
            Dials = ["bias.clickCvrCorrelation"],
            Points = points,
            Seeds = seeds,
            Timings = [new PhaseTiming("simulate", "repeat 0", 1.5, "cpu, 2 threads"), new PhaseTiming("train", "repeat 0, esmm", 3.25, "cpu, 2 threads", Reused: true)],
            RealisedBias = [.. points.Select(p => new RealisedBiasFigure(p.Label, 0, "clickSelectionRatio[convert]", 1 + p.Values[0]))],
            Metrics = metrics,
            Summaries = MetricStatistics.Summarise(metrics, Models[0]),
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
