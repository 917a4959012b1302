using System.Globalization;
using System.Security.Cryptography;
using AdAuctionSim.Simulation.Scenarios;
using Parquet;
using Parquet.Schema;

namespace AdAuctionSim.Simulation.Output;

/// <summary>The products of a simulation folder that a model may read (DESIGN.md §4): never the truth.</summary>
public enum LoggedProduct
{
    /// <summary>Won requests O: features, policy columns, price and the observed cumulative stage labels.</summary>
    Impressions,
    /// <summary>Lost requests D∖O: features, policy columns and the censoring flag.</summary>
    LostBids,
    /// <summary>The advertiser's own ad catalogue.</summary>
    Ads,
}

/// <summary>
/// The information barrier (DESIGN.md §4): the only way the model suite reads a simulation folder. It checks
/// <c>manifest.json</c> and the bytes of the logged products against it, and reads only <c>impressions</c>,
/// <c>lost_bids</c> and <c>ads</c> (Parquet or CSV, as the manifest says) into plain column arrays. It knows no
/// truth file name, never opens one, and refuses any column for which <see cref="LogColumns.IsTruthOnly"/> holds.
/// </summary>
/// <remarks>
/// Every problem with the folder is an <see cref="InvalidDataException"/> whose message starts with the file
/// concerned and says what is wrong. Asking for a truth column or a column the product does not have is a
/// programming error: <see cref="ArgumentException"/>.
/// </remarks>
public sealed class LoggedView
{
    private static readonly LoggedProduct[] AllProducts = [LoggedProduct.Impressions, LoggedProduct.LostBids, LoggedProduct.Ads];

    private readonly ProductManifest[] _products;
    private readonly HashSet<string>[] _columnsRead = [new(StringComparer.Ordinal), new(StringComparer.Ordinal), new(StringComparer.Ordinal)];
    private readonly Lock _gate = new();
    private LoggedValueRanges? _ranges;

    private LoggedView(string folder, SimulationManifest manifest, OutputFormat format, ProductManifest[] products)
    {
        Folder = folder;
        Manifest = manifest;
        Format = format;
        _products = products;
    }

    /// <summary>Full path of the simulation folder.</summary>
    public string Folder { get; }

    /// <summary>The folder's manifest (scenario, row counts, realised bias figures, hashes).</summary>
    public SimulationManifest Manifest { get; }

    /// <summary>Table format of the products.</summary>
    public OutputFormat Format { get; }

    /// <summary>Funnel stage names in order; each is the name of an impressions column holding the cumulative label s_k.</summary>
    public IReadOnlyList<string> Stages => Manifest.World.Stages;

    /// <summary>Funnel depth K.</summary>
    public int Depth => Manifest.World.Stages.Count;

    /// <summary>
    /// Opens a simulation folder: reads and validates <c>manifest.json</c>, checks that each logged product is listed
    /// with the column layout this code reads and no truth column, that its file exists and that its bytes match the
    /// manifest's SHA-256 (so a truncated or altered file fails here, before any work).
    /// </summary>
    /// <exception cref="InvalidDataException">The folder, the manifest or a logged product is missing or corrupt.</exception>
    public static LoggedView Open(string folder)
    {
        var (full, manifest, format) = OpenManifest(folder);
        var manifestFile = System.IO.Path.Combine(full, LogColumns.ManifestFile);
        var stages = manifest.World.Stages;

        var products = new ProductManifest[AllProducts.Length];
        foreach (var product in AllProducts)
        {
            var file = FileName(product, format);
            var entry = manifest.Product(file)
                ?? throw new InvalidDataException($"{manifestFile}: lists no product {file}; the folder is incomplete or was written by other code");
            CheckLayout(manifestFile, product, entry, stages);
            var expectedRows = product switch
            {
                LoggedProduct.Impressions => manifest.RowCounts.Impressions,
                LoggedProduct.LostBids => manifest.RowCounts.LostBids,
                _ => manifest.World.Ads,
            };
            if (entry.Rows != expectedRows || entry.Rows < 0 || entry.Rows > Array.MaxLength)
            {
                throw new InvalidDataException($"{manifestFile}: {file} is listed with {entry.Rows} rows, but the row counts say {expectedRows}");
            }
            VerifyHash(System.IO.Path.Combine(full, file), entry.Sha256);
            products[(int)product] = entry;
        }
        return new LoggedView(full, manifest, format, products);
    }

