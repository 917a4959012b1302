using AdAuctionSim.Simulation.Engine;
using AdAuctionSim.Simulation.World;

namespace AdAuctionSim.Simulation.Output;

/// <summary>Physical type of a written column.</summary>
internal enum ColumnKind : byte
{
    Int64,
    Int32,
    Double,
    Boolean,
    /// <summary>A <see cref="DataSplit"/> held as a byte in memory and written as the string train|validation|test.</summary>
    Split,
}

/// <summary>Copies the selected rows of a batch into a column buffer (an array of the column's kind) from index <c>at</c>.</summary>
internal delegate void Gatherer(RequestBatch batch, ReadOnlySpan<int> rows, Array destination, int at);

/// <summary>One column of a product: its name, type, and how to fill it from a batch.</summary>
internal sealed record TableColumn(string Name, ColumnKind Kind, Gatherer? Gather = null);

/// <summary>A block of rows of one product as column arrays; one Parquet row group (or one run of CSV lines).</summary>
internal sealed class TableBuffer
{
    public TableBuffer(IReadOnlyList<TableColumn> columns, int capacity)
    {
        Capacity = capacity;
        Data = new Array[columns.Count];
        for (var c = 0; c < columns.Count; c++)
        {
            Data[c] = columns[c].Kind switch
            {
                ColumnKind.Int64 => new long[capacity],
                ColumnKind.Int32 => new int[capacity],
                ColumnKind.Double => new double[capacity],
                ColumnKind.Boolean => new bool[capacity],
                ColumnKind.Split => new byte[capacity],
                _ => throw new InvalidOperationException($"unknown column kind {columns[c].Kind}"),
            };
        }
    }

    public int Capacity { get; }
    /// <summary>Rows filled.</summary>
    public int Count { get; set; }
    /// <summary>Per column: long[], int[], double[], bool[] or byte[] (split), by <see cref="ColumnKind"/>.</summary>
    public Array[] Data { get; }
}

/// <summary>
/// The column layouts of the products, built from the same name lists as <see cref="LogColumns"/> so that what is
/// written and what is documented cannot drift apart. Gathering is a plain indexed copy per column: no per-row
/// allocation or boxing.
/// </summary>
internal static class TableLayout
{
    /// <summary>Impressions: the logged view of won requests, with price and the observed cumulative stage labels.</summary>
    public static IReadOnlyList<TableColumn> Impressions(WorldModel world)
    {
        var stages = world.StageNames;
        var columns = Logged(world);
        columns.Add(new TableColumn(LogColumns.Price, ColumnKind.Double, (b, r, d, at) => Copy(b.Price, r, (double[])d, at)));
        for (var k = 0; k < stages.Count; k++)
        {
            var stage = k;
            columns.Add(new TableColumn(stages[k], ColumnKind.Int32, (b, r, d, at) => Reached(b, stage, r, (int[])d, at)));
        }
        var last = stages.Count - 1;
        columns.Add(new TableColumn(LogColumns.Reward, ColumnKind.Int32, (b, r, d, at) => Reached(b, last, r, (int[])d, at)));
        var depth = stages.Count;
        for (var k = 0; k < depth - 1; k++)
        {
            var stage = k;
            columns.Add(new TableColumn(LogColumns.PropensityPrefix + stages[k], ColumnKind.Double,
                (b, r, d, at) => ReachPropensity(b.Q, depth, stage, r, (double[])d, at)));
        }
        return Checked(columns, LogColumns.Impressions(stages, world.CandidateCount));
    }

    /// <summary>Lost bids: the logged view of lost requests and the censoring flag.</summary>
    public static IReadOnlyList<TableColumn> LostBids(WorldModel world)
    {
        var columns = Logged(world);
        columns.Add(new TableColumn(LogColumns.Lost, ColumnKind.Boolean, (_, r, d, at) => ((bool[])d).AsSpan(at, r.Length).Fill(true)));
        return Checked(columns, LogColumns.LostBids(world.StageNames, world.CandidateCount));
    }

