using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using AdAuctionSim.Cli.Terminal;
using AdAuctionSim.Evaluation.Metrics;

namespace AdAuctionSim.Cli.Commands;

/// <summary>
/// <c>adsim bench metrics</c>: seconds for AUC, log loss and ECE together over N rows (DESIGN.md §9). A benchmark,
/// not a test: it prints numbers and asserts nothing.
/// </summary>
internal sealed class BenchMetricsCommand(BenchMetricsArguments arguments, CliTerminal terminal) : ICliCommand
{
    private const int Repeats = 3;
    private const int Seed = 20260101;

    public Task<int> RunAsync(CancellationToken cancellation)
    {
        var n = (int)Math.Min(arguments.Rows, Array.MaxLength);
        var parallel = arguments.Threads > 1;
        terminal.Heading("bench metrics");
        KeyValueList.Write(terminal,
        [
            ("data", $"{n} rows: label ~ Bernoulli(q), score = float32(σ(logit q + noise)): many tied scores; seed {Seed}"),
            ("work", "AUC (exact, ties half) + log loss + ECE (20 equal-mass bins): one radix sort with the label packed into the "
                + "key, one walk over the tie groups; log loss " + (parallel ? "on a second thread during the sort" : "after, on the same thread")),
            ("machine", $"{Environment.ProcessorCount} cores; {arguments.Threads} thread{(arguments.Threads == 1 ? "" : "s")}: "
                + (parallel ? $"log loss on one, the radix sort on {Math.Max(1, arguments.Threads - 1)}; " : "everything on one; ")
                + $"{RuntimeInformation.FrameworkDescription} on {RuntimeInformation.OSDescription} {RuntimeInformation.ProcessArchitecture}"),
        ]);

        var (scores, labels) = Generate(n);
        cancellation.ThrowIfCancellationRequested();
        // With several threads one of them computes the log loss while the others sort.
        var ranking = new ScoreRanking { Threads = Math.Max(1, arguments.Threads - (parallel ? 1 : 0)) };
        var clock = Stopwatch.StartNew();
        var warm = BinaryMetrics.Evaluate(scores, labels, ranking, parallel, BinaryMetrics.CalibrationBins, null);
        terminal.WriteLine();
        terminal.WriteLine($"warm-up (not counted: compiles the code and allocates the sort buffers): {S(clock.Elapsed.TotalSeconds)}");
        terminal.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  AUC {warm.Auc.Value:F6}, log loss {warm.LogLoss.Value:F6}, NE {warm.NormalisedEntropy.Value:F6}, ECE {warm.Ece.Value:F6}"));

        var times = new double[Repeats];
        for (var r = 0; r < Repeats; r++)
        {
            cancellation.ThrowIfCancellationRequested();
            var phases = new List<string>();
            clock.Restart();
            var figures = BinaryMetrics.Evaluate(scores, labels, ranking, parallel, BinaryMetrics.CalibrationBins,
                (phase, seconds) => phases.Add($"{phase} {S(seconds)}"));
            times[r] = clock.Elapsed.TotalSeconds;
            if (figures != warm)
            {
                throw new InvalidOperationException("the figures differ between runs over the same rows");
            }
            terminal.WriteLine($"run {r + 1}: {S(times[r])} ({string.Join("; ", phases)})");
        }
        Array.Sort(times);
        terminal.WriteLine(string.Create(CultureInfo.InvariantCulture, $"metrics: {times[Repeats / 2]:F3} s for {n} rows"));
        return Task.FromResult(ExitCodes.Success);
    }

    private static (double[] Scores, bool[] Labels) Generate(int n)
    {
        var random = new Random(Seed);
        var scores = new double[n];
        var labels = new bool[n];
        for (var i = 0; i < n; i++)
        {
            // Box–Muller-free logit: the difference of two uniforms' logs is logistic, spread enough for the test.
            var logit = -1.5 + (1.2 * (Math.Log(random.NextDouble() + 1e-12) - Math.Log(random.NextDouble() + 1e-12)));
            var q = 1 / (1 + Math.Exp(-logit));
            labels[i] = random.NextDouble() < q;
            scores[i] = (float)(1 / (1 + Math.Exp(-(logit + ((random.NextDouble() - 0.5) * 1.5)))));
        }
        return (scores, labels);
    }

    private static string S(double seconds) => seconds.ToString("F3", CultureInfo.InvariantCulture) + " s";
}
