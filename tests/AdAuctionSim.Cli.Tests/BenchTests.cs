using System.Globalization;
using System.Text.RegularExpressions;

namespace AdAuctionSim.Cli.Tests;

/// <summary><c>adsim bench simulate</c> and <c>bench train</c> run and end with their summary lines. No speed is asserted: speed targets are not tests.</summary>
/// <remarks>
/// <c>bench train</c> seeds torch and sets its thread count, both process-wide: run beside a training test, it changed
/// that test's initialisation and batch order (a resumed run's predictions then differed from the uninterrupted run's
/// in CI), so the class shares the training tests' collection.
/// </remarks>
[Collection(TorchTrainingCollection.Name)]
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

    [Fact]
    public void Bench_train_times_every_model_once_per_round_in_rotated_order_and_ends_with_one_line_per_model()
    {
        using var sandbox = new CliSandbox();

        var result = sandbox.Run("bench", "train", "--model", "shared-bottom,esmm", "--requests", "20000", "--batch", "256",
            "--seconds", "1", "--rounds", "2", "--threads", "1", "--max-warmup", "1");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Matches(@"^train shared-bottom: \d+ samples/s, \d+\.\d% of FLOP floor$", result.OutLines[^2]);
        Assert.Matches(@"^train esmm: \d+ samples/s, \d+\.\d% of FLOP floor$", result.OutLines[^1]);
        Assert.Equal(["1", "2"], result.OutLines.Select(l => Regex.Match(l, @"^  round (\d) of 2:$"))
            .Where(m => m.Success).Select(m => m.Groups[1].Value));
        // One window per model and round, each with the matmul rates measured just before and after it; the second round
        // starts with the model the first ended with.
        Assert.Equal(["shared-bottom", "esmm", "esmm", "shared-bottom"], result.OutLines
            .Select(l => Regex.Match(l, @"^    ([a-z-]+): \d+ steps in [\d.]+ s after \d+ warm-up steps in [\d.]+ s; .*"
                + @"; matmul rate [\d.]+ GFLOP/s before the window and [\d.]+ after; matmul floor [\d.]+ ms; [\d.]+% of floor; "))
            .Where(m => m.Success).Select(m => m.Groups[1].Value));
        Assert.Contains(result.OutLines, l => l.Contains("GFLOP/s over the 8 measurements", StringComparison.Ordinal));
        Assert.Contains(result.OutLines, l => l.Contains("medians of 2 rounds", StringComparison.Ordinal));
        // Every window warmed up for at least 10 steps (then until the JIT was quiet or --max-warmup had passed).
        var warmups = result.OutLines.Select(l => Regex.Match(l, @" after (\d+) warm-up steps in [\d.]+ s; ")).Where(m => m.Success).ToList();
        Assert.Equal(4, warmups.Count);
        Assert.All(warmups, m => Assert.True(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) >= 10, m.Value));
        Assert.Empty(sandbox.Entries());
        Assert.Empty(Directory.GetDirectories(Path.GetTempPath(), $"adsim-bench-train-{Environment.ProcessId}-*"));
    }
}
