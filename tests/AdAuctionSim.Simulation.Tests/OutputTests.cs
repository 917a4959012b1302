using System.Security.Cryptography;
using System.Text;
using AdAuctionSim.Simulation.Engine;
using AdAuctionSim.Simulation.Output;
using AdAuctionSim.Simulation.Scenarios;
using AdAuctionSim.Simulation.Stats;
using AdAuctionSim.Simulation.World;

namespace AdAuctionSim.Simulation.Tests;

/// <summary>One Parquet output of <see cref="TestScenarios.Small"/>, written once and read by several tests.</summary>
public sealed class SmallOutputFixture : IDisposable
{
    /// <summary>Small row groups so that every product spans several of them (and several chunks feed each).</summary>
    internal const int RowGroupSize = 3000;

    private readonly TempFolder _folder = new();

    public SmallOutputFixture()
    {
        Result = SimulationOutput.Write(TestScenarios.SmallWorld, new SimulationOutputOptions(_folder.Combine("out")),
            new SimulationOptions { Threads = 2, ChunkSize = 4096 }, RowGroupSize);
        Impressions = ParquetTable.Read(PathOf("impressions.parquet"));
        LostBids = ParquetTable.Read(PathOf("lost_bids.parquet"));
        Truth = ParquetTable.Read(PathOf("truth.parquet"));
        Ads = ParquetTable.Read(PathOf("ads.parquet"));
    }

    public SimulationOutputResult Result { get; }
    internal ParquetTable Impressions { get; }
    internal ParquetTable LostBids { get; }
    internal ParquetTable Truth { get; }
    internal ParquetTable Ads { get; }

    public string PathOf(string file) => Path.Combine(Result.Directory, file);

    public void Dispose() => _folder.Dispose();
}

/// <summary>
/// The products of <see cref="SimulationOutput"/>: the information barrier between logged view and truth, row counts
/// and joins, cumulative labels, hashes, determinism across thread counts, and the all-or-nothing folder semantics.
/// </summary>
public sealed class OutputTests(SmallOutputFixture small) : IClassFixture<SmallOutputFixture>
{
    private static readonly string[] Stages = ["click", "authorize", "convert"];

    [Fact]
    public void TheLoggedViewHasExactlyTheLoggedColumnsAndNoTruth()
    {
        var candidates = TestScenarios.Small.Traffic.CandidateAds;
        Assert.Equal(LogColumns.Impressions(Stages, candidates), small.Impressions.Names);
        Assert.Equal(LogColumns.LostBids(Stages, candidates), small.LostBids.Names);
        foreach (var table in new[] { small.Impressions, small.LostBids })
        {
            Assert.DoesNotContain(table.Names, LogColumns.IsTruthOnly);
            foreach (var forbidden in new[] { "hidden_trait", "market_price", "win_prob_at_bid", "won", "q_click", "y_convert" })
            {
                Assert.DoesNotContain(forbidden, table.Names);
            }
        }
        Assert.Contains("candidate_2", small.Impressions.Names);
        Assert.DoesNotContain("candidate_3", small.Impressions.Names);
        Assert.Equal(["click", "authorize", "convert", "reward", "propensity_click", "propensity_authorize"], small.Impressions.Names.TakeLast(6));
        Assert.DoesNotContain(small.LostBids.Names, n => n.StartsWith(LogColumns.PropensityPrefix, StringComparison.Ordinal));
        Assert.Equal("lost", small.LostBids.Names[^1]);
        Assert.All(small.LostBids.Column<bool>("lost"), Assert.True);
    }

    [Fact]
    public void NoLoggedColumnCarriesATruthOnlyValueUnderAnotherName()
    {
        // Guards against a gather that copies the wrong source array into a logged column.
        var truthById = Index(small.Truth);
        foreach (var table in new[] { small.Impressions, small.LostBids })
        {
            var ids = table.Column<long>("request_id");
            foreach (var secret in new[] { "hidden_trait", "market_price", "win_prob_at_bid", "q_click", "q_convert" })
            {
                var truth = small.Truth.Column<double>(secret);
                // A won second-price auction pays the market price: that price is observed, so it may equal market_price.
                // The oracle reach propensities are documented true values (checked against the truth below).
                foreach (var name in table.Names.Where(n => table.Column(n) is double[] && !(n == LogColumns.Price && secret == "market_price")
                    && !n.StartsWith(LogColumns.PropensityPrefix, StringComparison.Ordinal)))
                {
                    var logged = table.Column<double>(name);
                    var same = Enumerable.Range(0, ids.Length).All(i => logged[i] == truth[truthById[ids[i]]]);
                    Assert.False(same, $"logged column {name} equals truth column {secret}");
                }
            }
        }
    }

