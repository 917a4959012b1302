using System.Diagnostics;
using System.Globalization;
using AdAuctionSim.Cli.Terminal;
using AdAuctionSim.Simulation.Engine;
using AdAuctionSim.Simulation.Output;
using Microsoft.Extensions.Logging;

namespace AdAuctionSim.Cli.Commands;

/// <summary>
/// <c>adsim simulate &lt;scenario.json&gt;</c>: loads the scenario, applies the overrides, builds the world and writes
/// the simulation through <see cref="SimulationOutput"/>, which creates the directory only when everything is written.
/// </summary>
internal sealed class SimulateCommand(SimulateArguments arguments, CliTerminal terminal, ILogger<SimulateCommand> logger) : ICliCommand
{
    public async Task<int> RunAsync(CancellationToken cancellation)
    {
        var total = Stopwatch.StartNew();
        var scenario = ScenarioFiles.Load(terminal, arguments.Scenario);
        if (arguments.Seed is { } seed)
        {
            scenario = scenario with { Seed = seed };
        }
        if (arguments.Requests is { } requests)
        {
            scenario = scenario with { Traffic = scenario.Traffic with { Requests = requests } };
        }
        var directory = terminal.Resolve(arguments.Out ?? Path.Combine("simulations", scenario.Name));
        var output = new SimulationOutputOptions(directory, arguments.Format, arguments.Force);
        var options = new SimulationOptions { Threads = arguments.Threads };
        logger.LogInformation("Scenario {Name} from {File}: {Requests} requests, depth {Depth}, seed {Seed}; output {Directory} ({Format}), "
            + "{Threads} threads", scenario.Name, terminal.Resolve(arguments.Scenario), scenario.Traffic.Requests,
            scenario.Depth, scenario.Seed, directory, arguments.Format, options.Threads);
        // An existing folder is checked again (atomically) by SimulationOutput; here to fail before the world build.
        OutputTarget.CheckFolder(terminal, directory, OutputKind.Simulation, arguments.Force, terminal.Resolve(arguments.Scenario));

        terminal.Heading($"Simulating {scenario.Name} ({arguments.Scenario}): {scenario.Traffic.Requests} requests, depth {scenario.Depth}, "
            + $"seed {scenario.Seed}, {options.Threads} threads -> {terminal.Display(directory)} ({Format(arguments.Format)})");
        var (world, buildTime) = await ProgressDisplay.StatusAsync(terminal, "building world ...",
            () => ScenarioFiles.BuildWorld(scenario, arguments.Scenario, cancellation), cancellation).ConfigureAwait(false);
        logger.LogInformation("World built in {Seconds:F2} s: {Users} users, {Ads} ads", buildTime.TotalSeconds, world.Users, world.Ads);

        var writeClock = Stopwatch.StartNew();
        var parent = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(directory));
        var parentExisted = parent is null || Directory.Exists(parent);
        SimulationOutputResult result;
        try
        {
            result = await ProgressDisplay.RunAsync(terminal, "simulate", "simulated", "requests", scenario.Traffic.Requests,
                progress => SimulationOutput.Write(world, output, options, progress, cancellation), cancellation).ConfigureAwait(false);
        }
        catch when (!parentExisted)
        {
            // SimulationOutput removes its own partial folder; the parent it created for it (simulations/) goes too if empty.
            TryRemoveEmpty(parent!);
            throw;
        }
        var writeTime = writeClock.Elapsed;
        logger.LogInformation("Wrote {Directory} in {Seconds:F2} s", result.Directory, writeTime.TotalSeconds);

        SimulationReport.Write(terminal, result, arguments.Format, new SimulationTimings(buildTime, writeTime, total.Elapsed, options.Threads));
        return ExitCodes.Success;
    }

    private void TryRemoveEmpty(string directory)
    {
        try
        {
            if (Directory.Exists(directory) && !Directory.EnumerateFileSystemEntries(directory).Any())
            {
                Directory.Delete(directory);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogDebug(e, "Could not remove {Directory}", directory);
        }
    }

    internal static string Format(OutputFormat format) => format == OutputFormat.Csv ? "csv" : "parquet";
}

/// <summary>Elapsed time of each phase of <c>adsim simulate</c>.</summary>
internal sealed record SimulationTimings(TimeSpan WorldBuild, TimeSpan SimulateAndWrite, TimeSpan Total, int Threads)
{
    public string Seconds(TimeSpan t) => t.TotalSeconds.ToString(t.TotalSeconds < 10 ? "F2" : "F1", CultureInfo.InvariantCulture) + " s";
}
