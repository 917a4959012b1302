using AdAuctionSim.Models.Runtime;

namespace AdAuctionSim.Cli.Commands;

/// <summary>
/// Starting TorchSharp for a command, on <see cref="TorchThread"/> (where the command's libtorch work then runs): a CUDA
/// request without CUDA is bad input (exit 2) naming where it came from.
/// </summary>
internal static class CliTorchRuntime
{
    /// <summary><see cref="TorchRuntime.Initialize"/> on the torch thread, with <paramref name="source"/> (an option or a scenario field) in the error.</summary>
    public static Task<TorchRuntimeInfo> InitializeAsync(string device, int threads, long seed, string source, CancellationToken cancellation) =>
        TorchThread.RunAsync(() =>
        {
            try
            {
                return TorchRuntime.Initialize(device, threads, seed);
            }
            catch (TorchCudaUnavailableException e)
            {
                throw new CliInputException($"{source}: {e.Message}");
            }
        }, cancellation);
}
