using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Data;
using AdAuctionSim.Models.Prediction;
using AdAuctionSim.Simulation.Output;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Tests;

/// <summary>
/// Scoring every candidate ad through a model's feature pipeline (for off-policy target policies): the candidate that was
/// shown scores exactly as the model's prediction of that request, and other candidates score differently.
/// </summary>
[Collection(TorchSharpCollection.Name)]
public sealed class CandidatePredictionTests
{
    [Fact]
    public void The_shown_candidate_scores_as_the_models_prediction_of_the_request()
    {
        var view = LoggedView.Open(TestSimulation.Parquet);
        using var data = LoggedDataset.Load(view);
        manual_seed(3);
        using var model = ModelCatalog.Get("single-task").Create(TestEntries.Context(data));
        var predictions = Predictions.Score(model, data);
        var n = view.ReadScenario().Traffic.CandidateAds;
        var impressions = view.Read(LoggedProduct.Impressions, [LogColumns.RequestId, "action", .. Enumerable.Range(0, n).Select(j => $"candidate_{j}")]);
        var ads = view.Read(LoggedProduct.Ads, "ad_id", "campaign_id", "advertiser_id", "category", "creative");
        var size = ads.Int32("ad_id").Max() + 1;
        int[] Column(string name)
        {
            var c = new int[size];
            var ids = ads.Int32("ad_id");
            for (var r = 0; r < ids.Length; r++)
            {
                c[ids[r]] = ads.Int32(name)[r];
            }
            return c;
        }
        var catalog = new AdCatalog(Column("campaign_id"), Column("advertiser_id"), Column("category"), Column("creative"));
        var rowOf = data.RequestId.Select((id, i) => (id, i)).ToDictionary(x => x.id, x => x.i);
        var take = Math.Min(500, impressions.Rows);
        var rows = new int[take];
        var candidates = new int[take * n];
        for (var r = 0; r < take; r++)
        {
            rows[r] = rowOf[impressions.Int64(LogColumns.RequestId)[r]];
            for (var j = 0; j < n; j++)
            {
                candidates[r * n + j] = impressions.Int32($"candidate_{j}")[r];
            }
        }

        var scores = CandidatePredictions.Score(model, data, rows, candidates, n, catalog, batchSize: 97);

        var differs = 0;
        for (var r = 0; r < take; r++)
        {
            var shown = impressions.Int32("action")[r];
            Assert.Equal(predictions.R[^1][rows[r]], scores[r * n + shown], 1e-6);
            for (var j = 0; j < n; j++)
            {
                differs += candidates[r * n + j] != candidates[r * n + shown] && Math.Abs(scores[r * n + j] - scores[r * n + shown]) > 1e-9 ? 1 : 0;
            }
        }
        Assert.True(differs > take / 2, $"only {differs} other candidates scored differently from the shown ad");
    }
}
