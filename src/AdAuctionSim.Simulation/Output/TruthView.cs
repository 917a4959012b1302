namespace AdAuctionSim.Simulation.Output;

/// <summary>
/// The evaluators' side of the information barrier (DESIGN.md §4): reads <c>truth</c> (every request of D: split,
/// won, the true conditional rates q_k and the potential outcomes y_k) into plain arrays. The model suite never uses
/// this type; it reads through <see cref="LoggedView"/> only.
/// </summary>
/// <remarks>
/// y_k is the potential outcome of stage k under do(stage k − 1 reached), drawn with common random numbers, so an
/// impression's logged cumulative label is s_k = y_1·…·y_k. Problems with the folder are
/// <see cref="InvalidDataException"/>s whose message starts with the file concerned.
/// </remarks>
public sealed class TruthView
{
    private readonly ProductManifest _entry;

    private TruthView(string folder, SimulationManifest manifest, OutputFormat format, ProductManifest entry)
    {
        Folder = folder;
        Manifest = manifest;
        Format = format;
        _entry = entry;
    }

    /// <summary>Full path of the simulation folder.</summary>
    public string Folder { get; }

    public SimulationManifest Manifest { get; }

    public OutputFormat Format { get; }

    /// <summary>Funnel stage names in order.</summary>
    public IReadOnlyList<string> Stages => Manifest.World.Stages;

    /// <summary>Full path of the truth file.</summary>
    public string Path => System.IO.Path.Combine(Folder, _entry.File);

    /// <summary>Requests in the truth (all of D).</summary>
    public int Rows => (int)_entry.Rows;

    /// <summary>
    /// Opens a simulation folder's truth: checks the manifest, that it lists the truth with the documented column
    /// layout and one row per request, and that the file's bytes match the manifest's SHA-256.
    /// </summary>
    /// <exception cref="InvalidDataException">The folder, the manifest or the truth file is missing or corrupt.</exception>
    public static TruthView Open(string folder)
    {
        var (full, manifest, format) = LoggedView.OpenManifest(folder);
        var manifestFile = System.IO.Path.Combine(full, LogColumns.ManifestFile);
        var file = LogColumns.TruthProduct + (format == OutputFormat.Csv ? ".csv" : ".parquet");
        var entry = manifest.Product(file)
            ?? throw new InvalidDataException($"{manifestFile}: lists no product {file}; the folder is incomplete or was written by other code");
        var expected = LogColumns.Truth(manifest.World.Stages);
        if (!entry.Columns.SequenceEqual(expected, StringComparer.Ordinal))
        {
            throw new InvalidDataException($"{manifestFile}: the columns listed for {file} [{string.Join(", ", entry.Columns)}] "
                + $"are not the layout this code reads [{string.Join(", ", expected)}]");
        }
        if (entry.Rows != manifest.RowCounts.Requests || entry.Rows < 0 || entry.Rows > Array.MaxLength)
        {
            throw new InvalidDataException($"{manifestFile}: {file} is listed with {entry.Rows} rows, but the row counts say {manifest.RowCounts.Requests} requests");
        }
        LoggedView.VerifyHash(System.IO.Path.Combine(full, file), entry.Sha256);
        return new TruthView(full, manifest, format, entry);
    }

    /// <summary>Reads request ids, splits, won flags, q_k, y_k and the true win probabilities of every request, in file row order.</summary>
    /// <exception cref="InvalidDataException">The file cannot be read or does not hold what the manifest says.</exception>
    public TruthColumns Read()
    {
        var stages = Stages;
        var names = new List<string> { LogColumns.RequestId, LogColumns.Split, "won" };
        var kinds = new List<ColumnKind> { ColumnKind.Int64, ColumnKind.Split, ColumnKind.Boolean };
        foreach (var stage in stages)
        {
            names.Add(LogColumns.TruePrefix + stage);
            kinds.Add(ColumnKind.Double);
        }
        foreach (var stage in stages)
        {
            names.Add(LogColumns.OutcomePrefix + stage);
            kinds.Add(ColumnKind.Boolean);
        }
        names.AddRange(LogColumns.TruthTail.Take(2));   // win_prob, win_prob_at_bid
        kinds.AddRange([ColumnKind.Double, ColumnKind.Double]);
        var data = new Array[names.Count];
        for (var c = 0; c < data.Length; c++)
        {
            data[c] = LoggedView.Allocate(kinds[c], Rows);
        }
        try
        {
            if (Format == OutputFormat.Parquet)
            {
                LoggedView.ReadParquet(Path, _entry, [.. names], [.. kinds], data);
            }
            else
            {
                LoggedView.ReadCsv(Path, _entry, [.. names], [.. kinds], data);
            }
        }
        catch (Exception e) when (e is not InvalidDataException and not OperationCanceledException and not OutOfMemoryException)
        {
            throw new InvalidDataException($"{Path}: cannot be read as {(Format == OutputFormat.Parquet ? "Parquet" : "CSV")}: {e.Message}", e);
        }
        var k = stages.Count;
        var q = new double[k][];
        var y = new bool[k][];
        for (var j = 0; j < k; j++)
        {
            q[j] = (double[])data[3 + j];
            y[j] = (bool[])data[3 + k + j];
        }
        return new TruthColumns(Path, stages, (long[])data[0], (byte[])data[1], (bool[])data[2], q, y, (double[])data[3 + (2 * k)],
            (double[])data[4 + (2 * k)]);
    }
}

/// <summary>The truth of every request of D as plain arrays, in file row order; per-stage arrays are indexed [stage][row].</summary>
/// <param name="File">The file they came from (for messages).</param>
/// <param name="Stages">Funnel stage names.</param>
/// <param name="RequestId">Request id of each row.</param>
/// <param name="Split">Split code of each row: index into <see cref="LogColumns.SplitNames"/> (2 = test).</param>
/// <param name="Won">Whether the logging bidder won the auction (the row is an impression, in O).</param>
/// <param name="Q">True conditional rate q_k = P(stage k | stage k − 1 reached, x, hidden trait).</param>
/// <param name="Outcome">Potential outcome y_k under do(stage k − 1 reached).</param>
/// <param name="WinProbability">The true P(win | x) of the logging policy, over its bid multipliers (<c>win_prob</c>).</param>
/// <param name="WinProbabilityAtBid">The true P(win | x, b) at the request's logged bid (<c>win_prob_at_bid</c>).</param>
public sealed record TruthColumns(string File, IReadOnlyList<string> Stages, long[] RequestId, byte[] Split, bool[] Won, double[][] Q, bool[][] Outcome,
    double[] WinProbability, double[] WinProbabilityAtBid)
{
    public int Rows => RequestId.Length;
}
