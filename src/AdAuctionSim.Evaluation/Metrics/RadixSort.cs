namespace AdAuctionSim.Evaluation.Metrics;

/// <summary>
/// Stable least-significant-digit radix sort of 64-bit keys with an optional int payload. The keys' width w (up to
/// their highest set bit) is split into ⌈w / 12⌉ digits of equal size (at most 12 bits: 4096 buckets, whose write
/// positions stay in cache), all histograms are counted in one read, and a pass is skipped when every key has the same
/// digit there. Full 63-bit keys take six passes; keys of float32-valued scores (35 bits once
/// <see cref="ScoreRanking"/> has shifted out their constant low bits) three. O(n), no comparisons.
/// </summary>
/// <remarks>
/// With several threads each pass splits the rows into fixed contiguous chunks, counts each chunk's digits and
/// scatters each chunk from its own offsets (bucket-major, chunk-minor), so the result is the unique stable order:
/// byte-identical whatever the thread count.
/// </remarks>
internal static class RadixSort
{
    private const int MaxDigitBits = 12;

    /// <summary>Below this many keys one thread does everything.</summary>
    internal const int ParallelThreshold = 1 << 18;

    /// <summary>
    /// Sorts the first <paramref name="n"/> keys ascending and applies the same permutation to the payload (when not
    /// null). Scratch arrays must hold at least n values.
    /// </summary>
    public static void Sort(ulong[] keys, int[]? payload, ulong[] keyScratch, int[]? payloadScratch, int n, int threads = 1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(n, keys.Length);
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        if (payload is not null && (payload.Length < n || payloadScratch is null || payloadScratch.Length < n))
        {
            throw new ArgumentException($"payload and its scratch must hold {n} values", nameof(payload));
        }
        if (n < 2)
        {
            return;
        }
        var any = 0UL;
        for (var i = 0; i < n; i++)
        {
            any |= keys[i];
        }
        var width = Math.Max(1, 64 - System.Numerics.BitOperations.LeadingZeroCount(any));
        var passes = (width + MaxDigitBits - 1) / MaxDigitBits;
        var digitBits = (width + passes - 1) / passes;
        var buckets = 1 << digitBits;
        var mask = (ulong)(buckets - 1);
        var chunks = n >= ParallelThreshold ? Math.Min(threads, 16) : 1;
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = chunks };

        // Every pass's histogram per chunk, from the input order; summed, they decide which passes can be skipped.
        var chunkCounts = new int[chunks][];
        Parallel.For(0, chunks, parallel, t =>
        {
            var counts = chunkCounts[t] = new int[passes * buckets];
            for (int i = Start(t, n, chunks), end = Start(t + 1, n, chunks); i < end; i++)
            {
                var k = keys[i];
                for (var p = 0; p < passes; p++)
                {
                    counts[(p * buckets) + (int)((k >> (p * digitBits)) & mask)]++;
                }
            }
        });
        var total = new int[passes * buckets];
        foreach (var counts in chunkCounts)
        {
            for (var b = 0; b < total.Length; b++)
            {
                total[b] += counts[b];
            }
        }

        var source = keys;
        var target = keyScratch;
        var sourcePayload = payload;
        var targetPayload = payloadScratch;
        var moved = false;
        var offsets = new int[chunks][];
        for (var p = 0; p < passes; p++)
        {
            if (Array.IndexOf(total, n, p * buckets, buckets) >= 0)
            {
                continue; // every key has the same digit here
            }
            var shift = p * digitBits;
            if (moved && chunks > 1)
            {
                // The chunks now hold other keys: count this digit again, chunk by chunk.
                var from = source;
                Parallel.For(0, chunks, parallel, t =>
                {
                    var counts = chunkCounts[t];
                    Array.Clear(counts, p * buckets, buckets);
                    for (int i = Start(t, n, chunks), end = Start(t + 1, n, chunks); i < end; i++)
                    {
                        counts[(p * buckets) + (int)((from[i] >> shift) & mask)]++;
                    }
                });
            }
            var running = 0;
            for (var t = 0; t < chunks; t++)
            {
                offsets[t] ??= new int[buckets];
            }
            for (var b = 0; b < buckets; b++)
            {
                for (var t = 0; t < chunks; t++)
                {
                    offsets[t][b] = running;
                    running += chunkCounts[t][(p * buckets) + b];
                }
            }
            var (src, dst, srcPayload, dstPayload) = (source, target, sourcePayload, targetPayload);
            Parallel.For(0, chunks, parallel, t =>
            {
                var offset = offsets[t];
                int start = Start(t, n, chunks), end = Start(t + 1, n, chunks);
                if (srcPayload is null)
                {
                    for (var i = start; i < end; i++)
                    {
                        var k = src[i];
                        dst[offset[(int)((k >> shift) & mask)]++] = k;
                    }
                    return;
                }
                for (var i = start; i < end; i++)
                {
                    var k = src[i];
                    var at = offset[(int)((k >> shift) & mask)]++;
                    dst[at] = k;
                    dstPayload![at] = srcPayload[i];
                }
            });
            (source, target) = (target, source);
            (sourcePayload, targetPayload) = (targetPayload, sourcePayload);
            moved = true;
        }
        if (!ReferenceEquals(source, keys))
        {
            Array.Copy(source, keys, n);
            if (payload is not null)
            {
                Array.Copy(sourcePayload!, payload, n);
            }
        }
    }

    private static int Start(int chunk, int n, int chunks) => (int)((long)chunk * n / chunks);
}
