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
        if (!File.Exists(path))
        {
            throw new InvalidDataException(Directory.Exists(path)
                ? $"{path}: is a folder; expected the Parquet file of a model's predictions that train.json lists"
                : $"{path}: missing; train.json lists it as a model's predictions");
        }
        try
        {
            return ReadAsync(path, stages).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is not InvalidDataException and not OperationCanceledException and not OutOfMemoryException)
        {
            throw new InvalidDataException($"{path}: cannot be read as Parquet: {e.Message}", e);
        }
    }

    private static async Task<(long[], double[][], double[][])> ReadAsync(string path, IReadOnlyList<string> stages)
    {
        var expected = Columns(stages);
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
        var k = stages.Count;
        var ids = new long[rows];
        var q = new double[k][];
        var r = new double[k][];
        for (var j = 0; j < k; j++)
        {
            q[j] = new double[rows];
            r[j] = new double[rows];
        }
        var at = 0;
        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            var n = (int)group.RowCount;
            await group.ReadAsync((DataField)fields[0], ids.AsMemory(at, n)).ConfigureAwait(false);
            for (var j = 0; j < k; j++)
            {
                await group.ReadAsync(fields[1 + j], q[j].AsMemory(at, n)).ConfigureAwait(false);
                await group.ReadAsync(fields[1 + k + j], r[j].AsMemory(at, n)).ConfigureAwait(false);
            }
            at += n;
        }
        return (ids, q, r);
    }
}
