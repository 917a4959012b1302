using System.Globalization;
using AdAuctionSim.Cli.CommandLine;
using AdAuctionSim.Simulation.Output;

namespace AdAuctionSim.Cli.Commands;

/// <summary>Arguments of <c>adsim simulate</c>, checked by the parser.</summary>
internal sealed record SimulateArguments(
    string Scenario, string? Out, OutputFormat Format, long? Requests, long? Seed, int Threads, bool Force);

/// <summary>Arguments of <c>adsim scenario validate</c> and <c>adsim scenario show</c>.</summary>
internal sealed record ScenarioFileArguments(string File);

/// <summary>Arguments of <c>adsim bench simulate</c>.</summary>
internal sealed record BenchSimulateArguments(long Requests, string? Scenario, int Threads);

/// <summary>Every command of <c>adsim</c>: its options, their limits and defaults, and the handler that runs it.</summary>
internal static class CommandCatalog
{
    /// <summary>Same range as the scenario field <c>traffic.requests</c>.</summary>
    public const long MaxRequests = 10_000_000_000;
    public const int MaxThreads = 1024;
    public const long DefaultBenchRequests = 20_000_000;
    public const string BenchDefaultScenario = "scenarios/baseline.json";

    private static readonly string Cores = Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture);

    private static OptionSpec Threads(string what) => new("threads", OptionKind.Integer, $"Worker threads for {what}")
    {
        ValueName = "N", Min = 1, Max = MaxThreads, Default = $"processor count, here {Cores}",
    };

    public static IReadOnlyList<CommandSpec> All { get; } =
    [
        new CommandSpec(
            "simulate",
            "Simulate a scenario and write its logs, truth and manifest",
            "Builds the scenario's world, simulates its requests and writes impressions, lost bids, the ground truth "
            + "and a manifest (with the fully resolved scenario and the realised bias figures) into one directory. "
            + "The directory appears only when everything is written: a failed or cancelled run leaves nothing.",
            [new ArgumentSpec("<scenario.json>", "scenario file: JSON, comments and trailing commas allowed")],
            [
                new OptionSpec("out", OptionKind.Text, "Output directory") { ValueName = "DIR", Default = "simulations/<scenario name>" },
                new OptionSpec("format", OptionKind.Choice, "File format of the logs") { ValueName = "FORMAT", Choices = ["parquet", "csv"], Default = "parquet" },
                new OptionSpec("requests", OptionKind.Integer, "Override traffic.requests")
                    { ValueName = "N", Min = 1, Max = MaxRequests, Default = "the scenario's" },
                new OptionSpec("seed", OptionKind.Integer, "Override the scenario seed") { ValueName = "N", Min = 0, Max = long.MaxValue, Default = "the scenario's" },
                Threads("simulation"),
                new OptionSpec("force", OptionKind.Flag, "Replace the output directory if it exists") { Default = "off: an existing directory is an error" },
            ],
            typeof(SimulateCommand),
            p => new SimulateArguments(
                p.Arguments[0],
                p.Text("out"),
                p.Text("format") == "csv" ? OutputFormat.Csv : OutputFormat.Parquet,
                p.Integer("requests"),
                p.Integer("seed"),
                (int)(p.Integer("threads") ?? Environment.ProcessorCount),
                p.Flag("force"))),
        TrainCommandSpec.Create(),
        EvaluateCommandSpec.Evaluate(),
        RunCommandSpec.Create(),
        OpeCommandSpec.Ope(),
        OpeCommandSpec.ExportObp(),
        RunsCommandSpec.List(),
        RunsCommandSpec.Show(),
        RunsCommandSpec.Compare(),
        new CommandSpec(
            "scenario validate",
            "Check a scenario file and print its resolved summary",
            "Loads the scenario, fills in defaults and checks every field (all problems are listed at once), then builds "
            + "its world to check what needs it (for example a reserve price that makes the target win rate unreachable).",
            [new ArgumentSpec("<file>", "scenario file")],
            [],
            typeof(ScenarioValidateCommand),
            p => new ScenarioFileArguments(p.Arguments[0])),
        new CommandSpec(
            "scenario show",
            "Print the fully resolved scenario as JSON",
            "Loads and checks the scenario and prints it with every default filled in: the world as written into each "
                + "simulation manifest, then the run sections (models, training, evaluation, and sweep and ope when the file has "
                + "them: without them a run has no sweep and no off-policy study) as adsim run resolves them (training.threads as the file gives it; 0 is the processor count). The output is itself a valid scenario file "
                + "and resolves to the same run.",
            [new ArgumentSpec("<file>", "scenario file")],
            [],
            typeof(ScenarioShowCommand),
            p => new ScenarioFileArguments(p.Arguments[0])),
        new CommandSpec(
            "bench simulate",
            "Measure simulation speed in memory and to Parquet, and peak memory",
            "Times (a) the simulation alone with a sink that discards the rows (world build excluded), and (b) the "
            + "simulation written to Parquet in a temporary directory (deleted afterwards) at N/8 and N/4 requests, "
            + "with the peak working set of each phase. The last line sums it up:" + Environment.NewLine
            + "  simulate: X requests/s in memory, Y requests/s to parquet, Z MiB peak",
            [],
            [
                new OptionSpec("requests", OptionKind.Integer, "Requests N for the in-memory phase (Parquet phases use N/8 and N/4)")
                    { ValueName = "N", Min = 1000, Max = MaxRequests, Default = DefaultBenchRequests.ToString(CultureInfo.InvariantCulture) },
                new OptionSpec("scenario", OptionKind.Text, "Scenario file")
                    { ValueName = "FILE", Default = $"{BenchDefaultScenario} if it exists, else the built-in default scenario" },
                Threads("the simulation"),
            ],
            typeof(BenchSimulateCommand),
            p => new BenchSimulateArguments(
                p.Integer("requests") ?? DefaultBenchRequests,
                p.Text("scenario"),
                (int)(p.Integer("threads") ?? Environment.ProcessorCount))),
        BenchTrainCommandSpec.Create(),
        EvaluateCommandSpec.BenchMetrics(),
    ];
}
