namespace AdAuctionSim.Models.Tests;

/// <summary>
/// TorchSharp keeps process-wide state (thread count, default generator, loaded natives), so every test
/// that touches it runs in this one collection, serially. The tests that use <see cref="TestSimulation"/> are all in it, so
/// its fixture deletes the simulations' temp root once the collection is done.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchSharpCollection : ICollectionFixture<TestSimulationCleanup>
{
    public const string Name = "TorchSharp";
}

/// <summary>Deletes <see cref="TestSimulation"/>'s temp root when the TorchSharp collection has run.</summary>
public sealed class TestSimulationCleanup : IDisposable
{
    public void Dispose() => TestSimulation.DeleteRoot();
}
