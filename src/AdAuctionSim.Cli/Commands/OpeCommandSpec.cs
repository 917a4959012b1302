using System.Globalization;
using AdAuctionSim.Cli.CommandLine;
using AdAuctionSim.Cli.Runs;
using AdAuctionSim.Simulation.OffPolicy;

namespace AdAuctionSim.Cli.Commands;

/// <summary>Arguments of <c>adsim ope</c>. Out is null for its default.</summary>
internal sealed record OpeArguments(string Scenario, string? Out, int Threads, bool Force);

/// <summary>Arguments of <c>adsim export-obp</c>. Out is null for its default; Split null for every split.</summary>
internal sealed record ExportObpArguments(string Simulation, string? Out, string? Split, string Reward, bool Force);

/// <summary>The <c>adsim ope</c> and <c>adsim export-obp</c> commands' options and binding; registered in <see cref="CommandCatalog.All"/>.</summary>
internal static class OpeCommandSpec
{
    public const string ExportFolder = "obp";

    public static CommandSpec Ope() => new(
        "ope",
        "Value target policies off-policy and compare every estimator with the true value",
        "Reads the scenario's \"ope\" section (target policies over the logged action space of candidate ad × bid level, the "
        + "reward, the reward model) and, for every sweep point and repeat, simulates, trains the models the policies score "
        + "with, estimates each policy's value from the logs by DM, IPS, clipped IPS, SNIPS, DR, SNDR and Switch-DR with "
        + "bootstrap intervals and weight diagnostics, and computes its exact true value from the simulator's probabilities "
        + "on the same requests, with an on-policy Monte Carlo cross-check. Writes report.html (plots embedded), report.md, "
        + "ope.csv (every estimate), ope_summary.csv (squared and relative error against the truth across repeats) and "
        + "policy_values.csv. The folder appears only when complete.",
        [new ArgumentSpec("<scenario.json>", "scenario file with an \"ope\" section (see scenarios/ope-bias.json)")],
        [
            new OptionSpec("out", OptionKind.Text, "Output directory") { ValueName = "DIR", Default = $"{RunPlan.DefaultOut}/ope-<scenario name>" },
            new OptionSpec("threads", OptionKind.Integer, "Worker threads for simulation and replay (results do not depend on it)")
            {
                ValueName = "N", Min = 1, Max = CommandCatalog.MaxThreads,
                Default = $"processor count, here {Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture)}",
            },
            new OptionSpec("force", OptionKind.Flag, "Replace the output directory if it exists") { Default = "off: an existing directory is an error" },
        ],
        typeof(OpeCommand),
        p => new OpeArguments(p.Arguments[0], p.Text("out"), (int)(p.Integer("threads") ?? Environment.ProcessorCount), p.Flag("force")));

    public static CommandSpec ExportObp() => new(
        "export-obp",
        "Write a simulation's logs as Open Bandit Pipeline bandit feedback (Parquet and CSV)",
        "Reads the logged view of a simulation (impressions and lost bids, never the truth) and writes bandit_feedback.parquet, "
        + "bandit_feedback.csv (one row per request: action = candidate × bid level, slot, reward, pscore, context fields, "
        + "candidate ads) and bandit_feedback.json (n_rounds, n_actions, what each column means), so that OBP's estimators can "
        + "be run on the same data. The folder appears only when complete.",
        [new ArgumentSpec("<simulation-dir>", "folder written by adsim simulate")],
        [
            new OptionSpec("out", OptionKind.Text, "Output directory") { ValueName = "DIR", Default = $"<simulation-dir>/{ExportFolder}" },
            new OptionSpec("split", OptionKind.Choice, "Only the requests of this split") { ValueName = "SPLIT", Choices = ["train", "validation", "test"], Default = "every request" },
            new OptionSpec("reward", OptionKind.Choice, "What the reward column holds") { ValueName = "REWARD", Choices = [.. OpeRewards.Ids], Default = "value" },
            new OptionSpec("force", OptionKind.Flag, "Replace the output directory if it exists") { Default = "off: an existing directory is an error" },
        ],
        typeof(ExportObpCommand),
        p => new ExportObpArguments(p.Arguments[0], p.Text("out"), p.Text("split"), p.Text("reward") ?? "value", p.Flag("force")));
}
