namespace AdAuctionSim.Models.Runtime;

/// <summary>CUDA was asked for explicitly and this build or machine cannot provide it.</summary>
public sealed class TorchCudaUnavailableException : InvalidOperationException
{
    public TorchCudaUnavailableException(string torchBackend)
        : base(BuildMessage(torchBackend))
    {
        TorchBackend = torchBackend;
    }

    /// <summary>The $(TorchBackend) the running build was made with.</summary>
    public string TorchBackend { get; }

    private static string BuildMessage(string torchBackend)
    {
        var why = torchBackend == "cpu"
            ? "this build uses the CPU native package (TorchBackend=cpu), which has no CUDA support."
            : $"this build uses TorchBackend={torchBackend}, but no usable NVIDIA GPU or driver is present.";
        return "CUDA was requested (device 'cuda') but is not available: " + why
            + " To use a GPU, build on a machine with an NVIDIA GPU and driver with -p:TorchBackend=cuda-linux"
            + " (or -p:TorchBackend=cuda-windows on Windows); otherwise ask for device 'auto' or 'cpu'.";
    }
}

/// <summary>The TorchSharp native library (LibTorchSharp with libtorch behind it) could not be loaded.</summary>
public sealed class TorchNativeLibraryException : InvalidOperationException
{
    public TorchNativeLibraryException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
