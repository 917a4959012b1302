using System.Globalization;
using System.Text;
using System.Text.Json;
using Parquet;
using Parquet.Schema;

namespace AdAuctionSim.Simulation.OffPolicy;

/// <summary>
/// Writes logged feedback as Open Bandit Pipeline's bandit feedback (Saito et al. 2021): <c>bandit_feedback.parquet</c> and
/// <c>bandit_feedback.csv</c> (one row per round: <c>round</c>, <c>request_id</c>, <c>split</c>, <c>action</c>,
/// <c>action_ad</c>, <c>action_multiplier</c>, <c>slot</c>, <c>reward</c>, <c>pscore</c>, <c>won</c>, <c>conversion</c>,
/// <c>value_per_conversion</c>, <c>price</c>, <c>context_&lt;field&gt;</c>…, <c>candidate_&lt;j&gt;</c>…) and
/// <c>bandit_feedback.json</c> (n_rounds, n_actions, len_list, the action numbering, the reward's definition).
/// </summary>
/// <remarks>
/// OBP's dictionary is <c>{n_rounds, n_actions, action, position, reward, pscore, context, action_context}</c>; here
/// <c>action</c> is the pair (candidate index j, bid multiplier index m) numbered j·M + m, <c>slot</c> the ad slot
/// (0-based, also the context field <c>context_position</c>; OBP's <c>position</c> is 0 for every round, since len_list
/// is 1: each request shows one ad, so the file has no column of that name to pass by mistake), <c>pscore</c> the logging probability of the pair, and
/// every request is a round, lost bids with reward 0. Candidate ids are per request (<c>candidate_j</c>), so OBP's fixed
/// <c>action_context</c> does not apply; the context columns are categorical ids.
/// </remarks>
public static class BanditFeedbackExport
{
    public const string ParquetFile = "bandit_feedback.parquet";
    public const string CsvFile = "bandit_feedback.csv";
    public const string MetaFile = "bandit_feedback.json";

    /// <summary>Column names in file order.</summary>
    public static IReadOnlyList<string> Columns(LoggedFeedback feedback)
    {
        ArgumentNullException.ThrowIfNull(feedback);
        return ["round", "request_id", "split", "action", "action_ad", "action_multiplier", "slot", "reward", "pscore", "won", "conversion",
            "value_per_conversion", "price", .. LoggedFeedback.ContextFields.Select(f => "context_" + f),
            .. Enumerable.Range(0, feedback.Candidates).Select(j => "candidate_" + j.ToString(CultureInfo.InvariantCulture))];
    }

