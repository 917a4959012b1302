using AdAuctionSim.Models.Core;
using AdAuctionSim.Simulation.Output;
using AdAuctionSim.Simulation.Scenarios;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Data;

/// <summary>
/// Every bid request of D (impressions and lost bids, all splits) as the model suite sees it, built only from the
/// <see cref="LoggedView"/>: encoded features, cumulative stage labels, the won flag and the logged win propensity as a
/// few large tensors on the training device (CONVENTIONS.md), plus the host columns the win-propensity models need.
/// Rows are sorted by request id.
/// </summary>
/// <remarks>
/// Encoding (models.md §0.2): field f's cardinality is (largest id of f seen in the train split of impressions and
/// lost bids) + 2, so ids 0…max keep their value and index cardinality − 1 is the field's reserved "unseen" bucket,
/// which takes every id not seen in training (and any negative id). A feature row holds <c>local id + offset of f</c>:
/// a row of the shared embedding table of <see cref="FeatureEncoder"/>.
/// </remarks>
public sealed class LoggedDataset : IDisposable
{
    /// <summary>The observed categorical fields the encoder reads, in table order (models.md §0.2; DESIGN.md §3).</summary>
    public static IReadOnlyList<string> FieldNames { get; } =
    [
        "hour", "site_id", "position", "user_id", "age", "gender", "region", "device", "segment",
        "ad_id", "campaign_id", "advertiser_id", "category", "creative",
    ];

    /// <summary>The logged column holding the oracle P(win | x) (used when a run asks for the oracle win propensity).</summary>
    public const string WinPropensityColumn = "win_propensity";

    private static readonly string[] PolicyColumns = ["bid", "bid_multiplier"];

    private readonly byte[] _split;
    private readonly bool[] _won;
    private bool _disposed;

    private LoggedDataset(LoggedDatasetParts parts)
    {
        Source = parts.Source;
        CodeVersion = parts.CodeVersion;
        SimulationSeed = parts.SimulationSeed;
        ManifestSha256 = parts.ManifestSha256;
        ImpressionsFile = parts.ImpressionsFile;
        LostBidsFile = parts.LostBidsFile;
        Stages = parts.Stages;
        Schema = parts.Schema;
        Device = parts.Device;
        RequestId = parts.RequestId;
        _split = parts.Split;
        _won = parts.Won;
        Bid = parts.Bid;
        BidMultiplier = parts.BidMultiplier;
        Price = parts.Price;
        FeatureIds = parts.FeatureIds;
        BidMultipliers = parts.BidMultipliers;
        MultiplierProbabilities = parts.MultiplierProbabilities;
        SecondPrice = parts.SecondPrice;
        ReservePrice = parts.ReservePrice;
        ColumnsRead = parts.ColumnsRead;
        Features = parts.Features;
        Labels = parts.Labels;
        Won = parts.WonTensor;
        WinPropensity = parts.WinPropensity;
        ReachPropensity = parts.ReachPropensity;
    }

    /// <summary>The simulation folder the rows came from.</summary>
    public string Source { get; }

    /// <summary>Code version and seed of the simulation (from its manifest), for run records.</summary>
    public string CodeVersion { get; }
    public long SimulationSeed { get; }

    /// <summary>SHA-256 of the simulation's manifest (<see cref="LoggedView.ManifestSha256"/>), the simulation's identity.</summary>
    public string ManifestSha256 { get; }

    /// <summary>Full paths of the logged products read (for messages).</summary>
    public string ImpressionsFile { get; }
    public string LostBidsFile { get; }

    /// <summary>Funnel stage names in order.</summary>
    public IReadOnlyList<string> Stages { get; }

    /// <summary>Funnel depth K.</summary>
    public int Depth => Stages.Count;

    /// <summary>Fields and cardinalities (unseen bucket included) of the shared embedding table.</summary>
    public FeatureSchema Schema { get; }

    /// <summary>The device the tensors live on.</summary>
    public Device Device { get; }

    /// <summary>Rows N = |D|.</summary>
    public int Count => RequestId.Length;

    /// <summary>Request id of each row (ascending).</summary>
    public long[] RequestId { get; }

