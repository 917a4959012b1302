namespace AdAuctionSim.Cli.Commands;

/// <summary>One verb of the <c>adsim</c> command. Returns the exit code; bad input is thrown (see <see cref="CliApp"/>).</summary>
internal interface ICliCommand
{
    Task<int> RunAsync(CancellationToken cancellation);
}
