using AdAuctionSim.Cli.Terminal;

namespace AdAuctionSim.Cli;

/// <summary>Entry point of the <c>adsim</c> command.</summary>
public static class Program
{
    /// <summary>Runs <c>adsim</c> on the process's console and returns its exit code (see <see cref="ExitCodes"/>).</summary>
    public static Task<int> Main(string[] args) => CliApp.RunAsync(args, CliTerminal.FromConsole(), CancellationToken.None);
}
