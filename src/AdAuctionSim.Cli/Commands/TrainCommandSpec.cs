using System.Globalization;
using AdAuctionSim.Cli.CommandLine;
using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Training;
using AdAuctionSim.Simulation.Scenarios;

namespace AdAuctionSim.Cli.Commands;

/// <summary>
/// Arguments of <c>adsim train</c>, checked by the parser (and by <see cref="TrainCommandSpec"/>'s binding for the model
/// list, the learning rate and the stage weights). Models is null for every model of the catalog, StageWeights for 1 per
/// stage, Out for the default.
/// </summary>
internal sealed record TrainArguments(
    string Simulation,
    IReadOnlyList<string>? Models,
    string Device,
    int Epochs,
    bool FixedEpochs,
    int? Patience,
    int BatchSize,
    double LearningRate,
    int Threads,
    long Seed,
    LabelMode LabelMode,
    IReadOnlyList<double>? StageWeights,
    WinPropensitySource WinPropensity,
    WinWeightBasis WinWeight,
    ValidationWeighting ValidationLoss,
    double? MaxWeight,
    IpsNormalizer IpsNormalizer,
    ClickPropensitySource ClickPropensity,
    DrGradientMode DrGradients,
    string? Out,
    bool Force);

/// <summary>The <c>adsim train</c> command's options, defaults and binding; registered in <see cref="CommandCatalog.All"/>.</summary>
internal static class TrainCommandSpec
{
    public const int MaxEpochs = 10_000;
    public const int MaxBatch = 1 << 24;
    public const int MaxThreads = 1024;

    private static readonly TrainerOptions Defaults = new();

    /// <summary>Where the run goes when --out is not given, relative to the simulation folder.</summary>
    public static readonly string DefaultOut = Path.Combine("runs", "train");

