using System.Globalization;

namespace AdAuctionSim.Evaluation.Metrics;

/// <summary>
/// One sort of a set of probability scores that serves every rank-based figure: AUC with tie groups and the sums of
/// the equal-mass calibration bins. A score's float64 bits are monotone in its value for non-negative doubles and stay
/// below 2^62 for values ≤ 1; the low bits that are the same in every score are shifted out, and the key is those bits
/// shifted left by one with a binary label packed into bit 0, so a radix sort of the keys alone orders the rows by
/// score and the AUC of that label needs no second array. When other per-row data (a second label, a true rate) is
/// needed, the row index travels with the keys as the sort payload.
/// </summary>
/// <remarks>Buffers are kept between calls: reuse one instance per thread to allocate nothing per evaluation.</remarks>
internal sealed class ScoreRanking
{
    private ulong[] _keys = [];
    private ulong[] _keyScratch = [];
    private int[] _order = [];
    private int[] _orderScratch = [];
    private int _shift;
    private ulong _constant;

    /// <summary>Threads of the radix sort (the result does not depend on it).</summary>
    public int Threads { get; init; } = 1;

    /// <summary>Called between building the keys and sorting them (for the benchmark's phase timings).</summary>
    public Action? KeysBuilt { get; set; }

    /// <summary>Rows ranked by the last <see cref="Rank"/>.</summary>
    public int Count { get; private set; }

    /// <summary>Whether the last <see cref="Rank"/> kept the row order (row indices in score order).</summary>
    public bool HasOrder { get; private set; }

    /// <summary>Sorted keys: score bits shifted left by one, packed label in bit 0.</summary>
    public ReadOnlySpan<ulong> Keys => _keys.AsSpan(0, Count);

    /// <summary>Row indices in score order (ties in row order); empty unless the order was kept.</summary>
    public ReadOnlySpan<int> Order => HasOrder ? _order.AsSpan(0, Count) : [];