    /// <summary>
    /// Opens a simulation folder's manifest and checks what every reader needs: the folder exists, the manifest reads,
    /// its format is known and its stage names are valid column names. Shared with <see cref="TruthView"/>.
    /// </summary>
    internal static (string Folder, SimulationManifest Manifest, OutputFormat Format) OpenManifest(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        var full = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(folder));
        if (!System.IO.Directory.Exists(full))
        {
            throw new InvalidDataException(File.Exists(full)
                ? $"{full}: is a file; expected a simulation folder (the output of adsim simulate)"
                : $"{full}: no such folder; expected a simulation folder (the output of adsim simulate)");
        }
        SimulationManifest manifest;
        try
        {
            manifest = SimulationManifest.Read(full);
        }
        catch (FileNotFoundException e)
        {
            throw new InvalidDataException(e.Message, e);
        }
        var manifestFile = System.IO.Path.Combine(full, LogColumns.ManifestFile);
        var format = manifest.Format switch
        {
            "parquet" => OutputFormat.Parquet,
            "csv" => OutputFormat.Csv,
            _ => throw new InvalidDataException($"{manifestFile}: format \"{manifest.Format}\" is not one of parquet, csv"),
        };
        var stages = manifest.World.Stages;
        if (stages.Count == 0)
        {
            throw new InvalidDataException($"{manifestFile}: world.stages is empty; a funnel has at least one stage");
        }
        foreach (var stage in stages)
        {
            if (string.IsNullOrWhiteSpace(stage) || LogColumns.CollidesWithColumn(stage) is not null)
            {
                throw new InvalidDataException($"{manifestFile}: stage name \"{stage}\" is not a valid label column name");
            }
        }

