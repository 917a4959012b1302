using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Data;
using AdAuctionSim.Models.Runtime;
using AdAuctionSim.Models.Training;
using Parquet;
using Parquet.Schema;
using TorchSharp;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Prediction;

/// <summary>
/// A model's scores for every request of D (DESIGN.md §5): per stage k the conditional rate q̂_k and the cumulative
/// rate r̂_k, in the dataset's row order (ascending request id). Arrays are per stage: <c>Q[k][i]</c>.
/// </summary>
/// <param name="ModelId">The model that scored.</param>
/// <param name="Stages">Funnel stage names in order.</param>
/// <param name="RequestId">Request id of each row.</param>
/// <param name="Q">q̂_k per stage, then per row.</param>
/// <param name="R">r̂_k per stage, then per row.</param>
public sealed record Predictions(string ModelId, IReadOnlyList<string> Stages, long[] RequestId, double[][] Q, double[][] R)
{
    /// <summary>Prefixes of the prediction columns: <c>q_hat_&lt;stage&gt;</c> and <c>r_hat_&lt;stage&gt;</c>.</summary>
    public const string ConditionalPrefix = "q_hat_";
    public const string CumulativePrefix = "r_hat_";

    /// <summary>Rows per Parquet row group of a predictions file.</summary>
    internal const int RowGroupSize = 1 << 17;

    public int Count => RequestId.Length;

    /// <summary>Columns of a predictions file: request_id, q_hat_&lt;stage&gt; for every stage, then r_hat_&lt;stage&gt;.</summary>
    public static IReadOnlyList<string> Columns(IReadOnlyList<string> stages) =>
        ["request_id", .. stages.Select(s => ConditionalPrefix + s), .. stages.Select(s => CumulativePrefix + s)];

    /// <summary>
    /// Scores every row of <paramref name="data"/> with <paramref name="model"/> in evaluation mode without gradients:
    /// q̂ = exp(<see cref="ModelOutput.LogConditional"/>), r̂ = exp(<see cref="ModelOutput.LogCumulative"/>). The
    /// log-probabilities come to the host once, at the end, and are exponentiated in double precision.
    /// </summary>
    public static Predictions Score(MultiTaskModel model, LoggedDataset data, int batchSize = TrainerOptions.DefaultEvaluationBatchSize)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        if (model.Depth != data.Depth)
        {
            throw new ArgumentException($"model \"{model.Id}\" was built for depth {model.Depth}, but the data has {data.Depth} stages", nameof(model));
        }
        var n = data.Count;
        var k = data.Depth;
        float[] logQ;
        float[] logR;
        using (NewDisposeScope())
        {
            var allQ = empty([n, k], ScalarType.Float32, data.Device);
            var allR = empty([n, k], ScalarType.Float32, data.Device);
            ForwardInBatches(model, data.Features, data.Device, batchSize, (start, size, output) =>
            {
                allQ.narrow(0, start, size).copy_(output.LogConditional());
                allR.narrow(0, start, size).copy_(output.LogCumulative());
            });
            logQ = allQ.cpu().data<float>().ToArray();
            logR = allR.cpu().data<float>().ToArray();
        }
        var q = new double[k][];
        var r = new double[k][];
        for (var j = 0; j < k; j++)
        {
            q[j] = new double[n];
            r[j] = new double[n];
        }
        for (var i = 0; i < n; i++)
        {
            var at = (long)i * k;
            for (var j = 0; j < k; j++)
            {
                q[j][i] = Math.Exp(logQ[at + j]);
                r[j][i] = Math.Exp(logR[at + j]);
            }
        }
        return new Predictions(model.Id, data.Stages, (long[])data.RequestId.Clone(), q, r);
    }

    /// <summary>
    /// Writes the predictions as Parquet (required int64 request_id, then float64 q_hat_* and r_hat_* columns), one
    /// row group per 2^17 rows (none when there are no rows). The file must not exist.
    /// </summary>
    public void WriteParquet(string path) => WriteColumns(path, RequestId, Columns(Stages), [.. Q, .. R]);

    /// <summary>
    /// Writes required int64 <c>request_id</c> and the float64 <paramref name="columns"/> named by the rest of
    /// <paramref name="names"/> as Parquet (Snappy), one row group per 2^17 rows (none when there are no rows). The file
    /// must not exist. The layout of every per-request score file of a run (model predictions, win-model scores).
    /// </summary>
    internal static void WriteColumns(string path, long[] requestIds, IReadOnlyList<string> names, IReadOnlyList<double[]> columns) =>
        WriteColumnsAsync(path, requestIds, names, columns).GetAwaiter().GetResult();

    private static async Task WriteColumnsAsync(string path, long[] requestIds, IReadOnlyList<string> names, IReadOnlyList<double[]> columns)
    {
        if (names.Count != columns.Count + 1)
        {
            throw new ArgumentException($"{names.Count} column names for request_id and {columns.Count} value columns", nameof(names));
        }
        var fields = new DataField[names.Count];
        fields[0] = new DataField<long>(names[0]);
        for (var c = 1; c < names.Count; c++)
        {
            fields[c] = new DataField<double>(names[c]);
        }
        var count = requestIds.Length;
        var options = new ParquetOptions { CompressionMethod = CompressionMethod.Snappy };
        await using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        await using var writer = await ParquetWriter.CreateAsync(new ParquetSchema(fields), stream, options).ConfigureAwait(false);
        for (var start = 0; start < count; start += RowGroupSize)
        {
            var size = Math.Min(RowGroupSize, count - start);
            using var group = writer.CreateRowGroup();
            await group.WriteAsync(fields[0], new ReadOnlyMemory<long>(requestIds, start, size)).ConfigureAwait(false);
            for (var c = 0; c < columns.Count; c++)
            {
                await group.WriteAsync(fields[1 + c], new ReadOnlyMemory<double>(columns[c], start, size)).ConfigureAwait(false);
            }
            group.CompleteValidate();
        }
    }

    /// <summary>
    /// Runs the model in evaluation mode without gradients over <paramref name="features"/> in batches of
    /// <paramref name="batchSize"/> rows on <paramref name="device"/>, handing each batch's output to
    /// <paramref name="consume"/> (first row, rows, output) inside the batch's dispose scope; restores the training mode.
    /// </summary>
    internal static void ForwardInBatches(MultiTaskModel model, Tensor features, Device device, long batchSize,
        Action<long, long, ModelOutput> consume)
    {
        HostThreads.FollowIntraOpCount();
        var rows = features.shape[0];
        var wasTraining = model.training;
        model.to(device);
        model.eval();
        try
        {
            using var noGrad = no_grad();
            for (long start = 0; start < rows; start += batchSize)
            {
                using (NewDisposeScope())
                {
                    var size = Math.Min(batchSize, rows - start);
                    consume(start, size, model.forward(features.narrow(0, start, size)));
                }
            }
        }
        finally
        {
            model.train(wasTraining);
        }
    }
}
