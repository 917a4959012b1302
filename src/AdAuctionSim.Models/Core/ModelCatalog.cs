namespace AdAuctionSim.Models.Core;

/// <summary>A model the suite offers: its stable id, what it is, and how to build it for a funnel.</summary>
/// <param name="Id">Stable id used on the command line and in reports.</param>
/// <param name="Summary">One line for <c>adsim train --help</c> and reports.</param>
/// <param name="Create">Builds the model for a context.</param>
/// <param name="Unsupported">Why the model cannot serve a funnel of this depth, or null when it can.</param>
public sealed record ModelEntry(string Id, string Summary, Func<ModelContext, MultiTaskModel> Create, Func<int, string?> Unsupported);

/// <summary>Every model of the suite by stable id. The families contribute their entries from their own files.</summary>
public static partial class ModelCatalog
{
    private static readonly Lazy<IReadOnlyDictionary<string, ModelEntry>> Entries = new(() =>
        BaselineEntries().Concat(DebiasingEntries()).ToDictionary(e => e.Id, StringComparer.Ordinal));

    public static IReadOnlyCollection<string> Ids => Entries.Value.Keys.Order(StringComparer.Ordinal).ToArray();

    public static bool TryGet(string id, out ModelEntry entry) => Entries.Value.TryGetValue(id, out entry!);

    public static ModelEntry Get(string id) => TryGet(id, out var e)
        ? e
        : throw new ArgumentException($"unknown model \"{id}\"; expected one of: {string.Join(", ", Ids)}", nameof(id));

    private static partial IEnumerable<ModelEntry> BaselineEntries();

    private static partial IEnumerable<ModelEntry> DebiasingEntries();
}
