using AdAuctionSim.Reports.Registry;

namespace AdAuctionSim.Reports.Tests;

/// <summary>The LiteDB run registry: round trip, newest first, and writers on separate connections at once.</summary>
public sealed class RegistryTests
{
    private static RunRecord Run(string id, DateTime started) => new()
    {
        Id = id, ScenarioName = "s", Scenario = "{ }\n", Error = "", StartedUtc = started, Status = RunStatus.Running, Models = ["a", "b"],
        Timings = [new RegistryTiming { Phase = "train", Unit = "a", Seconds = 1.5 }],
    };

    [Fact]
    public void Runs_round_trip_and_list_newest_first()
    {
        using var folder = new TempFolder();
        using var registry = new RunRegistry(Path.Combine(folder.Path, "sub", "registry.db"));
        registry.Add(Run("r1", new DateTime(2025, 1, 1, 0, 0, 0, DateTimeKind.Utc)));
        registry.Add(Run("r2", new DateTime(2025, 1, 2, 0, 0, 0, DateTimeKind.Utc)));
        var r1 = registry.Find("r1")!;
        r1.Status = RunStatus.Complete;
        r1.Metrics = [new RegistryMetric { Model = "a", Stage = "convert", Space = "D", Metric = "bias", Mean = 0.25, CiLow = double.NaN, PValue = double.NaN }];
        registry.Update(r1);
        Assert.Equal(["r2", "r1"], registry.List().Select(r => r.Id));
        var back = registry.Find("r1")!;
        Assert.Equal(RunStatus.Complete, back.Status);
        Assert.Equal("{ }\n", back.Scenario);
        Assert.Equal("", back.Error);
        Assert.Equal(0.25, Assert.Single(back.Metrics).Mean);
        Assert.True(double.IsNaN(back.Metrics[0].CiLow));
        Assert.Equal(1.5, Assert.Single(back.Timings).Seconds);
        Assert.Throws<InvalidOperationException>(() => registry.Add(Run("r2", DateTime.UtcNow)));
        Assert.Null(registry.Find("r3"));
    }

    [Fact]
    public async Task Concurrent_writers_on_their_own_connections_all_land()
    {
        using var folder = new TempFolder();
        var path = Path.Combine(folder.Path, "registry.db");
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(() =>
        {
            using var registry = new RunRegistry(path);
            for (var i = 0; i < 10; i++)
            {
                var run = Run($"w{w}-{i}", DateTime.UtcNow);
                registry.Add(run);
                run.Status = RunStatus.Complete;
                registry.Update(run);
            }
        }));
        await Task.WhenAll(writers);
        using var check = new RunRegistry(path);
        var runs = check.List();
        Assert.Equal(40, runs.Count);
        Assert.All(runs, r => Assert.Equal(RunStatus.Complete, r.Status));
    }
}
