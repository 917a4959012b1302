using AdAuctionSim.Cli.CommandLine;
using AdAuctionSim.Cli.Runs;

namespace AdAuctionSim.Cli.Commands;

/// <summary>Arguments of <c>adsim run</c>. Out and Registry are null for their defaults.</summary>
internal sealed record RunArguments(string Scenario, string? Out, string? Resume, string? Registry);

/// <summary>The <c>adsim run</c> command's options and binding; registered in <see cref="CommandCatalog.All"/>.</summary>
internal static class RunCommandSpec
{
    public static OptionSpec RegistryOption() => new("registry", OptionKind.Text, "Run registry (a LiteDB file shared by concurrent runs)")
    {
        ValueName = "FILE", Default = RunPlan.DefaultRegistry.Replace('\\', '/'),
    };

    public static CommandSpec Create() => new(
        "run",
        "Simulate, train, evaluate and report a scenario (with its sweep and repeats)",
        "Runs the whole study a scenario file describes: for every sweep point and repeat (each repeat with a fresh world "
        + "seed) it simulates, trains each model of the scenario's \"models\" list (all by default), evaluates them against the "
        + "truth and finally writes reports/<run-id>/: report.html (plots embedded), report.md, metrics.csv, summary.csv and "
        + "plots/. The run is recorded in the registry (running, then complete, failed or cancelled). Every finished phase "
        + "(a simulation, a trained model, an evaluation) is kept under work/, so --resume <run-id> completes a cancelled or "
        + "failed run without redoing them and gives the same metrics as an uninterrupted run.",
        [new ArgumentSpec("<scenario.json>", "scenario file, with optional models, training, evaluation and sweep sections")],
        [
            new OptionSpec("out", OptionKind.Text, "Folder the run folder goes into") { ValueName = "DIR", Default = RunPlan.DefaultOut },
            new OptionSpec("resume", OptionKind.Text, "Complete this earlier run (same scenario) instead of starting a new one") { ValueName = "RUN-ID" },
            RegistryOption(),
        ],
        typeof(RunCommand),
        p => new RunArguments(p.Arguments[0], p.Text("out"), p.Text("resume"), p.Text("registry")));
}