    public static CommandSpec Create() => new(
        "train",
        "Train models on a simulation's logs and score every request",
        "Reads only the logged view of a simulation folder (impressions, lost bids; never the truth), trains each model on "
        + "the train split with early stopping on the validation impressions' log loss (or, with --fixed-epochs, for every "
        + "epoch, keeping the last), and writes a run folder: "
        + "checkpoints/<model>.bin, curves/<model>.csv, predictions/<model>.parquet (q_hat_<stage> and r_hat_<stage> for "
        + "every request) and train.json. The folder appears only when every model is done." + Environment.NewLine
        + "Models: " + (ModelCatalog.Ids.Count == 0 ? "none are registered in this build." : string.Join(", ", ModelCatalog.Ids) + "."),
        [new ArgumentSpec("<simulation-dir>", "folder written by adsim simulate")],
        [
            new OptionSpec("models", OptionKind.Text, "Comma-separated model ids") { ValueName = "A,B,...", Default = "every model of the catalog" },
            new OptionSpec("device", OptionKind.Choice, "Device to train on") { ValueName = "DEVICE", Choices = ["auto", "cpu", "cuda"], Default = "auto (cuda when available)" },
            new OptionSpec("epochs", OptionKind.Integer, "Most epochs (early stopping may stop sooner; every one with --fixed-epochs)")
                { ValueName = "N", Min = 1, Max = MaxEpochs, Default = Defaults.Epochs.ToString(CultureInfo.InvariantCulture) },
            new OptionSpec("patience", OptionKind.Integer, "Epochs without a better validation log loss before training stops; the best epoch's weights are kept")
                { ValueName = "N", Min = 1, Max = MaxEpochs, Default = Defaults.Patience.ToString(CultureInfo.InvariantCulture) },
            new OptionSpec("fixed-epochs", OptionKind.Flag, "Train every one of --epochs epochs and keep the last epoch's weights (no early stopping), "
                + "to read every model at the same epoch; as training.earlyStopping: false in a scenario")
                { Default = "off: early stopping keeps the best epoch" },
            new OptionSpec("batch", OptionKind.Integer, "Rows per training batch")
                { ValueName = "N", Min = 1, Max = MaxBatch, Default = Defaults.BatchSize.ToString(CultureInfo.InvariantCulture) },
            new OptionSpec("lr", OptionKind.Text, "Adam learning rate") { ValueName = "X", Default = Defaults.LearningRate.ToString("R", CultureInfo.InvariantCulture) },
            new OptionSpec("threads", OptionKind.Integer, "Intra-op threads of libtorch")
                { ValueName = "N", Min = 1, Max = MaxThreads, Default = $"processor count, here {Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture)}" },
            new OptionSpec("seed", OptionKind.Integer, "Seed of initialisation and batch order") { ValueName = "N", Min = 0, Max = long.MaxValue, Default = Defaults.Seed.ToString(CultureInfo.InvariantCulture) },
            new OptionSpec("label-mode", OptionKind.Choice, "Stage losses of the generic baselines on the parent stage's rows (conditional) or on all impressions (cumulative)")
                { ValueName = "MODE", Choices = ["conditional", "cumulative"], Default = "conditional" },
            new OptionSpec("stage-weights", OptionKind.Text, "w_k, each stage's loss weight, one per stage of the funnel (models.md §2: "
                + "Σ_k w_k L_k), each from 0 to 1e6 and not all 0; as training.stageWeights in a scenario")
                { ValueName = "W1,W2,...", Default = "1 for every stage" },
            new OptionSpec("win-propensity", OptionKind.Choice, "Win propensity of the inverse-win weights (ipw-escm2, ipw-escm2-dr): the logged oracle "
                + "column, a win model fitted once on the train split's impressions and lost bids (km, censored-lognormal in-sample; "
                + "classifier cross-fitted), or none (all 1)")
                { ValueName = "SOURCE", Choices = [.. WinPropensitySources.Ids], Default = WinPropensitySources.Id(Defaults.WinPropensity) },
            new OptionSpec("win-weight", OptionKind.Choice, "What the inverse-win weights divide by (models.md §14.3): the policy "
                + "propensity π(x), averaged over the bidder's multipliers, or the fitted win model's Ŵ(b | x) at each request's own bid "
                + "(needs --win-propensity km, censored-lognormal or classifier); as training.winWeight in a scenario")
                { ValueName = "BASIS", Choices = [.. WinWeightBases.Ids], Default = WinWeightBases.Id(Defaults.WinWeight) },
            new OptionSpec("validation-loss", OptionKind.Choice, "How the validation log loss that early stopping minimises weighs the "
                + "validation impressions: equally (models.md §16.3), or by 1/max(π, ε_w) from --win-propensity (Hájek, per stage), an "
                + "estimate of the log loss over every request of D rather than over the won slice; needs a --win-propensity other than none, "
                + "and a fitted one is fitted for every model; as training.validationLoss in a scenario")
                { ValueName = "WEIGHTING", Choices = [.. ValidationWeightings.Ids], Default = ValidationWeightings.Id(Defaults.ValidationLoss) },
            new OptionSpec("max-weight", OptionKind.Text, "W_max, a cap on each combined counterfactual weight of escm2-ips, escm2-dr, "
                + "multi-ipw, multi-dr, ipw-escm2 and ipw-escm2-dr (s/p̂, times 1/π̂ for the ipw models; models.md §9.5, §15.2), a number from 1 to 1e6; "
                + "as training.maxWeight in a scenario")
                { ValueName = "W", Default = "no cap" },
            new OptionSpec("ips-normalizer", OptionKind.Choice, "How escm2-ips, multi-ipw and ipw-escm2 normalise their counterfactual risk "
                + "(models.md §9.5): the paper's 1/|B|, self-normalised (snips: 1/Σw), or PaddleRec's (§9.3: 1/clicks in the batch, "
                + "weights capped at 15, not with ipw-escm2); as training.ipsNormalizer in a scenario")
                { ValueName = "MODE", Choices = [.. IpsNormalizers.Ids], Default = IpsNormalizers.PaperId },
            new OptionSpec("click-propensity", OptionKind.Choice, "Click (reach) propensities of the IPS/DR models (escm2-ips, escm2-dr, "
                + "multi-ipw, multi-dr, ipw-escm2, ipw-escm2-dr, dcmt): each model's own detached estimate, as published, or the true propensities "
                + "the simulator logs in the impressions (propensity_<stage>), to tell estimation error from method error")
                { ValueName = "SOURCE", Choices = [.. ClickPropensitySources.Ids], Default = ClickPropensitySources.Id(Defaults.ClickPropensity) },
            new OptionSpec("dr-gradients", OptionKind.Choice, "How escm2-dr, multi-dr and ipw-escm2-dr pass gradients through the DR terms (models.md §9.5; paddle not with ipw-escm2-dr)")
                { ValueName = "MODE", Choices = [.. DrGradientModes.Ids], Default = DrGradientModes.Id(DrGradientMode.JointLearning) },
            new OptionSpec("out", OptionKind.Text, "Run directory") { ValueName = "DIR", Default = $"<simulation-dir>/{DefaultOut.Replace('\\', '/')}" },
            new OptionSpec("force", OptionKind.Flag, "Replace the run directory if it exists") { Default = "off: an existing directory is an error" },
        ],
        typeof(TrainCommand),
        Bind);

