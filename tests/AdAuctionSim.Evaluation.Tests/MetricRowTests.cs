using System.Text.Json;

namespace AdAuctionSim.Evaluation.Tests;

public sealed class MetricRowTests
{
    [Fact]
    public void Rows_with_the_same_figures_are_equal_and_differ_when_a_figure_differs()
    {
        var a = new MetricRow("", 0, 1, "esmm", "click", EvaluationSpace.D, "bias", 0.5, 10);
        Assert.Equal(a, a with { });
        Assert.NotEqual(a, a with { Value = 0.25 });
    }

    /// <summary>
    /// In JSON a space is spelled as in metrics.csv and the reports (D\O, not the member name DMinusO), reads back as the
    /// same space, and the member names of older work files still read; anything else is an error naming the value.
    /// </summary>
    [Fact]
    public void Spaces_in_json_are_spelled_as_in_the_csv_and_read_back_including_member_names()
    {
        var options = new JsonSerializerOptions { Converters = { new EvaluationSpaceJsonConverter() } };
        foreach (var space in Enum.GetValues<EvaluationSpace>())
        {
            var json = JsonSerializer.Serialize(space, options);
            Assert.Equal(MetricsCsv.SpaceName(space), JsonSerializer.Deserialize<string>(json));
            Assert.Equal(space, JsonSerializer.Deserialize<EvaluationSpace>(json, options));
            Assert.Equal(space, JsonSerializer.Deserialize<EvaluationSpace>(JsonSerializer.Serialize(space.ToString()), options));
        }
        Assert.Equal("\"D\\\\O\"", JsonSerializer.Serialize(EvaluationSpace.DMinusO, options));
        var error = Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<EvaluationSpace>("\"D-O\"", options));
        Assert.Contains("\"D-O\" is not an evaluation space", error.Message, StringComparison.Ordinal);
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<EvaluationSpace>("4", options));
        Assert.Throws<FormatException>(() => MetricsCsv.ParseSpaceName("4"));
    }
}
