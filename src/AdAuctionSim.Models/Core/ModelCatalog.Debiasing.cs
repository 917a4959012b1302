namespace AdAuctionSim.Models.Core;

public static partial class ModelCatalog
{
    /// <summary>The entire-space and debiasing models (models.md §8–13, §15).</summary>
    private static partial IEnumerable<ModelEntry> DebiasingEntries() => [];
}
