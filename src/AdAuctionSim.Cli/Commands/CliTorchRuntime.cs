using AdAuctionSim.Models.Runtime;

namespace AdAuctionSim.Cli.Commands;

/// <summary>Starting TorchSharp for a command: a CUDA request without CUDA is bad input (exit 2) naming where it came from.</summary>
internal static class CliTorchRuntime
{
    /// <summary><see cref="TorchRuntime.Initialize"/>, with <paramref name="source"/> (an option or a scenario field) in the error.</summary>
    public static TorchRuntimeInfo Initialize(string device, int threads, long seed, string source)
    {
        try
        {
            return TorchRuntime.Initialize(device, threads, seed);
        }
        catch (TorchCudaUnavailableException e)
        {
            throw new CliInputException($"{source}: {e.Message}");
        }
    }
}
