using System.Globalization;
using CsvHelper;

namespace AdAuctionSim.Evaluation;

/// <summary>
/// <c>metrics.csv</c>: one row per model × stage × space × metric (and repeat and sweep point), the columns of
/// <see cref="MetricRow"/> in order: point, repeat, seed, model, stage, space, metric, value, rows, note. Doubles in
/// round-trip form, NaN as "NaN", invariant culture.
/// </summary>
public static class MetricsCsv
{
    public static IReadOnlyList<string> Header { get; } = ["point", "repeat", "seed", "model", "stage", "space", "metric", "value", "rows", "note"];

    /// <summary>Whether the file at <paramref name="path"/> starts with this header line (a metrics file an evaluation wrote).</summary>
    public static bool IsMetricsFile(string path)
    {
        try
        {
            using var reader = new StreamReader(path, new System.Text.UTF8Encoding(false));
            var buffer = new char[256];
            var read = reader.ReadBlock(buffer, 0, buffer.Length);
            var first = new string(buffer, 0, read).Split('\n')[0];
            return first == string.Join(',', Header);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// Writes the rows to <paramref name="path"/> atomically: into a temporary file beside it, renamed over the target
    /// only when complete, so a failure never leaves a half-written file or destroys an existing one.
    /// </summary>
    public static void Write(string path, IEnumerable<MetricRow> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var full = Path.GetFullPath(path);
        var temp = $"{full}.partial-{Guid.NewGuid():N}";
        try
        {
            using (var writer = new StreamWriter(temp, append: false, new System.Text.UTF8Encoding(false)))
            using (var csv = CsvWriter.Create(writer, new CsvWriterOptions { NewLine = "\n", FormatProvider = CultureInfo.InvariantCulture }, leaveOpen: false))
            {
                foreach (var name in Header)
                {
                    csv.WriteField(name);
                }
                csv.EndRecord();
                foreach (var row in rows)
                {
                    csv.WriteField(row.Point);
                    csv.WriteField(row.Repeat.ToString(CultureInfo.InvariantCulture));
                    csv.WriteField(row.Seed.ToString(CultureInfo.InvariantCulture));
                    csv.WriteField(row.Model);
                    csv.WriteField(row.Stage);
                    csv.WriteField(SpaceName(row.Space));
                    csv.WriteField(row.Metric);
                    csv.WriteField(row.Value.ToString("R", CultureInfo.InvariantCulture));
                    csv.WriteField(row.Rows.ToString(CultureInfo.InvariantCulture));
                    csv.WriteField(row.Note);
                    csv.EndRecord();
                }
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>The CSV spelling of a space: D, O, C, O\C, D\O.</summary>
    public static string SpaceName(EvaluationSpace space) => space switch
    {
        EvaluationSpace.OMinusC => "O\\C",
        EvaluationSpace.DMinusO => "D\\O",
        _ => space.ToString(),
    };

    /// <summary>
    /// The space a file spells <paramref name="text"/>: D, O, C, O\C or D\O (<see cref="SpaceName"/>), or the enum member's
    /// name (OMinusC, DMinusO), which work files written before 2026-11-30 hold.
    /// </summary>
    /// <exception cref="FormatException">Any other text.</exception>
    public static EvaluationSpace ParseSpaceName(string text) => text switch
    {
        "O\\C" => EvaluationSpace.OMinusC,
        "D\\O" => EvaluationSpace.DMinusO,
        _ when Enum.GetNames<EvaluationSpace>().Contains(text, StringComparer.Ordinal) => Enum.Parse<EvaluationSpace>(text),
        _ => throw new FormatException($"\"{text}\" is not an evaluation space; expected one of D, O, C, O\\C, D\\O"),
    };
}
