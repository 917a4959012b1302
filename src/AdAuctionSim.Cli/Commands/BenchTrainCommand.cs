using System.Globalization;
using AdAuctionSim.Cli.Terminal;
using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Data;
using AdAuctionSim.Models.Runtime;
using AdAuctionSim.Models.Training;
using AdAuctionSim.Simulation.Engine;
using AdAuctionSim.Simulation.Output;
using AdAuctionSim.Simulation.Scenarios;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace AdAuctionSim.Cli.Commands;

/// <summary>
/// <c>adsim bench train</c>: training samples per second of each model at a batch size, against the floor its matmul
/// FLOPs and this machine's measured matmul rate allow. A benchmark, not a test: it prints numbers and asserts nothing.
/// </summary>
internal sealed class BenchTrainCommand(BenchTrainArguments arguments, CliTerminal terminal, ILogger<BenchTrainCommand> logger) : ICliCommand
{
    private const long Seed = 1;

    public async Task<int> RunAsync(CancellationToken cancellation)
    {
        var (scenario, source) = LoadScenario();
        scenario = scenario with { Traffic = scenario.Traffic with { Requests = arguments.Requests } };
        var refused = arguments.Models.Select(ModelCatalog.Get).Where(e => e.Unsupported(scenario.Depth) is not null).ToList();
        if (refused.Count > 0)
        {
            throw new CliInputException($"{source}: a funnel of depth {scenario.Depth}, which "
                + string.Join("; ", refused.Select(e => $"model \"{e.Id}\" cannot serve: {e.Unsupported(scenario.Depth)}")));
        }
        var runtime = await CliTorchRuntime.InitializeAsync(arguments.Device, arguments.Threads, Seed, $"option --device {arguments.Device}", cancellation).ConfigureAwait(false);
        var device = runtime.Device.ToString().ToLowerInvariant();
        var threads = $"{runtime.ThreadCount} intra-op thread{(runtime.ThreadCount == 1 ? "" : "s")}";

        terminal.Heading("bench train");
        KeyValueList.Write(terminal,
        [
            ("data", $"{source}: {scenario.Name}, depth {scenario.Depth}, {arguments.Requests} requests simulated into a temporary folder (not timed)"),
            ("runtime", $"TorchSharp {runtime.TorchSharpVersion} ({runtime.TorchBackend}) on {device}, {threads}"),
            ("host heap", runtime.HostAllocator),
            ("timings", $"whole training steps at batch {arguments.BatchSize}: batch gather, forward, loss, backward, optimiser update; "
                + $"per model and round an untimed warm-up (at least 10 steps, then on "
                + $"until .NET's JIT has compiled no new method for {TrainingBenchmark.JitQuietSeconds:0.#} s, at most {arguments.MaxWarmupSeconds:0.#} s), "
                + $"then at least {arguments.Seconds:0.#} s and 30 steps timed"),
            ("rounds", $"{arguments.Rounds}: every model once per round, in an order rotated each round; medians over the rounds reported, "
                + "with the range of the share"),
            ("matmul rate", "1024x1024 float32 products, measured just before each timed window (after its warm-up) and just after it"),
            ("floor", "mean of the window's two matmul rates / training FLOPs per sample (Linear layers, expert banks, tower stacks, gate banks, "
                + "attention products; training = 3 x forward)"),
        ]);

        var temp = Path.Combine(Path.GetTempPath(), $"adsim-bench-train-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            var (folder, simulateTime) = await ProgressDisplay.StatusAsync(terminal, "simulating the training data ...", () =>
            {
                var world = ScenarioFiles.BuildWorld(scenario, arguments.Scenario ?? CommandCatalog.BenchDefaultScenario, cancellation);
                return SimulationOutput.Write(world, new SimulationOutputOptions(Path.Combine(temp, "sim"), OutputFormat.Parquet),
                    new SimulationOptions { Threads = Environment.ProcessorCount }, null, cancellation).Directory;
            }, cancellation).ConfigureAwait(false);
            var (data, loadTime) = await ProgressDisplay.StatusAsync(terminal, "loading the logged view ...",
                () => TorchThread.Invoke(() => LoggedDataset.Load(LoggedView.Open(folder), runtime.Device, cancellation), cancellation), cancellation).ConfigureAwait(false);
            using (data)
            {
                terminal.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  simulated in {simulateTime.TotalSeconds:F1} s, loaded in {loadTime.TotalSeconds:F1} s (neither timed): "
                    + $"{data.CountOf(DatasetSplit.Train, false)} train impressions, {data.CountOf(DatasetSplit.Train, true)} train rows "
                    + $"with lost bids; {data.Schema.Count} fields, {data.Schema.TotalRows} embedding rows"));

