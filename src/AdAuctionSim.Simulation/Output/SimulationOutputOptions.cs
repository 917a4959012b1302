using AdAuctionSim.Simulation.Engine;

namespace AdAuctionSim.Simulation.Output;

/// <summary>File format of the product tables (the manifest is always JSON).</summary>
public enum OutputFormat
{
    Parquet,
    Csv,
}

/// <summary>Where and how a simulation writes its products.</summary>
/// <param name="Directory">The output folder; it must not exist unless <paramref name="Force"/> is set.</param>
/// <param name="Format">Parquet (default) or CSV.</param>
/// <param name="Force">Replace an existing folder (only once the new output is complete).</param>
public sealed record SimulationOutputOptions(string Directory, OutputFormat Format = OutputFormat.Parquet, bool Force = false);

/// <summary>A finished, complete output folder.</summary>
/// <param name="Directory">Full path of the folder.</param>
/// <param name="Manifest">What was written to <c>manifest.json</c>.</param>
/// <param name="Summary">What the simulator reported.</param>
public sealed record SimulationOutputResult(string Directory, SimulationManifest Manifest, SimulationSummary Summary);

/// <summary>The output folder exists and replacing it was not asked for.</summary>
public sealed class OutputExistsException : Exception
{
    public OutputExistsException(string directory)
        : base($"{directory} already exists; use --force to replace it")
    {
        Directory = directory;
    }

    /// <summary>The folder that exists.</summary>
    public string Directory { get; }
}
