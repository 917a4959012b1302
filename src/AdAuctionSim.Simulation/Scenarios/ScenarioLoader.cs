using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using AdAuctionSim.Simulation.OffPolicy;

namespace AdAuctionSim.Simulation.Scenarios;

/// <summary>One problem in a scenario file: the field path (for example <c>funnel.stages[1].rate</c>) and what is wrong.</summary>
public sealed record ScenarioError(string Path, string Message)
{
    public override string ToString() => $"{Path}: {Message}";
}

/// <summary>A scenario file that cannot be used. The message names the file and every bad field.</summary>
public sealed class ScenarioValidationException(string file, IReadOnlyList<ScenarioError> errors)
    : Exception(Format(file, errors))
{
    public string File { get; } = file;
    public IReadOnlyList<ScenarioError> Errors { get; } = errors;

    /// <summary>The path of an error about the file itself (missing, unreadable), not one of its fields.</summary>
    public const string FilePath = "(file)";

    private static string Format(string file, IReadOnlyList<ScenarioError> errors) =>
        (errors.All(e => e.Path == FilePath) ? $"{file}: cannot read the scenario file:" : $"{file}: invalid scenario ({errors.Count} problem{(errors.Count == 1 ? "" : "s")}):")
        + string.Concat(errors.Select(e => $"{Environment.NewLine}  {e.Path}: {e.Message}"));
}