    /// <summary>Whether each row is an impression (won) rather than a lost bid.</summary>
    public ReadOnlySpan<bool> IsImpression => _won;

    /// <summary>Split of each row.</summary>
    public ReadOnlySpan<DatasetSplit> Split => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, DatasetSplit>(_split);

    /// <summary>The logged bid of each row.</summary>
    public double[] Bid { get; }

    /// <summary>The bid multiplier the logging policy drew for each row.</summary>
    public double[] BidMultiplier { get; }

    /// <summary>Price paid by each impression; NaN on lost bids.</summary>
    public double[] Price { get; }

    /// <summary>
    /// Row-major [N × F] local ids: <c>FeatureIds[i * F + f]</c> ∈ [0, cardinality_f), the unseen bucket included,
    /// without the table offsets (the layout <c>WinLogData</c> takes).
    /// </summary>
    public int[] FeatureIds { get; }

    /// <summary>The logging policy's multiplier set and the probability of each (from the manifest's scenario).</summary>
    public IReadOnlyList<double> BidMultipliers { get; }
    public IReadOnlyList<double> MultiplierProbabilities { get; }

    /// <summary>Whether the auction is second price (a won bid's price is the market price), else first price.</summary>
    public bool SecondPrice { get; }

    /// <summary>Reserve price of the auction (0 = none).</summary>
    public double ReservePrice { get; }

    /// <summary>Every logged column this dataset was built from, as <c>product.column</c> (the barrier's audit trail).</summary>
    public IReadOnlyList<string> ColumnsRead { get; }

    /// <summary>[N, F] int64 rows of the shared embedding table (field offsets added, unseen ids in their bucket).</summary>
    public Tensor Features { get; }

    /// <summary>[N, K] float32 cumulative labels s_k (stage k reached); 0 on lost bids.</summary>
    public Tensor Labels { get; }

    /// <summary>[N] float32: 1 for an impression, 0 for a lost bid.</summary>
    public Tensor Won { get; }

    /// <summary>[N] float32 logged oracle win propensity P(win | x) (column <c>win_propensity</c>), not floored; 0 on a lost bid that could not have won (every bid level of the logger below a binding reserve).</summary>
    public Tensor WinPropensity { get; }

    /// <summary>
    /// [N, K−1] float32 logged oracle reach propensities r_k(x) of stages 1…K−1 on impressions (columns
    /// <c>propensity_&lt;stage&gt;</c>), 1 on lost bids; not floored. Read by IPS/DR models only when a run asks for the
    /// true click propensities (<see cref="Training.ClickPropensitySource.Oracle"/>).
    /// </summary>
    public Tensor ReachPropensity { get; }

    /// <summary>Rows of a split: impressions only, or impressions and lost bids.</summary>
    public int[] Rows(DatasetSplit split, bool includeLostBids)
    {
        var count = 0;
        for (var i = 0; i < _split.Length; i++)
        {
            if (_split[i] == (byte)split && (includeLostBids || _won[i]))
            {
                count++;
            }
        }
        var rows = new int[count];
        var at = 0;
        for (var i = 0; i < _split.Length; i++)
        {
            if (_split[i] == (byte)split && (includeLostBids || _won[i]))
            {
                rows[at++] = i;
            }
        }
        return rows;
    }

    /// <summary>Number of rows of a split (impressions only, or with lost bids).</summary>
    public int CountOf(DatasetSplit split, bool includeLostBids)
    {
        var count = 0;
        for (var i = 0; i < _split.Length; i++)
        {
            if (_split[i] == (byte)split && (includeLostBids || _won[i]))
            {
                count++;
            }
        }
        return count;
    }

    /// <summary>The rows of a split as an int64 index tensor on <see cref="Device"/> (the caller disposes it).</summary>
    public Tensor RowIndex(DatasetSplit split, bool includeLostBids)
    {
        var rows = Rows(split, includeLostBids);
        var wide = new long[rows.Length];
        for (var i = 0; i < rows.Length; i++)
        {
            wide[i] = rows[i];
        }
        return tensor(wide, ScalarType.Int64, Device).DetachFromDisposeScope();
    }

