namespace AdAuctionSim.Models.Baselines;

/// <summary>
/// The expert layout PLE/CGC and STEM share: per stage m_t task-specific experts, stage by stage, then m_s shared ones;
/// with one input row per stage followed by the shared row.
/// </summary>
internal static class ExpertLayout
{
    /// <summary>K·m_t + m_s.</summary>
    public static int Count(int depth, int specific, int shared) => depth * specific + shared;

    /// <summary>The input row each expert reads: task t's experts row t, the shared experts row K.</summary>
    public static long[] Rows(int depth, int specific, int shared) =>
        [.. Enumerable.Range(0, Count(depth, specific, shared)).Select(j => (long)(j < depth * specific ? j / specific : depth))];

    /// <summary>"{stage}{j}" for each stage's experts, then "shared{j}": the expert names of the gate-usage diagnostics.</summary>
    public static string[] ExpertNames(IReadOnlyList<string> stages, int specific, int shared) =>
        [.. stages.SelectMany(s => Enumerable.Range(0, specific).Select(j => $"{s}{j}")), .. Enumerable.Range(0, shared).Select(j => $"shared{j}")];

    /// <summary>"{label}.{stage}" for each task gate, then "{label}.shared" when the layer has a shared gate.</summary>
    public static string[] GateNames(IReadOnlyList<string> stages, string label, bool sharedGate) =>
        [.. stages.Select(s => $"{label}.{s}"), .. sharedGate ? [$"{label}.shared"] : Array.Empty<string>()];
}
