using AdAuctionSim.Cli.Runs;

namespace AdAuctionSim.Cli.Tests;

/// <summary>The field-by-field scenario difference that <c>adsim compare</c> prints.</summary>
public sealed class ScenarioDifferencesTests
{
    [Fact]
    public void Equal_documents_have_no_differences_whatever_the_layout()
    {
        Assert.Empty(ScenarioDifferences.Between("""{ "a": 1, "b": { "c": [1, 2] } }""", """{"a":1,"b":{"c":[1,2]}}"""));
    }

    [Fact]
    public void Each_differing_leaf_is_named_by_its_path_with_both_values()
    {
        var differences = ScenarioDifferences.Between(
            """{ "seed": 7, "bias": { "hiddenConfounding": 0.5, "positionEffect": 1 }, "models": ["esmm", "aitm"], "only": true }""",
            """{ "seed": 8, "bias": { "hiddenConfounding": 0.5, "positionEffect": 0 }, "models": ["esmm", "apem"], "extra": "x" }""");

        Assert.Equal(
            [
                new ScenarioDifferences.Difference("seed", "7", "8"),
                new ScenarioDifferences.Difference("bias.positionEffect", "1", "0"),
                new ScenarioDifferences.Difference("models[1]", "\"aitm\"", "\"apem\""),
                new ScenarioDifferences.Difference("only", "true", ScenarioDifferences.Absent),
                new ScenarioDifferences.Difference("extra", ScenarioDifferences.Absent, "\"x\""),
            ],
            differences);
    }

    [Fact]
    public void Arrays_of_different_length_differ_as_a_whole()
    {
        var difference = Assert.Single(ScenarioDifferences.Between("""{ "m": [1] }""", """{ "m": [1, 2] }"""));

        Assert.Equal(new ScenarioDifferences.Difference("m", "[1]", "[1, 2]"), difference);
    }

    /// <summary>
    /// A field a resolved scenario leaves out at its default reads as that default, and equals it written out: an early
    /// stopping run against a fixed-epoch one differs in training.earlyStopping "true (default) → false", not "(absent)".
    /// </summary>
    [Fact]
    public void An_omitted_default_reads_as_its_value_and_equals_it_written_out()
    {
        var difference = Assert.Single(ScenarioDifferences.Between("""{ "training": { "epochs": 3 } }""",
            """{ "training": { "epochs": 3, "earlyStopping": false } }"""));
        Assert.Equal(new ScenarioDifferences.Difference("training.earlyStopping", "true (default)", "false"), difference);

        Assert.Empty(ScenarioDifferences.Between("""{ "bias": { "hiddenConfounding": 0.3 }, "training": { } }""",
            """{ "bias": { "hiddenConfounding": 0.3, "hiddenPerRequest": 0 }, "training": { "patience": 2, "earlyStopping": true } }"""));
        var patience = Assert.Single(ScenarioDifferences.Between("""{ "training": { } }""", """{ "training": { "patience": 4 } }"""));
        Assert.Equal(("2 (default)", "4"), (patience.First, patience.Second));
    }

    [Fact]
    public void Strings_are_shown_unescaped()
    {
        var difference = Assert.Single(ScenarioDifferences.Between("""{ "d": "click -\u003E convert" }""", """{ "d": "" }"""));

        Assert.Equal("\"click -> convert\"", difference.First);
    }
}