                var options = new TrainerOptions
                {
                    Device = arguments.Device,
                    BatchSize = arguments.BatchSize,
                    Seed = Seed,
                    Threads = arguments.Threads,
                    WinPropensity = WinPropensitySource.Oracle,
                };
                var models = arguments.Models;
                var windows = models.ToDictionary(id => id, _ => new List<Window>(), StringComparer.Ordinal);
                var probes = new List<MatmulRate>();
                for (var round = 0; round < arguments.Rounds; round++)
                {
                    terminal.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  round {round + 1} of {arguments.Rounds}:"));
                    for (var k = 0; k < models.Count; k++)
                    {
                        cancellation.ThrowIfCancellationRequested();
                        var id = models[(k + round) % models.Count];
                        var collections = GC.CollectionCount(0);
                        var result = await TorchThread.RunAsync(() => Measure(ModelCatalog.Get(id), data, options, arguments.Seconds, arguments.MaxWarmupSeconds, cancellation), cancellation).ConfigureAwait(false);
                        collections = GC.CollectionCount(0) - collections;
                        var window = new Window(result);
                        windows[id].Add(window);
                        probes.Add(result.RateBefore);
                        probes.Add(result.RateAfter);
                        var t = result.Timing;
                        logger.LogInformation("{Model} round {Round}: {SamplesPerSecond:F0} samples/s, {Share:F1}% of FLOP floor ({Steps} steps in {Seconds:F2} s)",
                            id, round + 1, t.SamplesPerSecond, window.Share, t.Steps, t.Seconds);
                        terminal.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"    {id}: {t.Steps} steps in {t.Seconds:F2} s after {t.Warmup.Steps} warm-up steps in {t.Warmup.Seconds:F1} s; per step {1000 * t.ForwardSeconds / t.Steps:F2} ms gather + forward + loss, "
                            + $"{1000 * t.BackwardSeconds / t.Steps:F2} ms backward, {1000 * t.UpdateSeconds / t.Steps:F2} ms optimiser update; "
                            + $"matmul rate {result.RateBefore.FlopsPerSecond / 1e9:F1} GFLOP/s before the window and {result.RateAfter.FlopsPerSecond / 1e9:F1} after; "
                            + $"matmul floor {1000 * options.BatchSize * result.Flops.Training / window.Rate:F2} ms; {window.Share:F1}% of floor; "
                            + $"{collections} .NET GCs"));
                    }
                }

                var table = new TextTable("model", "parameters", "fwd MFLOP/sample", "train MFLOP/sample", "floor samples/s", "samples/s", "% of floor", "range %", "ms/step")
                    .RightAlign(1, 2, 3, 4, 5, 6, 7, 8);
                var lines = new List<string>();
                var rates = probes.Select(p => p.FlopsPerSecond).ToList();
                var medianRate = Median(rates);
                foreach (var id in models)
                {
                    var w = windows[id];
                    var first = w[0].Result;
                    var samples = Median(w.Select(x => x.Result.Timing.SamplesPerSecond));
                    var shares = w.Select(x => x.Share).ToList();
                    var share = Median(shares);
                    table.Add(id, first.Parameters.ToString(CultureInfo.InvariantCulture), F(first.Flops.Forward / 1e6, "F3"),
                        F(first.Flops.Training / 1e6, "F3"), F(medianRate / first.Flops.Training, "F0"), F(samples, "F0"), F(share, "F1"),
                        $"{F(shares.Min(), "F1")}–{F(shares.Max(), "F1")}", F(1000 * options.BatchSize / samples, "F2"));
                    lines.Add(string.Create(CultureInfo.InvariantCulture, $"train {id}: {samples:F0} samples/s, {share:F1}% of FLOP floor"));
                }
                terminal.WriteLine();
                table.Write(terminal);
                terminal.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {device}, {threads}, batch {arguments.BatchSize}; medians of {arguments.Rounds} round{(arguments.Rounds == 1 ? "" : "s")} "
                    + $"(matmul rate {rates.Min() / 1e9:F1}–{rates.Max() / 1e9:F1} GFLOP/s over the {rates.Count} measurements, median {medianRate / 1e9:F1}, "
                    + $"each the median of {probes[0].Rounds} rounds of {probes[0].Products} products; floor samples/s at the median rate; "
                    + $"each share against its own window's rates)"));
                foreach (var line in lines)
                {
                    terminal.WriteLine(line);
                }
            }
        }
        catch (InvalidDataException e)
        {
            throw new CliInputException(e.Message);
        }
        finally
        {
            TryDelete(temp);
        }
        return ExitCodes.Success;
    }

    private static Measurement Measure(ModelEntry entry, LoggedDataset data, TrainerOptions options, double seconds, double maxWarmup,
        CancellationToken cancellation)
    {
        manual_seed(Seed);
        var context = new ModelContext(data.Depth, data.Stages, data.Schema, new ModelOptions { Seed = (int)Seed });
        using var model = entry.Create(context);
        var parameters = model.parameters().Sum(p => p.numel());
        var flops = TrainingBenchmark.CountFlops(model, data, options.BatchSize);
        MatmulRate? before = null;
        var timing = TrainingBenchmark.TimeSteps(model, data, options, minSeconds: seconds, maxWarmupSeconds: maxWarmup,
            beforeTiming: () => before = TrainingBenchmark.MeasureMatmul(data.Device), cancellation: cancellation);
        var after = TrainingBenchmark.MeasureMatmul(data.Device);
        return new Measurement(parameters, flops, timing, before!, after);
    }

    private (Scenario Scenario, string Source) LoadScenario() => BenchSupport.LoadScenario(terminal, arguments.Scenario);

    private void TryDelete(string directory) => BenchSupport.TryDelete(directory, logger);

    private static string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>The middle value, or the mean of the two middle values of an even count.</summary>
    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        var m = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
    }

    /// <param name="Parameters">The model's parameter count.</param>
    /// <param name="Flops">Its FLOPs per sample.</param>
    /// <param name="Timing">The timed steps.</param>
    /// <param name="RateBefore">The matmul rate measured after the warm-up, just before the timed steps.</param>
    /// <param name="RateAfter">The matmul rate measured just after the timed steps.</param>
    private sealed record Measurement(long Parameters, FlopCount Flops, StepTiming Timing, MatmulRate RateBefore, MatmulRate RateAfter);

    /// <summary>
    /// One model's timing window in one round, scaled by the matmul rates measured next to it: the host's speed drifts over
    /// the minutes a round takes (rates 64–122 GFLOP/s were seen within one run), and a rate measured once per round
    /// made the share of a window late in the round swing with that drift rather than with the model.
    /// </summary>
    private sealed record Window(Measurement Result)
    {
        /// <summary>The mean of the rates measured just before and just after the window.</summary>
        public double Rate => (Result.RateBefore.FlopsPerSecond + Result.RateAfter.FlopsPerSecond) / 2;

        /// <summary>Percent of the FLOP floor at <see cref="Rate"/>.</summary>
        public double Share => 100 * Result.Timing.SamplesPerSecond * Result.Flops.Training / Rate;
    }
}