        return (full, manifest, format);
    }

    /// <summary>File name of a product in this folder, e.g. <c>impressions.parquet</c>.</summary>
    public string FileName(LoggedProduct product) => FileName(product, Format);

    /// <summary>Full path of a product's file.</summary>
    public string PathOf(LoggedProduct product) => System.IO.Path.Combine(Folder, FileName(product));

    /// <summary>Data rows of a product, as the manifest lists them.</summary>
    public int Rows(LoggedProduct product) => (int)_products[(int)product].Rows;

    /// <summary>Column names of a product in file order (none of them truth-only).</summary>
    public IReadOnlyList<string> Columns(LoggedProduct product) => _products[(int)product].Columns;

    /// <summary>The names of every column read so far from a product: the audit trail of what crossed the barrier.</summary>
    public IReadOnlyCollection<string> ColumnsRead(LoggedProduct product)
    {
        lock (_gate)
        {
            return _columnsRead[(int)product].Order(StringComparer.Ordinal).ToArray();
        }
    }

    /// <summary>The scenario the folder was simulated from (multiplier set and probabilities of the logging policy, …).</summary>
    public Scenario ReadScenario()
    {
        try
        {
            return Manifest.ReadScenario(System.IO.Path.Combine(Folder, LogColumns.ManifestFile));
        }
        catch (ScenarioValidationException e)
        {
            throw new InvalidDataException($"{System.IO.Path.Combine(Folder, LogColumns.ManifestFile)}: the embedded scenario is not valid: {e.Message}", e);
        }
    }

    /// <summary>Reads the named columns of a product whole, in file row order.</summary>
    /// <exception cref="ArgumentException">A column is truth-only (always refused) or not a column of the product.</exception>
    /// <exception cref="InvalidDataException">
    /// The file cannot be read, does not hold what the manifest says, or holds a value outside its column's range (an id
    /// beyond the cardinality the manifest declares, a non-finite or negative amount, a probability outside [0, 1]).
    /// </exception>
    public LoggedColumns Read(LoggedProduct product, params IEnumerable<string> columns)
    {
        ArgumentNullException.ThrowIfNull(columns);
        var names = columns.Distinct(StringComparer.Ordinal).ToArray();
        var entry = _products[(int)product];
        // Truth is refused first, whatever else is asked for.
        foreach (var name in names)
        {
            if (LogColumns.IsTruthOnly(name))
            {
                throw new ArgumentException(
                    $"column \"{name}\" is ground truth (truth-only); the logged view never reads it", nameof(columns));
            }
        }
        foreach (var name in names)
        {
            if (!entry.Columns.Contains(name, StringComparer.Ordinal))
            {
                throw new ArgumentException(
                    $"{entry.File} has no column \"{name}\"; its columns are: {string.Join(", ", entry.Columns)}", nameof(columns));
            }
        }
        var path = PathOf(product);
        var kinds = names.Select(n => KindOf(product, n, Stages)).ToArray();
        var rows = (int)entry.Rows;
        var data = new Array[names.Length];
        for (var c = 0; c < names.Length; c++)
        {
            data[c] = Allocate(kinds[c], rows);
        }
        try
        {
            if (Format == OutputFormat.Parquet)
            {
                ReadParquet(path, entry, names, kinds, data);
            }
            else
            {
                ReadCsv(path, entry, names, kinds, data);
            }
        }
        catch (Exception e) when (e is not InvalidDataException and not OperationCanceledException and not OutOfMemoryException)
        {
            throw new InvalidDataException($"{path}: cannot be read as {(Format == OutputFormat.Parquet ? "Parquet" : "CSV")}: {e.Message}", e);
        }
        // The hash only says the file is the one the manifest lists; a hand-edited file with a recomputed hash still
        // has to hold values the manifest's world can have produced (one pass over each column read).
        var ranges = Ranges();
        for (var c = 0; c < names.Length; c++)
        {
            ranges.Check(path, Format, product, names[c], data[c]);
        }
        lock (_gate)
        {
            _columnsRead[(int)product].UnionWith(names);
        }
        return new LoggedColumns(product, path, rows, names, kinds, data);
    }

    /// <summary>The value ranges of the logged columns, built from the manifest and its scenario on first use.</summary>
    private LoggedValueRanges Ranges()
    {
        lock (_gate)
        {
            if (_ranges is null)
            {
                var candidates = Columns(LoggedProduct.Impressions).Count(c => c.StartsWith(LogColumns.CandidatePrefix, StringComparison.Ordinal));
                _ranges = new LoggedValueRanges(Manifest, ReadScenario(), candidates);
            }
            return _ranges;
        }
    }

    private static string FileName(LoggedProduct product, OutputFormat format)
    {
        var stem = product switch
        {
            LoggedProduct.Impressions => LogColumns.ImpressionsProduct,
            LoggedProduct.LostBids => LogColumns.LostBidsProduct,
            LoggedProduct.Ads => LogColumns.AdsProduct,
            _ => throw new ArgumentOutOfRangeException(nameof(product), product, "not a logged product"),
        };
        return stem + (format == OutputFormat.Csv ? ".csv" : ".parquet");
    }

    /// <summary>The manifest's column list must be exactly the layout this code reads, and hold no truth column.</summary>
    private static void CheckLayout(string manifestFile, LoggedProduct product, ProductManifest entry, IReadOnlyList<string> stages)
    {
        var truth = entry.Columns.FirstOrDefault(LogColumns.IsTruthOnly);
        if (truth is not null)
        {
            throw new InvalidDataException($"{manifestFile}: {entry.File} lists the truth-only column \"{truth}\"; a logged product must never hold truth, so the folder is refused");
        }
        var candidates = entry.Columns.Count(c => c.StartsWith(LogColumns.CandidatePrefix, StringComparison.Ordinal));
        var expected = product switch
        {
            LoggedProduct.Impressions => LogColumns.Impressions(stages, candidates),
            LoggedProduct.LostBids => LogColumns.LostBids(stages, candidates),
            _ => LogColumns.Ads,
        };
        if (!entry.Columns.SequenceEqual(expected, StringComparer.Ordinal))
        {
            throw new InvalidDataException($"{manifestFile}: the columns listed for {entry.File} [{string.Join(", ", entry.Columns)}] "
                + $"are not the layout this code reads [{string.Join(", ", expected)}]");
        }
    }

    /// <summary>
    /// SHA-256 of a simulation folder's <c>manifest.json</c>, which holds every product's own SHA-256, the scenario and the
    /// seed: the identity of the simulation, which a training run records so that its predictions are never scored
    /// against another simulation's truth.
    /// </summary>
    /// <exception cref="InvalidDataException">The manifest cannot be read.</exception>
    public static string ManifestSha256(string folder)
    {
        var path = System.IO.Path.Combine(System.IO.Path.GetFullPath(folder), LogColumns.ManifestFile);
        try
        {
            return Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"{path}: cannot be read: {e.Message}", e);
        }
    }

    internal static void VerifyHash(string path, string expected) => VerifyHash(path, expected, "the manifest");

    /// <summary>Checks that the file's SHA-256 is the one <paramref name="recordedIn"/> (named in messages) records.</summary>
    /// <exception cref="InvalidDataException">The file is missing, unreadable or has other bytes.</exception>
    public static void VerifyHash(string path, string expected, string recordedIn)
    {
        if (string.IsNullOrEmpty(expected))
        {
            var manifestFile = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(path) ?? "", LogColumns.ManifestFile);
            throw new InvalidDataException($"{manifestFile}: the entry for {System.IO.Path.GetFileName(path)} lacks the field sha256; "
                + "expected the SHA-256 of the file's bytes (64 hex digits), without which the file cannot be checked");
        }
        if (System.IO.Directory.Exists(path))
        {
            throw new InvalidDataException($"{path}: is a folder; expected the data file the manifest lists");
        }
        string actual;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
            actual = Convert.ToHexStringLower(SHA256.HashData(stream));
        }
        catch (FileNotFoundException e)
        {
            throw new InvalidDataException($"{path}: missing; {recordedIn} lists it, so the folder is incomplete", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"{path}: cannot be read: {e.Message}", e);
        }
        if (!string.Equals(actual, expected, StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidDataException($"{path}: corrupt or changed: its SHA-256 {actual} differs from the one {recordedIn} records, {expected}");
        }
    }

    /// <summary>The physical type of a logged column, from the documented layout (<see cref="LogColumns"/>).</summary>
    internal static ColumnKind KindOf(LoggedProduct product, string column, IReadOnlyList<string> stages)
    {
        if (product == LoggedProduct.Ads)
        {
            return column == "value_per_conversion" ? ColumnKind.Double : ColumnKind.Int32;
        }
        if (column is LogColumns.RequestId or "timestamp")
        {
            return ColumnKind.Int64;
        }
        if (column == LogColumns.Split)
        {
            return ColumnKind.Split;
        }
        if (column == LogColumns.Lost)
        {
            return ColumnKind.Boolean;
        }
        if (LogColumns.Policy.Contains(column, StringComparer.Ordinal) || LogColumns.PolicyTail.Contains(column, StringComparer.Ordinal)
            || column == LogColumns.Price || column.StartsWith(LogColumns.LoggingPrefix, StringComparison.Ordinal)
            || column.StartsWith(LogColumns.PropensityPrefix, StringComparison.Ordinal))
        {
            return ColumnKind.Double;
        }
        // Features, candidates, stage labels and reward.
        return ColumnKind.Int32;
    }

    internal static Array Allocate(ColumnKind kind, int rows) => kind switch
    {
        ColumnKind.Int64 => new long[rows],
        ColumnKind.Int32 => new int[rows],
        ColumnKind.Double => new double[rows],
        ColumnKind.Boolean => new bool[rows],
        ColumnKind.Split => new byte[rows],
        _ => throw new InvalidOperationException($"unknown column kind {kind}"),
    };

    private static Type ClrType(ColumnKind kind) => kind switch
    {
        ColumnKind.Int64 => typeof(long),
        ColumnKind.Int32 => typeof(int),
        ColumnKind.Double => typeof(double),
        ColumnKind.Boolean => typeof(bool),
        _ => typeof(string),
    };

    internal static void ReadParquet(string path, ProductManifest entry, string[] names, ColumnKind[] kinds, Array[] data) =>
        ReadParquetAsync(path, entry, names, kinds, data).GetAwaiter().GetResult();

    private static async Task ReadParquetAsync(string path, ProductManifest entry, string[] names, ColumnKind[] kinds, Array[] data)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.RandomAccess);
        await using var reader = await ParquetReader.CreateAsync(stream).ConfigureAwait(false);
        var fileFields = reader.Schema.DataFields;
        if (!fileFields.Select(f => f.Name).SequenceEqual(entry.Columns, StringComparer.Ordinal))
        {
            throw new InvalidDataException($"{path}: its columns [{string.Join(", ", fileFields.Select(f => f.Name))}] differ from the manifest's");
        }
        var fields = new DataField[names.Length];
        for (var c = 0; c < names.Length; c++)
        {
            var field = fileFields.First(f => f.Name == names[c]);
            // Parquet.Net reports a string column as string or as ReadOnlyMemory<char>; both read into string[].
            var matches = field.ClrType == ClrType(kinds[c])
                || (kinds[c] == ColumnKind.Split && field.ClrType == typeof(ReadOnlyMemory<char>));
            if (!matches)
            {
                throw new InvalidDataException($"{path}: column \"{names[c]}\" holds {field.ClrType.Name}; expected {ClrType(kinds[c]).Name}");
            }
            fields[c] = field;
        }
        var rows = data.Length > 0 ? data[0].Length : (int)entry.Rows;
        long at = 0;
        string?[] text = [];
        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            var n = group.RowCount;
            if (at + n > rows)
            {
                throw new InvalidDataException($"{path}: holds more rows than the {entry.Rows} the manifest lists");
            }
            var start = (int)at;
            var count = (int)n;
            for (var c = 0; c < names.Length; c++)
            {
                switch (kinds[c])
                {
                    case ColumnKind.Int64:
                        await group.ReadAsync(fields[c], ((long[])data[c]).AsMemory(start, count)).ConfigureAwait(false);
                        break;
                    case ColumnKind.Int32:
                        await group.ReadAsync(fields[c], ((int[])data[c]).AsMemory(start, count)).ConfigureAwait(false);
                        break;
                    case ColumnKind.Double:
                        await group.ReadAsync(fields[c], ((double[])data[c]).AsMemory(start, count)).ConfigureAwait(false);
                        break;
                    case ColumnKind.Boolean:
                        await group.ReadAsync(fields[c], ((bool[])data[c]).AsMemory(start, count)).ConfigureAwait(false);
                        break;
                    case ColumnKind.Split:
                        if (text.Length < count)
                        {
                            text = new string?[count];
                        }
                        await group.ReadAsync(fields[c], text.AsMemory(0, count)).ConfigureAwait(false);
                        var codes = (byte[])data[c];
                        for (var i = 0; i < count; i++)
                        {
                            codes[start + i] = SplitCode(text[i], path, names[c], start + i);
                        }
                        break;
                }
            }
            at += n;
        }
        if (at != entry.Rows)
        {
            throw new InvalidDataException($"{path}: holds {at} rows; the manifest lists {entry.Rows}");
        }
    }

    /// <summary>
    /// The CSV the simulator writes: a header row, "\n" line ends, no quoting (every logged value is a number, a
    /// boolean or a split name), doubles in round-trip form.
    /// </summary>
    internal static void ReadCsv(string path, ProductManifest entry, string[] names, ColumnKind[] kinds, Array[] data)
    {
        using var reader = new StreamReader(path, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: false, 1 << 20);
        var header = reader.ReadLine() ?? throw new InvalidDataException($"{path}: empty; expected a header row");
        if (!header.Split(',').SequenceEqual(entry.Columns, StringComparer.Ordinal))
        {
            throw new InvalidDataException($"{path}: its header [{header}] differs from the manifest's columns");
        }
        var width = entry.Columns.Count;
        // For each file column, the requested column it feeds (or −1).
        var target = new int[width];
        Array.Fill(target, -1);
        for (var c = 0; c < names.Length; c++)
        {
            target[IndexOf(entry.Columns, names[c])] = c;
        }
        var rows = (int)entry.Rows;
        var row = 0;
        string? line;
        while ((line = reader.ReadLine()) is not null)
        {
            if (row >= rows)
            {
                throw new InvalidDataException($"{path}: holds more data rows than the {entry.Rows} the manifest lists");
            }
            var rest = line.AsSpan();
            for (var f = 0; f < width; f++)
            {
                var comma = rest.IndexOf(',');
                if ((comma < 0) != (f == width - 1))
                {
                    throw new InvalidDataException($"{path}: line {row + 2} has {line.Count(ch => ch == ',') + 1} fields; expected {width}");
                }
                var field = comma < 0 ? rest : rest[..comma];
                rest = comma < 0 ? [] : rest[(comma + 1)..];
                var c = target[f];
                if (c < 0)
                {
                    continue;
                }
                if (!ParseCsvValue(field, kinds[c], data[c], row))
                {
                    throw new InvalidDataException($"{path}: line {row + 2}, column \"{names[c]}\": \"{field}\" is not a valid {kinds[c]} value");
                }
            }
            row++;
        }
        if (row != rows)
        {
            throw new InvalidDataException($"{path}: holds {row} data rows; the manifest lists {entry.Rows}");
        }
    }

    private static bool ParseCsvValue(ReadOnlySpan<char> field, ColumnKind kind, Array destination, int row)
    {
        var invariant = CultureInfo.InvariantCulture;
        switch (kind)
        {
            case ColumnKind.Int64:
                if (!long.TryParse(field, NumberStyles.AllowLeadingSign, invariant, out var l))
                {
                    return false;
                }
                ((long[])destination)[row] = l;
                return true;
            case ColumnKind.Int32:
                if (!int.TryParse(field, NumberStyles.AllowLeadingSign, invariant, out var i))
                {
                    return false;
                }
                ((int[])destination)[row] = i;
                return true;
            case ColumnKind.Double:
                if (!double.TryParse(field, NumberStyles.Float, invariant, out var d))
                {
                    return false;
                }
                ((double[])destination)[row] = d;
                return true;
            case ColumnKind.Boolean:
                if (!bool.TryParse(field, out var b))
                {
                    return false;
                }
                ((bool[])destination)[row] = b;
                return true;
            case ColumnKind.Split:
                for (var s = 0; s < LogColumns.SplitNames.Count; s++)
                {
                    if (field.SequenceEqual(LogColumns.SplitNames[s]))
                    {
                        ((byte[])destination)[row] = (byte)s;
                        return true;
                    }
                }
                return false;
            default:
                return false;
        }
    }

    private static byte SplitCode(string? name, string path, string column, int row)
    {
        for (var s = 0; s < LogColumns.SplitNames.Count; s++)
        {
            if (name == LogColumns.SplitNames[s])
            {
                return (byte)s;
            }
        }
        throw new InvalidDataException($"{path}: row {row}, column \"{column}\": \"{name}\" is not one of {string.Join(", ", LogColumns.SplitNames)}");
    }

    private static int IndexOf(IReadOnlyList<string> list, string value)
    {
        for (var i = 0; i < list.Count; i++)
        {
            if (list[i] == value)
            {
                return i;
            }
        }
        return -1;
    }
}

