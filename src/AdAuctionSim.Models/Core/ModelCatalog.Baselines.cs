namespace AdAuctionSim.Models.Core;

public static partial class ModelCatalog
{
    /// <summary>The generic multi-task baselines (models.md §1–7).</summary>
    private static partial IEnumerable<ModelEntry> BaselineEntries() => [];
}
