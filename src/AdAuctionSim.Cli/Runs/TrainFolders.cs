using System.Text;
using System.Text.Json.Nodes;
using AdAuctionSim.Models.Training;
using AdAuctionSim.Simulation.Output;

namespace AdAuctionSim.Cli.Runs;

/// <summary>
/// Joins training runs of one model each (as <c>adsim run</c> trains them, so that a resumed run retrains only the
/// models it lacks) into one run folder of the <c>adsim train</c> layout: checkpoints, curves and predictions of every
/// model, and one <c>train.json</c> whose <c>models</c> list holds each run's entry in order. Every model starts from
/// the same seed, so a model trained alone gives the same predictions as in a run with others. A fitted win model's
/// entry and its scores file come from the first part that fitted it.
/// </summary>
internal static class TrainFolders
{
    /// <summary>Writes the joined folder beside <paramref name="target"/> and renames it into place.</summary>
    public static void Merge(IReadOnlyList<string> parts, string target)
    {
        ArgumentOutOfRangeException.ThrowIfZero(parts.Count);
        var temp = OutputFolder.CreatePartial(target);
        try
        {
            JsonObject? manifest = null;
            var models = new JsonArray();
            JsonNode? fittedWin = null;
            foreach (var part in parts)
            {
                foreach (var folder in (string[])[TrainingRun.CheckpointsFolder, TrainingRun.CurvesFolder, TrainingRun.PredictionsFolder])
                {
                    var from = Path.Combine(part, folder);
                    var to = Path.Combine(temp, folder);
                    Directory.CreateDirectory(to);
                    foreach (var file in Directory.EnumerateFiles(from))
                    {
                        File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
                    }
                }
                var json = JsonNode.Parse(File.ReadAllText(Path.Combine(part, TrainingRun.ManifestFile)))!.AsObject();
                manifest ??= json;
                foreach (var m in json["models"]!.AsArray())
                {
                    models.Add(m!.DeepClone());
                }
                if (fittedWin is null && json["winPropensity"]?["fitted"]?.GetValue<bool>() == true)
                {
                    fittedWin = json["winPropensity"]!.DeepClone();
                    // The win model's scores come with the first part that fitted it (every part that reads π̂ reused the same fit).
                    var scores = Path.Combine(part, TrainingRun.WinScoresFile);
                    if (File.Exists(scores))
                    {
                        File.Copy(scores, Path.Combine(temp, TrainingRun.WinScoresFile));
                    }
                }
            }
            var merged = (JsonObject)manifest!.DeepClone();
            merged["models"] = models;
            if (fittedWin is not null)
            {
                merged["winPropensity"] = fittedWin;
            }
            File.WriteAllText(Path.Combine(temp, TrainingRun.ManifestFile),
                merged.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }).ReplaceLineEndings("\n") + "\n",
                new UTF8Encoding(false));
            OutputFolder.Publish(temp, target, replace: false);
        }
        catch
        {
            OutputFolder.TryDelete(temp);
            throw;
        }
    }
}
