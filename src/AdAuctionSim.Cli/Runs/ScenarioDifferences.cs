using System.Text.Json;

namespace AdAuctionSim.Cli.Runs;

/// <summary>
/// Where two resolved scenarios (the JSON a run records) differ, field by field, for <c>adsim compare</c>: a difference
/// between two runs mixes the code's effect with the scenario's, and the user should see which fields moved.
/// </summary>
internal static class ScenarioDifferences
{
    /// <summary>One differing field: its JSON path and its value in each document ("(absent)" where it has none).</summary>
    public sealed record Difference(string Path, string First, string Second);

    public const string Absent = "(absent)";

    /// <summary>
    /// The default scenario as a run resolves it with every field written (<see cref="RunPlan.CompleteJson"/>): a field a
    /// recorded scenario leaves out (those added after runs were first recorded are written only away from their
    /// defaults, so that older runs keep their identity) reads as its value here, "2 (default)", and is no difference
    /// from the other run's explicit default.
    /// </summary>
    private static readonly Lazy<JsonDocument> Defaults = new(() => JsonDocument.Parse(
        RunPlan.Create(Simulation.Scenarios.ScenarioLoader.ParseFile("{ }", "(defaults)"), "(defaults)").CompleteJson));

    /// <summary>The fields whose values differ, in document order (the first's fields, then those only the second has).</summary>
    /// <exception cref="JsonException">Either text is not JSON.</exception>
    public static IReadOnlyList<Difference> Between(string first, string second)
    {
        using var a = JsonDocument.Parse(first);
        using var b = JsonDocument.Parse(second);
        var differences = new List<Difference>();
        Walk("", a.RootElement, b.RootElement, differences);
        return differences;
    }

    private static void Walk(string path, JsonElement? a, JsonElement? b, List<Difference> differences)
    {
        if (a is { ValueKind: JsonValueKind.Object } x && b is { ValueKind: JsonValueKind.Object } y)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in x.EnumerateObject())
            {
                seen.Add(p.Name);
                Walk(Join(path, p.Name), p.Value, y.TryGetProperty(p.Name, out var v) ? v : null, differences);
            }
            foreach (var p in y.EnumerateObject().Where(p => !seen.Contains(p.Name)))
            {
                Walk(Join(path, p.Name), null, p.Value, differences);
            }
            return;
        }
        if (a is { ValueKind: JsonValueKind.Array } xs && b is { ValueKind: JsonValueKind.Array } ys && xs.GetArrayLength() == ys.GetArrayLength())
        {
            var i = 0;
            foreach (var (u, v) in xs.EnumerateArray().Zip(ys.EnumerateArray()))
            {
                Walk($"{path}[{i++}]", u, v, differences);
            }
            return;
        }
        var left = Text(a, path);
        var right = Text(b, path);
        if (!string.Equals(Value(left), Value(right), StringComparison.Ordinal))
        {
            differences.Add(new Difference(path, left, right));
        }
    }

    private static string Join(string path, string name) => path.Length == 0 ? name : $"{path}.{name}";

    private const string DefaultSuffix = " (default)";

    /// <summary>
    /// The value as JSON, strings unescaped for reading ("click -> convert", not "click -\u003E convert"); an absent field
    /// with a known default reads as that default.
    /// </summary>
    private static string Text(JsonElement? e, string path) => e switch
    {
        null => DefaultAt(path) is { } d ? Text(d, path) + DefaultSuffix : Absent,
        { ValueKind: JsonValueKind.String } v => $"\"{v.GetString()}\"",
        { } v => v.GetRawText(),
    };

    /// <summary>The default scenario's value at a dotted path of object fields; null where it has none.</summary>
    private static JsonElement? DefaultAt(string path)
    {
        var e = Defaults.Value.RootElement;
        foreach (var name in path.Split('.'))
        {
            if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(name, out e))
            {
                return null;
            }
        }
        return e;
    }

    /// <summary>The value a text stands for (a default compares equal to the same value written out).</summary>
    private static string Value(string text) => text.EndsWith(DefaultSuffix, StringComparison.Ordinal) ? text[..^DefaultSuffix.Length] : text;
}