/// <summary>
/// Reads scenario files (JSON with comments and trailing commas). Unknown fields, wrong types and out-of-range
/// values are errors that name the field path, the value and what is allowed; every problem is reported at once.
/// </summary>
public static partial class ScenarioLoader
{
    private static readonly JsonDocumentOptions DocumentOptions = new()
    {
        CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>Loads and validates a scenario file (its run sections are checked too, then left out).</summary>
    /// <exception cref="ScenarioValidationException">The file is missing, not JSON, or has invalid fields.</exception>
    public static Scenario Load(string path) => LoadFile(path).Scenario;

    /// <summary>Loads and validates a scenario file with its run sections (<c>models</c>, <c>training</c>, <c>evaluation</c>, <c>sweep</c>).</summary>
    /// <exception cref="ScenarioValidationException">The file is missing, not JSON, or has invalid fields.</exception>
    public static ScenarioFile LoadFile(string path)
    {
        if (System.IO.Directory.Exists(path))
        {
            throw new ScenarioValidationException(path,
                [new ScenarioError(ScenarioValidationException.FilePath, "is a folder; expected the path of a scenario JSON file (examples in scenarios/)")]);
        }
        string text;
        try
        {
            text = System.IO.File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ScenarioValidationException(path,
                [new ScenarioError(ScenarioValidationException.FilePath, "no such file; expected the path of a scenario JSON file (examples in scenarios/)")]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ScenarioValidationException(path, [new ScenarioError(ScenarioValidationException.FilePath, $"cannot be read: {e.Message}")]);
        }
        return ParseFile(text, path, Path.GetFileNameWithoutExtension(path));
    }

    /// <summary>Parses scenario text; <paramref name="file"/> is used in messages, <paramref name="defaultName"/> when the file has no name.</summary>
    public static Scenario Parse(string json, string file, string defaultName = "scenario") => ParseFile(json, file, defaultName).Scenario;

    /// <summary>Parses scenario text with its run sections; every sweep setting is applied and validated too.</summary>
    public static ScenarioFile ParseFile(string json, string file, string defaultName = "scenario")
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, DocumentOptions);
        }
        catch (JsonException e)
        {
            var where = e.LineNumber is { } line ? $"line {line + 1}, column {e.BytePositionInLine + 1}" : "(document)";
            throw new ScenarioValidationException(file, [new ScenarioError(where, $"not valid JSON: {FirstSentence(e.Message)}")]);
        }
        using (doc)
        {
            // JsonDocument keeps the last of two equal keys; a scenario must not lose a section or a value that way.
            // (JsonDocumentOptions.AllowDuplicateProperties = false would refuse them too, but its error names neither the
            // field path nor the lines.)
            if (JsonDuplicateKeys.Find(json) is { Count: > 0 } duplicates)
            {
                throw new ScenarioValidationException(file, [.. duplicates.Select(d => new ScenarioError(d.Path, d.Message))]);
            }
            var errors = new List<ScenarioError>();
            var (scenario, experiment) = Bind(new Reader(errors), doc.RootElement, defaultName);
            if (errors.Count == 0 && scenario is not null)
            {
                CrossCheck(scenario, errors);
            }
            if (errors.Count == 0 && scenario is not null && experiment.Sweep is { } sweep)
            {
                CheckSweep(scenario, sweep, file, errors);
            }
            if (errors.Count > 0)
            {
                throw new ScenarioValidationException(file, errors);
            }
            return new ScenarioFile(scenario!, experiment);
        }
    }

    private static string FirstSentence(string message)
    {
        var i = message.IndexOf(". ", StringComparison.Ordinal);
        return i > 0 ? message[..i] : message;
    }

    private static (Scenario? Scenario, ExperimentOptions Experiment) Bind(Reader r, JsonElement root, string defaultName)
    {
        var o = r.Object(root, "");
        if (o is null)
        {
            return (null, new ExperimentOptions());
        }
        var d = new Scenario();
        var s = new Scenario
        {
            Name = o.String("name", defaultName, NamePattern(), NameAllowed),
            Description = o.String("description", "", null, null),
            Seed = o.Long("seed", d.Seed, 0, long.MaxValue),
            Traffic = BindTraffic(o.Child("traffic")),
            Funnel = BindFunnel(o.Child("funnel")),
            Bias = BindBias(o.Child("bias")),
            Auction = BindAuction(o.Child("auction")),
            LoggingPolicy = BindPolicy(o.Child("loggingPolicy")),
            Values = BindValues(o.Child("values")),
            Split = BindSplit(o.Child("split")),
        };
        var experiment = new ExperimentOptions
        {
            Models = o.StringArray("models", 1, 64, ModelIdPattern(), "a model id such as \"single-task\" or \"escm2-ips\""),
            Training = BindTraining(o.Child("training")),
            Evaluation = BindEvaluation(o.Child("evaluation")),
            Sweep = BindSweep(o.Child("sweep")),
            Ope = BindOpe(o.Child("ope")),
        };
        o.Done();
        return (s, experiment);
    }

    private static RunTrainingOptions BindTraining(ObjectReader? o)
    {
        var d = new RunTrainingOptions();
        if (o is null)
        {
            return d;
        }
        var t = new RunTrainingOptions
        {
            Epochs = o.Has("epochs") ? (int)o.Long("epochs", 10, 1, 10_000) : null,
            EarlyStopping = o.Bool("earlyStopping", d.EarlyStopping),
            Patience = o.HasValue("patience") ? (int)o.Long("patience", 2, 1, 10_000) : null,
            BatchSize = o.Has("batchSize") ? (int)o.Long("batchSize", 2048, 1, 1 << 24) : null,
            LearningRate = o.Has("learningRate") ? o.Double("learningRate", 0.001, 0, 10, minExclusive: true) : null,
            Seed = o.Long("seed", d.Seed, 0, long.MaxValue - 1000),
            LabelMode = o.String("labelMode", d.LabelMode, OptionIdPattern(), "an id such as \"conditional\" or \"cumulative\""),
            StageWeights = o.HasValue("stageWeights") ? o.DoubleArray("stageWeights", [], 1, RunTrainingOptions.MaxStageWeights, 0, RunTrainingOptions.MaxStageWeight) : null,
            WinPropensity = o.String("winPropensity", d.WinPropensity, OptionIdPattern(), "an id such as \"oracle\" or \"censored-lognormal\""),
            WinWeight = o.Enum("winWeight", d.WinWeight, ["policy", "at-bid"]),
            ValidationLoss = o.Enum("validationLoss", d.ValidationLoss, ["impressions", "win-weighted"]),
            IpsNormalizer = o.Enum("ipsNormalizer", d.IpsNormalizer, ["paper", "snips", "paddle"]),
            MaxWeight = o.HasValue("maxWeight") ? o.Double("maxWeight", null, 1, RunTrainingOptions.MaxWeightCap) : null,
            ClickPropensity = o.Enum("clickPropensity", d.ClickPropensity, ["model", "oracle"]),
            DrGradients = o.String("drGradients", d.DrGradients, OptionIdPattern(), "an id such as \"joint-learning\""),
            Device = o.Enum("device", d.Device, ["auto", "cpu", "cuda"]),
            Threads = (int)o.Long("threads", d.Threads, 0, 1024),
        };
        if (!t.EarlyStopping && t.Patience is not null)
        {
            o.Error("patience", "is set, but earlyStopping is false (every epoch is trained, the last one kept); remove patience or set earlyStopping to true");
        }
        o.Done();
        return t;
    }

    private static RunEvaluationOptions BindEvaluation(ObjectReader? o)
    {
        var d = new RunEvaluationOptions();
        if (o is null)
        {
            return d;
        }
        var e = new RunEvaluationOptions
        {
            Repeats = (int)o.Long("repeats", d.Repeats, 1, 100),
            Baseline = o.Has("baseline") ? o.String("baseline", null, ModelIdPattern(), "a model id such as \"single-task\"") : null,
        };
        o.Done();
        return e;
    }

    private static OpeOptions? BindOpe(ObjectReader? o)
    {
        if (o is null)
        {
            return null;
        }
        var d = new OpeOptions();
        var policies = new List<OpePolicyOptions>();
        var items = o.Has("policies") ? o.Array("policies", 0, 32) : null;
        for (var i = 0; items is not null && i < items.Count; i++)
        {
            if (o.ObjectAt("policies", i, items[i]) is not { } p)
            {
                continue;
            }
            var pd = new OpePolicyOptions();
            var policy = new OpePolicyOptions
            {
                Name = p.String("name", null, NamePattern(), NameAllowed),
                Scores = p.String("scores", pd.Scores, ModelIdPattern(), "\"truth\", \"logging\" or a model id such as \"single-task\""),
                Ad = p.Enum("ad", pd.Ad, ["greedy", "softmax", "uniform", "logging"]),
                Temperature = p.Double("temperature", pd.Temperature, 0.01, 100),
                Bid = p.Enum("bid", pd.Bid, ["own", "logging", "fixed"]),
                BidScale = p.Double("bidScale", pd.BidScale, 1e-6, 1e6, minExclusive: false),
                Multiplier = p.Double("multiplier", pd.Multiplier, 1e-6, 1e6, minExclusive: false),
            };
            p.Done();
            if (policy.Name == "logging" || policies.Any(x => x.Name == policy.Name))
            {
                o.Error($"policies[{i}].name", $"\"{policy.Name}\" is taken ({(policy.Name == "logging" ? "the logging policy is always valued under that name" : "another policy has it")}); expected a unique name");
            }
            policies.Add(policy);
        }
        var ope = new OpeOptions
        {
            Reward = o.Enum("reward", d.Reward, [.. OpeRewards.Ids]),
            Split = o.Enum("split", d.Split, ["test", "validation", "train", "all"]),
            RewardModel = o.String("rewardModel", d.RewardModel, ModelIdPattern(), "\"logging\", \"truth\" or a model id such as \"single-task\""),
            WinModel = o.Enum("winModel", d.WinModel, ["km", "censored-lognormal", "classifier"]),
            Clip = o.Double("clip", d.Clip, 0, 1e12, minExclusive: true),
            Switch = o.Double("switch", d.Switch, 0, 1e12, minExclusive: true),
            Bootstrap = (int)o.Long("bootstrap", d.Bootstrap, 0, 10_000),
            Policies = policies,
        };
        o.Done();
        return ope;
    }

    private static SweepOptions? BindSweep(ObjectReader? o)
    {
        if (o is null)
        {
            return null;
        }
        var dials = new List<SweepDial>();
        if (o.Has("grid"))
        {
            var items = o.Array("grid", 2, 2);
            for (var i = 0; items is not null && i < items.Count; i++)
            {
                if (o.ObjectAt("grid", i, items[i]) is { } g)
                {
                    dials.Add(BindDial(g));
                    g.Done();
                }
            }
        }
        else
        {
            dials.Add(BindDial(o));
        }
        o.Done();
        if (dials.Count == 2 && dials[0].Path == dials[1].Path && dials[0].Path.Length > 0)
        {
            o.Error("grid[1].path", $"\"{dials[1].Path}\" is swept twice; expected two different dials");
        }
        if (dials.Count == 2 && dials[0].Values.Count * dials[1].Values.Count > MaxSweepPoints)
        {
            o.Error("grid", $"has {dials[0].Values.Count * dials[1].Values.Count} points; expected at most {MaxSweepPoints}");
        }
        return new SweepOptions(dials);
    }

    /// <summary>Most points of a sweep (a grid's product included).</summary>
    public const int MaxSweepPoints = 400;

    private static SweepDial BindDial(ObjectReader o)
    {
        var path = o.String("path", null, null, "a numeric field path such as \"bias.clickCvrCorrelation\" or \"funnel.depth\"");
        var values = o.DoubleArray("values", [], 1, 50, -1e12, 1e12);
        if (values.Distinct().Count() != values.Count)
        {
            o.Error("values", "has repeated values; expected distinct settings");
        }
        return new SweepDial(path, values);
    }

    /// <summary>Each sweep value applied alone, then every combination of a grid, through the normal validation.</summary>
    private static void CheckSweep(Scenario scenario, SweepOptions sweep, string file, List<ScenarioError> errors)
    {
        var before = errors.Count;
        for (var d = 0; d < sweep.Dials.Count; d++)
        {
            var dial = sweep.Dials[d];
            var where = sweep.Dials.Count == 1 ? "sweep" : $"sweep.grid[{d}]";
            if (ScenarioSweep.PathError(scenario, dial.Path) is { } pathError)
            {
                errors.Add(new ScenarioError($"{where}.path", pathError));
                continue;
            }
            for (var v = 0; v < dial.Values.Count; v++)
            {
                try
                {
                    ScenarioSweep.Apply(scenario, dial.Path, dial.Values[v], file);
                }
                catch (ScenarioValidationException e)
                {
                    errors.Add(new ScenarioError($"{where}.values[{v}]", $"value {ScenarioSweep.Format(dial.Values[v])} is not allowed for {dial.Path}: "
                        + string.Join("; ", e.Errors.Select(x => x.Path == dial.Path ? x.Message : $"{x.Path}: {x.Message}"))));
                }
            }
        }
        if (errors.Count == before && sweep.Dials.Count > 1)
        {
            try
            {
                ScenarioSweep.Points(scenario, sweep, file);
            }
            catch (ScenarioValidationException e)
            {
                errors.AddRange(e.Errors.Select(x => new ScenarioError("sweep.grid", $"a combination is not allowed: {x.Path}: {x.Message}")));
            }
        }
    }

    private static TrafficOptions BindTraffic(ObjectReader? o)
    {
        var d = new TrafficOptions();
        if (o is null)
        {
            return d;
        }
        var t = new TrafficOptions
        {
            Requests = o.Long("requests", d.Requests, 1, 10_000_000_000),
            Days = o.Double("days", d.Days, 1.0 / 24, 3650),
            Users = (int)o.Long("users", d.Users, 10, 50_000_000),
            UserZipf = o.Double("userZipf", d.UserZipf, 0, 3),
            Advertisers = (int)o.Long("advertisers", d.Advertisers, 1, 100_000),
            CampaignsPerAdvertiser = (int)o.Long("campaignsPerAdvertiser", d.CampaignsPerAdvertiser, 1, 1000),
            AdsPerCampaign = (int)o.Long("adsPerCampaign", d.AdsPerCampaign, 1, 1000),
            CandidateAds = (int)o.Long("candidateAds", d.CandidateAds, 1, 64),
            Sites = (int)o.Long("sites", d.Sites, 1, 10_000_000),
            SiteZipf = o.Double("siteZipf", d.SiteZipf, 0, 3),
            Slots = (int)o.Long("slots", d.Slots, 1, 32),
            HourProfile = o.DoubleArray("hourProfile", d.HourProfile, 24, 24, 0, 1e6),
        };
        if (o.Has("hourProfile") && t.HourProfile.Count == 24 && t.HourProfile.Sum() <= 0)
        {
            o.Error("hourProfile", "must have at least one positive entry");
        }
        if ((long)t.Advertisers * t.CampaignsPerAdvertiser * t.AdsPerCampaign > 10_000_000)
        {
            o.Error("adsPerCampaign", $"advertisers × campaignsPerAdvertiser × adsPerCampaign = "
                + $"{(long)t.Advertisers * t.CampaignsPerAdvertiser * t.AdsPerCampaign}; expected at most 10000000 ads");
        }
        o.Done();
        return t;
    }

    private static FunnelOptions BindFunnel(ObjectReader? o)
    {
        var d = new FunnelOptions();
        if (o is null)
        {
            return d;
        }
        var stages = d.Stages;
        var items = o.Array("stages", 2, 6);
        if (items is not null)
        {
            var list = new List<StageOptions>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < items.Count; i++)
            {
                var so = o.ObjectAt("stages", i, items[i]);
                if (so is null)
                {
                    continue;
                }
                var name = so.String("name", null, StageNamePattern(), "a lower-case identifier such as \"click\" or \"convert\" (letters, digits, '_')");
                var rate = so.Double("rate", null, 0, 1, minExclusive: true, maxExclusive: true);
                so.Done();
                if (name is not null && Output.LogColumns.CollidesWithColumn(name) is { } column)
                {
                    o.Error($"stages[{i}].name", $"\"{name}\" is reserved: {column}; expected another stage name");
                }
                else if (name is not null && !names.Add(name))
                {
                    o.Error($"stages[{i}].name", $"\"{name}\" is used twice; stage names must be unique");
                }
                list.Add(new StageOptions(name ?? "", rate));
            }
            stages = list;
        }
        var f = new FunnelOptions { Stages = stages, Signal = o.Double("signal", d.Signal, 0, 5) };
        o.Done();
        return f;
    }

    private static BiasOptions BindBias(ObjectReader? o)
    {
        var d = new BiasOptions();
        if (o is null)
        {
            return d;
        }
        var b = new BiasOptions
        {
            ClickCvrCorrelation = o.Double("clickCvrCorrelation", d.ClickCvrCorrelation, 0, 1),
            HiddenConfounding = o.Double("hiddenConfounding", d.HiddenConfounding, 0, 3),
            HiddenPerRequest = o.Double("hiddenPerRequest", d.HiddenPerRequest, 0, 1),
            WinValueCorrelation = o.Double("winValueCorrelation", d.WinValueCorrelation, -3, 3),
            PositionEffect = o.Double("positionEffect", d.PositionEffect, 0, 3),
        };
        o.Done();
        return b;
    }

    private static AuctionOptions BindAuction(ObjectReader? o)
    {
        var d = new AuctionOptions();
        if (o is null)
        {
            return d;
        }
        var typeName = o.Enum("type", d.Type == AuctionType.SecondPrice ? "second-price" : "first-price", ["second-price", "first-price"]);
        var a = new AuctionOptions
        {
            Type = typeName == "first-price" ? AuctionType.FirstPrice : AuctionType.SecondPrice,
            Competitors = (int)o.Long("competitors", d.Competitors, 1, 64),
            CompetitorSpread = o.Double("competitorSpread", d.CompetitorSpread, 0, 3),
            CompetitorNoise = o.Double("competitorNoise", d.CompetitorNoise, 0.01, 3),
            TargetWinRate = o.Double("targetWinRate", d.TargetWinRate, 0.01, 0.99),
            ReservePrice = o.Double("reservePrice", d.ReservePrice, 0, 1e9),
        };
        o.Done();
        return a;
    }

    private static LoggingPolicyOptions BindPolicy(ObjectReader? o)
    {
        var d = new LoggingPolicyOptions();
        if (o is null)
        {
            return d;
        }
        var p = new LoggingPolicyOptions
        {
            EstimateQuality = o.Double("estimateQuality", d.EstimateQuality, 0, 1),
            Temperature = o.Double("temperature", d.Temperature, 0.01, 100),
            BidMultipliers = o.DoubleArray("bidMultipliers", d.BidMultipliers, 1, 16, 1e-6, 1e6, minExclusive: false),
            // A multiplier may have probability 0: a bid level the logging policy never places (off-policy estimators then lack
            // support for target policies that need it, which their diagnostics report).
            MultiplierProbabilities = o.DoubleArray("multiplierProbabilities", d.MultiplierProbabilities, 1, 16, 0, 1, minExclusive: false),
        };
        // A list that failed to read stands at its default here: compare only lists read as written, so that one bad
        // entry is not reported again as a length mismatch with the defaults.
        var multipliersRead = !o.Failed("bidMultipliers");
        var probabilitiesRead = !o.Failed("multiplierProbabilities");
        if (multipliersRead && probabilitiesRead && p.BidMultipliers.Count != p.MultiplierProbabilities.Count)
        {
            o.Error("multiplierProbabilities", $"has {p.MultiplierProbabilities.Count} entr{(p.MultiplierProbabilities.Count == 1 ? "y" : "ies")}; expected one per bid multiplier ({p.BidMultipliers.Count})");
        }
        else if (probabilitiesRead && Math.Abs(p.MultiplierProbabilities.Sum() - 1) > 1e-9)
        {
            o.Error("multiplierProbabilities", $"sums to {p.MultiplierProbabilities.Sum().ToString("R", CultureInfo.InvariantCulture)}; expected probabilities that sum to 1");
        }
        if (multipliersRead && p.BidMultipliers.Distinct().Count() != p.BidMultipliers.Count)
        {
            o.Error("bidMultipliers", "has repeated values; expected distinct multipliers");
        }
        o.Done();
        return p;
    }

    private static ValueOptions BindValues(ObjectReader? o)
    {
        var d = new ValueOptions();
        if (o is null)
        {
            return d;
        }
        var v = new ValueOptions
        {
            MeanValuePerConversion = o.Double("meanValuePerConversion", d.MeanValuePerConversion, 1e-6, 1e9),
            ValueSpread = o.Double("valueSpread", d.ValueSpread, 0, 3),
        };
        o.Done();
        return v;
    }

    private static SplitOptions BindSplit(ObjectReader? o)
    {
        var d = new SplitOptions();
        if (o is null)
        {
            return d;
        }
        var s = new SplitOptions
        {
            Train = o.Double("train", d.Train, 0, 1, minExclusive: true, maxExclusive: true),
            Validation = o.Double("validation", d.Validation, 0, 1, minExclusive: true, maxExclusive: true),
            Test = o.Double("test", d.Test, 0, 1, minExclusive: true, maxExclusive: true),
        };
        if (!o.Failed("train") && !o.Failed("validation") && !o.Failed("test") && Math.Abs(s.Train + s.Validation + s.Test - 1) > 1e-9)
        {
            o.Error("test", $"train + validation + test = {(s.Train + s.Validation + s.Test).ToString("R", CultureInfo.InvariantCulture)}; expected 1");
        }
        o.Done();
        return s;
    }

    /// <summary>Constraints that involve several sections.</summary>
    private static void CrossCheck(Scenario s, List<ScenarioError> errors)
    {
        var eta = s.Bias.PositionEffect;
        var meanExamination = 0.0;
        for (var j = 0; j < s.Traffic.Slots; j++)
        {
            meanExamination += Math.Pow(1 + j, -eta) / s.Traffic.Slots;
        }
        var click = s.Funnel.Stages[0].Rate;
        if (click >= 0.98 * meanExamination)
        {
            errors.Add(new ScenarioError("funnel.stages[0].rate",
                $"value {Fmt(click)} cannot be reached: with bias.positionEffect {Fmt(eta)} over {s.Traffic.Slots} slots the mean examination probability is {Fmt(meanExamination)}; expected a click rate below {Fmt(0.98 * meanExamination)}"));
        }
    }

    internal static string Fmt(double v) => v.ToString("0.######", CultureInfo.InvariantCulture);

    /// <summary>A scenario or policy name becomes a folder or file name: a plain one, so never "." or "..".</summary>
    [GeneratedRegex(@"^(?!\.{1,2}$)[A-Za-z0-9_.-]{1,64}$")]
    private static partial Regex NamePattern();

    private const string NameAllowed = "a plain file name of letters, digits, '-', '_' or '.' (1 to 64 characters, not \".\" or \"..\")";

    [GeneratedRegex("^[a-z][a-z0-9_]{0,31}$")]
    private static partial Regex StageNamePattern();

    [GeneratedRegex("^[a-z0-9][a-z0-9_.-]{0,63}$")]
    private static partial Regex ModelIdPattern();

    [GeneratedRegex("^[a-z][a-z-]{0,31}$")]
    private static partial Regex OptionIdPattern();

    /// <summary>Collects errors with their paths.</summary>
    private sealed class Reader(List<ScenarioError> errors)
    {
        public List<ScenarioError> Errors { get; } = errors;

        public ObjectReader? Object(JsonElement e, string path)
        {
            if (e.ValueKind != JsonValueKind.Object)
            {
                Errors.Add(new ScenarioError(path.Length == 0 ? "(root)" : path, $"is {Describe(e)}; expected an object"));
                return null;
            }
            return new ObjectReader(this, e, path);
        }
    }

    private sealed class ObjectReader
    {
        private readonly Reader _reader;
        private readonly JsonElement _element;
        private readonly string _path;
        private readonly HashSet<string> _known = new(StringComparer.Ordinal);

        public ObjectReader(Reader reader, JsonElement element, string path)
        {
            _reader = reader;
            _element = element;
            _path = path;
        }

        private string PathOf(string name) => _path.Length == 0 ? name : $"{_path}.{name}";

        public void Error(string name, string message) => _reader.Errors.Add(new ScenarioError(PathOf(name), message));

        /// <summary>Whether the field is present; it counts as a known field either way.</summary>
        public bool Has(string name)
        {
            _known.Add(name);
            return _element.TryGetProperty(name, out _);
        }

        /// <summary>
        /// Whether the field is present and not null: only for the optional settings whose null means none
        /// (<c>training.patience</c>, <c>maxWeight</c>, <c>stageWeights</c>, as <c>adsim scenario show</c> writes them).
        /// </summary>
        public bool HasValue(string name)
        {
            _known.Add(name);
            return _element.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null;
        }

        /// <summary>
        /// The field's value when present. A null is returned too, so that the typed readers report it ("is null;
        /// expected …") rather than taking the default as if the field were left out.
        /// </summary>
        private bool TryGet(string name, out JsonElement value)
        {
            _known.Add(name);
            return _element.TryGetProperty(name, out value);
        }

        /// <summary>Whether reading the field (or one of its entries) reported an error, so that checks across fields can skip it.</summary>
        public bool Failed(string name)
        {
            var path = PathOf(name);
            return _reader.Errors.Any(e => e.Path == path || e.Path.StartsWith(path + "[", StringComparison.Ordinal)
                || e.Path.StartsWith(path + ".", StringComparison.Ordinal));
        }

        public ObjectReader? Child(string name) =>
            TryGet(name, out var e) ? _reader.Object(e, PathOf(name)) : null;

        public ObjectReader? ObjectAt(string name, int index, JsonElement e) => _reader.Object(e, $"{PathOf(name)}[{index}]");

        public IReadOnlyList<JsonElement>? Array(string name, int minCount, int maxCount)
        {
            if (!TryGet(name, out var e))
            {
                return null;
            }
            if (e.ValueKind != JsonValueKind.Array)
            {
                Error(name, $"is {Describe(e)}; expected an array");
                return null;
            }
            var items = e.EnumerateArray().ToList();
            if (items.Count < minCount || items.Count > maxCount)
            {
                var expected = minCount == maxCount ? $"exactly {minCount}" : maxCount == int.MaxValue ? $"at least {minCount}" : $"{minCount} to {maxCount}";
                Error(name, $"has {items.Count} entr{(items.Count == 1 ? "y" : "ies")}; expected {expected}");
                return null;
            }
            return items;
        }

        public IReadOnlyList<string> StringArray(string name, int minCount, int maxCount, Regex pattern, string allowed)
        {
            var items = Array(name, minCount, maxCount);
            if (items is null)
            {
                return [];
            }
            var values = new List<string>();
            for (var i = 0; i < items.Count; i++)
            {
                if (items[i].ValueKind != JsonValueKind.String)
                {
                    Error($"{name}[{i}]", $"is {Describe(items[i])}; expected a string ({allowed})");
                    continue;
                }
                var s = items[i].GetString()!;
                if (!pattern.IsMatch(s))
                {
                    Error($"{name}[{i}]", $"value \"{Truncate(s)}\" is not allowed; expected {allowed}");
                }
                else if (values.Contains(s, StringComparer.Ordinal))
                {
                    Error($"{name}[{i}]", $"\"{s}\" is listed twice; expected each model once");
                }
                else
                {
                    values.Add(s);
                }
            }
            return values;
        }

        public string String(string name, string? fallback, Regex? pattern, string? allowed)
        {
            if (!TryGet(name, out var e))
            {
                if (fallback is null)
                {
                    Error(name, "is missing; expected " + (allowed ?? "a string"));
                    return "";
                }
                return fallback;
            }
            if (e.ValueKind != JsonValueKind.String)
            {
                Error(name, $"is {Describe(e)}; expected a string" + (allowed is null ? "" : $" ({allowed})"));
                return fallback ?? "";
            }
            var s = e.GetString()!;
            if (pattern is not null && !pattern.IsMatch(s))
            {
                Error(name, $"value \"{s}\" is not allowed; expected {allowed}");
            }
            return s;
        }

        public string Enum(string name, string fallback, string[] allowed)
        {
            if (!TryGet(name, out var e))
            {
                return fallback;
            }
            var expected = "one of " + string.Join(", ", allowed.Select(a => $"\"{a}\""));
            if (e.ValueKind != JsonValueKind.String)
            {
                Error(name, $"is {Describe(e)}; expected {expected}");
                return fallback;
            }
            var s = e.GetString()!;
            if (!allowed.Contains(s, StringComparer.Ordinal))
            {
                Error(name, $"value \"{s}\" is not allowed; expected {expected}");
                return fallback;
            }
            return s;
        }

        public bool Bool(string name, bool fallback)
        {
            if (!TryGet(name, out var e))
            {
                return fallback;
            }
            if (e.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            {
                Error(name, $"is {Describe(e)}; expected true or false");
                return fallback;
            }
            return e.GetBoolean();
        }

        public long Long(string name, long fallback, long min, long max)
        {
            if (!TryGet(name, out var e))
            {
                return fallback;
            }
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out var v))
            {
                Error(name, $"is {Describe(e)}; expected an integer from {min} to {max}");
                return fallback;
            }
            if (v < min || v > max)
            {
                Error(name, $"value {v} is out of range; expected an integer from {min} to {max}");
                return fallback;
            }
            return v;
        }

        public double Double(string name, double? fallback, double min, double max, bool minExclusive = false, bool maxExclusive = false)
        {
            var range = $"{(minExclusive ? "greater than" : "from")} {Fmt(min)} {(maxExclusive ? "and less than" : "to")} {Fmt(max)}";
            if (!TryGet(name, out var e))
            {
                if (fallback is null)
                {
                    Error(name, $"is missing; expected a number {range}");
                    return double.NaN;
                }
                return fallback.Value;
            }
            if (e.ValueKind != JsonValueKind.Number)
            {
                Error(name, $"is {Describe(e)}; expected a number {range}");
                return fallback ?? double.NaN;
            }
            var v = e.GetDouble();
            if (!InRange(v, min, max, minExclusive, maxExclusive))
            {
                Error(name, $"value {e.GetRawText()} is out of range; expected a number {range}");
                return fallback ?? double.NaN;
            }
            return v;
        }

        public IReadOnlyList<double> DoubleArray(string name, IReadOnlyList<double> fallback, int minCount, int maxCount,
            double min, double max, bool minExclusive = false)
        {
            var items = Array(name, minCount, maxCount);
            if (items is null)
            {
                return fallback;
            }
            var range = $"{(minExclusive ? "greater than" : "from")} {Fmt(min)} to {Fmt(max)}";
            var values = new double[items.Count];
            var ok = true;
            for (var i = 0; i < items.Count; i++)
            {
                var e = items[i];
                if (e.ValueKind != JsonValueKind.Number)
                {
                    Error($"{name}[{i}]", $"is {Describe(e)}; expected a number {range}");
                    ok = false;
                    continue;
                }
                values[i] = e.GetDouble();
                if (!InRange(values[i], min, max, minExclusive, false))
                {
                    Error($"{name}[{i}]", $"value {e.GetRawText()} is out of range; expected a number {range}");
                    ok = false;
                }
            }
            return ok ? values : fallback;
        }

        /// <summary>Reports every property that no reader asked for.</summary>
        public void Done()
        {
            foreach (var p in _element.EnumerateObject())
            {
                if (!_known.Contains(p.Name))
                {
                    var suggestion = _known
                        .Select(k => (Name: k, Distance: EditDistance(k.ToLowerInvariant(), p.Name.ToLowerInvariant())))
                        .Where(x => x.Distance <= Math.Max(1, x.Name.Length / 4))
                        .OrderBy(x => x.Distance).ThenBy(x => x.Name, StringComparer.Ordinal)
                        .Select(x => x.Name).FirstOrDefault();
                    Error(p.Name, "is not a known field" + (suggestion is null ? "" : $" (did you mean \"{suggestion}\"?)")
                        + $"; expected one of: {string.Join(", ", _known.Order(StringComparer.Ordinal))}");
                }
            }
        }

        private static bool InRange(double v, double min, double max, bool minExclusive, bool maxExclusive) =>
            double.IsFinite(v) && (minExclusive ? v > min : v >= min) && (maxExclusive ? v < max : v <= max);
    }

    /// <summary>Levenshtein distance, for "did you mean" suggestions.</summary>
    private static int EditDistance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }
        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                current[j] = Math.Min(Math.Min(current[j - 1], previous[j]) + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }

    private static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => $"the string \"{Truncate(e.GetString()!)}\"",
        JsonValueKind.Number => $"the number {e.GetRawText()}",
        JsonValueKind.True or JsonValueKind.False => $"the boolean {e.GetRawText()}",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => "null",
    };

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..37] + "...";
}
