using System.Globalization;
using AdAuctionSim.Simulation.Scenarios;
using AdAuctionSim.Simulation.World;

namespace AdAuctionSim.Simulation.Output;

/// <summary>
/// What each logged column may hold, from what the folder's manifest declares (its world's users, ads, campaigns and
/// advertisers, its scenario's sites, slots and candidates, the world's fixed field cardinalities): ids within their
/// field's cardinality, labels 0 or 1, bids, prices and values finite and not negative, probabilities in [0, 1].
/// </summary>
/// <remarks>
/// A hand-edited or corrupt file whose manifest hash was brought up to date passes the SHA-256 check; these ranges
/// stop it where it is read (<see cref="LoggedView.Read"/>), so every reader gets the check: an id beyond its field's
/// cardinality would otherwise size an embedding table (a 999,999,999 site id asks libtorch for 32 GB), a negative
/// one would silently join the unseen bucket, and a NaN or negative bid would train without a word.
/// </remarks>
internal sealed class LoggedValueRanges
{
    private readonly SimulationManifest _manifest;
    private readonly Scenario _scenario;
    private readonly int _candidates;

    public LoggedValueRanges(SimulationManifest manifest, Scenario scenario, int candidates)
    {
        _manifest = manifest;
        _scenario = scenario;
        _candidates = candidates;
    }

    /// <summary>An inclusive integer range and where its bounds come from.</summary>
    private sealed record IntegerRange(long Min, long Max, string Source);

    /// <summary>A range of finite doubles, in words for messages.</summary>
    private sealed record NumberRange(double Min, double Max, string Expected);

    /// <summary>
    /// Checks every value of a column read whole; throws naming the file, the column, the first offending row and the
    /// allowed range. Columns without a declared range (timestamp, split, lost) pass.
    /// </summary>
    /// <exception cref="InvalidDataException">A value lies outside its column's range.</exception>
    public void Check(string path, OutputFormat format, LoggedProduct product, string column, Array data)
    {
        switch (data)
        {
            case int[] ints when IntegerRangeOf(product, column) is { } range:
                CheckIntegers(path, format, column, ints, range);
                break;
            case long[] longs when IntegerRangeOf(product, column) is { } range:
                CheckIntegers(path, format, column, longs, range);
                break;
            case double[] doubles when NumberRangeOf(column) is { } range:
                CheckNumbers(path, format, column, doubles, range);
                break;
        }
    }

    private IntegerRange? IntegerRangeOf(LoggedProduct product, string column)
    {
        var world = _manifest.World;
        var traffic = _scenario.Traffic;
        if (product == LoggedProduct.Impressions && (column == LogColumns.Reward || world.Stages.Contains(column, StringComparer.Ordinal)))
        {
            return new(0, 1, "a stage label is 0 or 1");
        }
        if (column.StartsWith(LogColumns.CandidatePrefix, StringComparison.Ordinal))
        {
            return Ids(world.Ads, "world.ads");
        }
        return column switch
        {
            LogColumns.RequestId => Ids(_manifest.RowCounts.Requests, "rowCounts.requests"),
            "hour" => Fixed(WorldModel.Hours, "hours of the day"),
            "site_id" => Ids(traffic.Sites, "the scenario's traffic.sites"),
            "position" => Ids(traffic.Slots, "the scenario's traffic.slots"),
            "user_id" => Ids(world.Users, "world.users"),
            "age" => Fixed(WorldModel.AgeBuckets, "age buckets"),
            "gender" => Fixed(WorldModel.Genders, "genders"),
            "region" => Fixed(WorldModel.Regions, "regions"),
            "device" => Fixed(WorldModel.Devices, "device types"),
            "segment" => Fixed(WorldModel.Segments, "segments"),
            "ad_id" => Ids(world.Ads, "world.ads"),
            "campaign_id" => Ids(world.Campaigns, "world.campaigns"),
            "advertiser_id" => Ids(world.Advertisers, "world.advertisers"),
            "category" => Fixed(WorldModel.Categories, "ad categories"),
            "creative" => Fixed(WorldModel.CreativeTypes, "creative types"),
            "action" => new(0, _candidates - 1, $"an index into the {_candidates.ToString(CultureInfo.InvariantCulture)} candidate_ columns"),
            _ => null,
        };
    }

