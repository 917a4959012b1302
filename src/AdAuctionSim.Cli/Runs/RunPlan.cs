using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using AdAuctionSim.Cli.Terminal;
using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Training;
using AdAuctionSim.Models.WinPropensity;
using AdAuctionSim.Simulation.Scenarios;
using AdAuctionSim.Simulation.World;

namespace AdAuctionSim.Cli.Runs;

/// <summary>A sweep point's world, built before a run starts, and how long the build took.</summary>
internal sealed record PreparedWorld(WorldModel World, double Seconds);

/// <summary>
/// What <c>adsim run</c> will do, resolved and checked before any work: the scenario and its sweep points, the models
/// (checked against the catalog and every point's funnel depth), the trainer options, the repeats and their seeds.
/// Every problem is a <see cref="ScenarioValidationException"/> naming the file and the field path (exit 2).
/// </summary>
internal sealed record RunPlan(
    string ScenarioFile,
    Scenario Scenario,
    ExperimentOptions Experiment,
    IReadOnlyList<SweepPoint> Points,
    IReadOnlyList<ModelEntry> Models,
    string Baseline,
    TrainerOptions Trainer,
    ModelOptions Model,
    DrGradientMode DrGradients,
    int Repeats,
    int SimulationThreads,
    string ResolvedJson,
    OpePlan? Ope = null)
{
    /// <summary>
    /// The scenario with every run option written out, defaults included (<see cref="ResolvedJson"/> leaves out the
    /// options added after runs were first recorded while they hold their defaults, to keep those runs' identity): what
    /// reports and <c>adsim scenario show</c> print. training.threads is written as the file gives it (0: the processor
    /// count), so that the complete form is not pinned to this machine.
    /// </summary>
    public string CompleteJson { get; init; } = "";

    public IReadOnlyList<string> Dials => Experiment.Sweep?.Dials.Select(d => d.Path).ToList() ?? [];

    /// <summary>Loads the scenario file as the user typed its name and resolves the plan.</summary>
    /// <param name="terminal">Resolves the file name.</param>
    /// <param name="file">The scenario file as typed.</param>
    /// <param name="opeOnly">For <c>adsim ope</c>: the file must have an <c>ope</c> section, and the models are those it needs.</param>
    public static RunPlan Load(CliTerminal terminal, string file, bool opeOnly = false)
    {
        ScenarioFile parsed;
        try
        {
            parsed = ScenarioLoader.LoadFile(terminal.Resolve(file));
        }
        catch (ScenarioValidationException e) when (e.File != file)
        {
            throw new ScenarioValidationException(file, e.Errors);
        }
        return Create(parsed, file, opeOnly);
    }

    /// <summary>Resolves and checks the run sections of a parsed scenario file.</summary>
    public static RunPlan Create(ScenarioFile parsed, string file, bool opeOnly = false)
    {
        var (scenario, experiment) = (parsed.Scenario, parsed.Experiment);
        var errors = new List<ScenarioError>();
        var points = ScenarioSweep.Points(scenario, experiment.Sweep, file);
        var depths = points.Select(p => p.Scenario.Depth).Distinct().Order().ToList();

        var entries = new List<ModelEntry>();
        OpePlan? ope = null;
        if (opeOnly)
        {
            if (experiment.Ope is null)
            {
                throw new ScenarioValidationException(file, [new ScenarioError("ope", "is missing; expected an \"ope\" section with the target policies to value (see scenarios/ope-bias.json)")]);
            }
            // Only what the policies and the reward model score with; the run's "models" list is not trained.
            ope = OpePlan.Create(experiment.Ope, [.. points.Select(p => p.Scenario)], null, errors);
            experiment = experiment with { Models = ope.Models, Evaluation = experiment.Evaluation with { Baseline = ope.Models.FirstOrDefault() } };
        }
        if (experiment.Models.Count == 0 && !opeOnly)
        {
            if (ModelCatalog.Ids.Count == 0)
            {
                errors.Add(new ScenarioError("models", "is empty and the model catalog of this build has no models"));
            }
            // Every model of the catalog that can serve every point's depth.
            entries.AddRange(ModelCatalog.Ids.Select(ModelCatalog.Get).Where(e => depths.All(d => e.Unsupported(d) is null)));
        }
        for (var i = 0; i < experiment.Models.Count; i++)
        {
            var id = experiment.Models[i];
            if (!ModelCatalog.TryGet(id, out var entry))
            {
                errors.Add(new ScenarioError($"models[{i}]", $"\"{id}\" is not a model of the catalog; expected one of: {string.Join(", ", ModelCatalog.Ids)}"));
                continue;
            }
            foreach (var depth in depths)
            {
                if (entry.Unsupported(depth) is { } why)
                {
                    errors.Add(new ScenarioError($"models[{i}]", $"\"{id}\" cannot serve a funnel of depth {depth}: {why}"));
                }
            }
            entries.Add(entry);
        }

        var t = experiment.Training;
        var defaults = new TrainerOptions();
        var validationKnown = ValidationWeightings.TryParse(t.ValidationLoss, out var validationLoss);
        // The models that read a win propensity, or every model when the validation loss is win-weighted.
        var winReaders = entries.Where(e => TrainingRun.ReadsWinPropensity(e.Id) || validationLoss == ValidationWeighting.WinWeighted).ToList();
        if (!WinPropensitySources.TryParse(t.WinPropensity, out var win))
        {
            errors.Add(new ScenarioError("training.winPropensity", $"value \"{t.WinPropensity}\" is not allowed; expected one of {Quoted(WinPropensitySources.Ids)}"));
        }
        else if (WinPropensityModels.FirstPriceProblem(t.WinPropensity) is { } problem && winReaders.Count > 0
            && points.Any(p => p.Scenario.Auction.Type == AuctionType.FirstPrice))
        {
            errors.Add(new ScenarioError("training.winPropensity", $"\"{t.WinPropensity}\" {problem}, and auction.type is \"first-price\"; "
                + $"expected another source for {string.Join(", ", winReaders.Select(e => e.Id))}: "
                + Quoted(WinPropensitySources.Ids.Where(id => WinPropensityModels.FirstPriceProblem(id) is null))));
        }
        if (!WinWeightBases.TryParse(t.WinWeight, out var winWeight))
        {
            errors.Add(new ScenarioError("training.winWeight", $"value \"{t.WinWeight}\" is not allowed; expected one of {Quoted(WinWeightBases.Ids)}"));
        }
        else if (WinPropensitySources.TryParse(t.WinPropensity, out var source) && WinWeightBases.Conflict(winWeight, source) is { } conflict)
        {
            errors.Add(new ScenarioError("training.winWeight", conflict));
        }
        if (!validationKnown)
        {
            errors.Add(new ScenarioError("training.validationLoss", $"value \"{t.ValidationLoss}\" is not allowed; expected one of {Quoted(ValidationWeightings.Ids)}"));
        }
        else if (WinPropensitySources.TryParse(t.WinPropensity, out var validationSource)
            && ValidationWeightings.Conflict(validationLoss, validationSource) is { } validationConflict)
        {
            errors.Add(new ScenarioError("training.validationLoss", validationConflict));
        }
        if (!IpsNormalizers.TryParse(t.IpsNormalizer, out var ipsNormalizer))
        {
            errors.Add(new ScenarioError("training.ipsNormalizer", $"value \"{t.IpsNormalizer}\" is not allowed; expected one of {Quoted(IpsNormalizers.Ids)}"));
        }
        else
        {
            foreach (var conflict in entries.Select(e => IpsNormalizers.Conflict(e.Id, ipsNormalizer)).OfType<string>().Take(1))
            {
                errors.Add(new ScenarioError("training.ipsNormalizer", conflict));
            }
        }
        if (!ClickPropensitySources.TryParse(t.ClickPropensity, out var click))
        {
            errors.Add(new ScenarioError("training.clickPropensity", $"value \"{t.ClickPropensity}\" is not allowed; expected one of {Quoted(ClickPropensitySources.Ids)}"));
        }
        if (!DrGradientModes.TryParse(t.DrGradients, out var dr))
        {
            errors.Add(new ScenarioError("training.drGradients", $"value \"{t.DrGradients}\" is not allowed; expected one of {Quoted(DrGradientModes.Ids)}"));
        }
        else
        {
            foreach (var conflict in entries.Select(e => DrGradientModes.Conflict(e.Id, dr)).OfType<string>().Take(1))
            {
                errors.Add(new ScenarioError("training.drGradients", conflict));
            }
        }
        var labelMode = t.LabelMode switch
        {
            "conditional" => LabelMode.Conditional,
            "cumulative" => LabelMode.Cumulative,
            _ => (LabelMode?)null,
        };
        if (labelMode is null)
        {
            errors.Add(new ScenarioError("training.labelMode", $"value \"{t.LabelMode}\" is not allowed; expected one of \"conditional\", \"cumulative\""));
        }
        if (t.StageWeights is { } weights)
        {
            foreach (var depth in depths.Where(d => d != weights.Count))
            {
                errors.Add(new ScenarioError("training.stageWeights",
                    $"{weights.Count} weight{(weights.Count == 1 ? "" : "s")} for a funnel of depth {depth}; expected one weight per stage ({depth})"));
            }
            if (weights.All(w => w == 0))
            {
                errors.Add(new ScenarioError("training.stageWeights", "every weight is 0; expected at least one weight above 0"));
            }
        }
        var baseline = experiment.Evaluation.Baseline ?? entries.FirstOrDefault()?.Id ?? "";
        if (experiment.Evaluation.Baseline is { } b && !entries.Any(e => e.Id == b))
        {
            errors.Add(new ScenarioError("evaluation.baseline", $"\"{b}\" is not one of the run's models; expected one of: {string.Join(", ", entries.Select(e => e.Id))}"));
        }
        if (experiment.Ope is { } section && !opeOnly)
        {
            ope = OpePlan.Create(section, [.. points.Select(p => p.Scenario)], [.. entries.Select(e => e.Id)], errors);
        }
        if (errors.Count > 0)
        {
            throw new ScenarioValidationException(file, errors);
        }

        var threads = t.Threads > 0 ? t.Threads : Environment.ProcessorCount;
        var trainer = defaults with
        {
            Device = t.Device,
            Epochs = t.Epochs ?? defaults.Epochs,
            EarlyStopping = t.EarlyStopping,
            Patience = t.Patience ?? defaults.Patience,
            BatchSize = t.BatchSize ?? defaults.BatchSize,
            LearningRate = t.LearningRate ?? defaults.LearningRate,
            Seed = t.Seed,
            Threads = threads,
            WinPropensity = win,
            WinWeight = winWeight,
            ValidationLoss = validationLoss,
            ClickPropensity = click,
        };
        var model = new ModelOptions
        {
            LabelMode = labelMode!.Value, StageWeights = t.StageWeights, MaxWeight = t.MaxWeight, IpsNormalizer = ipsNormalizer,
        };
        var resolvedExperiment = experiment with
        {
            Models = entries.Select(e => e.Id).ToList(),
            Training = t with
            {
                Epochs = trainer.Epochs, BatchSize = trainer.BatchSize, LearningRate = trainer.LearningRate, Threads = threads,
                Patience = trainer.EarlyStopping ? trainer.Patience : null,
            },
            Evaluation = experiment.Evaluation with { Baseline = baseline },
        };
        return new RunPlan(file, scenario, resolvedExperiment, points, entries, baseline, trainer, model, dr,
            experiment.Evaluation.Repeats, Environment.ProcessorCount, Resolve(scenario, resolvedExperiment), ope)
        {
            CompleteJson = Resolve(scenario, resolvedExperiment with { Training = resolvedExperiment.Training with { Threads = t.Threads } }, complete: true),
        };
    }

    /// <summary>World seed of a repeat: the scenario's seed for repeat 0, a SplitMix64 draw from it for the others.</summary>
    public long WorldSeed(int repeat) => repeat == 0 ? Scenario.Seed : (long)(SplitMix64((ulong)Scenario.Seed + (ulong)repeat * 0x9E3779B97F4A7C15UL) >> 1);

    /// <summary>What <see cref="BuildWorlds"/> builds, for a status line.</summary>
    public string WorldsText => Points.Count == 1 ? "the world" : $"the worlds of {Points.Count} sweep points";

    /// <summary>
    /// Builds the world of every sweep point at repeat 0's seed (the world each point simulates first), so that the
    /// checks only a built world can make (a reserve price that too few bids clear) reject the file before any work,
    /// naming the sweep point, instead of failing a run part-way. The runner simulates repeat 0 from these worlds.
    /// </summary>
    /// <exception cref="ScenarioValidationException">A point's world cannot be built; each error's path names the point.</exception>
    public IReadOnlyList<PreparedWorld> BuildWorlds(CancellationToken cancellation)
    {
        var worlds = new List<PreparedWorld>(Points.Count);
        foreach (var point in Points)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                worlds.Add(new PreparedWorld(WorldModel.Build(point.Scenario with { Seed = WorldSeed(0) }, cancellation), clock.Elapsed.TotalSeconds));
            }
            catch (ScenarioValidationException e)
            {
                throw new ScenarioValidationException(ScenarioFile, point.Label.Length == 0
                    ? e.Errors
                    : [.. e.Errors.Select(error => error with { Path = $"{error.Path} (sweep point {point.Label})" })]);
            }
        }
        return worlds;
    }

    /// <summary>Training seed of a repeat: the training section's seed plus the repeat index.</summary>
    public long TrainingSeed(int repeat) => Trainer.Seed + repeat;

    private static ulong SplitMix64(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    internal static string Quoted(IEnumerable<string> ids) => string.Join(", ", ids.Select(i => $"\"{i}\""));

    /// <summary>
    /// The scenario fully resolved, with the run sections as they will be used: the run's identity on resume. With
    /// <paramref name="complete"/>, the newer training options are written even at their defaults.
    /// </summary>
    private static string Resolve(Scenario scenario, ExperimentOptions e, bool complete = false)
    {
        var root = JsonNode.Parse(ScenarioJson.Serialize(scenario, allFields: complete))!.AsObject();
        root["models"] = new JsonArray([.. e.Models.Select(m => (JsonNode)JsonValue.Create(m)!)]);
        var t = e.Training;
        root["training"] = new JsonObject
        {
            ["epochs"] = t.Epochs,
            ["batchSize"] = t.BatchSize,
            ["learningRate"] = t.LearningRate,
            ["seed"] = t.Seed,
            ["labelMode"] = t.LabelMode,
            ["winPropensity"] = t.WinPropensity,
            ["clickPropensity"] = t.ClickPropensity,
            ["drGradients"] = t.DrGradients,
            ["device"] = t.Device,
            ["threads"] = t.Threads,
        };
        // The newer options only when they differ from their defaults, so that runs recorded before they existed keep
        // their identity on resume.
        var defaults = new RunTrainingOptions();
        if (complete || t.WinWeight != defaults.WinWeight)
        {
            root["training"]!["winWeight"] = t.WinWeight;
        }
        if (complete || t.MaxWeight is not null)
        {
            root["training"]!["maxWeight"] = t.MaxWeight;
        }
        if (complete || t.ValidationLoss != defaults.ValidationLoss)
        {
            root["training"]!["validationLoss"] = t.ValidationLoss;
        }
        if (complete || !t.EarlyStopping)
        {
            root["training"]!["earlyStopping"] = t.EarlyStopping;
        }
        // The resolved patience is null without early stopping, where it plays no part.
        if (t.Patience is { } p && (complete || p != new TrainerOptions().Patience))
        {
            root["training"]!["patience"] = t.Patience;
        }
        if (complete || t.IpsNormalizer != defaults.IpsNormalizer)
        {
            root["training"]!["ipsNormalizer"] = t.IpsNormalizer;
        }
        if (complete || t.StageWeights is not null)
        {
            root["training"]!["stageWeights"] = t.StageWeights is { } weights
                ? new JsonArray([.. weights.Select(w => (JsonNode)JsonValue.Create(w))])
                : null;
        }
        root["evaluation"] = new JsonObject { ["repeats"] = e.Evaluation.Repeats, ["baseline"] = e.Evaluation.Baseline };
        static JsonObject Dial(SweepDial d) => new()
        {
            ["path"] = d.Path,
            ["values"] = new JsonArray([.. d.Values.Select(v => (JsonNode)JsonValue.Create(v))]),
        };
        if (e.Sweep is { Dials: [var dial] } && complete)
        {
            // One dial in the form a scenario file gives it (the identity keeps its one-entry grid).
            root["sweep"] = Dial(dial);
        }
        else if (e.Sweep is { } sweep)
        {
            root["sweep"] = new JsonObject { ["grid"] = new JsonArray([.. sweep.Dials.Select(d => (JsonNode)Dial(d))]) };
        }
        if (e.Ope is { } ope)
        {
            root["ope"] = new JsonObject
            {
                ["reward"] = ope.Reward,
                ["split"] = ope.Split,
                ["rewardModel"] = ope.RewardModel,
                ["winModel"] = ope.WinModel,
                ["clip"] = ope.Clip,
                ["switch"] = ope.Switch,
                ["bootstrap"] = ope.Bootstrap,
                ["policies"] = new JsonArray([.. ope.Policies.Select(p => (JsonNode)new JsonObject
                {
                    ["name"] = p.Name,
                    ["scores"] = p.Scores,
                    ["ad"] = p.Ad,
                    ["temperature"] = p.Temperature,
                    ["bid"] = p.Bid,
                    ["bidScale"] = p.BidScale,
                    ["multiplier"] = p.Multiplier,
                })]),
            };
        }
        // The complete form is for people: characters as the scenario file writes them (the identity keeps its bytes).
        var writer = complete
            ? new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }
            : new JsonSerializerOptions { WriteIndented = true };
        return root.ToJsonString(writer).ReplaceLineEndings("\n") + "\n";
    }

    /// <summary>A short description of the plan for the run's heading.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{Points.Count} point{(Points.Count == 1 ? "" : "s")} × {Repeats} repeat{(Repeats == 1 ? "" : "s")} × {Models.Count} model{(Models.Count == 1 ? "" : "s")}"
        + $" ({string.Join(", ", Models.Select(m => m.Id))}); baseline {Baseline}; "
        + $"{(Trainer.EarlyStopping ? $"up to {Trainer.Epochs} epoch{(Trainer.Epochs == 1 ? "" : "s")} (early stopping, patience {Trainer.Patience})" : $"{Trainer.Epochs} epoch{(Trainer.Epochs == 1 ? "" : "s")}, the last kept (no early stopping)")}, batch {Trainer.BatchSize}"
        + $"{(Model.StageWeights is { } w ? $"; stage weights {string.Join(", ", w.Select(x => x.ToString(CultureInfo.InvariantCulture)))}" : "")}"
        + $"{(Trainer.WinWeight != WinWeightBasis.Policy ? $"; win weight {WinWeightBases.Id(Trainer.WinWeight)}" : "")}"
        + $"{(Trainer.ValidationLoss != ValidationWeighting.Impressions ? $"; validation loss {ValidationWeightings.Id(Trainer.ValidationLoss)}" : "")}"
        + $"{(Model.MaxWeight is { } cap ? $"; max weight {cap}" : "")}"
        + $"{(Model.IpsNormalizer != IpsNormalizer.Paper ? $"; IPS normaliser {IpsNormalizers.Id(Model.IpsNormalizer)}" : "")}");

    /// <summary>Where run folders go by default (<c>reports/&lt;run-id&gt;/</c>).</summary>
    public const string DefaultOut = "reports";

    /// <summary>Where <c>adsim run</c>, <c>adsim runs</c> and <c>adsim compare</c> keep the registry by default.</summary>
    public static readonly string DefaultRegistry = Path.Combine(DefaultOut, Reports.Registry.RunRegistry.DefaultFileName);
}
