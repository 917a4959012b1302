using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Data;
using AdAuctionSim.Models.Prediction;
using AdAuctionSim.Models.Training;
using AdAuctionSim.Simulation.Engine;
using AdAuctionSim.Simulation.Output;
using AdAuctionSim.Simulation.Scenarios;
using AdAuctionSim.Simulation.World;
using Parquet;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Tests;

/// <summary>
/// A small no-bias simulation (click → convert, every dial 0, an uninformative logging policy; 50 users and 8 ads so
/// that 300 000 requests give every user–ad pair enough impressions to learn from), its dataset and, for the test split's
/// impressions, the click labels and the true q_1 read from the truth (the test may read it; the models never do).
/// </summary>
public sealed class NoBiasFixture : IDisposable
{
    public NoBiasFixture()
    {
        var scenario = new Scenario
        {
            Name = "models-learn",
            Seed = 13,
            Traffic = new TrafficOptions
            {
                Requests = 300_000, Days = 2, Users = 50, Advertisers = 2, CampaignsPerAdvertiser = 2, AdsPerCampaign = 2,
                CandidateAds = 3, Sites = 10, Slots = 3,
            },
            Funnel = new FunnelOptions { Stages = [new("click", 0.15), new("convert", 0.3)] },
            Bias = new BiasOptions { ClickCvrCorrelation = 0, HiddenConfounding = 0, WinValueCorrelation = 0, PositionEffect = 0 },
            LoggingPolicy = new LoggingPolicyOptions { EstimateQuality = 0 },
        };
        Folder = TestSimulation.NewFolder("learn");
        SimulationOutput.Write(WorldModel.Build(scenario), new SimulationOutputOptions(Path.Combine(Folder, "sim"), OutputFormat.Parquet),
            new SimulationOptions { Threads = 1 });
        Simulation = Path.Combine(Folder, "sim");
        Data = LoggedDataset.Load(LoggedView.Open(Simulation), CPU);

        var truth = ReadTruth(Path.Combine(Simulation, "truth.parquet"));
        var rows = new List<int>();
        var split = Data.Split;
        var won = Data.IsImpression;
        for (var i = 0; i < Data.Count; i++)
        {
            if (won[i] && split[i] == DatasetSplit.Test)
            {
                rows.Add(i);
            }
        }
        TestRows = [.. rows];
        var labels = Data.Labels.select(1, 0).data<float>().ToArray();
        Clicks = TestRows.Select(i => labels[i] > 0.5f).ToArray();
        TrueQ1 = TestRows.Select(i => truth[Data.RequestId[i]]).ToArray();
        TrueAuc = RankAuc.Of(TrueQ1, Clicks);
    }

    public string Folder { get; }
    public string Simulation { get; }
    public LoggedDataset Data { get; }
    public int[] TestRows { get; }
    public bool[] Clicks { get; }
    public double[] TrueQ1 { get; }
    public double TrueAuc { get; }

    public void Dispose() => Data.Dispose();

    private static Dictionary<long, double> ReadTruth(string file) => ReadTruthAsync(file).GetAwaiter().GetResult();

    private static async Task<Dictionary<long, double>> ReadTruthAsync(string file)
    {
        await using var reader = await ParquetReader.CreateAsync(file);
        var fields = reader.Schema.DataFields;
        var idField = fields.Single(f => f.Name == LogColumns.RequestId);
        var qField = fields.Single(f => f.Name == LogColumns.TruePrefix + "click");
        var map = new Dictionary<long, double>();
        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            var n = (int)group.RowCount;
            var ids = new long[n];
            var q = new double[n];
            await group.ReadAsync(idField, ids.AsMemory());
            await group.ReadAsync(qField, q.AsMemory());
            for (var i = 0; i < n; i++)
            {
                map[ids[i]] = q[i];
            }
        }
        return map;
    }
}

/// <summary>AUC by the Mann–Whitney rank sum with mid-ranks for ties.</summary>
internal static class RankAuc
{
    public static double Of(double[] scores, bool[] labels)
    {
        var order = Enumerable.Range(0, scores.Length).OrderBy(i => scores[i]).ToArray();
        double rankSum = 0;
        long positives = 0;
        for (var start = 0; start < order.Length;)
        {
            var end = start;
            while (end + 1 < order.Length && scores[order[end + 1]] == scores[order[start]])
            {
                end++;
            }
            var midRank = (start + end) / 2.0 + 1;
            for (var j = start; j <= end; j++)
            {
                if (labels[order[j]])
                {
                    rankSum += midRank;
                    positives++;
                }
            }
            start = end + 1;
        }
        var negatives = scores.Length - positives;
        return (rankSum - positives * (positives + 1) / 2.0) / (positives * (double)negatives);
    }
}

/// <summary>
/// Every model of the catalog learns: trained on a small no-bias simulation, its click AUC on the held-out (test split)
/// impressions reaches at least 95% of the AUC that the true q_1 achieves on the same rows.
/// </summary>
[Collection(TorchSharpCollection.Name)]
public sealed class ModelLearningTests(NoBiasFixture fixture, ITestOutputHelper output) : IClassFixture<NoBiasFixture>
{
    public static TheoryData<string> Models()
    {
        var data = new TheoryData<string>();
        foreach (var id in ModelCatalog.Ids)
        {
            data.Add(id);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Click_auc_on_held_out_impressions_reaches_95_percent_of_the_true_q1_auc(string id)
    {
        Assert.True(fixture.Clicks.Count(c => c) >= 200, "too few held-out clicks for a meaningful AUC");
        manual_seed(1);
        var context = new ModelContext(fixture.Data.Depth, fixture.Data.Stages, fixture.Data.Schema, new ModelOptions());
        using var model = ModelCatalog.Get(id).Create(context);
        var options = new TrainerOptions { Device = "cpu", Epochs = 10, BatchSize = 1024, LearningRate = 0.003, Seed = 1, WinPropensity = WinPropensitySource.Oracle };
        var result = Trainer.Fit(model, fixture.Data, options);
        var predictions = Predictions.Score(model, fixture.Data);
        var scores = fixture.TestRows.Select(i => predictions.Q[0][i]).ToArray();

        var auc = RankAuc.Of(scores, fixture.Clicks);
        output.WriteLine($"{id}: click AUC {auc:F4} vs true q_1 {fixture.TrueAuc:F4} ({auc / fixture.TrueAuc:P1}) on "
            + $"{fixture.TestRows.Length} held-out impressions, {fixture.Clicks.Count(c => c)} clicks; {result.EpochsRun} epochs, best {result.BestEpoch}");
        Assert.True(auc >= 0.95 * fixture.TrueAuc,
            $"{id}: click AUC {auc:F4} is below 95% of the true q_1's {fixture.TrueAuc:F4} on the same held-out impressions");
    }
}