    [Fact]
    public void OracleReachPropensitiesAreTheProductsOfTheTrueStageRates()
    {
        var truthById = Index(small.Truth);
        var ids = small.Impressions.Column<long>("request_id");
        var qClick = small.Truth.Column<double>("q_click");
        var qAuthorize = small.Truth.Column<double>("q_authorize");
        var click = small.Impressions.Column<double>("propensity_click");
        var authorize = small.Impressions.Column<double>("propensity_authorize");
        Assert.True(ids.Length > 100);
        for (var i = 0; i < ids.Length; i++)
        {
            var t = truthById[ids[i]];
            Assert.Equal(qClick[t], click[i]);
            Assert.Equal(qClick[t] * qAuthorize[t], authorize[i]);
        }
    }

    [Fact]
    public void TheTruthHasNoFeatures()
    {
        Assert.Equal(LogColumns.Truth(Stages), small.Truth.Names);
        var features = LogColumns.Logged(Stages, 3).Except([LogColumns.RequestId, LogColumns.Split]);
        Assert.Empty(small.Truth.Names.Intersect(features));
        Assert.Equal(LogColumns.Ads, small.Ads.Names);
        Assert.Equal(TestScenarios.SmallWorld.Ads, small.Ads.Rows);
    }

    [Fact]
    public void RowCountsAddUpAndImpressionsAreExactlyTheWonRequests()
    {
        var requests = TestScenarios.Small.Traffic.Requests;
        var counts = small.Result.Manifest.RowCounts;
        Assert.Equal(requests, small.Truth.Rows);
        Assert.Equal(requests, small.Impressions.Rows + small.LostBids.Rows);
        Assert.Equal(requests, counts.Requests);
        Assert.Equal(small.Impressions.Rows, counts.Impressions);
        Assert.Equal(small.LostBids.Rows, counts.LostBids);
        Assert.Equal(small.Result.Summary.Bias.Impressions, counts.Impressions);
        Assert.Equal(counts.Requests, counts.BySplit.Train.Requests + counts.BySplit.Validation.Requests + counts.BySplit.Test.Requests);
        Assert.Equal(counts.Impressions, counts.BySplit.Train.Impressions + counts.BySplit.Validation.Impressions + counts.BySplit.Test.Impressions);
        Assert.True(small.Impressions.RowGroups > 1 && small.LostBids.RowGroups > 1 && small.Truth.RowGroups > 1);

        // Truth holds every request once, in id order; impressions and lost bids partition it by the won flag.
        Assert.Equal(Enumerable.Range(0, (int)requests).Select(i => (long)i), small.Truth.Column<long>("request_id"));
        var won = small.Truth.Column<bool>("won");
        var impressionIds = small.Impressions.Column<long>("request_id");
        var lostIds = small.LostBids.Column<long>("request_id");
        Assert.All(impressionIds, id => Assert.True(won[id], $"impression {id} is not won in the truth"));
        Assert.All(lostIds, id => Assert.False(won[id], $"lost bid {id} is won in the truth"));
        Assert.Equal(impressionIds.Order(), impressionIds);
        Assert.Equal(lostIds.Order(), lostIds);
        Assert.Equal(small.Impressions.Rows, won.Count(w => w));

        // Splits agree with the boundaries and between products.
        var split = small.Result.Manifest.Split;
        var truthSplit = small.Truth.Column<string>("split");
        for (var i = 0; i < truthSplit.Length; i++)
        {
            var expected = i < split.TrainEnd ? "train" : i < split.ValidationEnd ? "validation" : "test";
            Assert.Equal(expected, truthSplit[i]);
        }
        var impressionSplit = small.Impressions.Column<string>("split");
        Assert.Equal(counts.BySplit.Test.Impressions, impressionSplit.Count(s => s == "test"));
        Assert.All(Enumerable.Range(0, impressionIds.Length), i => Assert.Equal(truthSplit[impressionIds[i]], impressionSplit[i]));
    }