    /// <summary>Truth: every request's outcome of the auction, true rates, potential outcomes and hidden trait; no features.</summary>
    public static IReadOnlyList<TableColumn> Truth(WorldModel world)
    {
        var stages = world.StageNames;
        var k = stages.Count;
        var columns = new List<TableColumn>
        {
            new(LogColumns.RequestId, ColumnKind.Int64, (b, r, d, at) => Copy(b.RequestId, r, (long[])d, at)),
            new(LogColumns.Split, ColumnKind.Split, (b, r, d, at) => CopySplit(b.Split, r, (byte[])d, at)),
            new("won", ColumnKind.Boolean, (b, r, d, at) => Copy(b.Won, r, (bool[])d, at)),
        };
        for (var s = 0; s < k; s++)
        {
            var stage = s;
            columns.Add(new(LogColumns.TruePrefix + stages[s], ColumnKind.Double, (b, r, d, at) => Strided(b.Q, k, stage, r, (double[])d, at)));
        }
        for (var s = 0; s < k; s++)
        {
            var stage = s;
            columns.Add(new(LogColumns.OutcomePrefix + stages[s], ColumnKind.Boolean, (b, r, d, at) => Strided(b.Outcome, k, stage, r, (bool[])d, at)));
        }
        columns.Add(new("win_prob", ColumnKind.Double, (b, r, d, at) => Copy(b.WinPropensity, r, (double[])d, at)));
        columns.Add(new("win_prob_at_bid", ColumnKind.Double, (b, r, d, at) => Copy(b.WinProbabilityAtBid, r, (double[])d, at)));
        columns.Add(new("market_price", ColumnKind.Double, (b, r, d, at) => Copy(b.MarketPrice, r, (double[])d, at)));
        columns.Add(new("hidden_trait", ColumnKind.Double, (b, r, d, at) => Copy(b.HiddenTrait, r, (double[])d, at)));
        return Checked(columns, LogColumns.Truth(stages));
    }

    /// <summary>The ad catalogue; filled by <see cref="FillAds"/>, not from batches.</summary>
    public static IReadOnlyList<TableColumn> Ads() =>
        Checked(
        [
            new("ad_id", ColumnKind.Int32), new("campaign_id", ColumnKind.Int32), new("advertiser_id", ColumnKind.Int32),
            new("category", ColumnKind.Int32), new("creative", ColumnKind.Int32), new("value_per_conversion", ColumnKind.Double),
        ], LogColumns.Ads);

    /// <summary>Fills ads [first, first + buffer capacity) of the catalogue; returns the number filled.</summary>
    public static int FillAds(WorldModel world, int first, TableBuffer buffer)
    {
        var n = Math.Min(buffer.Capacity, world.Ads - first);
        var id = (int[])buffer.Data[0];
        var campaign = (int[])buffer.Data[1];
        var advertiser = (int[])buffer.Data[2];
        var category = (int[])buffer.Data[3];
        var creative = (int[])buffer.Data[4];
        var value = (double[])buffer.Data[5];
        for (var i = 0; i < n; i++)
        {
            var ad = first + i;
            id[i] = ad;
            campaign[i] = world.AdCampaign[ad];
            advertiser[i] = world.AdAdvertiser[ad];
            category[i] = world.AdCategory[ad];
            creative[i] = world.AdCreative[ad];
            value[i] = world.AdValue[ad];
        }
        buffer.Count = n;
        return n;
    }

    private static List<TableColumn> Logged(WorldModel world)
    {
        var k = world.Depth;
        var n = world.CandidateCount;
        var stages = world.StageNames;
        var columns = new List<TableColumn>
        {
            new(LogColumns.RequestId, ColumnKind.Int64, (b, r, d, at) => Copy(b.RequestId, r, (long[])d, at)),
            new("timestamp", ColumnKind.Int64, (b, r, d, at) => Copy(b.Timestamp, r, (long[])d, at)),
            new(LogColumns.Split, ColumnKind.Split, (b, r, d, at) => CopySplit(b.Split, r, (byte[])d, at)),
            Int("hour", b => b.Hour),
            Int("site_id", b => b.Site),
            Int("position", b => b.Slot),
            Int("user_id", b => b.User),
            Int("age", b => b.Age),
            Int("gender", b => b.Gender),
            Int("region", b => b.Region),
            Int("device", b => b.Device),
            Int("segment", b => b.Segment),
            Int("ad_id", b => b.Ad),
            Int("campaign_id", b => b.Campaign),
            Int("advertiser_id", b => b.Advertiser),
            Int("category", b => b.Category),
            Int("creative", b => b.Creative),
            Int("action", b => b.Action),
        };
        for (var j = 0; j < n; j++)
        {
            var candidate = j;
            columns.Add(new(LogColumns.CandidatePrefix + j.ToString(System.Globalization.CultureInfo.InvariantCulture), ColumnKind.Int32,
                (b, r, d, at) => Strided(b.Candidates, n, candidate, r, (int[])d, at)));
        }
        columns.Add(Double("bid_multiplier", b => b.BidMultiplier));
        columns.Add(Double("bid", b => b.Bid));
        // pscore is the probability of the whole logged action (ad, multiplier): the two choices are independent draws.
        columns.Add(new("pscore", ColumnKind.Double, (b, r, d, at) => Product(b.PscoreAd, b.PscoreMultiplier, r, (double[])d, at)));
        columns.Add(Double("pscore_ad", b => b.PscoreAd));
        columns.Add(Double("pscore_multiplier", b => b.PscoreMultiplier));
        for (var s = 0; s < k; s++)
        {
            var stage = s;
            columns.Add(new(LogColumns.LoggingPrefix + stages[s], ColumnKind.Double, (b, r, d, at) => Strided(b.LoggingQ, k, stage, r, (double[])d, at)));
        }
        columns.Add(Double("value_per_conversion", b => b.ValuePerConversion));
        columns.Add(Double("win_propensity", b => b.WinPropensity));
        return columns;
    }

