using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Runtime;

/// <summary>The address of a host tensor's first element, for the few passes that run as C# over tensor memory.</summary>
internal static class HostMemory
{
    /// <summary>Whether <paramref name="t"/> is float32 in host memory (a C# pass reads it after <c>contiguous()</c>).</summary>
    public static bool IsHostFloat(Tensor t) => t.device_type == TorchSharp.DeviceType.CPU && t.dtype == ScalarType.Float32;

    /// <summary>The data pointer of a contiguous host tensor (the caller checks device, type and layout).</summary>
    public static IntPtr Data(Tensor t)
    {
        var pointer = THSTensor_data(t.Handle);
        if (pointer == IntPtr.Zero && t.numel() > 0)
        {
            throw new InvalidOperationException("libtorch returned no data pointer for a host tensor");
        }
        return pointer;
    }

    /// <summary>The floats of a contiguous host float32 tensor, or null for none (the caller checks device, type and layout).</summary>
    public static unsafe float* Floats(Tensor? t) => t is null ? null : (float*)Data(t);

    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSTensor_data(IntPtr tensor);
}
