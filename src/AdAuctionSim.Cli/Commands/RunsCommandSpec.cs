using System.Globalization;
using AdAuctionSim.Cli.CommandLine;

namespace AdAuctionSim.Cli.Commands;

/// <summary>Arguments of <c>adsim runs list</c>.</summary>
internal sealed record RunsListArguments(string? Registry, int Limit);

/// <summary>Arguments of <c>adsim runs show</c>.</summary>
internal sealed record RunsShowArguments(string Id, string? Registry);

/// <summary>Arguments of <c>adsim compare</c>.</summary>
internal sealed record CompareArguments(string First, string Second, string? Registry, bool AllSpaces);

/// <summary>The registry commands (<c>runs list</c>, <c>runs show</c>, <c>compare</c>); each registered in <see cref="CommandCatalog.All"/>.</summary>
internal static class RunsCommandSpec
{
    public const int DefaultLimit = 20;

    public static CommandSpec List() => new(
        "runs list",
        "List the runs of the registry, newest first",
        "One line per run: id, status, scenario, models, points × repeats, start time and wall time. A run still marked running "
        + "whose process has ended on this machine is shown as failed (process ended).",
        [],
        [
            RunCommandSpec.RegistryOption(),
            new OptionSpec("limit", OptionKind.Integer, "Most runs to list") { ValueName = "N", Min = 1, Max = 100_000, Default = DefaultLimit.ToString(CultureInfo.InvariantCulture) },
        ],
        typeof(RunsListCommand),
        p => new RunsListArguments(p.Text("registry"), (int)(p.Integer("limit") ?? DefaultLimit)));

    public static CommandSpec Show() => new(
        "runs show",
        "Show one run: scenario, code version, status, timings, main metrics and files",
        "Prints what the registry holds for a run: its resolved scenario, code version, device and threads, status (with the "
        + "error of a failed run), the time of each phase, the summary of every metric on D and the paths of its report.",
        [new ArgumentSpec("<run-id>", "a run id from 'adsim runs list'")],
        [RunCommandSpec.RegistryOption()],
        typeof(RunsShowCommand),
        p => new RunsShowArguments(p.Arguments[0], p.Text("registry")));

    public static CommandSpec Compare() => new(
        "compare",
        "Compare the metrics of two runs side by side",
        "Matches the metric summaries of two runs by sweep point, model, stage, space and metric and prints both means with "
        + "their 95% intervals and the difference (second minus first). Only the space D unless --all-spaces.",
        [new ArgumentSpec("<run-id>", "first run"), new ArgumentSpec("<run-id>", "second run")],
        [
            RunCommandSpec.RegistryOption(),
            new OptionSpec("all-spaces", OptionKind.Flag, "Every space (D, O, C, O\\C, D\\O), not only D") { Default = "off" },
        ],
        typeof(CompareCommand),
        p => new CompareArguments(p.Arguments[0], p.Arguments[1], p.Text("registry"), p.Flag("all-spaces")));
}
