namespace AdAuctionSim.Evaluation.Metrics;

/// <summary>
/// Stable least-significant-digit radix sort of 64-bit keys with an optional int payload: 11-bit digits, six passes,
/// all six histograms counted in one read, and a pass skipped when every key has the same digit there. O(n), no
/// comparisons; the output is the unique stable order, so it is the same whatever machine or thread runs it.
/// </summary>
internal static class RadixSort
{
    private const int DigitBits = 11;
    private const int Buckets = 1 << DigitBits;
    private const int Passes = (64 + DigitBits - 1) / DigitBits;

    /// <summary>
    /// Sorts <paramref name="keys"/> ascending and applies the same permutation to <paramref name="payload"/> (when
    /// not empty). The scratch spans must be at least as long as the data.
    /// </summary>
    public static void Sort(Span<ulong> keys, Span<int> payload, Span<ulong> keyScratch, Span<int> payloadScratch)
    {
        var n = keys.Length;
        var carry = !payload.IsEmpty;
        if (carry && payload.Length != n)
        {
            throw new ArgumentException($"payload holds {payload.Length} values for {n} keys", nameof(payload));
        }
        if (n < 2)
        {
            return;
        }
        var counts = new int[Passes * Buckets];
        for (var i = 0; i < n; i++)
        {
            var k = keys[i];
            for (var p = 0; p < Passes; p++)
            {
                counts[(p * Buckets) + (int)((k >> (p * DigitBits)) & (Buckets - 1))]++;
            }
        }
        var source = keys;
        var target = keyScratch[..n];
        var sourcePayload = payload;
        var targetPayload = carry ? payloadScratch[..n] : payloadScratch;
        var inScratch = false;
        for (var p = 0; p < Passes; p++)
        {
            var histogram = counts.AsSpan(p * Buckets, Buckets);
            if (histogram.Contains(n))
            {
                continue; // every key has the same digit here
            }
            var offset = 0;
            for (var b = 0; b < Buckets; b++)
            {
                var c = histogram[b];
                histogram[b] = offset;
                offset += c;
            }
            var shift = p * DigitBits;
            if (carry)
            {
                for (var i = 0; i < n; i++)
                {
                    var k = source[i];
                    var at = histogram[(int)((k >> shift) & (Buckets - 1))]++;
                    target[at] = k;
                    targetPayload[at] = sourcePayload[i];
                }
                var swapPayload = sourcePayload;
                sourcePayload = targetPayload;
                targetPayload = swapPayload;
            }
            else
            {
                for (var i = 0; i < n; i++)
                {
                    var k = source[i];
                    target[histogram[(int)((k >> shift) & (Buckets - 1))]++] = k;
                }
            }
            var swap = source;
            source = target;
            target = swap;
            inScratch = !inScratch;
        }
        if (inScratch)
        {
            source.CopyTo(keys);
            if (carry)
            {
                sourcePayload.CopyTo(payload);
            }
        }
    }
}
