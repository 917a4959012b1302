using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Runtime;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Tests;

/// <summary>The C# passes' work sharing: every unit once, on libtorch's OpenMP team where there is one.</summary>
[Collection(TorchSharpCollection.Name)]
public sealed class HostThreadsTests
{
    /// <summary>libtorch's Linux CPU build maps a GNU OpenMP runtime, which the team must find (else the passes silently use the thread pool).</summary>
    [LinuxX64Fact]
    public void The_OpenMP_runtime_libtorch_loaded_is_found()
    {
        using (ones(4).Plus(HeldScalars.One))
        {
        }
        Assert.True(OpenMpTeam.Available);
    }

    /// <summary>Each share runs exactly once, on up to as many distinct threads as asked for.</summary>
    [LinuxX64Fact]
    public void The_team_runs_every_share_exactly_once()
    {
        using (ones(4).Plus(HeldScalars.One))
        {
        }
        foreach (var shares in new[] { 1, 2, 3, 7 })
        {
            var runs = new int[shares];
            var threads = new ConcurrentDictionary<int, bool>();
            Assert.True(OpenMpTeam.TryRun(shares, 2, k =>
            {
                Interlocked.Increment(ref runs[k]);
                threads[Environment.CurrentManagedThreadId] = true;
            }));
            Assert.All(runs, count => Assert.Equal(1, count));
            Assert.InRange(threads.Count, 1, Math.Min(2, shares));
        }
    }

    /// <summary>An exception in a share on any thread comes back to the caller, after the team has joined.</summary>
    [LinuxX64Fact]
    public void An_exception_in_a_share_is_rethrown_on_the_caller()
    {
        using (ones(4).Plus(HeldScalars.One))
        {
        }
        var finished = 0;
        var error = Assert.Throws<InvalidOperationException>(() => OpenMpTeam.TryRun(4, 2, k =>
        {
            if (k == 3)
            {
                throw new InvalidOperationException("share 3");
            }
            Interlocked.Increment(ref finished);
        }));
        Assert.Equal("share 3", error.Message);
        Assert.Equal(3, finished);
    }

    /// <summary>Split covers [0, units) in contiguous shares that neither overlap nor leave a gap, for any thread count.</summary>
    [Theory]
    [InlineData(1, 100, int.MaxValue)]
    [InlineData(2, 100, int.MaxValue)]
    [InlineData(3, 100, 2)]
    [InlineData(3, 2, int.MaxValue)]
    [InlineData(2, 1, int.MaxValue)]
    public void Split_covers_every_unit_once(int threads, int units, int maxThreads)
    {
        var before = get_num_threads();
        try
        {
            set_num_threads(threads);
            var seen = new int[units];
            var shares = new ConcurrentBag<(int First, int End)>();
            HostThreads.Split(units, maxThreads, (first, end) =>
            {
                shares.Add((first, end));
                for (var i = first; i < end; i++)
                {
                    Interlocked.Increment(ref seen[i]);
                }
            });
            Assert.All(seen, count => Assert.Equal(1, count));
            var used = Math.Clamp(threads, 1, Math.Min(units, maxThreads));
            Assert.Equal(used == 1 ? 1 : Math.Min(units, used * HostThreads.SharesPerThread), shares.Count);
        }
        finally
        {
            set_num_threads(before);
        }
    }

    /// <summary>
    /// A fresh thread's MKL follows libtorch's thread count once it has called FollowIntraOpCount; before, it ran on every
    /// core (on a machine with more than one, which the first assertion checks, so that the test could fail).
    /// </summary>
    [LinuxX64Fact]
    public void A_fresh_thread_follows_the_intra_op_count_after_asking()
    {
        var before = get_num_threads();
        var library = NativeLibrary.Load(Path.Combine(AppContext.BaseDirectory, "runtimes/linux-x64/native/libtorch_cpu.so"));
        var mklMaxThreads = Marshal.GetDelegateForFunctionPointer<MaxThreads>(NativeLibrary.GetExport(library, "mkl_get_max_threads"));
        try
        {
            set_num_threads(1);
            int fresh = 0, followed = 0;
            var thread = new Thread(() =>
            {
                fresh = mklMaxThreads();
                HostThreads.FollowIntraOpCount();
                followed = mklMaxThreads();
            });
            thread.Start();
            thread.Join();
            if (Environment.ProcessorCount > 1)
            {
                Assert.True(fresh > 1, $"a fresh thread's MKL already had {fresh} thread(s); nothing to check on this machine");
            }
            Assert.Equal(1, followed);
        }
        finally
        {
            set_num_threads(before);
        }
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int MaxThreads();
}
