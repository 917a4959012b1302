using System.Text.Json;
using System.Text.Json.Serialization;

namespace AdAuctionSim.Models.Core;

/// <summary>
/// The stable, lower-case ids of an option enum, as the command line, scenario files and <c>train.json</c> spell them
/// (win-propensity source, click-propensity source, DR gradient mode, win-weight basis, IPS normaliser): one table of
/// (value, id) pairs in the order the command line lists them, read both ways.
/// </summary>
/// <typeparam name="T">The option enum; every value the program uses must have an id.</typeparam>
public sealed class OptionIds<T> where T : struct, Enum
{
    private readonly (T Value, string Id)[] pairs;
    private readonly string what;

    /// <param name="what">What a value is, for the error on a value without an id ("win-propensity source").</param>
    /// <param name="pairs">Each value with its id, in the order the command line lists them.</param>
    public OptionIds(string what, params (T Value, string Id)[] pairs)
    {
        this.what = what;
        this.pairs = pairs;
        Ids = [.. pairs.Select(p => p.Id)];
    }

    /// <summary>Every id, in the order the command line lists them.</summary>
    public IReadOnlyList<string> Ids { get; }

    /// <summary>The id of <paramref name="value"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value without an id.</exception>
    public string Id(T value)
    {
        foreach (var (v, id) in pairs)
        {
            if (EqualityComparer<T>.Default.Equals(v, value))
            {
                return id;
            }
        }
        throw new ArgumentOutOfRangeException(nameof(value), value, $"unknown {what}");
    }

    /// <summary>The value with this id (exact, lower case), if any.</summary>
    public bool TryParse(string? id, out T value)
    {
        foreach (var (v, known) in pairs)
        {
            if (string.Equals(known, id, StringComparison.Ordinal))
            {
                value = v;
                return true;
            }
        }
        value = default;
        return false;
    }

    /// <summary>A JSON converter that writes and reads the values by these ids (for <c>train.json</c>).</summary>
    public JsonConverter<T> Json => new IdConverter(this);

    private sealed class IdConverter(OptionIds<T> ids) : JsonConverter<T>
    {
        public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.String && ids.TryParse(reader.GetString(), out var value)
                ? value
                : throw new JsonException($"expected a {ids.what}: one of {string.Join(", ", ids.Ids)}");

        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options)
        {
            ArgumentNullException.ThrowIfNull(writer);
            writer.WriteStringValue(ids.Id(value));
        }
    }
}
