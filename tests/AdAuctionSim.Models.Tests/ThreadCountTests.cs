using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Data;
using AdAuctionSim.Models.Prediction;
using AdAuctionSim.Models.Runtime;
using AdAuctionSim.Models.Training;
using AdAuctionSim.Simulation.Output;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Tests;

/// <summary>
/// The same data and seed give the same trained model, to the bit, whatever the intra-op thread count (CONVENTIONS:
/// byte-identical metrics for any thread count).
/// </summary>
[Collection(TorchSharpCollection.Name)]
public sealed class ThreadCountTests
{
    public static TheoryData<string> Models => [.. ModelCatalog.Ids];

    /// <summary>
    /// Every model of the catalog, trained for one epoch and scored on 1, 2 and 3 threads, gives identical predictions.
    /// Batches of 700 and scoring batches of 999 and 3001 leave ragged last batches, where libtorch's kernels split work between
    /// threads off the vector boundaries (OMoE's gate softmax and APEM's layer norms depended on it before they ran as
    /// C# passes).
    /// </summary>
    [Theory]
    [MemberData(nameof(Models))]
    public void Training_and_scoring_give_the_same_bits_on_1_2_and_3_threads(string id)
    {
        TorchRuntime.Initialize("cpu", threads: 1, seed: 3);
        using var data = LoggedDataset.Load(LoggedView.Open(TestSimulation.Parquet));
        var options = new TrainerOptions
        {
            Device = "cpu",
            BatchSize = 700,
            Epochs = 1,
            LearningRate = 0.01,
            WinPropensity = WinPropensitySource.Oracle,
            EvaluationBatchSize = 3001,
        };
        var threads = get_num_threads();
        var scores = new List<Predictions>();
        try
        {
            foreach (var count in new[] { 1, 2, 3 })
            {
                set_num_threads(count);
                manual_seed(3);
                using var model = ModelCatalog.Get(id).Create(TestEntries.Context(data));
                Trainer.Fit(model, data, options);
                scores.Add(Predictions.Score(model, data, batchSize: 999));
                scores.Add(Predictions.Score(model, data, batchSize: 3001));
            }
        }
        finally
        {
            set_num_threads(threads);
        }

        Assert.True(data.Features.shape[0] % 999 != 0 && data.Features.shape[0] % 3001 != 0 && data.CountOf(DatasetSplit.Train, includeLostBids: false) % 700 != 0,
            "the batches should leave a ragged last batch");
        for (var k = 0; k < data.Depth; k++)
        {
            for (var run = 2; run < scores.Count; run++)
            {
                // Runs alternate scoring batches 999 and 3001; each is compared with the 1-thread run of its batch size.
                var first = scores[run % 2];
                Assert.True(first.Q[k].AsSpan().SequenceEqual(scores[run].Q[k]), $"{id}: q̂ of stage {k} differs on {(run / 2) + 1} threads");
                Assert.True(first.R[k].AsSpan().SequenceEqual(scores[run].R[k]), $"{id}: r̂ of stage {k} differs on {(run / 2) + 1} threads");
            }
        }
    }
}