    /// <summary>
    /// Sorts <paramref name="scores"/> (probabilities in [0, 1]) with <paramref name="packedLabels"/> (or all 0 when
    /// empty) in the key; with <paramref name="keepOrder"/> the row indices are carried along.
    /// </summary>
    /// <exception cref="ArgumentException">A score is NaN or outside [0, 1], or the label count differs.</exception>
    public void Rank(ReadOnlySpan<double> scores, ReadOnlySpan<bool> packedLabels, bool keepOrder)
    {
        var n = scores.Length;
        if (!packedLabels.IsEmpty && packedLabels.Length != n)
        {
            throw new ArgumentException($"{packedLabels.Length} labels for {n} scores", nameof(packedLabels));
        }
        Ensure(ref _keys, n);
        Ensure(ref _keyScratch, n);
        var keys = _keys.AsSpan(0, n);
        // Bits that are the same in every score carry no order: shift the constant low ones out, so that the label sits
        // next to the lowest varying score bit and the keys are as narrow as the scores allow (float32 values: 35 bits).
        ulong all = ulong.MaxValue, any = 0;
        for (var i = 0; i < n; i++)
        {
            var s = scores[i];
            if (!(s >= 0 && s <= 1))
            {
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                    $"score {s:R} at row {i} is not a probability in [0, 1]"), nameof(scores));
            }
            // +0.0 for −0.0 (whose sign bit would sort it last).
            var bits = (ulong)BitConverter.DoubleToInt64Bits(s + 0.0);
            all &= bits;
            any |= bits;
        }
        _shift = n == 0 ? 0 : Math.Min(63, System.Numerics.BitOperations.TrailingZeroCount(all ^ any));
        _constant = n == 0 ? 0 : all & ((1UL << _shift) - 1);
        for (var i = 0; i < n; i++)
        {
            var bits = (ulong)BitConverter.DoubleToInt64Bits(scores[i] + 0.0);
            keys[i] = ((bits >> _shift) << 1) | (!packedLabels.IsEmpty && packedLabels[i] ? 1UL : 0UL);
        }
        if (keepOrder)
        {
            Ensure(ref _order, n);
            Ensure(ref _orderScratch, n);
            for (var i = 0; i < n; i++)
            {
                _order[i] = i;
            }
        }
        KeysBuilt?.Invoke();
        RadixSort.Sort(_keys, keepOrder ? _order : null, _keyScratch, keepOrder ? _orderScratch : null, n, Threads);
        Count = n;
        HasOrder = keepOrder;
    }

    /// <summary>The score of a key of the last ranking.</summary>
    public double ScoreOf(ulong key) => BitConverter.Int64BitsToDouble((long)(((key >> 1) << _shift) | _constant));

    /// <summary>
    /// Walks the ranked rows once, tie group by tie group (equal scores), and returns the AUC of the packed label,
    /// the AUC of <paramref name="rowLabels"/> (indexed by row; empty for none) and the sums of
    /// <paramref name="bins"/> equal-mass bins of the packed label and of <paramref name="rowTargets"/> (by row; empty
    /// for none). Row-indexed inputs need the order kept by <see cref="Rank"/>.
    /// </summary>
    /// <remarks>
    /// Bins: rows sorted by score, bin b holds sorted positions [⌊b·n/B⌋, ⌊(b+1)·n/B⌋). A tie group that straddles an
    /// edge is shared between bins by the number of its positions in each, and its label and target sums pro rata, so
    /// the bins do not depend on how tied rows happen to be ordered.
    /// </remarks>
    public RankSums Walk(ReadOnlySpan<bool> rowLabels, ReadOnlySpan<double> rowTargets, int bins)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bins, 1);
        if ((!rowLabels.IsEmpty || !rowTargets.IsEmpty) && !HasOrder)
        {
            throw new InvalidOperationException("row-indexed labels or targets need the row order: rank with keepOrder");
        }
        var keys = Keys;
        var order = Order;
        var n = keys.Length;
        var sums = new RankSums(bins, !rowLabels.IsEmpty || n == 0, !rowTargets.IsEmpty || n == 0);
        long negativesA = 0, negativesB = 0;
        var bin = 0;
        var binEnd = BinEdge(1, n, bins);
        var start = 0;
        while (start < n)
        {
            var score = keys[start] >> 1;
            var end = start;
            long positivesA = 0, positivesB = 0;
            var target = 0.0;
            while (end < n && keys[end] >> 1 == score)
            {
                positivesA += (long)(keys[end] & 1);
                if (!order.IsEmpty)
                {
                    var row = order[end];
                    if (!rowLabels.IsEmpty && rowLabels[row])
                    {
                        positivesB++;
                    }
                    if (!rowTargets.IsEmpty)
                    {
                        target += rowTargets[row];
                    }
                }
                end++;
            }
            long size = end - start;
            var groupNegativesA = size - positivesA;
            sums.AucA2 += positivesA * ((2 * negativesA) + groupNegativesA);
            negativesA += groupNegativesA;
            sums.PositivesA += positivesA;
            if (!rowLabels.IsEmpty)
            {
                var groupNegativesB = size - positivesB;
                sums.AucB2 += positivesB * ((2 * negativesB) + groupNegativesB);
                negativesB += groupNegativesB;
                sums.PositivesB += positivesB;
            }
            // Share the group among the bins it covers.
            var value = ScoreOf(keys[start]);
            var at = start;
            while (at < end)
            {
                while (at >= binEnd)
                {
                    bin++;
                    binEnd = BinEdge(bin + 1, n, bins);
                }
                var take = Math.Min(end, binEnd) - at;
                var share = take == size ? 1.0 : (double)take / size;
                sums.Count[bin] += take;
                sums.SumScore[bin] += take * value;
                sums.SumLabel[bin] += share * positivesA;
                sums.SumTarget[bin] += share * target;
                at += take;
            }
            start = end;
        }
        sums.Rows = n;
        return sums;
    }

    /// <summary>
    /// AUC of <paramref name="rowLabels"/> (or of the packed label when empty) with integer row weights (a bootstrap
    /// resample's multiplicities, indexed by row): each row counts as that many tied copies.
    /// </summary>
    public MetricValue WeightedAuc(ReadOnlySpan<bool> rowLabels, ReadOnlySpan<int> weights)
    {
        var keys = Keys;
        var order = Order;
        if (order.IsEmpty)
        {
            throw new InvalidOperationException("weighted AUC needs the row order: rank with keepOrder");
        }
        var n = keys.Length;
        long negatives = 0, positivesTotal = 0;
        long auc2 = 0;
        var start = 0;
        while (start < n)
        {
            var score = keys[start] >> 1;
            long positives = 0, groupNegatives = 0;
            while (start < n && keys[start] >> 1 == score)
            {
                var row = order[start];
                var w = weights[row];
                var label = rowLabels.IsEmpty ? (keys[start] & 1) == 1 : rowLabels[row];
                if (label)
                {
                    positives += w;
                }
                else
                {
                    groupNegatives += w;
                }
                start++;
            }
            auc2 += positives * ((2 * negatives) + groupNegatives);
            negatives += groupNegatives;
            positivesTotal += positives;
        }
        return RankSums.Auc(auc2, positivesTotal, negatives);
    }

    /// <summary>First sorted position of bin <paramref name="b"/> among <paramref name="bins"/> equal-mass bins of n rows.</summary>
    public static int BinEdge(int b, int n, int bins) => (int)((long)b * n / bins);

    private static void Ensure<T>(ref T[] buffer, int n)
    {
        if (buffer.Length < n)
        {
            buffer = new T[Math.Max(n, buffer.Length * 2)];
        }
    }
}

