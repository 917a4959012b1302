using System.Text;
using System.Text.Json;
using AdAuctionSim.Simulation.Engine;
using AdAuctionSim.Simulation.Scenarios;
using AdAuctionSim.Simulation.World;

namespace AdAuctionSim.Simulation.Output;

/// <summary>
/// Runs a simulation straight into an output folder: impressions, lost bids, truth, the ad catalogue and the
/// manifest (DESIGN.md §4). The folder appears complete or not at all.
/// </summary>
public static class SimulationOutput
{
    /// <summary>
    /// Rows per Parquet row group (and per encoding job). 2^17 rows of the logged view is about 25 MB in memory and
    /// 10–15 MB on disk: large enough for readers, small enough that three buffers per product stay modest.
    /// </summary>
    internal const int DefaultRowGroupSize = 1 << 17;

    /// <summary>
    /// Simulates <paramref name="world"/> and writes every product into <see cref="SimulationOutputOptions.Directory"/>.
    /// Everything is written into a temporary sibling folder first, the manifest last, and only then renamed into
    /// place (replacing an existing folder when <see cref="SimulationOutputOptions.Force"/> is set). On failure or
    /// cancellation the temporary folder is deleted and an existing folder is left untouched.
    /// </summary>
    /// <exception cref="OutputExistsException">The folder exists and Force is not set (thrown before any work).</exception>
    /// <exception cref="OperationCanceledException">Cancelled; nothing was written.</exception>
    public static SimulationOutputResult Write(WorldModel world, SimulationOutputOptions output, SimulationOptions options,
        IProgress<long>? progress = null, CancellationToken cancellation = default) =>
        Write(world, output, options, DefaultRowGroupSize, progress, cancellation);

    /// <summary>As <see cref="Write(WorldModel, SimulationOutputOptions, SimulationOptions, IProgress{long}?, CancellationToken)"/> with a chosen row-group size (tests use small ones).</summary>
    internal static SimulationOutputResult Write(WorldModel world, SimulationOutputOptions output, SimulationOptions options,
        int rowGroupSize, IProgress<long>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(world);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(output.Directory);
        ArgumentOutOfRangeException.ThrowIfLessThan(rowGroupSize, 1);

        var target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(output.Directory));
        if (Path.Exists(target) && !output.Force)
        {
            throw new OutputExistsException(output.Directory);
        }
        var impressionColumns = TableLayout.Impressions(world);
        var lostColumns = TableLayout.LostBids(world);
        var truthColumns = TableLayout.Truth(world);
        var adColumns = TableLayout.Ads();
        CheckColumns(LogColumns.ImpressionsProduct, impressionColumns, logged: true);
        CheckColumns(LogColumns.LostBidsProduct, lostColumns, logged: true);
        CheckColumns(LogColumns.TruthProduct, truthColumns, logged: false);
        cancellation.ThrowIfCancellationRequested();

