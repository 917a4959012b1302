using AdAuctionSim.Simulation.Scenarios;
using AdAuctionSim.Simulation.World;
using Parquet;

namespace AdAuctionSim.Simulation.Tests;

/// <summary>Small scenarios and worlds shared by tests; worlds are immutable, so each is built once per test run.</summary>
internal static class TestScenarios
{
    /// <summary>A small marketplace: 2000 users, 60 ads, 3 candidates, default funnel (click, authorize, convert).</summary>
    public static readonly Scenario Small = new()
    {
        Name = "small",
        Seed = 11,
        Traffic = new TrafficOptions
        {
            Requests = 20_000,
            Days = 2,
            Users = 2000,
            Advertisers = 5,
            CampaignsPerAdvertiser = 3,
            AdsPerCampaign = 4,
            CandidateAds = 3,
            Sites = 40,
            Slots = 3,
        },
        Bias = new BiasOptions { ClickCvrCorrelation = 0.5, HiddenConfounding = 0.5, WinValueCorrelation = 0.5, PositionEffect = 0.5 },
    };

    /// <summary>Every section away from its defaults: first price, four stages, reserve, other multipliers and split.</summary>
    public static readonly Scenario NonDefault = new()
    {
        Name = "non-default_1.0",
        Description = "Every field changed: \"quotes\", <angle> & unicode — ρ=0.3+γ",
        Seed = 9_007_199_254_740_993,
        Traffic = new TrafficOptions
        {
            Requests = 12_345,
            Days = 1.5,
            Users = 1234,
            UserZipf = 0.7,
            Advertisers = 3,
            CampaignsPerAdvertiser = 2,
            AdsPerCampaign = 5,
            CandidateAds = 4,
            Sites = 17,
            SiteZipf = 0.3,
            Slots = 2,
            HourProfile = [.. Enumerable.Range(0, 24).Select(h => 0.1 + h / 7.0)],
        },
        Funnel = new FunnelOptions
        {
            Stages = [new("click", 0.05), new("visit", 1.0 / 3), new("cart", 0.25), new("buy", 0.1 + 0.2)],
            Signal = 1.25,
        },
        Bias = new BiasOptions { ClickCvrCorrelation = 0.8, HiddenConfounding = 1e-7, HiddenPerRequest = 0.3, WinValueCorrelation = -0.4, PositionEffect = 0.7 },
        Auction = new AuctionOptions
        {
            Type = AuctionType.FirstPrice,
            Competitors = 6,
            CompetitorSpread = 0.45,
            CompetitorNoise = 0.9,
            TargetWinRate = 0.42,
            ReservePrice = 1e-5,
        },
        LoggingPolicy = new LoggingPolicyOptions
        {
            EstimateQuality = 0.55,
            Temperature = 0.5,
            BidMultipliers = [0.6, 1.0, 1.7],
            MultiplierProbabilities = [0.25, 0.5, 0.25],
        },
        Values = new ValueOptions { MeanValuePerConversion = 12.5, ValueSpread = 0.8 },
        Split = new SplitOptions { Train = 0.6, Validation = 0.25, Test = 0.15 },
    };

    private static readonly Lazy<WorldModel> SmallWorldLazy = new(() => WorldModel.Build(Small));
    private static readonly Lazy<WorldModel> NonDefaultWorldLazy = new(() => WorldModel.Build(NonDefault));

    public static WorldModel SmallWorld => SmallWorldLazy.Value;
    public static WorldModel NonDefaultWorld => NonDefaultWorldLazy.Value;

    /// <summary>The repository root (the folder holding AdAuctionSim.sln).</summary>
    public static string RepositoryRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "AdAuctionSim.sln")))
        {
            dir = Path.GetDirectoryName(dir);
        }
        return dir ?? throw new InvalidOperationException("repository root not found");
    }
}

/// <summary>A fresh, empty folder under the system temp folder, deleted with everything in it on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "adsim-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Combine(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Names of the entries directly in the folder, sorted.</summary>
    public IReadOnlyList<string> Entries() =>
        Directory.EnumerateFileSystemEntries(Path).Select(e => System.IO.Path.GetFileName(e)!).Order(StringComparer.Ordinal).ToList();

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}

/// <summary>A Parquet file read back whole with Parquet.Net: column names in file order and each column's values.</summary>
internal sealed class ParquetTable
{
    private readonly Dictionary<string, Array> _columns;

    private ParquetTable(IReadOnlyList<string> names, Dictionary<string, Array> columns, long rows, int rowGroups)
    {
        Names = names;
        _columns = columns;
        Rows = rows;
        RowGroups = rowGroups;
    }

    public IReadOnlyList<string> Names { get; }
    public long Rows { get; }
    public int RowGroups { get; }

    public T[] Column<T>(string name) => (T[])_columns[name];

    public Array Column(string name) => _columns[name];

    public static ParquetTable Read(string path) => ReadAsync(path).GetAwaiter().GetResult();

    private static async Task<ParquetTable> ReadAsync(string path)
    {
        await using var reader = await ParquetReader.CreateAsync(path);
        var fields = reader.Schema.DataFields;
        var parts = fields.Select(_ => new List<Array>()).ToArray();
        long rows = 0;
        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            var n = checked((int)group.RowCount);
            rows += n;
            for (var c = 0; c < fields.Length; c++)
            {
                var field = fields[c];
                Array values;
                if (field.ClrType == typeof(long))
                {
                    var a = new long[n];
                    await group.ReadAsync(field, a.AsMemory());
                    values = a;
                }
                else if (field.ClrType == typeof(int))
                {
                    var a = new int[n];
                    await group.ReadAsync(field, a.AsMemory());
                    values = a;
                }
                else if (field.ClrType == typeof(double))
                {
                    var a = new double[n];
                    await group.ReadAsync(field, a.AsMemory());
                    values = a;
                }
                else if (field.ClrType == typeof(bool))
                {
                    var a = new bool[n];
                    await group.ReadAsync(field, a.AsMemory());
                    values = a;
                }
                else
                {
                    var a = new string?[n];
                    await group.ReadAsync(field, a.AsMemory());
                    values = a;
                }
                parts[c].Add(values);
            }
        }
        var columns = new Dictionary<string, Array>(StringComparer.Ordinal);
        for (var c = 0; c < fields.Length; c++)
        {
            columns[fields[c].Name] = Concat(parts[c], fields[c].ClrType == typeof(long) || fields[c].ClrType == typeof(int)
                || fields[c].ClrType == typeof(double) || fields[c].ClrType == typeof(bool) ? fields[c].ClrType : typeof(string), rows);
        }
        return new ParquetTable(fields.Select(f => f.Name).ToArray(), columns, rows, reader.RowGroupCount);
    }

    private static Array Concat(List<Array> parts, Type type, long rows)
    {
        var all = Array.CreateInstance(type, rows);
        long at = 0;
        foreach (var part in parts)
        {
            Array.Copy(part, 0, all, at, part.Length);
            at += part.Length;
        }
        return all;
    }
}
