namespace AdAuctionSim.Models.Runtime;

/// <summary>The device a caller asks for; <see cref="TorchRuntime.ResolveDevice(TorchDeviceRequest)"/> turns it into a real one.</summary>
public enum TorchDeviceRequest
{
    /// <summary>CUDA when a usable GPU is present, otherwise CPU.</summary>
    Auto,

    Cpu,

    /// <summary>CUDA or an error: never silently falls back to CPU.</summary>
    Cuda,
}
