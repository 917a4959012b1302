using System.Globalization;
using AdAuctionSim.Cli.CommandLine;
using AdAuctionSim.Evaluation.Runs;

namespace AdAuctionSim.Cli.Commands;

/// <summary>Arguments of <c>adsim evaluate</c>. Baseline and Out are null for their defaults.</summary>
internal sealed record EvaluateArguments(string RunDirectory, string? Baseline, string? Out, int Threads, int Bootstrap, bool Force = false);

/// <summary>Arguments of <c>adsim bench metrics</c>.</summary>
internal sealed record BenchMetricsArguments(long Rows, int Threads);

/// <summary>The <c>adsim evaluate</c> and <c>adsim bench metrics</c> commands' options and binding; registered in <see cref="CommandCatalog.All"/>.</summary>
internal static class EvaluateCommandSpec
{
    public const string DefaultBaseline = "single-task";
    public const string DefaultOutFile = "metrics.csv";
    public const long DefaultBenchRows = 10_000_000;
    public const long MaxBenchRows = 1_000_000_000;
    public const int MaxBootstrap = 100_000;

    private static readonly RunEvaluatorOptions Defaults = new();

    private static OptionSpec Threads(string what) => new("threads", OptionKind.Integer, $"Worker threads for {what}")
    {
        ValueName = "N", Min = 1, Max = CommandCatalog.MaxThreads, Default = $"processor count, here {Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture)}",
    };

    public static CommandSpec Evaluate() => new(
        "evaluate",
        "Score a training run's predictions against the simulation's truth",
        "Reads a training run (train.json, predictions/) and its simulation's truth and logs, and scores every model and the "
        + "reference rows truth (p̂ = q) and logging (the logging policy's estimates) on the test split: per stage and space "
        + "(D, O, C, O\\C, D\\O) AUC on logged labels and on potential outcomes, log loss, normalised entropy, ECE, calibration "
        + "ratio, bias, MAE and RMSE against the true rates, for the conditional q̂_k and (post-click stages) the cumulative r̂_k, "
        + "and (post-click stages, on D, O and D\\O) the dependence ratio that closes the cumulative calibration ratio. When the run "
        + "fitted a win model (win_propensity.parquet), its Ŵ(b | x) at the logged bid against the auction outcomes and the truth, "
        + "its π̂(x) against the true P(win | x), and the share of the win selection in mean r_K its weights close (models.md §14.4). "
        + "Prints the headline figures and writes metrics.csv, one row per model × stage × space × metric; the file appears only "
        + "when complete (an existing file is kept unless --force is given).",
        [new ArgumentSpec("<run-dir>", "folder written by adsim train, or a simulation folder (then its runs/train)")],
        [
            new OptionSpec("baseline", OptionKind.Text, "Model the others are compared with") { ValueName = "MODEL", Default = $"{DefaultBaseline} if trained, else {RunEvaluator.LoggingModel}" },
            new OptionSpec("out", OptionKind.Text, "Metrics file") { ValueName = "FILE", Default = $"<run-dir>/{DefaultOutFile}" },
            Threads("models evaluated at once (results do not depend on it)"),
            new OptionSpec("bootstrap", OptionKind.Integer, "Poisson-bootstrap resamples for the intervals of bias, MAE, RMSE and AUC on D and C (0: none)")
                { ValueName = "N", Min = 0, Max = MaxBootstrap, Default = Defaults.BootstrapResamples.ToString(CultureInfo.InvariantCulture) },
            new OptionSpec("force", OptionKind.Flag, "Replace the metrics file if it exists") { Default = "off: an existing file is an error" },
        ],
        typeof(EvaluateCommand),
        p => new EvaluateArguments(
            p.Arguments[0],
            p.Text("baseline"),
            p.Text("out"),
            (int)(p.Integer("threads") ?? Environment.ProcessorCount),
            (int)(p.Integer("bootstrap") ?? Defaults.BootstrapResamples),
            p.Flag("force")));

    public static CommandSpec BenchMetrics() => new(
        "bench metrics",
        "Measure AUC, log loss and ECE together over N rows",
        "Draws N synthetic labels and float32-rounded scores (many ties) from a fixed seed, then times AUC (exact, ties half), "
        + "log loss and 20-bin equal-mass ECE computed together: one radix sort of the scores with the labels packed into the "
        + "keys, one walk over the tie groups, and the log loss on a second thread. Median of three runs after an untimed "
        + "warm-up that also allocates the sort buffers. The last line sums it up:" + Environment.NewLine
        + "  metrics: X s for N rows",
        [],
        [
            new OptionSpec("rows", OptionKind.Integer, "Rows N") { ValueName = "N", Min = 1000, Max = MaxBenchRows, Default = DefaultBenchRows.ToString(CultureInfo.InvariantCulture) },
            Threads("the metrics (1: everything on one thread)"),
        ],
        typeof(BenchMetricsCommand),
        p => new BenchMetricsArguments(p.Integer("rows") ?? DefaultBenchRows, (int)(p.Integer("threads") ?? Environment.ProcessorCount)));
}
