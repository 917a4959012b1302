using System.Collections.Concurrent;

namespace AdAuctionSim.Models.Runtime;

/// <summary>
/// One dedicated thread for a process's libtorch work: commands hand their loading, training, scoring and benchmarking
/// to it instead of to thread-pool threads.
/// </summary>
/// <remarks>
/// <para>Why: GNU OpenMP keeps a separate team of worker threads for every thread that starts a parallel region, and once
/// the process holds more OpenMP threads than there are cores it lets idle workers spin only about 100 pauses before
/// they sleep (its "throttled" spin count). Work spread over several thread-pool threads (loading on one, the matmul
/// rate on another, training on a third) left three idle teams on the 2-core development machine, so the training
/// team's worker slept between kernels and every parallel kernel paid a futex wake-up: 14.6% of STEM's benchmark
/// samples were in the kernel's wake-up path. With all libtorch work on this one thread there is one team.</para>
/// <para>libtorch's per-thread settings (the intra-op thread count that MKL follows, <see cref="HostThreads"/>) also
/// stay on one thread. Work handed in from this thread itself runs inline.</para>
/// </remarks>
public static class TorchThread
{
    private static readonly BlockingCollection<Action> Queue = [];
    private static readonly Lazy<Thread> Worker = new(Start, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Whether the calling thread is the torch thread.</summary>
    public static bool IsCurrent => Worker.IsValueCreated && Thread.CurrentThread == Worker.Value;

    /// <summary>Runs <paramref name="work"/> on the torch thread; the task completes with its result or exception.</summary>
    public static Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (IsCurrent)
        {
            return Task.FromResult(work());
        }
        cancellation.ThrowIfCancellationRequested();
        var completion = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = Worker.Value;
        Queue.Add(() =>
        {
            if (cancellation.IsCancellationRequested)
            {
                completion.TrySetCanceled(cancellation);
                return;
            }
            try
            {
                completion.TrySetResult(work());
            }
            catch (OperationCanceledException ex) when (ex.CancellationToken == cancellation && cancellation.IsCancellationRequested)
            {
                completion.TrySetCanceled(cancellation);
            }
#pragma warning disable CA1031 // handed to the caller through the task
            catch (Exception ex)
#pragma warning restore CA1031
            {
                completion.TrySetException(ex);
            }
        }, CancellationToken.None);
        return completion.Task;
    }

    /// <inheritdoc cref="RunAsync{T}(Func{T}, CancellationToken)"/>
    public static Task RunAsync(Action work, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        return RunAsync(() =>
        {
            work();
            return true;
        }, cancellation);
    }

    /// <summary>Runs <paramref name="work"/> on the torch thread and waits for it (inline when called from there).</summary>
    public static T Invoke<T>(Func<T> work, CancellationToken cancellation = default) =>
        RunAsync(work, cancellation).GetAwaiter().GetResult();

    private static Thread Start()
    {
        var thread = new Thread(() =>
        {
            foreach (var item in Queue.GetConsumingEnumerable())
            {
                item();
            }
        })
        {
            IsBackground = true,
            Name = "torch",
        };
        thread.Start();
        return thread;
    }
}
