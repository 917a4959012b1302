using System.Globalization;
using System.Text;
using AdAuctionSim.Evaluation.Statistics;

namespace AdAuctionSim.Evaluation.OffPolicy;

/// <summary>
/// One estimate of one target policy in one repeat, beside the policy's true value on the same requests: the row of
/// <c>ope.csv</c> and the contract between off-policy evaluation and reports.
/// </summary>
/// <param name="Point">Sweep point (empty without a sweep).</param>
/// <param name="Repeat">Repeat index; each repeat has its own world seed.</param>
/// <param name="Seed">World seed of the repeat.</param>
/// <param name="Policy">Target policy name.</param>
/// <param name="Estimator">Estimator id (<see cref="EstimatorIds"/>), or <c>truth</c> / <c>monte-carlo</c> for the reference rows.</param>
/// <param name="Estimate">The estimate of the policy value (per request).</param>
/// <param name="Low">Lower end of its 95% interval (NaN without one).</param>
/// <param name="High">Upper end of its 95% interval.</param>
/// <param name="Truth">The exact true value of the policy on the same requests.</param>
/// <param name="Rounds">Rounds (requests) the estimate used.</param>
/// <param name="EssShare">Effective sample size ÷ rounds of the policy's importance weights.</param>
/// <param name="MaxWeight">Largest importance weight.</param>
/// <param name="UnsupportedShare">Share of the target's mass without logging support.</param>
/// <param name="Warnings">The diagnostics' warnings joined by " | " (empty when none).</param>
public sealed record OpeEstimateRow(
    string Point, int Repeat, long Seed, string Policy, string Estimator, double Estimate, double Low, double High,
    double Truth, long Rounds, double EssShare, double MaxWeight, double UnsupportedShare, string Warnings)
{
    public const string TruthRow = "truth";
    public const string MonteCarloRow = "monte-carlo";

    public double Error => Estimate - Truth;

    public double RelativeError => Truth == 0 ? double.NaN : Math.Abs(Estimate - Truth) / Math.Abs(Truth);

    public bool Covers => Low <= Truth && Truth <= High;
}

/// <summary>
/// A policy's true value in one repeat, exact and by on-policy Monte Carlo with common random numbers (per request on
/// the evaluated requests): the row of <c>policy_values.csv</c>.
/// </summary>
/// <param name="Point">Sweep point.</param>
/// <param name="Repeat">Repeat index.</param>
/// <param name="Seed">World seed.</param>
/// <param name="Policy">Policy name.</param>
/// <param name="Rounds">Requests valued.</param>
/// <param name="Wins">Expected impressions per request.</param>
/// <param name="Conversions">Expected conversions per request.</param>
/// <param name="Value">Expected conversion value per request.</param>
/// <param name="Cost">Expected price paid per request.</param>
/// <param name="Truth">Exact value in the OPE reward.</param>
/// <param name="MonteCarlo">Monte Carlo value in the OPE reward.</param>
/// <param name="MonteCarloHalfWidth">Half-width of its 95% interval.</param>
public sealed record PolicyTruthRow(
    string Point, int Repeat, long Seed, string Policy, long Rounds, double Wins, double Conversions, double Value, double Cost,
    double Truth, double MonteCarlo, double MonteCarloHalfWidth)
{
    /// <summary>Whether the exact value lies in the Monte Carlo interval.</summary>
    public bool Agrees => Math.Abs(MonteCarlo - Truth) <= MonteCarloHalfWidth;
}

/// <summary>
/// An estimator's accuracy for one policy across repeats, as Open Bandit Pipeline's meta-evaluation reports it: mean
/// squared error and mean relative error against the true value, with the bias and its 95% Student-t interval.
/// </summary>
/// <param name="Point">Sweep point.</param>
/// <param name="Policy">Target policy.</param>
/// <param name="Estimator">Estimator id.</param>
/// <param name="Repeats">Repeats summarised.</param>
/// <param name="MeanEstimate">Mean estimate.</param>
/// <param name="MeanTruth">Mean true value.</param>
/// <param name="Bias">Mean of estimate − truth.</param>
/// <param name="BiasLow">Lower end of the bias's 95% t interval (NaN with one repeat).</param>
/// <param name="BiasHigh">Upper end.</param>
/// <param name="SquaredError">Mean of (estimate − truth)².</param>
/// <param name="RelativeError">Mean of |estimate − truth| / |truth| (OBP's relative estimation error).</param>
/// <param name="Coverage">Share of repeats whose interval holds the truth (NaN without intervals).</param>
/// <param name="Warned">Share of repeats with at least one diagnostic warning.</param>
public sealed record OpeSummary(
    string Point, string Policy, string Estimator, int Repeats, double MeanEstimate, double MeanTruth, double Bias,
    double BiasLow, double BiasHigh, double SquaredError, double RelativeError, double Coverage, double Warned);