    /// <summary>Ids 0 … n − 1 of a cardinality the manifest declares.</summary>
    private static IntegerRange Ids(long cardinality, string field) =>
        new(0, cardinality - 1, $"the manifest declares {field} = {cardinality.ToString(CultureInfo.InvariantCulture)}");

    /// <summary>Ids 0 … n − 1 of a cardinality every simulated world has.</summary>
    private static IntegerRange Fixed(int cardinality, string what) =>
        new(0, cardinality - 1, $"every simulated world has {cardinality.ToString(CultureInfo.InvariantCulture)} {what}");

    private static NumberRange? NumberRangeOf(string column)
    {
        if (column is "pscore" or "pscore_ad" or "pscore_multiplier" or "win_propensity"
            || column.StartsWith(LogColumns.LoggingPrefix, StringComparison.Ordinal)
            || column.StartsWith(LogColumns.PropensityPrefix, StringComparison.Ordinal))
        {
            return new(0, 1, "a probability from 0 to 1");
        }
        return column switch
        {
            "bid" or LogColumns.Price or "value_per_conversion" => new(0, double.MaxValue, "a finite amount of 0 or more"),
            "bid_multiplier" => new(double.Epsilon, double.MaxValue, "a finite multiplier greater than 0"),
            _ => null,
        };
    }

    /// <summary>Checks an int or long column (the two integer kinds the layout has) in one loop.</summary>
    private static void CheckIntegers<T>(string path, OutputFormat format, string column, T[] values, IntegerRange range)
        where T : System.Numerics.IBinaryInteger<T>
    {
        var first = -1;
        var bad = 0;
        for (var i = 0; i < values.Length; i++)
        {
            var v = long.CreateTruncating(values[i]);
            if (v < range.Min || v > range.Max)
            {
                first = first < 0 ? i : first;
                bad++;
            }
        }
        if (bad > 0)
        {
            throw OutOfRange(path, format, column, first, bad, values.Length, values[first].ToString(null, CultureInfo.InvariantCulture),
                IntegerExpected(range));
        }
    }

    private static string IntegerExpected(IntegerRange range) =>
        $"an integer from {range.Min.ToString(CultureInfo.InvariantCulture)} to {range.Max.ToString(CultureInfo.InvariantCulture)} ({range.Source})";

    private static void CheckNumbers(string path, OutputFormat format, string column, double[] values, NumberRange range)
    {
        var first = -1;
        var bad = 0;
        for (var i = 0; i < values.Length; i++)
        {
            // Written so that NaN fails too.
            if (!(values[i] >= range.Min && values[i] <= range.Max))
            {
                first = first < 0 ? i : first;
                bad++;
            }
        }
        if (bad > 0)
        {
            throw OutOfRange(path, format, column, first, bad, values.Length, values[first].ToString("R", CultureInfo.InvariantCulture), range.Expected);
        }
    }

    private static InvalidDataException OutOfRange(string path, OutputFormat format, string column, int row, int bad, int rows, string value, string expected)
    {
        // CSV: the header is line 1. Parquet: rows count from 1 as well, in file order.
        var where = format == OutputFormat.Csv
            ? $"line {(row + 2L).ToString(CultureInfo.InvariantCulture)}"
            : $"row {(row + 1L).ToString(CultureInfo.InvariantCulture)}";
        var more = bad == 1 ? "" : $"; {bad.ToString(CultureInfo.InvariantCulture)} of its {rows.ToString(CultureInfo.InvariantCulture)} rows are out of range, this is the first";
        return new InvalidDataException($"{path}: {where}, column \"{column}\": {value} is out of range; expected {expected}{more}");
    }
}
