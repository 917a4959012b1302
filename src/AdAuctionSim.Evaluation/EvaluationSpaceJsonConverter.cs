using System.Text.Json;
using System.Text.Json.Serialization;

namespace AdAuctionSim.Evaluation;

/// <summary>Writes <see cref="EvaluationSpace"/> in JSON as files and reports spell it (D, O, C, O\C, D\O) and reads either that or the member name.</summary>
public sealed class EvaluationSpaceJsonConverter : JsonConverter<EvaluationSpace>
{
    public override EvaluationSpace Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            throw new JsonException($"an evaluation space must be a string (D, O, C, O\\C or D\\O), not {reader.TokenType}");
        }
        try
        {
            return MetricsCsv.ParseSpaceName(reader.GetString()!);
        }
        catch (FormatException e)
        {
            throw new JsonException(e.Message, e);
        }
    }

    public override void Write(Utf8JsonWriter writer, EvaluationSpace value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStringValue(MetricsCsv.SpaceName(value));
    }
}