    [Fact]
    public void StageLabelsAreCumulativeAndEqualThePotentialOutcomesOfWonRequests()
    {
        var labels = Stages.Select(s => small.Impressions.Column<int>(s)).ToArray();
        var reward = small.Impressions.Column<int>("reward");
        var ids = small.Impressions.Column<long>("request_id");
        var outcomes = Stages.Select(s => small.Truth.Column<bool>("y_" + s)).ToArray();
        for (var i = 0; i < ids.Length; i++)
        {
            var reached = true;
            for (var k = 0; k < Stages.Length; k++)
            {
                Assert.InRange(labels[k][i], 0, 1);
                if (k > 0)
                {
                    Assert.True(labels[k][i] <= labels[k - 1][i], $"row {i}: {Stages[k]} without {Stages[k - 1]}");
                }
                reached &= outcomes[k][ids[i]];
                Assert.Equal(reached ? 1 : 0, labels[k][i]);
            }
            Assert.Equal(labels[^1][i], reward[i]);
        }
        Assert.Contains(1, labels[^1]);
    }

    [Fact]
    public void LoggedPropensitiesAreConsistent()
    {
        var table = small.Impressions;
        var pscore = table.Column<double>("pscore");
        var ad = table.Column<double>("pscore_ad");
        var multiplier = table.Column<double>("pscore_multiplier");
        var action = table.Column<int>("action");
        var adId = table.Column<int>("ad_id");
        var candidates = Enumerable.Range(0, 3).Select(j => table.Column<int>("candidate_" + j)).ToArray();
        var winPropensity = table.Column<double>("win_propensity");
        var truthById = Index(small.Truth);
        var winProb = small.Truth.Column<double>("win_prob");
        var ids = table.Column<long>("request_id");
        for (var i = 0; i < pscore.Length; i++)
        {
            Assert.Equal(ad[i] * multiplier[i], pscore[i]);
            Assert.InRange(pscore[i], double.Epsilon, 1);
            Assert.Equal(adId[i], candidates[action[i]][i]);
            Assert.Equal(winProb[truthById[ids[i]]], winPropensity[i]);
        }
    }

