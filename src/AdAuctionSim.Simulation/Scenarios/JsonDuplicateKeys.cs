using System.Text;
using System.Text.Json;

namespace AdAuctionSim.Simulation.Scenarios;

/// <summary>A key given more than once in one JSON object: its field path (<c>world.users</c>) and the message in words.</summary>
public sealed record JsonDuplicateKey(string Path, string Message);

/// <summary>
/// Finds keys that appear more than once in the same JSON object. Every JSON reader here (JsonDocument, the serialiser)
/// keeps only the last copy and drops the others silently, so scenario files, simulation manifests and train.json are
/// checked with this first; unlike the readers' own duplicate check, it names the field path and the lines.
/// </summary>
public static class JsonDuplicateKeys
{
    /// <summary>
    /// Every key that appears more than once in the same object, at any depth, with its field path and the lines and
    /// columns of each appearance, in the order the second copies appear. Call it on text already parsed: it throws
    /// <see cref="JsonException"/> on text that is not JSON (comments and trailing commas are allowed).
    /// </summary>
    public static IReadOnlyList<JsonDuplicateKey> Find(string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        var found = new List<(long At, JsonDuplicateKey Key)>();
        var open = new Stack<Container>();
        // Line and column of a byte offset, counted forward as the reader moves on.
        long lineStart = 0, scanned = 0;
        var line = 1;
        string Position(long offset)
        {
            for (; scanned < offset; scanned++)
            {
                if (bytes[scanned] == (byte)'\n')
                {
                    line++;
                    lineStart = scanned + 1;
                }
            }
            var column = Encoding.UTF8.GetCharCount(bytes, (int)lineStart, (int)(offset - lineStart)) + 1;
            return $"line {line}, column {column}";
        }
        string ValuePath()
        {
            if (open.Count == 0)
            {
                return "";
            }
            var parent = open.Peek();
            return parent.IsArray ? $"{parent.Path}[{parent.Index}]" : Join(parent.Path, parent.Key!);
        }
        static string Join(string path, string name) => path.Length == 0 ? name : $"{path}.{name}";
        void ValueDone()
        {
            if (open.Count > 0 && open.Peek().IsArray)
            {
                open.Peek().Index++;
            }
        }
        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.StartObject:
                case JsonTokenType.StartArray:
                    open.Push(new Container(ValuePath(), reader.TokenType == JsonTokenType.StartArray));
                    break;
                case JsonTokenType.EndObject:
                case JsonTokenType.EndArray:
                    var done = open.Pop();
                    foreach (var (name, places) in done.Keys)
                    {
                        if (places.Count > 1)
                        {
                            var times = places.Count == 2 ? "twice" : $"{places.Count} times";
                            found.Add((places[1].At, new JsonDuplicateKey(Join(done.Path, name),
                                $"the key \"{name}\" appears {times} in the same object, at {string.Join(" and ", places.Select(p => p.Where))}; "
                                + "expected each key once (a JSON reader keeps only the last and silently drops the others)")));
                        }
                    }
                    ValueDone();
                    break;
                case JsonTokenType.PropertyName:
                    var container = open.Peek();
                    container.Key = reader.GetString()!;
                    if (!container.Keys.TryGetValue(container.Key, out var seen))
                    {
                        container.Keys[container.Key] = seen = [];
                    }
                    seen.Add((reader.TokenStartIndex, Position(reader.TokenStartIndex)));
                    break;
                default:
                    ValueDone();
                    break;
            }
        }
        return [.. found.OrderBy(f => f.At).Select(f => f.Key)];
    }

    /// <summary>An object or array being read by <see cref="Find"/>.</summary>
    private sealed class Container(string path, bool isArray)
    {
        public string Path { get; } = path;
        public bool IsArray { get; } = isArray;
        public int Index { get; set; }
        public string? Key { get; set; }
        public Dictionary<string, List<(long At, string Where)>> Keys { get; } = new(StringComparer.Ordinal);
    }
}
