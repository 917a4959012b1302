using static TorchSharp.torch;

namespace AdAuctionSim.Models.Runtime;

/// <summary>How the C# passes share their work among libtorch's intra-op threads.</summary>
internal static class HostThreads
{
    /// <summary>Shares of a <see cref="Split"/> per thread.</summary>
    internal const int SharesPerThread = 4;

    /// <summary>
    /// Runs <paramref name="body"/>(first, end) over [0, <paramref name="units"/>) in contiguous shares
    /// (<see cref="SharesPerThread"/> per thread, at most one per unit), on at most <c>get_num_threads()</c> and at most
    /// <paramref name="maxThreads"/> threads: on libtorch's OpenMP team where <see cref="OpenMpTeam"/> finds it, else on
    /// the .NET thread pool. The passes hand out units that are computed alike wherever they fall (a sample, a block of
    /// samples), so their result does not depend on the split.
    /// </summary>
    public static void Split(int units, int maxThreads, Action<int, int> body)
    {
        var threads = Math.Clamp(get_num_threads(), 1, Math.Max(1, Math.Min(units, maxThreads)));
        if (threads == 1)
        {
            body(0, units);
            return;
        }
        // A few shares per thread, claimed as the threads come free: a thread whose core is taken for a while does less.
        var shares = (int)Math.Min(units, (long)threads * SharesPerThread);
        void Share(int k) => body((int)((long)units * k / shares), (int)((long)units * (k + 1) / shares));
        if (!OpenMpTeam.TryRun(shares, threads, Share))
        {
            Parallel.For(0, shares, new ParallelOptions { MaxDegreeOfParallelism = threads }, Share);
        }
    }

    /// <summary>
    /// Runs <paramref name="body"/>(first, end) over [0, <paramref name="samples"/>) in whole blocks of
    /// <paramref name="block"/> samples (only the last block may be short): a share starts on a block boundary, so which
    /// samples a vector or a block's partial sum covers does not depend on the thread count. On one thread unless
    /// <paramref name="parallel"/>.
    /// </summary>
    public static void SplitBlocks(int samples, int block, bool parallel, Action<int, int> body)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(block, 1);
        ArgumentNullException.ThrowIfNull(body);
        var blocks = (samples + block - 1) / block;
        Split(blocks, parallel ? blocks : 1,
            (first, end) => body((int)Math.Min(samples, (long)first * block), (int)Math.Min(samples, (long)end * block)));
    }

    /// <summary>
    /// Makes the calling thread's matrix products follow libtorch's intra-op thread count, and returns it. libtorch applies
    /// the count (<c>set_num_threads</c>) to a thread's MKL calls only when that thread first asks for it: a thread-pool thread
    /// whose first libtorch work is a product ran MKL on every core whatever the count (measured: a 1024×1024 product at
    /// 136–161 GFLOP/s with the count at 1, against 79–88 GFLOP/s once the thread had asked). Entry points that may run
    /// on such a thread (training, scoring, the benchmark) call this first.
    /// </summary>
    public static int FollowIntraOpCount() => get_num_threads();

    /// <summary>
    /// Runs <paramref name="body"/> with libtorch's intra-op thread count set to 1 and restores the count after, for work
    /// made of kernels too small to repay an OpenMP fork and join.
    /// </summary>
    public static void OnOneThread(Action body)
    {
        ArgumentNullException.ThrowIfNull(body);
        OnOneThread(() =>
        {
            body();
            return 0;
        });
    }

    /// <inheritdoc cref="OnOneThread(Action)"/>
    public static T OnOneThread<T>(Func<T> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        var threads = get_num_threads();
        if (threads > 1)
        {
            set_num_threads(1);
        }
        try
        {
            return body();
        }
        finally
        {
            if (threads > 1)
            {
                set_num_threads(threads);
            }
        }
    }
}