/// <summary>Columns of one logged product read whole: plain arrays in file row order, by name.</summary>
public sealed class LoggedColumns
{
    private readonly Dictionary<string, (ColumnKind Kind, Array Data)> _columns;

    internal LoggedColumns(LoggedProduct product, string file, int rows, string[] names, ColumnKind[] kinds, Array[] data)
    {
        Product = product;
        File = file;
        Rows = rows;
        Names = names;
        _columns = new Dictionary<string, (ColumnKind, Array)>(StringComparer.Ordinal);
        for (var c = 0; c < names.Length; c++)
        {
            _columns[names[c]] = (kinds[c], data[c]);
        }
    }

    public LoggedProduct Product { get; }

    /// <summary>Full path of the file the columns came from (for messages).</summary>
    public string File { get; }

    public int Rows { get; }

    /// <summary>The columns held, in the order they were asked for.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>An int32 column (ids, categorical features, candidates, stage labels, reward).</summary>
    public int[] Int32(string column) => Get<int[]>(column, ColumnKind.Int32);

    /// <summary>An int64 column (request_id, timestamp).</summary>
    public long[] Int64(string column) => Get<long[]>(column, ColumnKind.Int64);

    /// <summary>A double column (bids, propensities, prices, logging estimates).</summary>
    public double[] Double(string column) => Get<double[]>(column, ColumnKind.Double);

    /// <summary>A boolean column (lost).</summary>
    public bool[] Boolean(string column) => Get<bool[]>(column, ColumnKind.Boolean);

    /// <summary>The split column as codes: index into <see cref="LogColumns.SplitNames"/> (0 train, 1 validation, 2 test).</summary>
    public byte[] SplitCodes(string column = LogColumns.Split) => Get<byte[]>(column, ColumnKind.Split);

    private T Get<T>(string column, ColumnKind kind) where T : class
    {
        if (!_columns.TryGetValue(column, out var entry))
        {
            throw new ArgumentException($"column \"{column}\" was not read; read columns: {string.Join(", ", Names)}", nameof(column));
        }
        if (entry.Kind != kind)
        {
            throw new ArgumentException($"column \"{column}\" is {entry.Kind}, not {kind}", nameof(column));
        }
        return (T)(object)entry.Data;
    }
}
