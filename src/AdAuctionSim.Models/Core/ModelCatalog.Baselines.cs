using AdAuctionSim.Models.Baselines;

namespace AdAuctionSim.Models.Core;

public static partial class ModelCatalog
{
    /// <summary>The generic multi-task baselines (models.md §1–7).</summary>
    private static partial IEnumerable<ModelEntry> BaselineEntries() =>
    [
        new(SingleTask.ModelId, "Single-Task: K independent embedding + MLP networks, nothing shared (§1)",
            c => new SingleTask(c), BaselineModel.Unsupported),
        new(SharedBottom.ModelId, "Shared-Bottom: shared embedding and bottom MLP, one tower per stage (§2)",
            c => new SharedBottom(c), BaselineModel.Unsupported),
        new(Omoe.ModelId, "OMoE: experts mixed by one softmax gate shared by all stages (§3)",
            c => new Omoe(c), BaselineModel.Unsupported),
        new(Mmoe.ModelId, "MMoE: shared experts, one bias-free softmax gate per stage (Ma et al. 2018, §4)",
            c => new Mmoe(c), BaselineModel.Unsupported),
        new(Ple.CgcId, "CGC: shared plus stage-specific experts, stage gates over own + shared (Tang et al. 2020, §5)",
            c => new Ple(c, new PleOptions { Levels = 1 }, Ple.CgcId), BaselineModel.Unsupported),
        new(Ple.ModelId, "PLE: two CGC extraction levels with a shared gate between them (Tang et al. 2020, §6)",
            c => new Ple(c, new PleOptions { Levels = 2 }), BaselineModel.Unsupported),
        new(Stem.ModelId, "STEM: shared + per-stage embeddings, all-forward gates, other stages' experts detached (Su et al. 2024, §7)",
            c => new Stem(c), BaselineModel.Unsupported),
    ];
}
