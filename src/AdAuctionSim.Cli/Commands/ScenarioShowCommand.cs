using AdAuctionSim.Cli.Terminal;
using AdAuctionSim.Simulation.Scenarios;

namespace AdAuctionSim.Cli.Commands;

/// <summary><c>adsim scenario show &lt;file&gt;</c>: prints the fully resolved scenario as JSON (as written into each manifest).</summary>
internal sealed class ScenarioShowCommand(ScenarioFileArguments arguments, CliTerminal terminal) : ICliCommand
{
    public Task<int> RunAsync(CancellationToken cancellation)
    {
        var scenario = ScenarioFiles.Load(terminal, arguments.File);
        // Plain writer even on a terminal: the output is meant to be redirected into a file or piped.
        var json = ScenarioJson.Serialize(scenario);
        terminal.Out.Write(json.EndsWith('\n') ? json : json + Environment.NewLine);
        return Task.FromResult(ExitCodes.Success);
    }
}
