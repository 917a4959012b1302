using AdAuctionSim.Models.Data;
using AdAuctionSim.Models.Runtime;
using AdAuctionSim.Simulation.Output;

namespace AdAuctionSim.Models.Tests;

/// <summary>The logged view and the dataset built from it: schema, unseen bucket, labels, splits, formats, bad folders.</summary>
[Collection(TorchSharpCollection.Name)]
public sealed class DataTests
{
    public DataTests()
    {
        TorchRuntime.Initialize("cpu", threads: 1, seed: 3);
    }

    [Fact]
    public void Schema_has_the_encoder_fields_with_cardinality_max_train_id_plus_two()
    {
        var view = LoggedView.Open(TestSimulation.Parquet);
        using var data = LoggedDataset.Load(view);
        var imp = view.Read(LoggedProduct.Impressions, [LogColumns.Split, .. LoggedDataset.FieldNames]);
        var lost = view.Read(LoggedProduct.LostBids, [LogColumns.Split, .. LoggedDataset.FieldNames]);

        Assert.Equal(LoggedDataset.FieldNames, data.Schema.Fields);
        Assert.Equal(14, data.Schema.Count);
        for (var f = 0; f < LoggedDataset.FieldNames.Count; f++)
        {
            var name = LoggedDataset.FieldNames[f];
            var max = Math.Max(MaxTrain(imp, name), MaxTrain(lost, name));
            Assert.True(max >= 0, name);
            Assert.Equal(max + 2, data.Schema.Cardinalities[f]);
        }
        Assert.Equal(data.Schema.Cardinalities.Sum(c => (long)c), data.Schema.TotalRows);
    }

    [Fact]
    public void Oracle_reach_propensities_come_from_the_impressions_and_are_one_on_lost_bids()
    {
        var view = LoggedView.Open(TestSimulation.Parquet);
        using var data = LoggedDataset.Load(view);
        var columns = LogColumns.ReachPropensities(data.Stages);
        var imp = view.Read(LoggedProduct.Impressions, [LogColumns.RequestId, .. columns]);
        var ids = imp.Int64(LogColumns.RequestId);
        var row = new Dictionary<long, int>();
        for (var r = 0; r < data.Count; r++)
        {
            row[data.RequestId[r]] = r;
        }
        var reach = data.ReachPropensity.data<float>().ToArray();
        var k1 = data.Depth - 1;
        Assert.Equal([data.Count, k1], data.ReachPropensity.shape);
        for (var j = 0; j < k1; j++)
        {
            var logged = imp.Double(columns[j]);
            for (var i = 0; i < ids.Length; i++)
            {
                Assert.Equal((float)logged[i], reach[row[ids[i]] * k1 + j]);
            }
        }
        var wonRows = new HashSet<long>(ids);
        var lostRows = Enumerable.Range(0, data.Count).Where(r => !wonRows.Contains(data.RequestId[r])).ToArray();
        Assert.NotEmpty(lostRows);
        Assert.All(lostRows, r => Assert.All(Enumerable.Range(0, k1), j => Assert.Equal(1f, reach[r * k1 + j])));
    }

    [Fact]
    public void Ids_unseen_in_training_go_to_the_reserved_last_bucket_of_their_field()
    {
        var view = LoggedView.Open(TestSimulation.Parquet);
        using var data = LoggedDataset.Load(view);
        var features = data.Features.cpu().data<long>().ToArray();
        var f = data.Schema.Count;
        Assert.Equal([data.Count, f], data.Features.shape);
        Assert.Equal(TorchSharp.torch.ScalarType.Int64, data.Features.dtype);

        var raw = RawById(view);
        var bucketed = 0;
        var trainBucketed = 0;
        for (var i = 0; i < data.Count; i++)
        {
            var ids = raw[data.RequestId[i]];
            for (var j = 0; j < f; j++)
            {
                var card = data.Schema.Cardinalities[j];
                var local = features[(long)i * f + j] - data.Schema.Offsets[j];
                Assert.InRange(local, 0, card - 1);
                Assert.Equal(local, data.FeatureIds[(long)i * f + j]);
                var seen = ids[j] >= 0 && ids[j] <= card - 2;
                Assert.Equal(seen ? ids[j] : card - 1, local);
                if (!seen)
                {
                    bucketed++;
                    trainBucketed += data.Split[i] == DatasetSplit.Train ? 1 : 0;
                }
            }
        }
        // Zipf users: some appear only after the train split, and nothing of the train split is ever unseen.
        Assert.True(bucketed > 0, "no id fell into the unseen bucket; the test scenario is too small to check it");
        Assert.Equal(0, trainBucketed);
    }

