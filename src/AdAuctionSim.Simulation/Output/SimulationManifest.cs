using System.Reflection;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using AdAuctionSim.Simulation.Scenarios;
using AdAuctionSim.Simulation.Stats;

namespace AdAuctionSim.Simulation.Output;

/// <summary>
/// <c>manifest.json</c>: what a simulation folder holds and how it was made (DESIGN.md §4). Written last, so a
/// folder with a manifest is complete. Holds nothing that varies between runs of the same scenario and seed (no
/// time stamps, paths or thread counts), so it is byte-identical like the products it describes.
/// </summary>
public sealed record SimulationManifest
{
    /// <summary>Version of this manifest's layout; readers refuse other versions.</summary>
    public const int CurrentFormatVersion = 1;

    public int FormatVersion { get; init; } = CurrentFormatVersion;
    /// <summary>Informational version of the simulator assembly that wrote the folder.</summary>
    public string CodeVersion { get; init; } = "";
    /// <summary>The resolved scenario, every field present, as <see cref="ScenarioJson"/> writes it (a valid scenario file).</summary>
    public JsonElement Scenario { get; init; }
    public long Seed { get; init; }
    /// <summary>"parquet" or "csv".</summary>
    public string Format { get; init; } = "parquet";
    /// <summary>Every data file of the folder (the manifest itself excluded).</summary>
    public IReadOnlyList<ProductManifest> Products { get; init; } = [];
    public ManifestRowCounts RowCounts { get; init; } = new(0, 0, 0, new(new(0, 0), new(0, 0), new(0, 0)));
    public ManifestSplit Split { get; init; } = new(0, 0, 0);
    public ManifestWorld World { get; init; } = new(0, 0, 0, 0, [], [], [], []);
    /// <summary>The realised effect of every bias dial; see <see cref="RealisedBiasGlossary"/> for each figure's meaning.</summary>
    public BiasReport? RealisedBias { get; init; }
    /// <summary>What each figure of <see cref="RealisedBias"/> measures (JSON path → description).</summary>
    public IReadOnlyDictionary<string, string> RealisedBiasGlossary { get; init; } = Glossary;

    /// <summary>The product with this file name, or null.</summary>
    public ProductManifest? Product(string file) => Products.FirstOrDefault(p => p.File == file);

    /// <summary>Binds the embedded scenario back into a <see cref="Scenarios.Scenario"/> (validated like a scenario file).</summary>
    public Scenario ReadScenario(string source = LogColumns.ManifestFile) =>
        ScenarioLoader.Parse(Scenario.GetRawText(), source);

    /// <summary>The manifest as indented camelCase JSON with "\n" line ends; NaN and infinities are written as null.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions) + "\n";