        var temp = OutputFolder.CreatePartial(target);
        try
        {
            var ext = TableWriter.Extension(output.Format);
            var products = new List<ProductManifest>();

            var adsFile = LogColumns.AdsProduct + ext;
            products.Add(WriteAds(world, Path.Combine(temp, adsFile), adsFile, adColumns, output.Format, rowGroupSize));

            var capacity = (int)Math.Clamp(world.Scenario.Traffic.Requests, 1, rowGroupSize);
            var files = new[] { LogColumns.ImpressionsProduct + ext, LogColumns.LostBidsProduct + ext, LogColumns.TruthProduct + ext };
            var layouts = new[] { impressionColumns, lostColumns, truthColumns };
            var sinks = new TableSink?[3];
            SimulationSummary summary;
            OutputSink sink;
            var hashes = new string[3];
            try
            {
                for (var i = 0; i < 3; i++)
                {
                    var path = Path.Combine(temp, files[i]);
                    sinks[i] = new TableSink(path, layouts[i], TableWriter.Create(output.Format, path, layouts[i]), capacity, cancellation);
                }
                sink = new OutputSink(sinks[0]!, sinks[1]!, sinks[2]!);
                summary = Simulator.Run(world, sink, options, progress, cancellation);
                for (var i = 0; i < 3; i++)
                {
                    hashes[i] = sinks[i]!.Complete();
                }
            }
            finally
            {
                foreach (var s in sinks)
                {
                    s?.Dispose();
                }
            }
            for (var i = 0; i < 3; i++)
            {
                products.Insert(i, new ProductManifest(files[i], sinks[i]!.Rows, hashes[i], layouts[i].Select(c => c.Name).ToArray()));
            }
            cancellation.ThrowIfCancellationRequested();

            var manifest = BuildManifest(world, output.Format, products, summary, sink);
            File.WriteAllText(Path.Combine(temp, LogColumns.ManifestFile), manifest.ToJson(), new UTF8Encoding(false));
            cancellation.ThrowIfCancellationRequested();

            OutputFolder.Publish(temp, target, output.Force);
            return new SimulationOutputResult(target, manifest, summary);
        }
        catch
        {
            OutputFolder.TryDelete(temp);
            throw;
        }
    }

    private static ProductManifest WriteAds(WorldModel world, string path, string file, IReadOnlyList<TableColumn> columns,
        OutputFormat format, int rowGroupSize)
    {
        using var writer = TableWriter.Create(format, path, columns);
        var buffer = new TableBuffer(columns, Math.Clamp(world.Ads, 1, rowGroupSize));
        for (var first = 0; first < world.Ads; first += buffer.Count)
        {
            TableLayout.FillAds(world, first, buffer);
            writer.Write(buffer);
        }
        var hash = writer.Complete();
        return new ProductManifest(file, writer.Rows, hash, columns.Select(c => c.Name).ToArray());
    }

    private static SimulationManifest BuildManifest(WorldModel world, OutputFormat format, IReadOnlyList<ProductManifest> products,
        SimulationSummary summary, OutputSink sink)
    {
        var scenario = world.Scenario;
        using var doc = JsonDocument.Parse(ScenarioJson.Serialize(scenario));
        var r = sink.RequestsBySplit;
        var o = sink.ImpressionsBySplit;
        var impressions = o.Sum();
        return new SimulationManifest
        {
            CodeVersion = SimulationManifest.CurrentCodeVersion,
            Scenario = doc.RootElement.Clone(),
            Seed = scenario.Seed,
            Format = format == OutputFormat.Csv ? "csv" : "parquet",
            Products = products,
            RowCounts = new ManifestRowCounts(summary.Requests, impressions, summary.Requests - impressions,
                new ManifestSplitCounts(new(r[0], o[0]), new(r[1], o[1]), new(r[2], o[2]))),
            Split = new ManifestSplit(summary.TrainEnd, summary.ValidationEnd, summary.DurationSeconds),
            World = new ManifestWorld(world.Users, world.Ads, scenario.Traffic.Campaigns, scenario.Traffic.Advertisers,
                world.StageNames.ToArray(), world.BaseLogits.ToArray(), world.CompetitorLogBidMeans.ToArray(), world.Examination.ToArray()),
            RealisedBias = summary.Bias,
        };
    }

    /// <summary>
    /// Stage names become column names; a stage called like a fixed column (for example "price") or like a truth
    /// column would make a product ambiguous or leak truth into the logs, so it is refused before any work.
    /// </summary>
    private static void CheckColumns(string product, IReadOnlyList<TableColumn> columns, bool logged)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var column in columns)
        {
            if (!seen.Add(column.Name))
            {
                throw new ArgumentException($"{product}: column \"{column.Name}\" would appear twice; rename the funnel stage that produces it");
            }
            if (logged && LogColumns.IsTruthOnly(column.Name))
            {
                throw new ArgumentException($"{product}: column \"{column.Name}\" looks like a truth column and may not be logged; rename the funnel stage that produces it");
            }
        }
    }}
