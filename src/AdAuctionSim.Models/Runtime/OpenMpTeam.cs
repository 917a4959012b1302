using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace AdAuctionSim.Models.Runtime;

/// <summary>
/// Runs C# work on the OpenMP thread team that libtorch's own CPU kernels use, through the GNU OpenMP runtime that
/// libtorch loaded (<c>GOMP_parallel</c>), instead of on .NET thread-pool threads.
/// </summary>
/// <remarks>
/// <para>Why: a training step alternates libtorch kernels, which run on the OpenMP team (the calling thread and its
/// workers), with the C# passes of <see cref="HostThreads"/>. With .NET's thread pool for those passes every pass woke
/// thread-pool threads while the OpenMP workers were still spinning for their next region, so on the 2-core development
/// machine four threads took turns on two cores: during an APEM benchmark the two thread-pool threads spent 45% of their
/// time in the kernel. On the team the pass's second share starts on a worker that is already awake. APEM's training
/// samples/s rose by 11–23% in three interleaved runs against the thread-pool build (means of 3–5 runs each).</para>
/// <para>Linux only, and only when a <c>libgomp</c> is mapped into the process (libtorch's Linux CPU builds link one);
/// elsewhere <see cref="TryRun"/> returns false and the caller uses the thread pool. Which thread computes a share does
/// not change what it computes.</para>
/// </remarks>
internal static unsafe class OpenMpTeam
{
    private static readonly delegate* unmanaged<delegate* unmanaged<IntPtr, void>, IntPtr, uint, uint, void> GompParallel;

#pragma warning disable CA1810 // the runtime is found once, from the mappings of the process
    static OpenMpTeam()
#pragma warning restore CA1810
    {
        if (!OperatingSystem.IsLinux() || Find() is not { } path || !NativeLibrary.TryLoad(path, out var library))
        {
            return;
        }
        if (NativeLibrary.TryGetExport(library, "GOMP_parallel", out var parallel))
        {
            GompParallel = (delegate* unmanaged<delegate* unmanaged<IntPtr, void>, IntPtr, uint, uint, void>)parallel;
        }
    }

    /// <summary>Whether a GNU OpenMP runtime was found.</summary>
    public static bool Available => GompParallel != null;

    /// <summary>
    /// Runs <paramref name="body"/>(k) for every k in [0, <paramref name="shares"/>) on an OpenMP team of up to
    /// <paramref name="threads"/> threads, the calling thread among them, and returns when all have finished. The threads
    /// claim shares one at a time from a counter, so each share runs exactly once, and a thread that starts late (its core
    /// busy elsewhere) takes fewer. False, without running anything, when no runtime was found. The first exception thrown
    /// by a share is rethrown here after the team has joined; shares not yet claimed by then are not run.
    /// </summary>
    public static bool TryRun(int shares, int threads, Action<int> body)
    {
        if (GompParallel == null)
        {
            return false;
        }
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(shares);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threads);
        ArgumentNullException.ThrowIfNull(body);
        var job = new Job(shares, body);
        var handle = GCHandle.Alloc(job);
        try
        {
            GompParallel(&Enter, GCHandle.ToIntPtr(handle), (uint)Math.Min(threads, shares), 0);
        }
        finally
        {
            handle.Free();
        }
        if (job.Error is { } error)
        {
            ExceptionDispatchInfo.Capture(error).Throw();
        }
        return true;
    }

    [UnmanagedCallersOnly]
    private static void Enter(IntPtr data)
    {
        var job = (Job)GCHandle.FromIntPtr(data).Target!;
        try
        {
            for (var k = Interlocked.Increment(ref job.Claimed) - 1; k < job.Shares && job.Error is null; k = Interlocked.Increment(ref job.Claimed) - 1)
            {
                job.Body(k);
            }
        }
#pragma warning disable CA1031 // an exception must not cross the native frame; it is rethrown on the calling thread
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Interlocked.CompareExchange(ref job.Error, ex, null);
        }
    }

    /// <summary>The path of the first mapped file named libgomp*.so*, from /proc/self/maps.</summary>
    private static string? Find()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                var slash = line.IndexOf('/', StringComparison.Ordinal);
                if (slash < 0)
                {
                    continue;
                }
                var path = line[slash..];
                var name = Path.GetFileName(path);
                if (name.StartsWith("libgomp", StringComparison.Ordinal) && name.Contains(".so", StringComparison.Ordinal))
                {
                    return path;
                }
            }
        }
        catch (IOException)
        {
        }
        return null;
    }

    private sealed class Job(int shares, Action<int> body)
    {
        public readonly int Shares = shares;
        public readonly Action<int> Body = body;
        public int Claimed;
        public Exception? Error;
    }
}