    private static TableColumn Int(string name, Func<RequestBatch, int[]> source) =>
        new(name, ColumnKind.Int32, (b, r, d, at) => Copy(source(b), r, (int[])d, at));

    private static TableColumn Double(string name, Func<RequestBatch, double[]> source) =>
        new(name, ColumnKind.Double, (b, r, d, at) => Copy(source(b), r, (double[])d, at));

    /// <summary>Guards the layouts against drifting from the documented name lists.</summary>
    private static IReadOnlyList<TableColumn> Checked(IReadOnlyList<TableColumn> columns, IReadOnlyList<string> expected)
    {
        if (!columns.Select(c => c.Name).SequenceEqual(expected, StringComparer.Ordinal))
        {
            throw new InvalidOperationException(
                $"table layout [{string.Join(", ", columns.Select(c => c.Name))}] does not match LogColumns [{string.Join(", ", expected)}]");
        }
        return columns;
    }

    private static void Copy<T>(T[] source, ReadOnlySpan<int> rows, T[] destination, int at)
    {
        var d = destination.AsSpan(at, rows.Length);
        for (var i = 0; i < d.Length; i++)
        {
            d[i] = source[rows[i]];
        }
    }

    private static void Strided<T>(T[] source, int stride, int offset, ReadOnlySpan<int> rows, T[] destination, int at)
    {
        var d = destination.AsSpan(at, rows.Length);
        for (var i = 0; i < d.Length; i++)
        {
            d[i] = source[rows[i] * stride + offset];
        }
    }

    private static void CopySplit(DataSplit[] source, ReadOnlySpan<int> rows, byte[] destination, int at)
    {
        var d = destination.AsSpan(at, rows.Length);
        for (var i = 0; i < d.Length; i++)
        {
            d[i] = (byte)source[rows[i]];
        }
    }

    private static void Product(double[] a, double[] b, ReadOnlySpan<int> rows, double[] destination, int at)
    {
        var d = destination.AsSpan(at, rows.Length);
        for (var i = 0; i < d.Length; i++)
        {
            var row = rows[i];
            d[i] = a[row] * b[row];
        }
    }

    /// <summary>True probability of reaching stage <paramref name="stage"/> (0-based): the product of the true q up to it.</summary>
    private static void ReachPropensity(double[] q, int depth, int stage, ReadOnlySpan<int> rows, double[] destination, int at)
    {
        var d = destination.AsSpan(at, rows.Length);
        for (var i = 0; i < d.Length; i++)
        {
            var first = rows[i] * depth;
            var p = q[first];
            for (var j = 1; j <= stage; j++)
            {
                p *= q[first + j];
            }
            d[i] = p;
        }
    }

    /// <summary>Observed label of a stage (<see cref="RequestBatch.Reached"/>: won and every potential outcome up to it is 1, so cumulative).</summary>
    private static void Reached(RequestBatch b, int stage, ReadOnlySpan<int> rows, int[] destination, int at)
    {
        var d = destination.AsSpan(at, rows.Length);
        for (var i = 0; i < d.Length; i++)
        {
            d[i] = b.Reached(rows[i], stage) ? 1 : 0;
        }
    }
}