    /// <summary>Loads a manifest from a <c>manifest.json</c> file or from the simulation folder holding one.</summary>
    /// <exception cref="FileNotFoundException">There is no manifest at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">The file is not a manifest this code can read; the message names the file.</exception>
    public static SimulationManifest Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var file = System.IO.Directory.Exists(path) ? Path.Combine(path, LogColumns.ManifestFile) : path;
        if (System.IO.Directory.Exists(file))
        {
            throw new InvalidDataException($"{file}: is a folder; expected the simulation manifest, a JSON file");
        }
        if (!File.Exists(file))
        {
            throw new FileNotFoundException($"{file}: no simulation manifest here (a folder without one is incomplete or not a simulation output)", file);
        }
        string text;
        try
        {
            text = File.ReadAllText(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"{file}: cannot be read: {e.Message}", e);
        }
        SimulationManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<SimulationManifest>(text, JsonOptions);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{file}: not a valid simulation manifest: {DescribeJsonError(e)}", e);
        }
        if (manifest is null)
        {
            throw new InvalidDataException($"{file}: not a valid simulation manifest: the document is null");
        }
        if (Scenarios.JsonDuplicateKeys.Find(text) is [var duplicate, ..])
        {
            throw new InvalidDataException($"{file}: not a valid simulation manifest: field {duplicate.Path}: {duplicate.Message}");
        }
        if (manifest.FormatVersion != CurrentFormatVersion)
        {
            throw new InvalidDataException($"{file}: manifest formatVersion {manifest.FormatVersion} is not supported; expected {CurrentFormatVersion}");
        }
        if (manifest.Scenario.ValueKind != JsonValueKind.Object || manifest.RealisedBias is null || manifest.Products is not { Count: > 0 })
        {
            throw new InvalidDataException($"{file}: not a valid simulation manifest: scenario, products or realisedBias is missing");
        }
        if (MissingField(manifest) is { } missing)
        {
            throw new InvalidDataException($"{file}: not a valid simulation manifest: {missing}");
        }
        return manifest;
    }

    /// <summary>
    /// The first field that readers need but the manifest lacks (or holds as null), in words; null when none is.
    /// The serialiser leaves a missing record field null, which would otherwise surface as a blank in a later message.
    /// </summary>
    private static string? MissingField(SimulationManifest m)
    {
        for (var i = 0; i < m.Products.Count; i++)
        {
            var p = m.Products[i];
            var at = $"products[{i.ToString(System.Globalization.CultureInfo.InvariantCulture)}]";
            if (p is null)
            {
                return $"{at} is null; expected an object with file, rows, sha256 and columns";
            }
            var named = p.File is null ? at : $"{at} ({p.File})";
            var lacks = p.File is null ? ("file", "the data file's name, a string")
                : p.Sha256 is null ? ("sha256", "the SHA-256 of the file's bytes, a string of 64 hex digits")
                : p.Columns is null ? ("columns", "the file's column names, an array of strings")
                : default;
            if (lacks.Item1 is not null)
            {
                return $"{named} lacks the field {lacks.Item1}; expected {lacks.Item2}";
            }
        }
        if (m.RowCounts?.BySplit is null)
        {
            return "rowCounts (with its bySplit) is missing or null; expected an object with requests, impressions, lostBids and bySplit";
        }
        if (m.Split is null)
        {
            return "split is missing or null; expected an object with trainEnd, validationEnd and durationSeconds";
        }
        if (m.World?.Stages is null)
        {
            return "world.stages is missing or null; expected an array of the funnel's stage names";
        }
        return null;
    }

    /// <summary>
    /// A serialiser error in words: the field path, its line and the JSON type expected, rather than the .NET type it
    /// would have been bound to ("System.Int32", "…SimulationManifest").
    /// </summary>
    internal static string DescribeJsonError(JsonException e)
    {
        var where = e.LineNumber is { } line ? $" (line {(line + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)})" : "";
        var field = e.Path is null or "$" ? null : e.Path.StartsWith("$.", StringComparison.Ordinal) ? e.Path[2..] : e.Path.TrimStart('$');
        var converted = System.Text.RegularExpressions.Regex.Match(e.Message, @"could not be converted to (?<type>[^ ]+)\.(?: |$)");
        if (converted.Success)
        {
            var expected = JsonTypeInWords(converted.Groups["type"].Value);
            return field is null
                ? $"the document{where} is not what a manifest holds; expected {expected}"
                : $"field {field}{where} has the wrong type; expected {expected}";
        }
        // Syntax errors and the like: the reader's first sentence (it names no .NET type), and where.
        var message = e.Message;
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        message = cut > 0 ? message[..cut] : message;
        return field is null ? $"{message.TrimEnd()}{where}" : $"field {field}{where}: {message.TrimEnd()}";
    }

    /// <summary>The JSON a .NET type of this manifest is read from, in words.</summary>
    private static string JsonTypeInWords(string type)
    {
        if (type.StartsWith("System.Collections.", StringComparison.Ordinal) || type.EndsWith("[]", StringComparison.Ordinal))
        {
            return type.Contains("Dictionary", StringComparison.Ordinal) ? "an object" : "an array";
        }
        return type switch
        {
            "System.Int32" => "an integer (at most 2147483647)",
            "System.Int64" or "System.Int16" or "System.Byte" or "System.UInt32" or "System.UInt64" => "an integer",
            "System.Double" or "System.Single" or "System.Decimal" => "a number",
            "System.String" => "a string",
            "System.Boolean" => "true or false",
            _ => "an object",
        };
    }

    /// <summary>Serialiser settings of manifests (camelCase; NaN ↔ null).</summary>
    internal static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        NewLine = "\n",
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new NonFiniteAsNullConverter() },
    };

    /// <summary>The assembly's informational version (version and commit when built from a repository).</summary>
    public static string CurrentCodeVersion { get; } =
        typeof(SimulationManifest).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(SimulationManifest).Assembly.GetName().Version?.ToString()
        ?? "unknown";

    /// <summary>Descriptions of the realised-bias figures (DESIGN.md §3, "realised effect reported").</summary>
    public static readonly IReadOnlyDictionary<string, string> Glossary = new Dictionary<string, string>
    {
        ["requests"] = "|D|: bid requests simulated",
        ["impressions"] = "|O|: auctions won",
        ["winRate"] = "|O| / |D| (win-value correlation and the auction set it)",
        ["meanTrueWinPropensity"] = "mean of the true P(win | x) over D (its target is auction.targetWinRate)",
        ["clickRate"] = "clicks / impressions: the click rate the logs show",
        ["clickRateBySlot"] = "click rate of the impressions in each slot, 95% Wilson interval (position effect)",
        ["stages[].targetRate"] = "the stage's rate the scenario asks for (funnel.stages[].rate)",
        ["stages[].entireSpaceRate"] = "share of potential outcomes 1 among requests of D whose potential outcomes reach the stage before (the true funnel as if every request were shown)",
        ["stages[].entireSpaceMeanQ"] = "mean true q_k over that same parent population of D (close to targetRate)",
        ["stages[].loggedRate"] = "observed label rate among impressions that reached the stage before (what a model trained on the logs sees)",
        ["stages[].counterfactualMeanQ"] = "mean true q_k over all of D: the counterfactual rate under do(stage k−1 reached)",
        ["stages[].loggedParentMeanQ"] = "mean true q_k over the impressions that reached the stage before (for a post-click stage: over C)",
        ["stages[].clickSelectionRatio"] = "post-click stages: loggedParentMeanQ / counterfactualMeanQ = mean CVR on C ÷ mean counterfactual CVR on D, the whole selection a click-space CVR model sees (1 = none) = winSelectionPart × funnelSelectionPart",
        ["stages[].impressionMeanQ"] = "mean true q_k over every impression (O), whether or not it reached the stage before",
        ["stages[].winSelectionPart"] = "post-click stages: impressionMeanQ / counterfactualMeanQ = mean q_k on O ÷ on D, the part of clickSelectionRatio the auction makes (which requests were won: the logging bidder's own value estimate and the win-value correlation move it)",
        ["stages[].funnelSelectionPart"] = "post-click stages: loggedParentMeanQ / impressionMeanQ = mean q_k on C ÷ on O, the part of clickSelectionRatio the funnel makes (which impressions reached the stage before: click–CVR correlation and hidden confounding move it)",
        ["stages[].hiddenSelectionPart"] = "post-click stages: funnelSelectionPart ÷ the same ratio of E[q_k | x] (the rate averaged over the per-request part of the hidden trait): the part of the selection the logged features cannot explain, 1 when the hidden trait is a user trait (user id is a feature), above 1 as bias.hiddenPerRequest and hiddenConfounding grow",
        ["winSelectionRatio"] = "mean r_K on O ÷ mean r_K on D (1 = the won slice is representative; the logging bidder bids more on the requests it values more, and win-value correlation makes competitors do the same, which pulls it back towards 1)",
        ["inverseWinPropensityEss"] = "effective sample size of inverse-win-propensity weights over O: (Σ 1/p)² / Σ 1/p², p = true P(win | x)",
        ["inverseWinPropensityEssShare"] = "inverseWinPropensityEss / impressions (1 = uniform weights)",
        ["meanBid"] = "mean bid over D",
        ["meanPrice"] = "mean price paid over O",
        ["conversionValue"] = "sum of value_per_conversion over impressions that reached the final stage",
    };

    /// <summary>JSON has no NaN: non-finite doubles are written as null and null is read back as NaN.</summary>
    private sealed class NonFiniteAsNullConverter : JsonConverter<double>
    {
        public override bool HandleNull => true;

        public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.Null ? double.NaN : reader.GetDouble();

        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
        {
            if (double.IsFinite(value))
            {
                writer.WriteNumberValue(value);
            }
            else
            {
                writer.WriteNullValue();
            }
        }
    }
}

