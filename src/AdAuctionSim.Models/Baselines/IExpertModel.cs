using static TorchSharp.torch;

namespace AdAuctionSim.Models.Baselines;

/// <summary>A mixture-of-experts baseline whose first-level expert outputs can be inspected (models.md §16.4 test 1).</summary>
internal interface IExpertModel
{
    /// <summary>Every expert of the first level on these feature rows, [B, n, H].</summary>
    Tensor FirstLevelExperts(Tensor features);
}
