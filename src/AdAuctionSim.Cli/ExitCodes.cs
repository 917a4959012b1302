namespace AdAuctionSim.Cli;

/// <summary>Exit codes of <c>adsim</c>.</summary>
public static class ExitCodes
{
    public const int Success = 0;
    /// <summary>An unexpected error (a bug, a full disk): one line, the stack trace with --verbose.</summary>
    public const int Failure = 1;
    /// <summary>Bad input: arguments, scenario file, or an output directory that exists without --force.</summary>
    public const int BadInput = 2;
    /// <summary>Cancelled by Ctrl+C (128 + SIGINT, as shells report it).</summary>
    public const int Cancelled = 130;
}