/// <summary>What one walk over ranked scores gathers: AUC numerators (doubled, exact integers) and bin sums.</summary>
internal sealed class RankSums(int bins, bool hasRowLabels, bool hasTargets)
{
    public long Rows { get; set; }
    public long PositivesA { get; set; }
    public long AucA2 { get; set; }
    public long PositivesB { get; set; }
    public long AucB2 { get; set; }
    public bool HasRowLabels { get; } = hasRowLabels;
    public bool HasTargets { get; } = hasTargets;

    /// <summary>Rows per bin (whole positions of the sorted order).</summary>
    public double[] Count { get; } = new double[bins];
    public double[] SumScore { get; } = new double[bins];
    /// <summary>Positives of the packed label per bin (tie groups shared pro rata).</summary>
    public double[] SumLabel { get; } = new double[bins];
    /// <summary>Sum of the row targets per bin (tie groups shared pro rata).</summary>
    public double[] SumTarget { get; } = new double[bins];

    /// <summary>AUC of the packed label.</summary>
    public MetricValue AucOfPackedLabel => Auc(AucA2, PositivesA, Rows - PositivesA);

    /// <summary>AUC of the row labels.</summary>
    public MetricValue AucOfRowLabels => HasRowLabels
        ? Auc(AucB2, PositivesB, Rows - PositivesB)
        : throw new InvalidOperationException("the walk had no row labels");

    /// <summary>Expected calibration error against the packed label: Σ_b |Σp̂ − Σs| / n.</summary>
    public MetricValue EceOfPackedLabel => Ece(SumLabel);

    /// <summary>Expected calibration error against the row targets: Σ_b |Σp̂ − Σq| / n.</summary>
    public MetricValue EceOfTargets => HasTargets ? Ece(SumTarget) : throw new InvalidOperationException("the walk had no targets");

    private MetricValue Ece(double[] against)
    {
        if (Rows == 0)
        {
            return MetricValue.Undefined(MetricValue.NoRows);
        }
        var total = 0.0;
        for (var b = 0; b < Count.Length; b++)
        {
            total += Math.Abs(SumScore[b] - against[b]);
        }
        return MetricValue.Of(total / Rows);
    }

    /// <summary>AUC from the doubled pair count Σ_groups pos·(2·negatives below + negatives tied).</summary>
    public static MetricValue Auc(long auc2, long positives, long negatives)
    {
        if (positives + negatives == 0)
        {
            return MetricValue.Undefined(MetricValue.NoRows);
        }
        if (positives == 0 || negatives == 0)
        {
            return MetricValue.Undefined(string.Create(CultureInfo.InvariantCulture,
                $"single class: all {positives + negatives} labels are {(positives == 0 ? 0 : 1)}, so AUC is undefined"));
        }
        return MetricValue.Of(auc2 / (2.0 * positives * negatives));
    }
}