/// <summary>Meta-evaluation of the estimators against the simulator's truth (OBP's <c>evaluate_performance_of_estimators</c>).</summary>
public static class OpeMetaEvaluation
{
    /// <summary>Summaries per (point, policy, estimator) in the order each first appears; reference rows are summarised too.</summary>
    public static IReadOnlyList<OpeSummary> Summarise(IReadOnlyList<OpeEstimateRow> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var groups = new Dictionary<(string, string, string), List<OpeEstimateRow>>();
        var order = new List<(string, string, string)>();
        foreach (var row in rows)
        {
            var key = (row.Point, row.Policy, row.Estimator);
            if (!groups.TryGetValue(key, out var list))
            {
                groups[key] = list = [];
                order.Add(key);
            }
            list.Add(row);
        }
        var result = new List<OpeSummary>(order.Count);
        foreach (var key in order)
        {
            var list = groups[key].Where(r => double.IsFinite(r.Estimate)).ToList();
            var errors = list.Select(r => r.Error).ToArray();
            var (low, high) = errors.Length >= 2 ? MetricStatistics.StudentTInterval(errors) : (double.NaN, double.NaN);
            var withInterval = list.Where(r => double.IsFinite(r.Low) && double.IsFinite(r.High)).ToList();
            result.Add(new OpeSummary(key.Item1, key.Item2, key.Item3, list.Count,
                Mean(list.Select(r => r.Estimate)), Mean(list.Select(r => r.Truth)), Mean(errors),
                low, high, Mean(errors.Select(e => e * e)), Mean(list.Select(r => r.RelativeError)),
                withInterval.Count == 0 ? double.NaN : withInterval.Count(r => r.Covers) / (double)withInterval.Count,
                list.Count == 0 ? double.NaN : list.Count(r => r.Warnings.Length > 0) / (double)list.Count));
        }
        return result;
    }

    private static double Mean(IEnumerable<double> values)
    {
        var finite = values.Where(double.IsFinite).ToArray();
        return finite.Length == 0 ? double.NaN : finite.Average();
    }

    /// <summary>Header of <c>ope.csv</c>.</summary>
    public const string CsvHeader = "point,repeat,seed,policy,estimator,estimate,ci_low,ci_high,truth,error,relative_error,rounds,ess_share,max_weight,unsupported_share,warnings";

    /// <summary><c>ope.csv</c>: one row per estimate (invariant culture, round-trip doubles, RFC 4180 quoting).</summary>
    public static string Csv(IReadOnlyList<OpeEstimateRow> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        return Table(CsvHeader, rows.Select(r => new[]
        {
            Quote(r.Point), I(r.Repeat), I(r.Seed), Quote(r.Policy), Quote(r.Estimator), D(r.Estimate), D(r.Low), D(r.High),
            D(r.Truth), D(r.Error), D(r.RelativeError), I(r.Rounds), D(r.EssShare), D(r.MaxWeight), D(r.UnsupportedShare), Quote(r.Warnings),
        }));
    }

    /// <summary>Header of <c>ope_summary.csv</c>.</summary>
    public const string SummaryCsvHeader = "point,policy,estimator,repeats,mean_estimate,mean_truth,bias,bias_ci_low,bias_ci_high,mse,relative_error,coverage,warned_share";

    /// <summary><c>ope_summary.csv</c>: one row per (point, policy, estimator).</summary>
    public static string SummaryCsv(IReadOnlyList<OpeSummary> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        return Table(SummaryCsvHeader, rows.Select(r => new[]
        {
            Quote(r.Point), Quote(r.Policy), Quote(r.Estimator), I(r.Repeats), D(r.MeanEstimate), D(r.MeanTruth), D(r.Bias),
            D(r.BiasLow), D(r.BiasHigh), D(r.SquaredError), D(r.RelativeError), D(r.Coverage), D(r.Warned),
        }));
    }

    /// <summary>Header of <c>policy_values.csv</c>.</summary>
    public const string TruthCsvHeader = "point,repeat,seed,policy,rounds,wins,conversions,value,cost,truth,monte_carlo,monte_carlo_half_width";

    /// <summary><c>policy_values.csv</c>: each policy's exact value and its Monte Carlo cross-check per repeat.</summary>
    public static string TruthCsv(IReadOnlyList<PolicyTruthRow> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        return Table(TruthCsvHeader, rows.Select(r => new[]
        {
            Quote(r.Point), I(r.Repeat), I(r.Seed), Quote(r.Policy), I(r.Rounds), D(r.Wins), D(r.Conversions), D(r.Value),
            D(r.Cost), D(r.Truth), D(r.MonteCarlo), D(r.MonteCarloHalfWidth),
        }));
    }

    private static string Table(string header, IEnumerable<string[]> rows)
    {
        var sb = new StringBuilder(header).Append('\n');
        foreach (var cells in rows)
        {
            sb.AppendJoin(',', cells).Append('\n');
        }
        return sb.ToString();
    }

    private static string I(long v) => v.ToString(CultureInfo.InvariantCulture);

    private static string D(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    private static string Quote(string s) =>
        s.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : s;
}