    [Fact]
    public void Labels_are_the_cumulative_stage_columns_on_impressions_and_zero_on_lost_bids()
    {
        var view = LoggedView.Open(TestSimulation.Parquet);
        using var data = LoggedDataset.Load(view);
        var k = data.Depth;
        Assert.Equal(["click", "authorize", "convert"], data.Stages);
        Assert.Equal([data.Count, k], data.Labels.shape);
        var labels = data.Labels.cpu().data<float>().ToArray();
        var won = data.Won.cpu().data<float>().ToArray();
        var imp = view.Read(LoggedProduct.Impressions, [LogColumns.RequestId, .. data.Stages]);
        var byId = new Dictionary<long, int>();
        var ids = imp.Int64(LogColumns.RequestId);
        for (var i = 0; i < ids.Length; i++)
        {
            byId[ids[i]] = i;
        }

        var reached = new int[k];
        for (var i = 0; i < data.Count; i++)
        {
            Assert.Equal(data.IsImpression[i] ? 1f : 0f, won[i]);
            var previous = 1f;
            for (var j = 0; j < k; j++)
            {
                var s = labels[(long)i * k + j];
                Assert.True(s <= previous, $"row {i}: s_{j + 1} = {s} > s_{j} = {previous}");
                previous = s;
                if (data.IsImpression[i])
                {
                    Assert.Equal(imp.Int32(data.Stages[j])[byId[data.RequestId[i]]], (int)s);
                    reached[j] += (int)s;
                }
                else
                {
                    Assert.Equal(0f, s);
                }
            }
        }
        Assert.All(reached, r => Assert.True(r > 0, "every stage should be reached by some impression"));
    }

    [Fact]
    public void Rows_are_all_requests_by_id_with_the_manifest_split_counts()
    {
        var view = LoggedView.Open(TestSimulation.Parquet);
        using var data = LoggedDataset.Load(view);
        var counts = view.Manifest.RowCounts;

        Assert.Equal(counts.Requests, data.Count);
        Assert.Equal(counts.Impressions, data.IsImpression.ToArray().Count(w => w));
        for (var i = 1; i < data.Count; i++)
        {
            Assert.True(data.RequestId[i] > data.RequestId[i - 1]);
        }
        var bySplit = new[] { counts.BySplit.Train, counts.BySplit.Validation, counts.BySplit.Test };
        foreach (var split in new[] { DatasetSplit.Train, DatasetSplit.Validation, DatasetSplit.Test })
        {
            Assert.Equal(bySplit[(int)split].Requests, data.CountOf(split, includeLostBids: true));
            Assert.Equal(bySplit[(int)split].Impressions, data.CountOf(split, includeLostBids: false));
            var rows = data.Rows(split, includeLostBids: false);
            Assert.All(rows, r => Assert.True(data.IsImpression[r] && data.Split[r] == split));
        }
        // Splits are by simulated time, so by request id.
        Assert.Equal(view.Manifest.Split.TrainEnd, data.RequestId.Count(id => id < view.Manifest.Split.TrainEnd));
    }

    [Fact]
    public void Exposes_bids_prices_and_the_logging_multipliers_for_win_propensity_models()
    {
        var view = LoggedView.Open(TestSimulation.Parquet);
        using var data = LoggedDataset.Load(view);

        Assert.Equal([0.5, 1.0, 2.0], data.BidMultipliers);
        Assert.Equal([0.3, 0.4, 0.3], data.MultiplierProbabilities);
        Assert.True(data.SecondPrice);
        var propensity = data.WinPropensity.cpu().data<float>().ToArray();
        for (var i = 0; i < data.Count; i++)
        {
            Assert.True(data.Bid[i] > 0);
            Assert.Contains(data.BidMultiplier[i], data.BidMultipliers);
            Assert.InRange(propensity[i], 1e-12f, 1f);
            if (data.IsImpression[i])
            {
                Assert.InRange(data.Price[i], 1e-12, data.Bid[i]);
            }
            else
            {
                Assert.True(double.IsNaN(data.Price[i]));
            }
        }
    }

