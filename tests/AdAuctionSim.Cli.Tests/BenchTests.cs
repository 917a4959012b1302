namespace AdAuctionSim.Cli.Tests;

/// <summary><c>adsim bench simulate</c> runs and ends with its summary line. No speed is asserted: speed targets are not tests.</summary>
public sealed class BenchTests
{
    [Fact]
    public void Bench_simulate_ends_with_the_summary_line()
    {
        using var sandbox = new CliSandbox();

        var result = sandbox.Run("bench", "simulate", "--requests", "200000");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Matches(@"^simulate: \d+ requests/s in memory, \d+ requests/s to parquet, \d+ MiB peak$", result.OutLines[^1]);
        Assert.Contains(result.OutLines, l => l.Contains("built-in default scenario", StringComparison.Ordinal));
        Assert.Contains(result.OutLines, l => l.StartsWith("(b) to parquet, N/8 = 25000 requests", StringComparison.Ordinal));
        Assert.Contains(result.OutLines, l => l.StartsWith("(b) to parquet, N/4 = 50000 requests", StringComparison.Ordinal));
        Assert.Empty(sandbox.Entries());
        Assert.Empty(Directory.GetDirectories(Path.GetTempPath(), $"adsim-bench-{Environment.ProcessId}-*"));
    }
}