    /// <summary>
    /// Reads the logged view into a dataset on <paramref name="device"/> (CPU when null). Reads impressions and lost
    /// bids only (the columns request_id, split, the encoder's fields, win_propensity, bid, bid_multiplier, and on
    /// impressions price, the stage labels and the oracle reach propensities).
    /// </summary>
    /// <exception cref="InvalidDataException">A file cannot be read, or holds values the suite cannot use (named).</exception>
    public static LoggedDataset Load(LoggedView view, Device? device = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(view);
        device ??= CPU;
        var stages = view.Stages;
        var k = stages.Count;
        var fieldCount = FieldNames.Count;
        string[] common = [LogColumns.RequestId, LogColumns.Split, .. FieldNames, WinPropensityColumn, .. PolicyColumns];
        var reachColumns = LogColumns.ReachPropensities(stages);
        var impressions = view.Read(LoggedProduct.Impressions, [.. common, LogColumns.Price, .. stages, .. reachColumns]);
        cancellation.ThrowIfCancellationRequested();
        var lost = view.Read(LoggedProduct.LostBids, common);
        cancellation.ThrowIfCancellationRequested();
        var scenario = view.ReadScenario();

        var nI = impressions.Rows;
        var nL = lost.Rows;
        if ((long)nI + nL > Array.MaxLength / Math.Max(fieldCount, k))
        {
            throw new InvalidDataException($"{view.Folder}: {(long)nI + nL} requests are more than one dataset can hold");
        }
        var n = nI + nL;
        var order = MergeByRequestId(impressions.Int64(LogColumns.RequestId), lost.Int64(LogColumns.RequestId), view);

        var requestId = new long[n];
        var split = new byte[n];
        var won = new bool[n];
        var bid = new double[n];
        var multiplier = new double[n];
        var price = new double[n];
        var winPropensity = new float[n];
        var labels = new float[(long)n * k];
        var reach = new float[(long)n * (k - 1)];
        var impId = impressions.Int64(LogColumns.RequestId);
        var lostId = lost.Int64(LogColumns.RequestId);
        var impSplit = impressions.SplitCodes();
        var lostSplit = lost.SplitCodes();
        var impBid = impressions.Double("bid");
        var lostBid = lost.Double("bid");
        var impMultiplier = impressions.Double("bid_multiplier");
        var lostMultiplier = lost.Double("bid_multiplier");
        var impPrice = impressions.Double(LogColumns.Price);
        var impWin = impressions.Double(WinPropensityColumn);
        var lostWin = lost.Double(WinPropensityColumn);
        var stageColumns = stages.Select(impressions.Int32).ToArray();
        var reachSources = reachColumns.Select(impressions.Double).ToArray();
        for (var r = 0; r < n; r++)
        {
            var s = order[r];
            if (s < nI)
            {
                requestId[r] = impId[s];
                split[r] = impSplit[s];
                won[r] = true;
                bid[r] = impBid[s];
                multiplier[r] = impMultiplier[s];
                price[r] = impPrice[s];
                winPropensity[r] = CheckedPropensity(impWin[s], impressions.File, impId[s]);
                var previous = 1;
                for (var j = 0; j < k; j++)
                {
                    var label = stageColumns[j][s];
                    if (label is not (0 or 1) || label > previous)
                    {
                        throw new InvalidDataException($"{impressions.File}: request {impId[s]}: stage \"{stages[j]}\" label {label} "
                            + $"is not a cumulative 0/1 label (stage before: {previous})");
                    }
                    labels[(long)r * k + j] = label;
                    previous = label;
                }
                for (var j = 0; j < k - 1; j++)
                {
                    reach[(long)r * (k - 1) + j] = CheckedPropensity(reachSources[j][s], impressions.File, impId[s], reachColumns[j]);
                }
            }
            else
            {
                var l = s - nI;
                requestId[r] = lostId[l];
                split[r] = lostSplit[l];
                bid[r] = lostBid[l];
                multiplier[r] = lostMultiplier[l];
                price[r] = double.NaN;
                // A lost bid may have no chance at all: every bid level of the logger below a binding reserve.
                winPropensity[r] = CheckedPropensity(lostWin[l], lost.File, lostId[l], zeroAllowed: true);
                reach.AsSpan((int)((long)r * (k - 1)), k - 1).Fill(1f);
            }
        }
        cancellation.ThrowIfCancellationRequested();

        // Cardinalities from the train split only; everything else unseen goes to the bucket.
        var ids = new int[(long)n * fieldCount];
        var cardinalities = new int[fieldCount];
        for (var f = 0; f < fieldCount; f++)
        {
            var fromImpressions = impressions.Int32(FieldNames[f]);
            var fromLost = lost.Int32(FieldNames[f]);
            var max = -1;
            for (var r = 0; r < n; r++)
            {
                var s = order[r];
                var v = s < nI ? fromImpressions[s] : fromLost[s - nI];
                ids[(long)r * fieldCount + f] = v;
                if (split[r] == (byte)DatasetSplit.Train && v > max)
                {
                    max = v;
                }
            }
            if (max == int.MaxValue)
            {
                throw new InvalidDataException($"{impressions.File}: field \"{FieldNames[f]}\" holds id {max}, too large to encode");
            }
            var cardinality = max + 2;
            cardinalities[f] = cardinality;
            var bucket = cardinality - 1;
            for (var r = 0; r < n; r++)
            {
                ref var v = ref ids[(long)r * fieldCount + f];
                if (v < 0 || v > max)
                {
                    v = bucket;
                }
            }
        }
        var schema = new FeatureSchema(FieldNames, cardinalities);
        if (schema.TotalRows > int.MaxValue)
        {
            throw new InvalidDataException($"{view.Folder}: the embedding table would need {schema.TotalRows} rows; more than this suite supports");
        }

        Tensor features, labelTensor, wonTensor, winTensor, reachTensor;
        using (NewDisposeScope())
        {
            var offsets = tensor(schema.Offsets.ToArray(), ScalarType.Int64);
            features = tensor(ids, [n, fieldCount]).to_type(ScalarType.Int64).Plus(offsets).to(device).MoveToOuterDisposeScope();
            labelTensor = tensor(labels, [n, k]).to(device).MoveToOuterDisposeScope();
            var wonFloat = new float[n];
            for (var r = 0; r < n; r++)
            {
                wonFloat[r] = won[r] ? 1f : 0f;
            }
            wonTensor = tensor(wonFloat, ScalarType.Float32).to(device).MoveToOuterDisposeScope();
            winTensor = tensor(winPropensity, ScalarType.Float32).to(device).MoveToOuterDisposeScope();
            reachTensor = tensor(reach, [n, k - 1]).to(device).MoveToOuterDisposeScope();
        }
        // Whatever scope the caller is in, the dataset owns its tensors until Dispose.
        features.DetachFromDisposeScope();
        labelTensor.DetachFromDisposeScope();
        wonTensor.DetachFromDisposeScope();
        winTensor.DetachFromDisposeScope();
        reachTensor.DetachFromDisposeScope();

        var columnsRead = view.ColumnsRead(LoggedProduct.Impressions).Select(c => $"{LogColumns.ImpressionsProduct}.{c}")
            .Concat(view.ColumnsRead(LoggedProduct.LostBids).Select(c => $"{LogColumns.LostBidsProduct}.{c}"))
            .ToArray();
        return new LoggedDataset(new LoggedDatasetParts
        {
            Source = view.Folder,
            CodeVersion = view.Manifest.CodeVersion,
            SimulationSeed = view.Manifest.Seed,
            ManifestSha256 = LoggedView.ManifestSha256(view.Folder),
            ImpressionsFile = impressions.File,
            LostBidsFile = lost.File,
            Stages = stages.ToArray(),
            Schema = schema,
            Device = device,
            RequestId = requestId,
            Split = split,
            Won = won,
            Bid = bid,
            BidMultiplier = multiplier,
            Price = price,
            FeatureIds = ids,
            BidMultipliers = scenario.LoggingPolicy.BidMultipliers.ToArray(),
            MultiplierProbabilities = scenario.LoggingPolicy.MultiplierProbabilities.ToArray(),
            SecondPrice = scenario.Auction.Type == AuctionType.SecondPrice,
            ReservePrice = scenario.Auction.ReservePrice,
            ColumnsRead = columnsRead,
            Features = features,
            Labels = labelTensor,
            WonTensor = wonTensor,
            WinPropensity = winTensor,
            ReachPropensity = reachTensor,
        });
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        Features.Dispose();
        Labels.Dispose();
        Won.Dispose();
        WinPropensity.Dispose();
        ReachPropensity.Dispose();
    }

