using Parquet;
using Parquet.Schema;

namespace AdAuctionSim.Evaluation.Runs;

/// <summary>
/// Reads a model's <c>predictions/&lt;model&gt;.parquet</c>: int64 <c>request_id</c>, then float64
/// <c>q_hat_&lt;stage&gt;</c> for every stage, then <c>r_hat_&lt;stage&gt;</c>. The layout is the model suite's
/// (AdAuctionSim.Models.Prediction.Predictions); it is restated here because evaluation must not reference the
/// TorchSharp project, and a CLI test checks that both agree.
/// </summary>
public static class PredictionFile
{
    public const string ConditionalPrefix = "q_hat_";
    public const string CumulativePrefix = "r_hat_";

    /// <summary>Columns of a predictions file for the stages.</summary>
    public static IReadOnlyList<string> Columns(IReadOnlyList<string> stages) =>
        ["request_id", .. stages.Select(s => ConditionalPrefix + s), .. stages.Select(s => CumulativePrefix + s)];

    /// <summary>Reads a predictions file whole: request ids and q̂_k, r̂_k per stage ([stage][row]).</summary>
    /// <exception cref="InvalidDataException">Missing, not Parquet, or columns other than the layout (named in the message).</exception>
    public static (long[] RequestId, double[][] Q, double[][] R) Read(string path, IReadOnlyList<string> stages)
    {
        var (ids, columns) = ReadColumns(path, Columns(stages), "a model's predictions");
        var k = stages.Count;
        return (ids, columns[..k], columns[k..]);
    }

    /// <summary>
    /// Reads a per-request score file of a run whole: required int64 <c>request_id</c>, then the float64 columns named by
    /// the rest of <paramref name="expected"/>, exactly those, in that order ([column][row]).
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="expected">Its columns, request_id first.</param>
    /// <param name="what">What train.json lists the file as, for messages (e.g. "a model's predictions").</param>
    /// <exception cref="InvalidDataException">Missing, not Parquet, or other columns (named in the message).</exception>
    public static (long[] RequestId, double[][] Columns) ReadColumns(string path, IReadOnlyList<string> expected, string what)
    {
        if (!File.Exists(path))
        {
            throw new InvalidDataException(Directory.Exists(path)
                ? $"{path}: is a folder; expected the Parquet file of {what} that train.json lists"
                : $"{path}: missing; train.json lists it as {what}");
        }
        try
        {
            return ReadAsync(path, expected).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is not InvalidDataException and not OperationCanceledException and not OutOfMemoryException)
        {
            throw new InvalidDataException($"{path}: cannot be read as Parquet: {e.Message}", e);
        }
    }

    private static async Task<(long[], double[][])> ReadAsync(string path, IReadOnlyList<string> expected)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.RandomAccess);
        await using var reader = await ParquetReader.CreateAsync(stream).ConfigureAwait(false);
        var fields = reader.Schema.DataFields;
        if (!fields.Select(f => f.Name).SequenceEqual(expected, StringComparer.Ordinal))
        {
            throw new InvalidDataException($"{path}: columns [{string.Join(", ", fields.Select(f => f.Name))}]; expected [{string.Join(", ", expected)}]");
        }
        for (var c = 0; c < fields.Length; c++)
        {
            var type = c == 0 ? typeof(long) : typeof(double);
            if (fields[c].ClrType != type || fields[c].IsNullable)
            {
                throw new InvalidDataException($"{path}: column \"{fields[c].Name}\" holds {(fields[c].IsNullable ? "nullable " : "")}{fields[c].ClrType.Name}; expected required {type.Name}");
            }
        }
        long rows = 0;
        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            rows += group.RowCount;
        }
        if (rows > Array.MaxLength)
        {
            throw new InvalidDataException($"{path}: {rows} rows is more than one array can hold");
        }
        var ids = new long[rows];
        var columns = new double[fields.Length - 1][];
        for (var c = 0; c < columns.Length; c++)
        {
            columns[c] = new double[rows];
        }
        var at = 0;
        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            var n = (int)group.RowCount;
            await group.ReadAsync((DataField)fields[0], ids.AsMemory(at, n)).ConfigureAwait(false);
            for (var c = 0; c < columns.Length; c++)
            {
                await group.ReadAsync(fields[1 + c], columns[c].AsMemory(at, n)).ConfigureAwait(false);
            }
            at += n;
        }
        return (ids, columns);
    }
}

/// <summary>
/// A fitted win model's <c>win_propensity.parquet</c> (train.json's <c>winPropensity.scores</c>): int64 <c>request_id</c>,
/// float64 <c>pi_hat</c> (π̂(x), models.md §14.3) and <c>w_hat_at_bid</c> (Ŵ(b_i | x_i)) for every request of D. Restated
/// from AdAuctionSim.Models.Training.TrainingRun for the same reason as <see cref="PredictionFile"/>; a CLI test checks both agree.
/// </summary>
public static class WinScoreFile
{
    public const string PolicyColumn = "pi_hat";
    public const string AtBidColumn = "w_hat_at_bid";

    /// <summary>Its columns.</summary>
    public static IReadOnlyList<string> Columns { get; } = ["request_id", PolicyColumn, AtBidColumn];

    /// <summary>Reads it whole.</summary>
    /// <exception cref="InvalidDataException">Missing, not Parquet, or other columns (named in the message).</exception>
    public static (long[] RequestId, double[] Policy, double[] AtBid) Read(string path)
    {
        var (ids, columns) = PredictionFile.ReadColumns(path, Columns, "the win model's scores");
        return (ids, columns[0], columns[1]);
    }
}
