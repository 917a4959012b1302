using AdAuctionSim.Cli.Runs;
using AdAuctionSim.Cli.Terminal;
using Microsoft.Extensions.Logging;

namespace AdAuctionSim.Cli.Commands;

/// <summary>
/// <c>adsim scenario validate &lt;file&gt;</c>: loads and checks the scenario, builds its world (some checks need it),
/// checks the run sections against the model catalog as <c>adsim run</c> would, and prints a compact resolved summary.
/// Invalid files throw <see cref="Simulation.Scenarios.ScenarioValidationException"/>.
/// </summary>
internal sealed class ScenarioValidateCommand(ScenarioFileArguments arguments, CliTerminal terminal, ILogger<ScenarioValidateCommand> logger)
    : ICliCommand
{
    public async Task<int> RunAsync(CancellationToken cancellation)
    {
        var scenario = ScenarioFiles.Load(terminal, arguments.File);
        var plan = RunPlan.Load(terminal, arguments.File);
        logger.LogInformation("Loaded {File}; building its world to finish the checks", terminal.Resolve(arguments.File));
        var (world, elapsed) = await ProgressDisplay.StatusAsync(terminal, "building world ...",
            () => ScenarioFiles.BuildWorld(scenario, arguments.File, cancellation), cancellation).ConfigureAwait(false);
        if (plan.Dials.Count > 0)
        {
            // Each sweep point's world too: a value can pass the field rules and still leave a world that cannot be built.
            var (_, sweepTime) = await ProgressDisplay.StatusAsync(terminal, $"building {plan.WorldsText} ...", () => plan.BuildWorlds(cancellation),
                cancellation).ConfigureAwait(false);
            elapsed += sweepTime;
        }
        terminal.WriteLine($"OK: {arguments.File} ({scenario.Name}, depth {scenario.Depth}, {scenario.Traffic.Requests} requests)");
        var rows = ScenarioFiles.Describe(scenario).ToList();
        rows.Add(("world", $"built in {elapsed.TotalSeconds:F1} s{(plan.Dials.Count > 0 ? $" (and every sweep point's)" : "")}: {world.Users} users, {world.Ads} ads; "
            + $"competitors' bid level solved for target win rate {ScenarioFiles.F(scenario.Auction.TargetWinRate)}"));
        rows.Add(("run", plan.Describe() + (plan.Dials.Count == 0 ? "" : $"; sweep over {string.Join(" × ", plan.Dials)}")));
        if (plan.Ope is { } ope)
        {
            rows.Add(("ope", ope.Describe().Replace("ope: ", "", StringComparison.Ordinal)));
        }
        KeyValueList.Write(terminal, rows);
        return ExitCodes.Success;
    }
}
