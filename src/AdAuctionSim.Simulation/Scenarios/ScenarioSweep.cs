using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace AdAuctionSim.Simulation.Scenarios;

/// <summary>One point of a sweep: its label (<c>bias.clickCvrCorrelation=0.5</c>), the dial settings and the scenario there.</summary>
/// <param name="Index">0-based position in sweep order.</param>
/// <param name="Label">The settings as text; empty for a run without a sweep.</param>
/// <param name="Values">The value of each swept dial, in the order of <see cref="SweepOptions.Dials"/>.</param>
/// <param name="Scenario">The scenario with the settings applied, validated.</param>
public sealed record SweepPoint(int Index, string Label, IReadOnlyList<double> Values, Scenario Scenario);

/// <summary>
/// Applies sweep settings to a scenario. A dial path names a numeric field of the resolved scenario as error messages
/// spell it (<c>bias.clickCvrCorrelation</c>, <c>auction.targetWinRate</c>, <c>funnel.stages[1].rate</c>); the setting is
/// written into the scenario's JSON and the result goes through the loader's normal validation, so a sweep value is
/// held to exactly the rules of a value written in the file. The one extra path is <see cref="DepthPath"/>.
/// </summary>
public static partial class ScenarioSweep
{
    /// <summary>Keeps the first N stages of the scenario's funnel (N from 2 to the number of stages listed).</summary>
    public const string DepthPath = "funnel.depth";

    /// <summary>Every point of the sweep, the first dial outermost; a single unlabelled point without a sweep.</summary>
    /// <exception cref="ScenarioValidationException">A setting is not valid for the scenario.</exception>
    public static IReadOnlyList<SweepPoint> Points(Scenario scenario, SweepOptions? sweep, string file)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        if (sweep is null || sweep.Dials.Count == 0)
        {
            return [new SweepPoint(0, "", [], scenario)];
        }
        var points = new List<SweepPoint>();
        var combination = new double[sweep.Dials.Count];
        void Walk(int dial)
        {
            if (dial == sweep.Dials.Count)
            {
                var s = scenario;
                for (var d = 0; d < combination.Length; d++)
                {
                    s = Apply(s, sweep.Dials[d].Path, combination[d], file);
                }
                points.Add(new SweepPoint(points.Count, Label(sweep, combination), [.. combination], s));
                return;
            }
            foreach (var value in sweep.Dials[dial].Values)
            {
                combination[dial] = value;
                Walk(dial + 1);
            }
        }
        Walk(0);
        return points;
    }

    /// <summary>The point label: <c>path=value</c> per dial, joined by ", ".</summary>
    public static string Label(SweepOptions sweep, IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(sweep);
        ArgumentNullException.ThrowIfNull(values);
        return string.Join(", ", sweep.Dials.Select((d, i) => $"{d.Path}={Format(values[i])}"));
    }

    /// <summary>A value as labels and file names show it (shortest round-trip form).</summary>
    public static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>The scenario with the field at <paramref name="path"/> set to <paramref name="value"/>, validated.</summary>
    /// <exception cref="ScenarioValidationException">The path names no numeric field, or the value is not allowed there.</exception>
    public static Scenario Apply(Scenario scenario, string path, double value, string file)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        ArgumentNullException.ThrowIfNull(path);
        if (path == DepthPath)
        {
            var listed = scenario.Funnel.Stages.Count;
            if (value != Math.Floor(value) || value < 2 || value > listed)
            {
                throw new ScenarioValidationException(file, [new ScenarioError(path,
                    $"value {Format(value)} is out of range; expected an integer from 2 to {listed} (the stages listed in funnel.stages)")]);
            }
            return scenario with { Funnel = scenario.Funnel with { Stages = scenario.Funnel.Stages.Take((int)value).ToList() } };
        }
        var root = JsonNode.Parse(ScenarioJson.Serialize(scenario, allFields: true))!;
        if (PathError(root, path) is { } error)
        {
            throw new ScenarioValidationException(file, [new ScenarioError(path, error)]);
        }
        var (parent, key, index) = Locate(root, path);
        JsonNode replacement = value == Math.Floor(value) && Math.Abs(value) < 1e15 ? JsonValue.Create((long)value) : JsonValue.Create(value);
        if (index is { } i)
        {
            parent[key]![i] = replacement;
        }
        else
        {
            parent[key] = replacement;
        }
        try
        {
            return ScenarioLoader.Parse(root.ToJsonString(), file, scenario.Name);
        }
        catch (ScenarioValidationException e)
        {
            throw new ScenarioValidationException(file, [.. e.Errors.Select(x => new ScenarioError(x.Path,
                $"{x.Message} (with {path} = {Format(value)})"))]);
        }
    }

    /// <summary>Why <paramref name="path"/> names no numeric field of a scenario; null when it does.</summary>
    public static string? PathError(Scenario scenario, string path)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        return path == DepthPath ? null : PathError(JsonNode.Parse(ScenarioJson.Serialize(scenario, allFields: true))!, path);
    }

    private static string? PathError(JsonNode root, string path)
    {
        var expected = $"expected a numeric scenario field such as bias.clickCvrCorrelation or funnel.stages[1].rate, or {DepthPath}";
        JsonNode? node = root;
        var walked = "";
        foreach (var segment in path.Split('.'))
        {
            var m = SegmentPattern().Match(segment);
            if (!m.Success)
            {
                return $"\"{path}\" is not a field path; {expected}";
            }
            var name = m.Groups["name"].Value;
            walked = walked.Length == 0 ? name : $"{walked}.{name}";
            if (node is not JsonObject o || !o.TryGetPropertyValue(name, out node) || node is null)
            {
                return $"\"{path}\" names no scenario field ({walked} does not exist); {expected}";
            }
            if (m.Groups["index"].Success)
            {
                var i = int.Parse(m.Groups["index"].Value, CultureInfo.InvariantCulture);
                if (node is not JsonArray a || i >= a.Count)
                {
                    return $"\"{path}\" names no scenario field ({walked} has no entry [{i}]); {expected}";
                }
                node = a[i];
                walked += $"[{i}]";
            }
        }
        return node is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.Number
            ? null
            : $"\"{path}\" is not a numeric field; {expected}";
    }

    private static (JsonNode Parent, string Key, int? Index) Locate(JsonNode root, string path)
    {
        var segments = path.Split('.');
        var node = root;
        for (var s = 0; s < segments.Length - 1; s++)
        {
            var m = SegmentPattern().Match(segments[s]);
            node = node[m.Groups["name"].Value]!;
            if (m.Groups["index"].Success)
            {
                node = node[int.Parse(m.Groups["index"].Value, CultureInfo.InvariantCulture)]!;
            }
        }
        var last = SegmentPattern().Match(segments[^1]);
        return (node, last.Groups["name"].Value,
            last.Groups["index"].Success ? int.Parse(last.Groups["index"].Value, CultureInfo.InvariantCulture) : null);
    }

    [GeneratedRegex(@"^(?<name>[A-Za-z][A-Za-z0-9]*)(\[(?<index>[0-9]{1,3})\])?$")]
    private static partial Regex SegmentPattern();
}
