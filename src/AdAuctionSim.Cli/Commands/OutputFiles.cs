using AdAuctionSim.Simulation.Output;

namespace AdAuctionSim.Cli.Commands;

/// <summary>The files of a written simulation with their row counts (from the manifest) and sizes.</summary>
internal static class OutputFiles
{
    public static IReadOnlyList<(string File, long? Rows, long Bytes)> List(SimulationOutputResult result)
    {
        var files = result.Manifest.Products
            .Select(p => (p.File, (long?)p.Rows, Size(Path.Combine(result.Directory, p.File))))
            .ToList();
        files.Add((LogColumns.ManifestFile, null, Size(Path.Combine(result.Directory, LogColumns.ManifestFile))));
        return files;
    }

    private static long Size(string path) => File.Exists(path) ? new FileInfo(path).Length : 0;
}