    [Fact]
    public void ManifestHashesMatchTheFilesAndTheManifestReadsBack()
    {
        var manifest = small.Result.Manifest;
        Assert.Equal(["impressions.parquet", "lost_bids.parquet", "truth.parquet", "ads.parquet"], manifest.Products.Select(p => p.File));
        foreach (var product in manifest.Products)
        {
            var bytes = File.ReadAllBytes(small.PathOf(product.File));
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), product.Sha256);
        }
        Assert.Equal(small.Impressions.Names, manifest.Product("impressions.parquet")!.Columns);
        Assert.Equal(small.LostBids.Rows, manifest.Product("lost_bids.parquet")!.Rows);

        var text = File.ReadAllText(small.PathOf("manifest.json"));
        Assert.Equal(manifest.ToJson(), text);
        var read = SimulationManifest.Read(small.Result.Directory);
        Assert.Equal(text, read.ToJson());
        Assert.Equal(SimulationManifest.CurrentFormatVersion, read.FormatVersion);
        Assert.Equal(TestScenarios.Small.Seed, read.Seed);
        Assert.Equal("parquet", read.Format);
        Assert.Equal(ScenarioJson.Serialize(TestScenarios.Small), ScenarioJson.Serialize(read.ReadScenario()));
        Assert.Equal(TestScenarios.SmallWorld.BaseLogits, read.World.BaseLogits);
        Assert.Equal(3, read.World.Examination.Count);
        Assert.Equal(small.Result.Summary.Bias.WinSelectionRatio, read.RealisedBias!.WinSelectionRatio);
        Assert.Equal(small.Result.Summary.Bias.Stages[2].ClickSelectionRatio, read.RealisedBias.Stages[2].ClickSelectionRatio);
        // The click selection ratio C/D splits into the auction's part O/D and the funnel's part C/O.
        foreach (var stage in read.RealisedBias.Stages)
        {
            Assert.Equal(stage.Stage == "click", stage.ClickSelectionRatio is null);
            Assert.Equal(stage.ClickSelectionRatio is null, stage.WinSelectionPart is null || stage.FunnelSelectionPart is null);
            Assert.InRange(stage.ImpressionMeanQ, 1e-6, 1);
            if (stage.ClickSelectionRatio is { } ratio)
            {
                Assert.Equal(ratio, stage.WinSelectionPart!.Value * stage.FunnelSelectionPart!.Value, 1e-12);
                Assert.Equal(stage.ImpressionMeanQ / stage.CounterfactualMeanQ, stage.WinSelectionPart.Value, 1e-15);
            }
        }
        foreach (var name in new[] { "\"clickSelectionRatio\"", "\"winSelectionPart\"", "\"funnelSelectionPart\"", "\"impressionMeanQ\"", "\"winSelectionRatio\"", "\"winRate\"", "\"clickRate\"", "\"clickRateBySlot\"",
            "\"inverseWinPropensityEss\"", "\"inverseWinPropensityEssShare\"", "\"realisedBias\"", "\"codeVersion\"", "\"sha256\"" })
        {
            Assert.Contains(name, text, StringComparison.Ordinal);
        }
        Assert.DoesNotContain(small.Result.Directory, text, StringComparison.Ordinal);
    }

    [Fact]
    public void OutputIsByteIdenticalAcrossThreadCountsAndRuns()
    {
        using var folder = new TempFolder();
        var world = TestScenarios.SmallWorld;
        Write(world, folder.Combine("t1"), threads: 1);
        Write(world, folder.Combine("t2"), threads: 2);
        Write(world, folder.Combine("t2-again"), threads: 2);

        var files = Directory.GetFiles(folder.Combine("t1")).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["ads.parquet", "impressions.parquet", "lost_bids.parquet", "manifest.json", "truth.parquet"], files);
        foreach (var other in new[] { "t2", "t2-again" })
        {
            Assert.Equal(files, Directory.GetFiles(folder.Combine(other)).Select(Path.GetFileName).Order(StringComparer.Ordinal));
            foreach (var file in files)
            {
                Assert.True(File.ReadAllBytes(Path.Combine(folder.Combine("t1"), file!)).AsSpan()
                    .SequenceEqual(File.ReadAllBytes(Path.Combine(folder.Combine(other), file!))), $"{other}/{file} differs from t1/{file}");
            }
        }
        // And the fixture's output (same thread count and chunking) matches too: nothing depends on the folder path.
        Assert.Equal(File.ReadAllText(small.PathOf("manifest.json")), File.ReadAllText(Path.Combine(folder.Combine("t1"), "manifest.json")));

        static void Write(WorldModel world, string dir, int threads) =>
            SimulationOutput.Write(world, new SimulationOutputOptions(dir), new SimulationOptions { Threads = threads, ChunkSize = 4096 },
                SmallOutputFixture.RowGroupSize);
    }

    [Fact]
    public void AnExistingFolderIsRefusedUntouchedUnlessForcedAndThenReplaced()
    {
        using var folder = new TempFolder();
        var target = folder.Combine("out");
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "keep.txt"), "mine");
        var world = TestScenarios.SmallWorld;
        var options = new SimulationOptions { Threads = 2, ChunkSize = 4096 };

        var e = Assert.Throws<OutputExistsException>(() => SimulationOutput.Write(world, new SimulationOutputOptions(target), options));

        Assert.Equal(target, e.Directory);
        Assert.Equal($"{target} already exists; use --force to replace it", e.Message);
        Assert.Equal(["out"], folder.Entries());
        Assert.Equal(["keep.txt"], Directory.GetFiles(target).Select(Path.GetFileName));
        Assert.Equal("mine", File.ReadAllText(Path.Combine(target, "keep.txt")));

        var result = SimulationOutput.Write(world, new SimulationOutputOptions(target + "/", Force: true), options);

        Assert.Equal(target, result.Directory);
        Assert.Equal(["out"], folder.Entries());
        Assert.False(File.Exists(Path.Combine(target, "keep.txt")));
        Assert.True(File.Exists(Path.Combine(target, "manifest.json")));
        Assert.Equal(result.Manifest.ToJson(), File.ReadAllText(Path.Combine(target, "manifest.json")));
    }

    [Fact]
    public void CancellingMidRunLeavesNoTargetAndNoTemporaryFolder()
    {
        using var folder = new TempFolder();
        using var cts = new CancellationTokenSource();
        var progress = new CancelAt(5000, cts);

        Assert.ThrowsAny<OperationCanceledException>(() => SimulationOutput.Write(TestScenarios.SmallWorld,
            new SimulationOutputOptions(folder.Combine("out")), new SimulationOptions { Threads = 2, ChunkSize = 1024 }, 2000, progress, cts.Token));

        Assert.True(progress.Reports > 0);
        Assert.Empty(folder.Entries());
    }

    [Fact]
    public void CancellingAForcedReplacementLeavesTheExistingFolderAsItWas()
    {
        using var folder = new TempFolder();
        var target = folder.Combine("out");
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "keep.txt"), "mine");
        using var cts = new CancellationTokenSource();

        Assert.ThrowsAny<OperationCanceledException>(() => SimulationOutput.Write(TestScenarios.SmallWorld,
            new SimulationOutputOptions(target, Force: true), new SimulationOptions { Threads = 1, ChunkSize = 1024 }, 2000,
            new CancelAt(12_000, cts), cts.Token));

        Assert.Equal(["out"], folder.Entries());
        Assert.Equal(["keep.txt"], Directory.GetFiles(target).Select(Path.GetFileName));
    }

    [Fact]
    public void CsvHasTheSameColumnsAndRowCountsAsParquet()
    {
        using var folder = new TempFolder();
        var result = SimulationOutput.Write(TestScenarios.SmallWorld, new SimulationOutputOptions(folder.Combine("csv"), OutputFormat.Csv),
            new SimulationOptions { Threads = 2, ChunkSize = 4096 }, SmallOutputFixture.RowGroupSize);

        Assert.Equal("csv", result.Manifest.Format);
        Assert.Equal(small.Result.Manifest.RowCounts, result.Manifest.RowCounts);
        var parquet = new[] { small.Impressions, small.LostBids, small.Truth, small.Ads };
        var names = new[] { "impressions.csv", "lost_bids.csv", "truth.csv", "ads.csv" };
        for (var t = 0; t < names.Length; t++)
        {
            var path = Path.Combine(result.Directory, names[t]);
            var lines = File.ReadAllText(path, Encoding.UTF8).Split('\n');
            Assert.Equal("", lines[^1]);
            Assert.Equal(string.Join(',', parquet[t].Names), lines[0]);
            Assert.Equal(parquet[t].Rows, lines.Length - 2);
            var product = result.Manifest.Product(names[t])!;
            Assert.Equal(parquet[t].Rows, product.Rows);
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path))), product.Sha256);
        }

        // Values are the Parquet values: doubles in round-trip form, booleans true/false, splits by name.
        var header = File.ReadLines(Path.Combine(result.Directory, "impressions.csv")).First().Split(',');
        var first = File.ReadLines(Path.Combine(result.Directory, "impressions.csv")).Skip(1).First().Split(',');
        foreach (var column in new[] { "request_id", "bid", "pscore", "win_propensity", "split", "ad_id", "reward" })
        {
            var value = small.Impressions.Column(column).GetValue(0)!;
            var expected = value is double d ? d.ToString("R", System.Globalization.CultureInfo.InvariantCulture) : value.ToString();
            Assert.Equal(expected, first[Array.IndexOf(header, column)]);
        }
        var lostFirst = File.ReadLines(Path.Combine(result.Directory, "lost_bids.csv")).Skip(1).First();
        Assert.EndsWith(",true", lostFirst, StringComparison.Ordinal);
    }

    [Fact]
    public void AFourStageFirstPriceScenarioNamesItsStageColumns()
    {
        using var folder = new TempFolder();
        var scenario = TestScenarios.NonDefault;
        var result = SimulationOutput.Write(TestScenarios.NonDefaultWorld, new SimulationOutputOptions(folder.Combine("out")),
            new SimulationOptions { Threads = 2 });

        var stages = scenario.Funnel.Stages.Select(s => s.Name).ToList();
        var impressions = ParquetTable.Read(Path.Combine(result.Directory, "impressions.parquet"));
        Assert.Equal(LogColumns.Impressions(stages, 4), impressions.Names);
        Assert.Contains("logging_cart", impressions.Names);
        Assert.Contains("buy", impressions.Names);
        Assert.Equal(scenario.Traffic.Requests, result.Manifest.RowCounts.Requests);
        Assert.Equal(4, result.Manifest.RealisedBias!.Stages.Count);
        // First price: an impression pays its bid.
        Assert.Equal(impressions.Column<double>("bid"), impressions.Column<double>("price"));
        Assert.Equal(ScenarioJsonOf(scenario), ScenarioJsonOf(result.Manifest.ReadScenario()));
    }

    [Fact]
    public void ManifestWritesNonFiniteNumbersAsNullAndReadsThemBackAsNaN()
    {
        using var doc = System.Text.Json.JsonDocument.Parse(ScenarioJson.Serialize(TestScenarios.Small));
        var nan = RateEstimate.Of(0, 0);
        var manifest = new SimulationManifest
        {
            Scenario = doc.RootElement.Clone(),
            Products = [new ProductManifest("impressions.parquet", 0, new string('0', 64), ["request_id"])],
            RealisedBias = new BiasReport(10, 0, 0, 0.3, double.NaN, [nan], [new StageRealization("click", 0.04, nan, 0.04, nan, 0.04, double.NaN, null)],
                double.NaN, 0, double.NaN, 1, double.PositiveInfinity, 0),
        };

        var json = manifest.ToJson();

        Assert.Contains("\"clickRate\": null", json, StringComparison.Ordinal);
        Assert.Contains("\"meanPrice\": null", json, StringComparison.Ordinal);
        Assert.DoesNotContain("NaN", json, StringComparison.Ordinal);
        using var folder = new TempFolder();
        File.WriteAllText(folder.Combine("manifest.json"), json);
        var read = SimulationManifest.Read(folder.Combine("manifest.json"));
        Assert.True(double.IsNaN(read.RealisedBias!.ClickRate));
        Assert.True(double.IsNaN(read.RealisedBias.ClickRateBySlot[0].Rate));
        Assert.Null(read.RealisedBias.Stages[0].ClickSelectionRatio);
        Assert.Equal(json, read.ToJson());
    }

    [Fact]
    public void ReadingAMissingOrCorruptManifestNamesTheFile()
    {
        using var folder = new TempFolder();

        var missing = Assert.Throws<FileNotFoundException>(() => SimulationManifest.Read(folder.Path));
        Assert.Contains(Path.Combine(folder.Path, "manifest.json"), missing.Message, StringComparison.Ordinal);

        var corrupt = folder.Combine("manifest.json");
        File.WriteAllText(corrupt, "{ \"formatVersion\": 1, \"products\": [ ");
        var e = Assert.Throws<InvalidDataException>(() => SimulationManifest.Read(corrupt));
        Assert.StartsWith(corrupt + ":", e.Message, StringComparison.Ordinal);

        File.WriteAllText(corrupt, "{ \"formatVersion\": 2 }");
        e = Assert.Throws<InvalidDataException>(() => SimulationManifest.Read(folder.Path));
        Assert.Contains("formatVersion 2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AManifestLackingAFieldOrHoldingAWrongTypeNamesTheFieldAndTheJsonTypeInWords()
    {
        using var folder = new TempFolder();
        var file = folder.Combine("manifest.json");
        var original = File.ReadAllText(small.PathOf("manifest.json"));
        string Edited(Action<System.Text.Json.Nodes.JsonObject> edit)
        {
            var root = System.Text.Json.Nodes.JsonNode.Parse(original)!.AsObject();
            edit(root);
            return root.ToJsonString();
        }

        File.WriteAllText(file, Edited(m => m["products"]![0]!.AsObject().Remove("sha256")));
        var e = Assert.Throws<InvalidDataException>(() => SimulationManifest.Read(file));
        Assert.StartsWith(file + ":", e.Message, StringComparison.Ordinal);
        Assert.Contains("products[0] (impressions.parquet) lacks the field sha256; expected the SHA-256", e.Message, StringComparison.Ordinal);

        File.WriteAllText(file, Edited(m => m["formatVersion"] = "one"));
        e = Assert.Throws<InvalidDataException>(() => SimulationManifest.Read(file));
        Assert.Contains("field formatVersion (line 1) has the wrong type; expected an integer", e.Message, StringComparison.Ordinal);

        File.WriteAllText(file, Edited(m => m["products"]![0]!["columns"] = "request_id"));
        e = Assert.Throws<InvalidDataException>(() => SimulationManifest.Read(file));
        Assert.Contains("field products[0].columns (line 1) has the wrong type; expected an array", e.Message, StringComparison.Ordinal);

        File.WriteAllText(file, Edited(m => m["rowCounts"] = 5));
        e = Assert.Throws<InvalidDataException>(() => SimulationManifest.Read(file));
        Assert.Contains("field rowCounts (line 1) has the wrong type; expected an object", e.Message, StringComparison.Ordinal);

        File.WriteAllText(file, "[1, 2]");
        e = Assert.Throws<InvalidDataException>(() => SimulationManifest.Read(file));
        Assert.Contains("expected an object", e.Message, StringComparison.Ordinal);

        // A key given twice (the serialiser would keep the last copy) is refused, naming the key.
        var twice = original.Replace("\"formatVersion\": 1,", "\"formatVersion\": 1,\n  \"formatVersion\": 1,", StringComparison.Ordinal);
        Assert.NotEqual(original, twice);
        File.WriteAllText(file, twice);
        e = Assert.Throws<InvalidDataException>(() => SimulationManifest.Read(file));
        Assert.StartsWith(file + ":", e.Message, StringComparison.Ordinal);
        Assert.Contains("field formatVersion: the key \"formatVersion\" appears twice in the same object, at line 2, column 3 and line 3, column 3; expected each key once",
            e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("AdAuctionSim.", e.Message, StringComparison.Ordinal);

        File.WriteAllText(file, Edited(m => m["world"]!.AsObject().Remove("stages")));
        e = Assert.Throws<InvalidDataException>(() => SimulationManifest.Read(file));
        Assert.Contains("world.stages is missing", e.Message, StringComparison.Ordinal);

        // No .NET type names ("System.Int32", "AdAuctionSim.Simulation.Output.SimulationManifest") in any of them.
        foreach (var text in new[] { Edited(m => m["formatVersion"] = "one"), "[1, 2]", Edited(m => m["seed"] = "x"), Edited(m => m["world"]!["users"] = 1e12) })
        {
            File.WriteAllText(file, text);
            e = Assert.Throws<InvalidDataException>(() => SimulationManifest.Read(file));
            Assert.DoesNotContain("System.", e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("AdAuctionSim.", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void AFolderWhereTheManifestOrADataFileShouldBeSaysItIsAFolder()
    {
        using var folder = new TempFolder();
        var copy = folder.Combine("sim");
        Directory.CreateDirectory(copy);
        foreach (var file in Directory.GetFiles(small.Result.Directory))
        {
            File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
        }
        File.Delete(Path.Combine(copy, "impressions.parquet"));
        Directory.CreateDirectory(Path.Combine(copy, "impressions.parquet"));

        var e = Assert.Throws<InvalidDataException>(() => LoggedView.Open(copy));
        Assert.Equal($"{Path.Combine(copy, "impressions.parquet")}: is a folder; expected the data file the manifest lists", e.Message);

        File.Delete(Path.Combine(copy, "manifest.json"));
        Directory.CreateDirectory(Path.Combine(copy, "manifest.json"));
        e = Assert.Throws<InvalidDataException>(() => LoggedView.Open(copy));
        Assert.Contains("manifest.json: is a folder; expected the simulation manifest", e.Message, StringComparison.Ordinal);
    }

    /// <summary>(product file, column, data row to edit (1 = first), new text, what the message must say).</summary>
    public static TheoryData<string, string, int, string, string> HandEditedValues => new()
    {
        { "impressions.csv", "site_id", 4, "999999999", "999999999 is out of range; expected an integer from 0 to 39 (the manifest declares the scenario's traffic.sites = 40)" },
        { "impressions.csv", "site_id", 4, "-8", "-8 is out of range; expected an integer from 0 to 39" },
        { "impressions.csv", "user_id", 2, "2000", "expected an integer from 0 to 1999 (the manifest declares world.users = 2000)" },
        { "impressions.csv", "age", 2, "7", "expected an integer from 0 to 6 (every simulated world has 7 age buckets)" },
        { "impressions.csv", "action", 2, "3", "expected an integer from 0 to 2 (an index into the 3 candidate_ columns)" },
        { "impressions.csv", "candidate_1", 2, "-1", "expected an integer from 0 to" },
        { "impressions.csv", "click", 2, "2", "expected an integer from 0 to 1 (a stage label is 0 or 1)" },
        { "impressions.csv", "bid", 5, "NaN", "NaN is out of range; expected a finite amount of 0 or more" },
        { "impressions.csv", "bid", 5, "-5", "-5 is out of range; expected a finite amount of 0 or more" },
        { "impressions.csv", "price", 1, "Infinity", "Infinity is out of range; expected a finite amount of 0 or more" },
        { "impressions.csv", "pscore", 3, "1.5", "1.5 is out of range; expected a probability from 0 to 1" },
        { "impressions.csv", "bid_multiplier", 3, "0", "0 is out of range; expected a finite multiplier greater than 0" },
        { "lost_bids.csv", "win_propensity", 6, "-0.1", "-0.1 is out of range; expected a probability from 0 to 1" },
        { "lost_bids.csv", "request_id", 6, "-3", "-3 is out of range; expected an integer from 0 to" },
        { "ads.csv", "campaign_id", 2, "100000", "100000 is out of range; expected an integer from 0 to" },
    };

    [Theory]
    [MemberData(nameof(HandEditedValues))]
    public void HandEditedLoggedValuesWithARecomputedHashAreRefusedNamingFileColumnLineAndRange(string file, string column, int row, string text, string says)
    {
        using var folder = new TempFolder();
        var result = CsvOutput(folder);
        var path = Path.Combine(result.Directory, file);
        var lines = File.ReadAllText(path).Split('\n');
        var at = Array.IndexOf(lines[0].Split(','), column);
        var fields = lines[row].Split(',');
        fields[at] = text;
        lines[row] = string.Join(',', fields);
        File.WriteAllText(path, string.Join('\n', lines));
        // The hash the manifest records is brought up to date, as a careful hand edit would: only the values can tell.
        var manifest = Path.Combine(result.Directory, "manifest.json");
        File.WriteAllText(manifest, File.ReadAllText(manifest).Replace(result.Manifest.Product(file)!.Sha256,
            Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path))), StringComparison.Ordinal));
        var view = LoggedView.Open(result.Directory);
        var product = file switch
        {
            "impressions.csv" => LoggedProduct.Impressions,
            "lost_bids.csv" => LoggedProduct.LostBids,
            _ => LoggedProduct.Ads,
        };

        var e = Assert.Throws<InvalidDataException>(() => view.Read(product, view.Columns(product)));

        Assert.StartsWith($"{path}: line {row + 1}, column \"{column}\": ", e.Message, StringComparison.Ordinal);
        Assert.Contains(says, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EveryLoggedValueOfASimulationIsWithinItsRange()
    {
        foreach (var product in new[] { LoggedProduct.Impressions, LoggedProduct.LostBids, LoggedProduct.Ads })
        {
            var view = LoggedView.Open(small.Result.Directory);
            var columns = view.Read(product, view.Columns(product));
            Assert.Equal(view.Columns(product).Count, columns.Names.Count);
        }
        using var folder = new TempFolder();
        var csv = LoggedView.Open(CsvOutput(folder).Directory);
        Assert.Equal(csv.Rows(LoggedProduct.Impressions), csv.Read(LoggedProduct.Impressions, csv.Columns(LoggedProduct.Impressions)).Rows);
    }

    private static SimulationOutputResult CsvOutput(TempFolder folder) =>
        SimulationOutput.Write(TestScenarios.SmallWorld, new SimulationOutputOptions(folder.Combine("csv"), OutputFormat.Csv),
            new SimulationOptions { Threads = 1, ChunkSize = 4096 });

    [Fact]
    public void AStageNamedLikeAFixedColumnIsRefusedBeforeAnyWork()
    {
        using var folder = new TempFolder();
        var scenario = TestScenarios.Small with
        {
            Funnel = new FunnelOptions { Stages = [new("click", 0.04), new("price", 0.3)] },
        };
        // Refused before the world is even used: an unbuilt world (internal constructor) is enough and saves a build.
        var world = new WorldModel(scenario);

        var e = Assert.Throws<ArgumentException>(() =>
            SimulationOutput.Write(world, new SimulationOutputOptions(folder.Combine("out")), new SimulationOptions()));

        Assert.Contains("\"price\"", e.Message, StringComparison.Ordinal);
        Assert.Empty(folder.Entries());
    }

    private static string ScenarioJsonOf(Scenario s) => ScenarioJson.Serialize(s);

    private static Dictionary<long, int> Index(ParquetTable truth)
    {
        var ids = truth.Column<long>("request_id");
        var index = new Dictionary<long, int>(ids.Length);
        for (var i = 0; i < ids.Length; i++)
        {
            index[ids[i]] = i;
        }
        return index;
    }

    /// <summary>Reports synchronously (unlike <see cref="Progress{T}"/>) and cancels once the count passes a threshold.</summary>
    private sealed class CancelAt(long threshold, CancellationTokenSource cts) : IProgress<long>
    {
        public int Reports { get; private set; }

        public void Report(long value)
        {
            Reports++;
            if (value >= threshold)
            {
                cts.Cancel();
            }
        }
    }
}
