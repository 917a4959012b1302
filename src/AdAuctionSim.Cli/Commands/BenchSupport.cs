using AdAuctionSim.Cli.Terminal;
using AdAuctionSim.Simulation.Scenarios;
using Microsoft.Extensions.Logging;

namespace AdAuctionSim.Cli.Commands;

/// <summary>What the bench commands share: the scenario they run and cleaning up their temporary folders.</summary>
internal static class BenchSupport
{
    /// <summary>The --scenario file, else <see cref="CommandCatalog.BenchDefaultScenario"/> when present, else the built-in default.</summary>
    public static (Scenario Scenario, string Source) LoadScenario(CliTerminal terminal, string? file)
    {
        if (file is not null)
        {
            return (ScenarioFiles.Load(terminal, file), file);
        }
        if (File.Exists(terminal.Resolve(CommandCatalog.BenchDefaultScenario)))
        {
            return (ScenarioFiles.Load(terminal, CommandCatalog.BenchDefaultScenario), CommandCatalog.BenchDefaultScenario);
        }
        return (new Scenario(), $"built-in default scenario (no {CommandCatalog.BenchDefaultScenario} under {terminal.WorkingDirectory})");
    }

    /// <summary>Deletes a temporary folder; a failure is logged, never thrown (the measurement stands).</summary>
    public static void TryDelete(string directory, ILogger logger)
    {
        try
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning("Could not delete the temporary directory {Directory}: {Message}", directory, e.Message);
        }
    }
}
