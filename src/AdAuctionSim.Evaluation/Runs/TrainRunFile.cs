using System.Text.Json;
using AdAuctionSim.Simulation.Scenarios;

namespace AdAuctionSim.Evaluation.Runs;

/// <summary>
/// One trained model of a run: its id, the full path of its predictions file and that file's SHA-256 (null in a run
/// folder written before training recorded it).
/// </summary>
public sealed record TrainedModel(string Id, string PredictionsPath, string? PredictionsSha256 = null);

/// <summary>
/// The win model a run fitted (train.json's <c>winPropensity</c> with <c>scores</c>): its source, the full path of its
/// scores file (<see cref="WinScoreFile"/>) and that file's SHA-256, and the floor ε_w of its weights 1/max(π̂, ε_w).
/// </summary>
public sealed record TrainedWinModel(string Source, string ScoresPath, string? ScoresSha256, double Floor);

/// <summary>
/// What the evaluator needs from <c>train.json</c> (written by <c>adsim train</c>): the simulation it trained on, the
/// funnel stages and, per model, its predictions file (relative to the run folder). Read as plain JSON so that
/// evaluation does not depend on the TorchSharp model suite. <c>SimulationManifestSha256</c> is the SHA-256 of the
/// simulation's manifest.json when it was trained (null in older run folders). <c>WinModel</c> is the fitted win model
/// with its scores (null when the run fitted none, or in run folders written before scores were kept).
/// </summary>
public sealed record TrainRunFile(string Directory, string Simulation, IReadOnlyList<string> Stages, IReadOnlyList<TrainedModel> Models,
    string? SimulationManifestSha256 = null, TrainedWinModel? WinModel = null)
{
    public const string FileName = "train.json";

    /// <summary>Reads <c>&lt;directory&gt;/train.json</c>.</summary>
    /// <exception cref="InvalidDataException">Missing, not JSON, or a field missing or of the wrong kind (named in the message).</exception>
    public static TrainRunFile Read(string directory)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        var file = Path.Combine(full, FileName);
        if (!File.Exists(file))
        {
            throw new InvalidDataException(System.IO.Directory.Exists(file)
                ? $"{file}: is a folder; expected the train.json file that adsim train writes into its run folder"
                : $"{file}: missing; expected the train.json that adsim train writes into its run folder");
        }
        try
        {
            var text = File.ReadAllText(file);
            using var json = JsonDocument.Parse(text);
            if (JsonDuplicateKeys.Find(text) is [var duplicate, ..])
            {
                throw new InvalidDataException($"{file}: field {duplicate.Path}: {duplicate.Message}");
            }
            var root = json.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException($"{file}: expected a JSON object");
            }
            var simulation = Text(root, "simulation", file);
            var stages = Array(root, "stages", file).Select((s, i) => s.ValueKind == JsonValueKind.String && s.GetString() is { Length: > 0 } name
                ? name
                : throw new InvalidDataException($"{file}: field stages[{i}]: expected a stage name")).ToList();
            if (stages.Count == 0)
            {
                throw new InvalidDataException($"{file}: field stages: empty; expected the funnel's stage names");
            }
            var models = new List<TrainedModel>();
            var i = 0;
            foreach (var model in Array(root, "models", file))
            {
                var at = $"models[{i++}]";
                if (model.ValueKind != JsonValueKind.Object)
                {
                    throw new InvalidDataException($"{file}: field {at}: expected an object");
                }
                var id = Text(model, "modelId", file, at);
                var predictions = Text(model, "predictions", file, at);
                if (models.Any(m => m.Id == id))
                {
                    throw new InvalidDataException($"{file}: field {at}.modelId: \"{id}\" is listed twice");
                }
                models.Add(new TrainedModel(id, Path.GetFullPath(Path.Combine(full, predictions)), Hash(model, "predictionsSha256", file, at)));
            }
            return new TrainRunFile(full, simulation, stages, models, Hash(root, "simulationManifestSha256", file), FittedWinModel(root, full, file));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{file}: not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>winPropensity's fitted model and its scores file, when it names one.</summary>
    private static TrainedWinModel? FittedWinModel(JsonElement root, string full, string file)
    {
        if (!root.TryGetProperty("winPropensity", out var win) || win.ValueKind != JsonValueKind.Object
            || !win.TryGetProperty("scores", out var scores) || scores.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        const string at = "winPropensity";
        var path = Text(win, "scores", file, at);
        var floor = win.TryGetProperty("floor", out var f) && f.ValueKind == JsonValueKind.Number && f.GetDouble() is > 0 and < 1 and var value
            ? value
            : throw new InvalidDataException($"{file}: field {at}.floor: missing or not a number in (0, 1); expected the floor ε_w of the win model's weights");
        return new TrainedWinModel(Text(win, "source", file, at), Path.GetFullPath(Path.Combine(full, path)), Hash(win, "scoresSha256", file, at), floor);
    }

    private static string Text(JsonElement parent, string name, string file, string at = "")
    {
        var path = at.Length == 0 ? name : $"{at}.{name}";
        return parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text
            ? text
            : throw new InvalidDataException($"{file}: field {path}: missing or not a non-empty string");
    }

    /// <summary>An optional SHA-256 field: absent or null in older files, else 64 hex digits.</summary>
    private static string? Hash(JsonElement parent, string name, string file, string at = "")
    {
        if (!parent.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return value.ValueKind == JsonValueKind.String && value.GetString() is { Length: 64 } hex && hex.All(char.IsAsciiHexDigit)
            ? hex
            : throw new InvalidDataException($"{file}: field {(at.Length == 0 ? name : $"{at}.{name}")}: expected a SHA-256 (64 hex digits)");
    }

    private static JsonElement.ArrayEnumerator Array(JsonElement parent, string name, string file) =>
        parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Array
            ? value.EnumerateArray()
            : throw new InvalidDataException($"{file}: field {name}: missing or not an array");
}
