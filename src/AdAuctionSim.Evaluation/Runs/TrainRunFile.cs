using System.Text.Json;
using AdAuctionSim.Simulation.Scenarios;

namespace AdAuctionSim.Evaluation.Runs;

/// <summary>
/// One trained model of a run: its id, the full path of its predictions file and that file's SHA-256 (null in a run
/// folder written before training recorded it).
/// </summary>
public sealed record TrainedModel(string Id, string PredictionsPath, string? PredictionsSha256 = null);

/// <summary>
/// What the evaluator needs from <c>train.json</c> (written by <c>adsim train</c>): the simulation it trained on, the
/// funnel stages and, per model, its predictions file (relative to the run folder). Read as plain JSON so that
/// evaluation does not depend on the TorchSharp model suite. <c>SimulationManifestSha256</c> is the SHA-256 of the
/// simulation's manifest.json when it was trained (null in older run folders).
/// </summary>
public sealed record TrainRunFile(string Directory, string Simulation, IReadOnlyList<string> Stages, IReadOnlyList<TrainedModel> Models,
    string? SimulationManifestSha256 = null)
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
            return new TrainRunFile(full, simulation, stages, models, Hash(root, "simulationManifestSha256", file));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{file}: not valid JSON: {e.Message}", e);
        }
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