/// <summary>One data file of a simulation folder.</summary>
/// <param name="File">File name within the folder, e.g. <c>impressions.parquet</c>.</param>
/// <param name="Rows">Data rows (CSV: excluding the header).</param>
/// <param name="Sha256">SHA-256 of the file's bytes, lower-case hex.</param>
/// <param name="Columns">Column names in file order.</param>
public sealed record ProductManifest(string File, long Rows, string Sha256, IReadOnlyList<string> Columns);

/// <summary>Row counts: |D|, |O| and |D∖O|, and per split.</summary>
public sealed record ManifestRowCounts(long Requests, long Impressions, long LostBids, ManifestSplitCounts BySplit);

public sealed record ManifestSplitCounts(ManifestSplitCount Train, ManifestSplitCount Validation, ManifestSplitCount Test);

/// <summary>Requests and impressions of one split.</summary>
public sealed record ManifestSplitCount(long Requests, long Impressions);

/// <summary>Split boundaries by request id: [0, trainEnd) train, [trainEnd, validationEnd) validation, the rest test.</summary>
public sealed record ManifestSplit(long TrainEnd, long ValidationEnd, long DurationSeconds);

/// <summary>The solved world constants worth knowing when reading the output.</summary>
/// <param name="Users">Users in the world.</param>
/// <param name="Ads">Ads in the catalogue (<c>ads</c> product).</param>
/// <param name="Campaigns">Campaigns over all advertisers.</param>
/// <param name="Advertisers">Advertisers.</param>
/// <param name="Stages">Funnel stage names in order.</param>
/// <param name="BaseLogits">Solved β_k per stage (same order as <paramref name="Stages"/>).</param>
/// <param name="CompetitorLogBidMeans">Solved mean log bid μ_j of each competitor.</param>
/// <param name="Examination">Examination probability of each slot (position effect).</param>
public sealed record ManifestWorld(
    int Users,
    int Ads,
    int Campaigns,
    int Advertisers,
    IReadOnlyList<string> Stages,
    IReadOnlyList<double> BaseLogits,
    IReadOnlyList<double> CompetitorLogBidMeans,
    IReadOnlyList<double> Examination);