    /// <summary>Writes the three files into an existing folder.</summary>
    /// <param name="directory">Target folder (must exist).</param>
    /// <param name="feedback">The rounds.</param>
    /// <param name="reward">What the <c>reward</c> column holds.</param>
    /// <param name="multipliers">The logging policy's bid multipliers (for the metadata).</param>
    public static void Write(string directory, LoggedFeedback feedback, OpeReward reward, IReadOnlyList<double> multipliers)
    {
        ArgumentNullException.ThrowIfNull(feedback);
        ArgumentNullException.ThrowIfNull(multipliers);
        var n = feedback.Rounds;
        var rewards = feedback.Rewards(reward);
        var columns = Columns(feedback);
        var data = new List<Array>
        {
            Enumerable.Range(0, n).Select(i => (long)i).ToArray(),
            feedback.RequestId,
            feedback.Split.Select(s => s switch { 0 => "train", 1 => "validation", _ => "test" }).ToArray(),
            Enumerable.Range(0, n).Select(feedback.Action).ToArray(),
            feedback.CandidateIndex,
            feedback.MultiplierIndex,
            feedback.Position,
            rewards,
            feedback.Pscore,
            feedback.Won.Select(w => w ? 1 : 0).ToArray(),
            Enumerable.Range(0, n).Select(i => feedback.Won[i] && feedback.Converted[i] ? 1 : 0).ToArray(),
            feedback.Value,
            feedback.Price,
        };
        var fields = LoggedFeedback.ContextFields.Count;
        for (var f = 0; f < fields; f++)
        {
            data.Add(Enumerable.Range(0, n).Select(i => feedback.Context[i * fields + f]).ToArray());
        }
        for (var j = 0; j < feedback.Candidates; j++)
        {
            data.Add(Enumerable.Range(0, n).Select(i => feedback.CandidateAds[i * feedback.Candidates + j]).ToArray());
        }
        WriteParquet(Path.Combine(directory, ParquetFile), columns, data).GetAwaiter().GetResult();
        WriteCsv(Path.Combine(directory, CsvFile), columns, data, n);
        var meta = new Dictionary<string, object>
        {
            ["n_rounds"] = n,
            ["n_actions"] = feedback.Actions,
            ["len_list"] = 1,
            ["action"] = $"candidate index j × {feedback.Multipliers} + bid multiplier index m; action_ad = j, action_multiplier = m",
            ["bid_multipliers"] = multipliers,
            ["reward"] = reward switch
            {
                OpeReward.Conversions => "1 if the request was won and the final funnel stage happened, else 0",
                OpeReward.Value => "value_per_conversion if the request was won and the final funnel stage happened, else 0",
                _ => "surplus: value_per_conversion if the request was won and the final funnel stage happened (else 0), less price if it was won; 0 for a lost bid",
            },
            ["pscore"] = "logging probability of the action: P(ad j) × P(multiplier m); lost bids are rounds with reward 0",
            ["slot"] = "ad slot, 0 = top (the context field position); OBP's position is 0 for every round (len_list 1)",
            ["context"] = LoggedFeedback.ContextFields.Select(f => "context_" + f).ToArray(),
        };
        File.WriteAllText(Path.Combine(directory, MetaFile), JsonSerializer.Serialize(meta, new JsonSerializerOptions { WriteIndented = true }) + "\n", new UTF8Encoding(false));
    }

    private static async Task WriteParquet(string path, IReadOnlyList<string> names, List<Array> data)
    {
        var fields = new DataField[names.Count];
        for (var c = 0; c < fields.Length; c++)
        {
            fields[c] = data[c] switch
            {
                long[] => new DataField<long>(names[c]),
                int[] => new DataField<int>(names[c]),
                double[] => new DataField<double>(names[c]),
                _ => new DataField<string>(names[c], nullable: false),
            };
        }
        var options = new ParquetOptions { CompressionMethod = CompressionMethod.Snappy };
        await using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        await using var writer = await ParquetWriter.CreateAsync(new ParquetSchema(fields), stream, options).ConfigureAwait(false);
        using var group = writer.CreateRowGroup();
        for (var c = 0; c < fields.Length; c++)
        {
            switch (data[c])
            {
                case long[] l:
                    await group.WriteAsync(fields[c], new ReadOnlyMemory<long>(l)).ConfigureAwait(false);
                    break;
                case int[] i:
                    await group.WriteAsync(fields[c], new ReadOnlyMemory<int>(i)).ConfigureAwait(false);
                    break;
                case double[] d:
                    await group.WriteAsync(fields[c], new ReadOnlyMemory<double>(d)).ConfigureAwait(false);
                    break;
                default:
                    var text = ((string[])data[c]).Select(t => t.AsMemory()).ToArray();
                    await group.WriteAsync(fields[c], new ReadOnlyMemory<ReadOnlyMemory<char>>(text)).ConfigureAwait(false);
                    break;
            }
        }
        group.CompleteValidate();
    }

    private static void WriteCsv(string path, IReadOnlyList<string> names, List<Array> data, int rows)
    {
        using var writer = new StreamWriter(path, false, new UTF8Encoding(false), 1 << 20) { NewLine = "\n" };
        writer.WriteLine(string.Join(',', names));
        var cells = new string[names.Count];
        for (var r = 0; r < rows; r++)
        {
            for (var c = 0; c < cells.Length; c++)
            {
                cells[c] = data[c] switch
                {
                    long[] l => l[r].ToString(CultureInfo.InvariantCulture),
                    int[] i => i[r].ToString(CultureInfo.InvariantCulture),
                    double[] d => d[r].ToString("R", CultureInfo.InvariantCulture),
                    _ => ((string[])data[c])[r],
                };
            }
            writer.WriteLine(string.Join(',', cells));
        }
    }
}