    /// <summary>
    /// Every request of D as a win model reads it (<see cref="WinPropensity.WinLogData"/>): features, bid, multiplier, won,
    /// price and the auction's rules; never the logged win_propensity column.
    /// </summary>
    internal WinPropensity.WinLogData WinLog() => new(FeatureIds, Schema.Fields, Schema.Cardinalities, Bid, BidMultiplier,
        IsImpression.ToArray(), Price, BidMultipliers, MultiplierProbabilities, SecondPrice, ReservePrice);

    private static float CheckedPropensity(double p, string file, long request, string column = WinPropensityColumn, bool zeroAllowed = false)
    {
        if (!((p > 0 || (zeroAllowed && p == 0)) && p <= 1))
        {
            throw new InvalidDataException($"{file}: request {request}: {column} is {p}; expected a probability in {(zeroAllowed ? "[0, 1]" : "(0, 1]")}");
        }
        return (float)p;
    }

    /// <summary>
    /// Row order of D: sources sorted by request id (index &lt; impressions: an impression; else nI + lost-bid index).
    /// The simulator writes both products in request order, so this is a merge; anything else is sorted.
    /// </summary>
    private static int[] MergeByRequestId(long[] impressions, long[] lost, LoggedView view)
    {
        var nI = impressions.Length;
        var n = nI + lost.Length;
        var order = new int[n];
        if (IsAscending(impressions) && IsAscending(lost))
        {
            int i = 0, j = 0;
            for (var r = 0; r < n; r++)
            {
                order[r] = j >= lost.Length || (i < nI && impressions[i] < lost[j]) ? i++ : nI + j++;
            }
        }
        else
        {
            var keys = new long[n];
            impressions.CopyTo(keys, 0);
            lost.CopyTo(keys, nI);
            for (var r = 0; r < n; r++)
            {
                order[r] = r;
            }
            Array.Sort(keys, order);
        }
        for (var r = 1; r < n; r++)
        {
            var a = order[r - 1] < nI ? impressions[order[r - 1]] : lost[order[r - 1] - nI];
            var b = order[r] < nI ? impressions[order[r]] : lost[order[r] - nI];
            if (a == b)
            {
                throw new InvalidDataException($"{view.Folder}: request id {a} appears more than once in the impressions and lost bids");
            }
        }
        return order;
    }

