using TorchSharp;

namespace AdAuctionSim.Models.Runtime;

/// <summary>What <see cref="TorchRuntime.Initialize"/> set up, for logs and run manifests.</summary>
/// <param name="Device">The device models and tensors should be placed on.</param>
/// <param name="ThreadCount">torch.get_num_threads() after initialization.</param>
/// <param name="Seed">The seed given to torch.manual_seed.</param>
/// <param name="TorchSharpVersion">Version of the TorchSharp managed assembly.</param>
/// <param name="TorchBackend">The $(TorchBackend) this assembly was built with: cpu, cuda-linux or cuda-windows.</param>
/// <param name="CudaAvailable">torch.cuda.is_available().</param>
/// <param name="HostAllocator">What <see cref="HostHeap.KeepFreedMemory"/> set for host tensor memory, in words.</param>
public sealed record TorchRuntimeInfo(
    torch.Device Device,
    int ThreadCount,
    long Seed,
    string TorchSharpVersion,
    string TorchBackend,
    bool CudaAvailable,
    string HostAllocator);
