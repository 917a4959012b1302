namespace AdAuctionSim.Models.Tests;

/// <summary>
/// TorchSharp keeps process-wide state (thread count, default generator, loaded natives), so every test
/// that touches it runs in this one collection, serially.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchSharpCollection
{
    public const string Name = "TorchSharp";
}
