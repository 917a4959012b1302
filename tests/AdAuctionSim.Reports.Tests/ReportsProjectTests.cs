using AdAuctionSim.Evaluation;

namespace AdAuctionSim.Reports.Tests;

public sealed class ReportsProjectTests
{
    [Fact]
    public void Reports_see_the_metric_contract_rows_with_the_same_figures_are_equal_and_differ_when_a_figure_differs()
    {
        var a = new MetricRow("", 0, 1, "esmm", "click", EvaluationSpace.D, "bias", 0.5, 10);
        Assert.Equal(a, a with { });
        Assert.NotEqual(a, a with { Value = 0.25 });
    }
}
