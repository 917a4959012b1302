using AdAuctionSim.Models.Runtime;

namespace AdAuctionSim.Models.Tests;

/// <summary>The one thread that a command's libtorch work runs on.</summary>
public sealed class TorchThreadTests
{
    [Fact]
    public async Task Work_runs_on_one_dedicated_thread_whoever_hands_it_in()
    {
        var caller = Environment.CurrentManagedThreadId;
        var first = await TorchThread.RunAsync(() => Environment.CurrentManagedThreadId);
        var fromPool = await Task.Run(() => TorchThread.Invoke(() => Environment.CurrentManagedThreadId));
        var onIt = await TorchThread.RunAsync(() => TorchThread.IsCurrent);
        Assert.NotEqual(caller, first);
        Assert.Equal(first, fromPool);
        Assert.True(onIt);
        Assert.False(TorchThread.IsCurrent);
    }

    [Fact]
    public async Task Work_handed_in_from_the_torch_thread_runs_inline_without_waiting_for_itself()
    {
        var (outer, inner) = await TorchThread.RunAsync(() =>
            (Environment.CurrentManagedThreadId, TorchThread.Invoke(() => Environment.CurrentManagedThreadId)));
        Assert.Equal(outer, inner);
    }

    [Fact]
    public async Task An_exception_reaches_the_caller_with_its_type_and_the_thread_goes_on()
    {
        var error = await Assert.ThrowsAsync<InvalidDataException>(() => TorchThread.RunAsync(() => throw new InvalidDataException("bad file")));
        Assert.Equal("bad file", error.Message);
        Assert.Throws<InvalidDataException>(() => TorchThread.Invoke<int>(() => throw new InvalidDataException("again")));
        Assert.Equal(42, await TorchThread.RunAsync(() => 42));
    }

    [Fact]
    public async Task Work_cancelled_before_it_starts_does_not_run()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        var ran = false;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => TorchThread.RunAsync(() => ran = true, cancelled.Token));
        Assert.False(ran);
    }
}
