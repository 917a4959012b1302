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
}
