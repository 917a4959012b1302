using AdAuctionSim.Cli.Runs;
using AdAuctionSim.Cli.Terminal;

namespace AdAuctionSim.Cli.Commands;

/// <summary>
/// <c>adsim scenario show &lt;file&gt;</c>: prints the fully resolved scenario as JSON: the world as written into each
/// simulation manifest, then the run sections (models, training, evaluation, sweep, ope) as <c>adsim run</c> resolves
/// them, every default written out. The output is itself a valid scenario file.
/// </summary>
internal sealed class ScenarioShowCommand(ScenarioFileArguments arguments, CliTerminal terminal) : ICliCommand
{
    public Task<int> RunAsync(CancellationToken cancellation)
    {
        var json = RunPlan.Load(terminal, arguments.File).CompleteJson;
        // Plain writer even on a terminal: the output is meant to be redirected into a file or piped.
        terminal.Out.Write(json.EndsWith('\n') ? json : json + Environment.NewLine);
        return Task.FromResult(ExitCodes.Success);
    }
}
