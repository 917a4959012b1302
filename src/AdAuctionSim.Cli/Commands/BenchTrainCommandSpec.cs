using System.Globalization;
using AdAuctionSim.Cli.CommandLine;
using AdAuctionSim.Models.Core;

namespace AdAuctionSim.Cli.Commands;

/// <summary>Arguments of <c>adsim bench train</c>.</summary>
internal sealed record BenchTrainArguments(
    IReadOnlyList<string> Models, int BatchSize, long Requests, string? Scenario, string Device, int Threads, double Seconds, int Rounds,
    double MaxWarmupSeconds);

/// <summary>The <c>adsim bench train</c> command's options and binding; registered in <see cref="CommandCatalog.All"/>.</summary>
internal static class BenchTrainCommandSpec
{
    public const int DefaultBatch = 2048;
    public const long DefaultRequests = 1_000_000;
    public const double DefaultSeconds = 2;
    public const int DefaultRounds = 3;
    public const double DefaultMaxWarmup = 10;

    public static CommandSpec Create() => new(
        "bench train",
        "Measure training speed of a model against its matmul FLOP floor",
        "Simulates the scenario into a temporary folder (not timed; deleted afterwards), loads its logged view, measures "
        + "this machine's float32 matrix-multiply rate (1024x1024 products, median of 5 rounds of 8), counts the model's "
        + "forward FLOPs per sample (every Linear layer, expert bank, tower stack, gate bank and attention product, by "
        + "forward hooks; training = 3 x forward), and "
        + "times whole training steps (batch gather, forward, loss, backward, optimiser update) after an untimed warm-up: at "
        + "least 10 steps, then on until .NET's JIT has compiled no new method for 0.5 s (tiered compilation recompiles hot "
        + "code for several seconds, on a thread that competes with the intra-op threads), at most --max-warmup seconds. "
        + "The floor is the samples/s the model would reach if its matmuls ran at the measured rate; the share of "
        + "the floor is the measured samples/s over it. The matmul rate is measured just before each timed window (after "
        + "its warm-up) and just after it, and the window's share is taken against the mean of the two, so that the rate "
        + "and the window see the same load of the host. The models are timed in rounds, one window each per round in an "
        + "order rotated every round; the medians over the rounds are reported, so that a busy neighbour on a shared "
        + "machine moves one window, not the figure. The last line sums it up:" + Environment.NewLine
        + "  train ID: X samples/s, Y% of FLOP floor" + Environment.NewLine
        + "Models: " + string.Join(", ", ModelCatalog.Ids) + ", or all.",
        [],
        [
            new OptionSpec("model", OptionKind.Text, "Model id, a comma-separated list, or all") { ValueName = "ID", Default = "required" },
            new OptionSpec("batch", OptionKind.Integer, "Rows per training batch")
                { ValueName = "N", Min = 1, Max = TrainCommandSpec.MaxBatch, Default = DefaultBatch.ToString(CultureInfo.InvariantCulture) },
            new OptionSpec("requests", OptionKind.Integer, "Requests to simulate for the training data")
                { ValueName = "N", Min = 10_000, Max = CommandCatalog.MaxRequests, Default = DefaultRequests.ToString(CultureInfo.InvariantCulture) },
            new OptionSpec("scenario", OptionKind.Text, "Scenario file")
                { ValueName = "FILE", Default = $"{CommandCatalog.BenchDefaultScenario} if it exists, else the built-in default scenario" },
            new OptionSpec("device", OptionKind.Choice, "Device to train on") { ValueName = "DEVICE", Choices = ["auto", "cpu", "cuda"], Default = "auto (cuda when available)" },
            new OptionSpec("threads", OptionKind.Integer, "Intra-op threads of libtorch")
                { ValueName = "N", Min = 1, Max = TrainCommandSpec.MaxThreads, Default = $"processor count, here {Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture)}" },
            new OptionSpec("seconds", OptionKind.Integer, "Least timed seconds per model and round (and at least 30 steps)")
                { ValueName = "S", Min = 1, Max = 3600, Default = DefaultSeconds.ToString(CultureInfo.InvariantCulture) },
            new OptionSpec("rounds", OptionKind.Integer, "Rounds of timing windows; medians over the rounds are reported")
                { ValueName = "R", Min = 1, Max = 99, Default = DefaultRounds.ToString(CultureInfo.InvariantCulture) },
            new OptionSpec("max-warmup", OptionKind.Integer, "Most untimed warm-up seconds per model and round (it ends sooner once the JIT is quiet)")
                { ValueName = "S", Min = 0, Max = 600, Default = DefaultMaxWarmup.ToString(CultureInfo.InvariantCulture) },
        ],
        typeof(BenchTrainCommand),
        Bind);

    private static object Bind(ParsedCommand p) => new BenchTrainArguments(
        Models(p.Text("model")),
        (int)(p.Integer("batch") ?? DefaultBatch),
        p.Integer("requests") ?? DefaultRequests,
        p.Text("scenario"),
        p.Text("device") ?? "auto",
        (int)(p.Integer("threads") ?? Environment.ProcessorCount),
        p.Integer("seconds") ?? DefaultSeconds,
        (int)(p.Integer("rounds") ?? DefaultRounds),
        p.Integer("max-warmup") ?? DefaultMaxWarmup);

    private static List<string> Models(string? text)
    {
        if (text is null)
        {
            throw Usage("option --model is required; expected a model id such as mmoe, a comma-separated list, or all");
        }
        var ids = new List<string>();
        foreach (var part in text.Split(','))
        {
            var id = part.Trim();
            if (id == "all")
            {
                ids.AddRange(ModelCatalog.Ids.Where(m => !ids.Contains(m, StringComparer.Ordinal)));
            }
            else if (id.Length > 0 && !ids.Contains(id, StringComparer.Ordinal))
            {
                ids.Add(id);
            }
        }
        var unknown = ids.Where(id => !ModelCatalog.TryGet(id, out _)).ToList();
        if (ids.Count == 0 || unknown.Count > 0)
        {
            throw Usage($"option --model: {(ids.Count == 0 ? $"\"{text}\" names no model" : $"unknown model {string.Join(", ", unknown.Select(u => $"\"{u}\""))}")}; "
                + $"expected one or more of: {string.Join(", ", ModelCatalog.Ids)}, or all");
        }
        return ids;
    }

    private static UsageException Usage(string message) =>
        new($"adsim bench train: {message}." + Environment.NewLine + "Run 'adsim bench train --help' for usage.");
}
