using System.Globalization;
using AdAuctionSim.Evaluation;
using CsvHelper;

namespace AdAuctionSim.Reports.Documents;

/// <summary>
/// <c>metrics.csv</c>: one row per sweep point × repeat × model × stage × space × metric, exactly the
/// <see cref="MetricRow"/>s (doubles in their shortest round-trip form, NaN as <c>NaN</c>); and <c>summary.csv</c>, one
/// row per <see cref="MetricSummary"/>. RFC 4180 (CsvHelper's defaults: UTF-8, CRLF, quoted where needed). The text is a
/// pure function of the rows, so equal metrics give equal bytes.
/// </summary>
public static class ReportCsv
{
    public const string MetricsFile = "metrics.csv";
    public const string SummaryFile = "summary.csv";

    /// <summary>The evaluator's <c>metrics.csv</c> format (<see cref="Evaluation.MetricsCsv"/>), written atomically.</summary>
    public static void WriteMetrics(string path, IEnumerable<MetricRow> rows) => Evaluation.MetricsCsv.Write(path, rows);

    public static void WriteSummary(string path, IEnumerable<MetricSummary> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        Write(path, ["point", "model", "stage", "space", "metric", "mean", "ci_low", "ci_high", "repeats", "baseline", "mean_difference",
            "p_value", "interval"], rows, (csv, r) =>
        {
            csv.WriteField(r.Point);
            csv.WriteField(r.Model);
            csv.WriteField(r.Stage);
            csv.WriteField(SpaceName(r.Space));
            csv.WriteField(r.Metric);
            csv.WriteField(Number(r.Mean));
            csv.WriteField(Number(r.CiLow));
            csv.WriteField(Number(r.CiHigh));
            csv.WriteField(Int(r.Repeats));
            csv.WriteField(r.Baseline);
            csv.WriteField(Number(r.MeanDifference));
            csv.WriteField(Number(r.PValue));
            csv.WriteField(r.IntervalMethod);
        });
    }

    /// <summary>Reads <c>metrics.csv</c> back (for tests and comparisons).</summary>
    public static IReadOnlyList<MetricRow> ReadMetrics(string path)
    {
        using var csv = CsvReader.FromFile(path, null);
        csv.ReadHeader();
        var rows = new List<MetricRow>();
        while (csv.Read())
        {
            rows.Add(new MetricRow(
                csv.GetString("point") ?? "",
                int.Parse(csv.GetString("repeat")!, CultureInfo.InvariantCulture),
                long.Parse(csv.GetString("seed")!, CultureInfo.InvariantCulture),
                csv.GetString("model") ?? "",
                csv.GetString("stage") ?? "",
                ParseSpace(csv.GetString("space")!),
                csv.GetString("metric") ?? "",
                double.Parse(csv.GetString("value")!, CultureInfo.InvariantCulture),
                long.Parse(csv.GetString("rows")!, CultureInfo.InvariantCulture),
                csv.GetString("note") ?? ""));
        }
        return rows;
    }

    /// <summary>How spaces are spelled in files and reports: D, O, C, O\C, D\O.</summary>
    public static string SpaceName(EvaluationSpace space) => Evaluation.MetricsCsv.SpaceName(space);

    public static EvaluationSpace ParseSpace(string text) => Evaluation.MetricsCsv.ParseSpaceName(text);

    private static void Write<T>(string path, string[] header, IEnumerable<T> rows, Action<CsvWriter, T> write)
    {
        using var csv = CsvWriter.ToFile(path, null);
        foreach (var h in header)
        {
            csv.WriteField(h);
        }
        csv.EndRecord();
        foreach (var row in rows)
        {
            write(csv, row);
            csv.EndRecord();
        }
        csv.Flush();
    }

    private static string Int(long v) => v.ToString(CultureInfo.InvariantCulture);

    private static string Number(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
