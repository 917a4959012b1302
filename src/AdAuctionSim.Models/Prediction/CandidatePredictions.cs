using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Data;
using AdAuctionSim.Models.Training;
using AdAuctionSim.Models.WinPropensity;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Prediction;

/// <summary>
/// A trained model's scores for every candidate ad of chosen requests, for off-policy evaluation: a target policy that
/// picks among a request's candidates needs r̂_K(x, j) for each candidate j, while <see cref="Predictions"/> holds only
/// the logged ad's. The request's own features are kept and the five ad fields (ad, campaign, advertiser, category,
/// creative) are replaced by candidate j's, encoded as the dataset encodes them (ids unseen in training go to each
/// field's reserved bucket), then the model scores the rows as it scores D.
/// </summary>
public static class CandidatePredictions
{
    /// <summary>The encoder fields that describe the shown ad, in the order of <see cref="AdCatalog"/>'s columns.</summary>
    public static IReadOnlyList<string> AdFields { get; } = ["ad_id", "campaign_id", "advertiser_id", "category", "creative"];

    /// <summary>
    /// r̂_K(x_i, j) of the final stage for each of <paramref name="rows"/> (dataset rows) and each of its
    /// <paramref name="candidatesPerRow"/> candidate ads <paramref name="candidateAds"/> ([row × N] ad ids), [row × N].
    /// </summary>
    /// <param name="model">A trained model of the dataset's schema.</param>
    /// <param name="data">The dataset the model was trained on.</param>
    /// <param name="rows">Dataset rows to score.</param>
    /// <param name="candidateAds">Candidate ad ids, [rows × N].</param>
    /// <param name="candidatesPerRow">N.</param>
    /// <param name="catalog">The ad catalogue: campaign, advertiser, category and creative of every ad id.</param>
    /// <param name="batchSize">Rows per forward pass.</param>
    public static double[] Score(MultiTaskModel model, LoggedDataset data, int[] rows, int[] candidateAds, int candidatesPerRow,
        AdCatalog catalog, int batchSize = TrainerOptions.DefaultEvaluationBatchSize)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(candidateAds);
        ArgumentNullException.ThrowIfNull(catalog);
        if (candidateAds.Length != rows.Length * candidatesPerRow)
        {
            throw new ArgumentException($"{candidateAds.Length} candidate ads for {rows.Length} rows × {candidatesPerRow} candidates", nameof(candidateAds));
        }
        var schema = data.Schema;
        var fields = AdFields.Select(f => schema.Fields.ToList().IndexOf(f)).ToArray();
        if (fields.Any(f => f < 0))
        {
            throw new ArgumentException($"the dataset's fields [{string.Join(", ", schema.Fields)}] lack an ad field of [{string.Join(", ", AdFields)}]", nameof(data));
        }
        var f = schema.Count;
        var total = rows.Length * candidatesPerRow;
        var ids = new long[(long)total * f];
        for (var r = 0; r < rows.Length; r++)
        {
            var source = data.FeatureIds.AsSpan(rows[r] * f, f);
            for (var j = 0; j < candidatesPerRow; j++)
            {
                var at = (long)(r * candidatesPerRow + j) * f;
                for (var c = 0; c < f; c++)
                {
                    ids[at + c] = source[c] + schema.Offsets[c];
                }
                var ad = candidateAds[r * candidatesPerRow + j];
                for (var a = 0; a < fields.Length; a++)
                {
                    var field = fields[a];
                    var value = a == 0 ? ad : catalog.Field(a - 1, ad);
                    var bucket = schema.Cardinalities[field] - 1;
                    var local = value < 0 || value >= bucket ? bucket : value;
                    ids[at + field] = local + schema.Offsets[field];
                }
            }
        }
        var k = data.Depth;
        var result = new double[total];
        using (NewDisposeScope())
        {
            var features = tensor(ids, [total, f]).to(data.Device);
            Predictions.ForwardInBatches(model, features, data.Device, batchSize, (start, size, output) =>
            {
                var rK = output.LogCumulative().select(1, k - 1).to_type(ScalarType.Float64).exp().cpu().data<double>().ToArray();
                Array.Copy(rK, 0, result, start, size);
            });
        }
        return result;
    }

    /// <summary>
    /// Ŵ(b | x_i) of a win model fitted on the train split's requests (impressions and lost bids), at each of
    /// <paramref name="bids"/>' bid vectors for the dataset rows <paramref name="rows"/>, and with
    /// <paramref name="payments"/> the expected payment Ĉ(b | x_i) it implies
    /// (<see cref="IWinPropensityModel.ExpectedPayment"/>): each [set][row].
    /// </summary>
    /// <param name="data">The logged dataset.</param>
    /// <param name="winModel">A win model id of <see cref="WinPropensityModels.Ids"/>.</param>
    /// <param name="rows">Dataset rows to score.</param>
    /// <param name="bids">Bid vectors, one per action, each with one bid per row.</param>
    /// <param name="payments">Also compute the expected payments (null otherwise).</param>
    /// <param name="cancellation">Cancels the fit.</param>
    public static WinCurves WinCurves(LoggedDataset data, string winModel, int[] rows, IReadOnlyList<double[]> bids, bool payments,
        CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(bids);
        var all = data.WinLog();
        var trainRows = data.Rows(DatasetSplit.Train, includeLostBids: true);
        if (trainRows.Length == 0)
        {
            throw new InvalidDataException($"{data.ImpressionsFile}: the train split has no requests to fit the {winModel} win model on");
        }
        using var model = WinPropensityModels.Create(winModel);
        model.Fit(all.Select(trainRows), cancellation);
        var scored = all.Select(rows);
        var win = new double[bids.Count][];
        for (var s = 0; s < bids.Count; s++)
        {
            win[s] = model.WinProbability(scored, bids[s]);
        }
        double[][]? payment = null;
        if (payments)
        {
            payment = new double[bids.Count][];
            for (var s = 0; s < bids.Count; s++)
            {
                cancellation.ThrowIfCancellationRequested();
                payment[s] = model.ExpectedPayment(scored, [bids[s]])[0];
            }
        }
        return new WinCurves(win, payment);
    }
}

/// <summary>What <see cref="CandidatePredictions.WinCurves"/> returns: Ŵ(b | x) and, when asked, Ĉ(b | x), each [set][row].</summary>
/// <param name="Win">Win probability of each bid.</param>
/// <param name="Payment">Expected payment of each bid, or null when not asked for.</param>
public sealed record WinCurves(double[][] Win, double[][]? Payment);

/// <summary>The ad catalogue as the advertiser knows it (the <c>ads</c> product): each ad id's campaign, advertiser, category and creative.</summary>
/// <param name="Campaign">Campaign of each ad id.</param>
/// <param name="Advertiser">Advertiser of each ad id.</param>
/// <param name="Category">Category of each ad id.</param>
/// <param name="Creative">Creative type of each ad id.</param>
public sealed record AdCatalog(int[] Campaign, int[] Advertiser, int[] Category, int[] Creative)
{
    /// <summary>Field <paramref name="index"/> (0 campaign, 1 advertiser, 2 category, 3 creative) of an ad; −1 for an unknown ad.</summary>
    public int Field(int index, int ad)
    {
        var column = index switch
        {
            0 => Campaign,
            1 => Advertiser,
            2 => Category,
            _ => Creative,
        };
        return (uint)ad < (uint)column.Length ? column[ad] : -1;
    }
}