    private static object Bind(ParsedCommand p)
    {
        // The win-propensity source, which the win weight and the validation loss are checked against.
        var source = WinPropensitySources.TryParse(p.Text("win-propensity"), out var parsed) ? parsed : Defaults.WinPropensity;
        return new TrainArguments(
            p.Arguments[0],
            p.Text("models") is { } list ? ModelList(list) : null,
            p.Text("device") ?? "auto",
            (int)(p.Integer("epochs") ?? Defaults.Epochs),
            p.Flag("fixed-epochs"),
            p.Integer("patience") is { } patience ? (p.Flag("fixed-epochs")
                ? throw Usage("option --patience: patience applies to early stopping, which --fixed-epochs turns off; give one of the two")
                : (int)patience) : null,
            (int)(p.Integer("batch") ?? Defaults.BatchSize),
            p.Text("lr") is { } lr ? LearningRate(lr) : Defaults.LearningRate,
            (int)(p.Integer("threads") ?? Environment.ProcessorCount),
            p.Integer("seed") ?? Defaults.Seed,
            p.Text("label-mode") == "cumulative" ? LabelMode.Cumulative : LabelMode.Conditional,
            p.Text("stage-weights") is { } weights ? StageWeights(weights) : null,
            source,
            Choice(p, "win-weight", WinWeightBases.TryParse, Defaults.WinWeight, basis => WinWeightBases.Conflict(basis, source)),
            Choice(p, "validation-loss", ValidationWeightings.TryParse, Defaults.ValidationLoss, weighting => ValidationWeightings.Conflict(weighting, source)),
            p.Text("max-weight") is { } cap ? MaxWeight(cap) : null,
            IpsNormalizers.TryParse(p.Text("ips-normalizer"), out var normalizer) ? normalizer : IpsNormalizer.Paper,
            ClickPropensitySources.TryParse(p.Text("click-propensity"), out var click) ? click : Defaults.ClickPropensity,
            DrGradientModes.TryParse(p.Text("dr-gradients"), out var mode) ? mode : DrGradientMode.JointLearning,
            p.Text("out"),
            p.Flag("force"));
    }

    private static List<string> ModelList(string text)
    {
        var ids = new List<string>();
        foreach (var part in text.Split(','))
        {
            var id = part.Trim();
            if (id.Length > 0 && !ids.Contains(id, StringComparer.Ordinal))
            {
                ids.Add(id);
            }
        }
        if (ids.Count == 0)
        {
            throw Usage($"option --models: \"{text}\" names no model; expected comma-separated model ids");
        }
        return ids;
    }

    private static double LearningRate(string text)
    {
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var lr) || !double.IsFinite(lr) || lr <= 0)
        {
            throw Usage($"option --lr: \"{text}\" is not a learning rate; expected a positive number such as 0.001 or 1e-3");
        }
        return lr;
    }

    private delegate bool TryParseId<T>(string? id, out T value);

    /// <summary>An option's id (its default when not given), refused with the reason when it conflicts with another option.</summary>
    private static T Choice<T>(ParsedCommand p, string option, TryParseId<T> parse, T fallback, Func<T, string?> conflict)
    {
        var value = parse(p.Text(option), out var parsed) ? parsed : fallback;
        return conflict(value) is { } why ? throw Usage($"option --{option}: {why}") : value;
    }

    private static double MaxWeight(string text)
    {
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var cap) || !double.IsFinite(cap)
            || cap < 1 || cap > RunTrainingOptions.MaxWeightCap)
        {
            throw Usage($"option --max-weight: \"{text}\" is not a weight cap; expected a number from 1 to 1e6 (a weight 1/p̂ is at least 1), such as 100");
        }
        return cap;
    }

    private static List<double> StageWeights(string text)
    {
        var weights = new List<double>();
        foreach (var part in text.Split(','))
        {
            if (!double.TryParse(part.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var w) || !double.IsFinite(w)
                || w < 0 || w > RunTrainingOptions.MaxStageWeight)
            {
                throw Usage($"option --stage-weights: \"{part.Trim()}\" is not a stage weight; expected numbers from 0 to 1e6 "
                    + "separated by commas, one per stage, such as 1,0.05");
            }
            weights.Add(w);
        }
        if (weights.Count > RunTrainingOptions.MaxStageWeights)
        {
            throw Usage($"option --stage-weights: {weights.Count} weights; a funnel has at most {RunTrainingOptions.MaxStageWeights} stages");
        }
        if (weights.All(w => w == 0))
        {
            throw Usage($"option --stage-weights: \"{text}\" weighs every stage 0, which leaves no loss to train on; expected at least one weight above 0");
        }
        return weights;
    }

    private static UsageException Usage(string message) =>
        new($"adsim train: {message}." + Environment.NewLine + "Run 'adsim train --help' for usage.");
}