    [Fact]
    public void Csv_and_parquet_folders_give_the_same_dataset()
    {
        using var parquet = LoggedDataset.Load(LoggedView.Open(TestSimulation.Parquet));
        using var csv = LoggedDataset.Load(LoggedView.Open(TestSimulation.Csv));

        Assert.Equal(parquet.RequestId, csv.RequestId);
        Assert.Equal(parquet.Schema.Cardinalities, csv.Schema.Cardinalities);
        Assert.True(parquet.Features.eq(csv.Features).all().item<bool>());
        Assert.True(parquet.Labels.eq(csv.Labels).all().item<bool>());
        Assert.True(parquet.WinPropensity.eq(csv.WinPropensity).all().item<bool>());
        Assert.Equal(parquet.Bid, csv.Bid);
    }

    [Fact]
    public void A_missing_folder_or_manifest_is_invalid_data_naming_the_path()
    {
        var missing = Path.Combine(TestSimulation.NewFolder("missing"), "nope");
        var e1 = Assert.Throws<InvalidDataException>(() => LoggedView.Open(missing));
        Assert.Contains(missing, e1.Message, StringComparison.Ordinal);
        Assert.Contains("no such folder", e1.Message, StringComparison.Ordinal);

        var empty = TestSimulation.NewFolder("empty");
        var e2 = Assert.Throws<InvalidDataException>(() => LoggedView.Open(empty));
        Assert.Contains("manifest.json", e2.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_changed_or_missing_logged_file_is_invalid_data_naming_the_file()
    {
        var changed = TestSimulation.CopyTo(TestSimulation.Parquet, "changed");
        var impressions = Path.Combine(changed, "impressions.parquet");
        var bytes = File.ReadAllBytes(impressions);
        bytes[bytes.Length / 2] ^= 0x5A;
        File.WriteAllBytes(impressions, bytes);
        var e1 = Assert.Throws<InvalidDataException>(() => LoggedView.Open(changed));
        Assert.Contains(impressions, e1.Message, StringComparison.Ordinal);
        Assert.Contains("SHA-256", e1.Message, StringComparison.Ordinal);

        var truncated = TestSimulation.CopyTo(TestSimulation.Csv, "truncated");
        var lost = Path.Combine(truncated, "lost_bids.csv");
        File.WriteAllText(lost, "request_id\n");
        var e2 = Assert.Throws<InvalidDataException>(() => LoggedView.Open(truncated));
        Assert.Contains(lost, e2.Message, StringComparison.Ordinal);

        var gone = TestSimulation.CopyTo(TestSimulation.Parquet, "gone");
        File.Delete(Path.Combine(gone, "ads.parquet"));
        var e3 = Assert.Throws<InvalidDataException>(() => LoggedView.Open(gone));
        Assert.Contains("ads.parquet", e3.Message, StringComparison.Ordinal);
        Assert.Contains("missing", e3.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Reading_a_column_the_product_lacks_is_an_argument_error_listing_the_columns()
    {
        var view = LoggedView.Open(TestSimulation.Parquet);
        var e = Assert.Throws<ArgumentException>(() => view.Read(LoggedProduct.LostBids, LogColumns.Price));
        Assert.Contains("lost_bids.parquet", e.Message, StringComparison.Ordinal);
        Assert.Contains("bid_multiplier", e.Message, StringComparison.Ordinal);
    }

    private static int MaxTrain(LoggedColumns columns, string field)
    {
        var split = columns.SplitCodes();
        var values = columns.Int32(field);
        var max = -1;
        for (var i = 0; i < values.Length; i++)
        {
            if (split[i] == 0)
            {
                max = Math.Max(max, values[i]);
            }
        }
        return max;
    }

    private static Dictionary<long, int[]> RawById(LoggedView view)
    {
        var result = new Dictionary<long, int[]>();
        foreach (var product in new[] { LoggedProduct.Impressions, LoggedProduct.LostBids })
        {
            var columns = view.Read(product, [LogColumns.RequestId, .. LoggedDataset.FieldNames]);
            var ids = columns.Int64(LogColumns.RequestId);
            var fields = LoggedDataset.FieldNames.Select(columns.Int32).ToArray();
            for (var i = 0; i < ids.Length; i++)
            {
                result[ids[i]] = fields.Select(f => f[i]).ToArray();
            }
        }
        return result;
    }
}