    private static bool IsAscending(long[] values)
    {
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] <= values[i - 1])
            {
                return false;
            }
        }
        return true;
    }

    private sealed class LoggedDatasetParts
    {
        public required string Source { get; init; }
        public required string CodeVersion { get; init; }
        public required long SimulationSeed { get; init; }
        public required string ManifestSha256 { get; init; }
        public required string ImpressionsFile { get; init; }
        public required string LostBidsFile { get; init; }
        public required IReadOnlyList<string> Stages { get; init; }
        public required FeatureSchema Schema { get; init; }
        public required Device Device { get; init; }
        public required long[] RequestId { get; init; }
        public required byte[] Split { get; init; }
        public required bool[] Won { get; init; }
        public required double[] Bid { get; init; }
        public required double[] BidMultiplier { get; init; }
        public required double[] Price { get; init; }
        public required int[] FeatureIds { get; init; }
        public required IReadOnlyList<double> BidMultipliers { get; init; }
        public required IReadOnlyList<double> MultiplierProbabilities { get; init; }
        public required bool SecondPrice { get; init; }
        public required double ReservePrice { get; init; }
        public required IReadOnlyList<string> ColumnsRead { get; init; }
        public required Tensor Features { get; init; }
        public required Tensor Labels { get; init; }
        public required Tensor WonTensor { get; init; }
        public required Tensor WinPropensity { get; init; }
        public required Tensor ReachPropensity { get; init; }
    }
}
