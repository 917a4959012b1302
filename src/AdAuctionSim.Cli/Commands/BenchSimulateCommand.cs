using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime;
using System.Runtime.InteropServices;
using AdAuctionSim.Cli.Terminal;
using AdAuctionSim.Simulation.Engine;
using AdAuctionSim.Simulation.Output;
using AdAuctionSim.Simulation.Scenarios;
using AdAuctionSim.Simulation.World;
using Microsoft.Extensions.Logging;

namespace AdAuctionSim.Cli.Commands;

/// <summary>
/// <c>adsim bench simulate</c>: requests per second of the simulation alone and written to Parquet, and the peak
/// working set, on this machine. A benchmark, not a test: it prints numbers and asserts nothing.
/// </summary>
internal sealed class BenchSimulateCommand(BenchSimulateArguments arguments, CliTerminal terminal, ILogger<BenchSimulateCommand> logger)
    : ICliCommand
{
    /// <summary>Requests of the warm-up run (at most N/8).</summary>
    private const long WarmupRequests = 200_000;

    /// <summary>
    /// Runs of each headline phase. Wall-clock rates on a shared virtual machine vary by ±10% from run to run; the
    /// median of three is what the summary line reports, and every run is printed.
    /// </summary>
    private const int Repeats = 3;

    /// <summary>Work timed in a phase: simulate the world, report progress, return the bytes written.</summary>
    private delegate long PhaseWork(WorldModel world, IProgress<long>? progress, CancellationToken cancellation);

    public async Task<int> RunAsync(CancellationToken cancellation)
    {
        var (scenario, source) = LoadScenario();
        var n = arguments.Requests;
        var resets = PeakMemory.CanReset();

        terminal.Heading("bench simulate");
        KeyValueList.Write(terminal,
        [
            ("scenario", $"{source}: {scenario.Name}, depth {scenario.Depth}, {scenario.Traffic.Users} users, {scenario.Traffic.Ads} ads"),
            ("machine", $"{Environment.ProcessorCount} cores; {arguments.Threads} simulation threads; "
                + $"{RuntimeInformation.FrameworkDescription} on {RuntimeInformation.OSDescription} {RuntimeInformation.ProcessArchitecture}; "
                + $"{(GCSettings.IsServerGC ? "server" : "workstation")} GC; {BuildKind()}"),
            ("timings", "wall clock of the simulation run only; each phase first builds its own world, which is not timed (shown apart)"),
            ("peak", resets
                ? "peak working set of each phase, its world build included (high-water mark reset before each phase)"
                : "peak working set of the process so far (this OS cannot reset the high-water mark, so later phases include earlier ones)"),
        ]);

        // Warm-up: JIT-compile (and tier up) the simulation and Parquet paths so the first timed phase is not charged for them.
        var warmup = Math.Max(1, Math.Min(n / 8, WarmupRequests));
        terminal.WriteLine();
        terminal.WriteLine($"warm-up, {warmup} requests in memory and to parquet (not timed: compiles the code that the phases time)");
        var warm = await RunPhaseAsync(scenario, warmup, (world, progress, token) =>
            InMemory(world, progress, token) + InTempDirectory(temp => ToParquet(world, temp, null, token)), cancellation).ConfigureAwait(false);
        terminal.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    done in {warm.Run.TotalSeconds:F2} s (not counted)"));

        // (a) In memory: the kernel, the ordered pipeline and the realised statistics; the sink drops every batch.
        terminal.WriteLine();
        terminal.WriteLine($"(a) in memory, N = {n} requests: simulate only (the sink discards the rows; nothing is written); "
            + $"median of {Repeats} runs");
        var memory = await MedianOfAsync(() => RunPhaseAsync(scenario, n, InMemory, cancellation), _ => "").ConfigureAwait(false);

        // (b) To Parquet at two sizes, so the reader can see whether peak memory grows with the request count.
        var parquet = new List<PhaseResult>();
        foreach (var (label, requests, repeats) in new[] { ("N/8", Math.Max(1, n / 8), 1), ("N/4", Math.Max(1, n / 4), Repeats) })
        {
            terminal.WriteLine();
            terminal.WriteLine($"(b) to parquet, {label} = {requests} requests: simulate + encode + write the Parquet files and manifest "
                + "into a temporary directory (deleted afterwards, not timed)" + (repeats > 1 ? $"; median of {repeats} runs" : ""));
            parquet.Add(await MedianOfAsync(async () =>
            {
                var temp = NewTempDirectory();
                try
                {
                    return await RunPhaseAsync(scenario, requests, (world, progress, token) => ToParquet(world, temp, progress, token),
                        cancellation).ConfigureAwait(false);
                }
                finally
                {
                    TryDelete(temp);
                }
            }, r => $"; {SimulationReport.Size(r.Bytes)} written", repeats).ConfigureAwait(false));
        }

        var (small, large) = (parquet[0], parquet[1]);
        terminal.WriteLine();
        terminal.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"peak memory to parquet: {small.PeakMiB} MiB at N/8, {large.PeakMiB} MiB at N/4 "
            + $"(x{(double)large.PeakMiB / Math.Max(1, small.PeakMiB):F2} for x2 requests)"));
        terminal.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"simulate: {memory.RequestsPerSecond:F0} requests/s in memory, {large.RequestsPerSecond:F0} requests/s to parquet, {large.PeakMiB} MiB peak"));
        return ExitCodes.Success;
    }

    /// <summary>Runs a phase <paramref name="repeats"/> times, prints each run, returns the run with the median rate.</summary>
    private async Task<PhaseResult> MedianOfAsync(Func<Task<PhaseResult>> phase, Func<PhaseResult, string> suffix, int repeats = Repeats)
    {
        var runs = new List<PhaseResult>();
        for (var i = 0; i < repeats; i++)
        {
            var run = await phase().ConfigureAwait(false);
            terminal.WriteLine(Describe(run) + suffix(run));
            runs.Add(run);
        }
        return runs.OrderBy(r => r.RequestsPerSecond).ElementAt(runs.Count / 2);
    }

    private long InMemory(WorldModel world, IProgress<long>? progress, CancellationToken cancellation)
    {
        Simulator.Run(world, new DiscardingSink(), new SimulationOptions { Threads = arguments.Threads }, progress, cancellation);
        return 0;
    }

    /// <summary>Writes the simulation into a new folder under <paramref name="temp"/>; returns the bytes written.</summary>
    private long ToParquet(WorldModel world, string temp, IProgress<long>? progress, CancellationToken cancellation)
    {
        var written = SimulationOutput.Write(world, new SimulationOutputOptions(Path.Combine(temp, "out"), OutputFormat.Parquet),
            new SimulationOptions { Threads = arguments.Threads }, progress, cancellation);
        return Directory.EnumerateFiles(written.Directory, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
    }

    private long InTempDirectory(Func<string, long> work)
    {
        var temp = NewTempDirectory();
        try
        {
            return work(temp);
        }
        finally
        {
            TryDelete(temp);
        }
    }

    private (Scenario Scenario, string Source) LoadScenario() => BenchSupport.LoadScenario(terminal, arguments.Scenario);

    /// <summary>Builds the phase's world (not timed), then times <paramref name="work"/>; the peak covers both.</summary>
    private async Task<PhaseResult> RunPhaseAsync(Scenario scenario, long requests, PhaseWork work, CancellationToken cancellation)
    {
        scenario = scenario with { Traffic = scenario.Traffic with { Requests = requests } };
        // Return what earlier phases left behind to the OS, so that this phase's peak is its own.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        PeakMemory.Reset();
        var (world, buildTime) = await ProgressDisplay.StatusAsync(terminal, "    building world ...",
            () => ScenarioFiles.BuildWorld(scenario, arguments.Scenario ?? CommandCatalog.BenchDefaultScenario, cancellation), cancellation)
            .ConfigureAwait(false);
        logger.LogInformation("World for {Requests} requests built in {Seconds:F2} s", requests, buildTime.TotalSeconds);

        var clock = Stopwatch.StartNew();
        // Plain output gets no progress lines here: the phases are short and the last line must stay the summary.
        var bytes = terminal.Interactive
            ? await ProgressDisplay.RunAsync(terminal, "    simulate", "simulated", "requests", requests,
                progress => work(world, progress, cancellation), cancellation).ConfigureAwait(false)
            : await Task.Run(() => work(world, null, cancellation), cancellation).ConfigureAwait(false);
        var elapsed = clock.Elapsed;
        var peak = PeakMemory.MiB();
        logger.LogInformation("{Requests} requests in {Seconds:F2} s, peak {Peak} MiB", requests, elapsed.TotalSeconds, peak);
        return new PhaseResult(requests, buildTime, elapsed, peak, bytes);
    }

    private static string Describe(PhaseResult r) => string.Create(CultureInfo.InvariantCulture,
        $"    world build {r.WorldBuild.TotalSeconds:F2} s (not timed); run {r.Run.TotalSeconds:F2} s = {r.RequestsPerSecond:F0} requests/s; peak {r.PeakMiB} MiB");

    private static string BuildKind() =>
        typeof(BenchSimulateCommand).Assembly.GetCustomAttribute<DebuggableAttribute>()?.IsJITOptimizerDisabled == true
            ? "Debug build (not representative: build with -c Release)"
            : "Release build";

    private static string NewTempDirectory() =>
        Path.Combine(Path.GetTempPath(), $"adsim-bench-{Environment.ProcessId}-{Guid.NewGuid():N}");

    private void TryDelete(string directory) => BenchSupport.TryDelete(directory, logger);

    private sealed record PhaseResult(long Requests, TimeSpan WorldBuild, TimeSpan Run, long PeakMiB, long Bytes)
    {
        public double RequestsPerSecond => Requests / Math.Max(Run.TotalSeconds, 1e-9);
    }

    /// <summary>Drops every batch: measures the simulation alone.</summary>
    private sealed class DiscardingSink : ISimulationSink
    {
        public void Write(RequestBatch batch)
        {
        }
    }
}

/// <summary>The process's peak working set, with a reset of the high-water mark where the OS allows it.</summary>
internal static class PeakMemory
{
    private const string ClearRefs = "/proc/self/clear_refs";

    /// <summary>Whether the high-water mark can be reset (Linux: writing "5" to /proc/self/clear_refs resets VmHWM).</summary>
    public static bool CanReset() => Reset();

    public static bool Reset()
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }
        try
        {
            File.WriteAllText(ClearRefs, "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    public static long MiB()
    {
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        return process.PeakWorkingSet64 / (1024 * 1024);
    }
}
