using System.Reflection;
using System.Runtime.InteropServices;
using TorchSharp;

namespace AdAuctionSim.Models.Runtime;

/// <summary>
/// Process-wide TorchSharp setup: loading the native library with a usable error, picking the device,
/// and fixing thread count and seed. TorchSharp's state is global, so call <see cref="Initialize"/> once
/// at start-up rather than per model.
/// </summary>
public static class TorchRuntime
{
    private const string ManagedLibraryName = "LibTorchSharp";

    /// <summary>The values <see cref="ParseDevice"/> accepts.</summary>
    public static IReadOnlyList<string> DeviceNames { get; } = ["auto", "cpu", "cuda"];

    /// <summary>The $(TorchBackend) this assembly was built with (cpu, cuda-linux or cuda-windows).</summary>
    public static string Backend { get; } =
        typeof(TorchRuntime).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "TorchBackend")?.Value
        ?? "unknown";

    /// <summary>Version of the TorchSharp managed assembly, e.g. 0.107.0.</summary>
    public static string TorchSharpVersion { get; } = ReadTorchSharpVersion();

    /// <summary>File name of the native library TorchSharp loads on this OS.</summary>
    public static string NativeLibraryFileName { get; } =
        OperatingSystem.IsWindows() ? "LibTorchSharp.dll"
        : OperatingSystem.IsMacOS() ? "libLibTorchSharp.dylib"
        : "libLibTorchSharp.so";

    /// <summary>Parses auto, cpu or cuda (case-insensitive, surrounding blanks ignored).</summary>
    /// <exception cref="ArgumentException">Any other value; the message lists the allowed ones.</exception>
    public static TorchDeviceRequest ParseDevice(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return value.Trim().ToLowerInvariant() switch
        {
            "auto" => TorchDeviceRequest.Auto,
            "cpu" => TorchDeviceRequest.Cpu,
            "cuda" => TorchDeviceRequest.Cuda,
            _ => throw new ArgumentException(
                $"Unknown device '{value}'. Allowed values: {string.Join(", ", DeviceNames)}.", nameof(value)),
        };
    }

    /// <summary>Loads the native library now, so a broken install fails here with an actionable message.</summary>
    /// <exception cref="TorchNativeLibraryException">The native library could not be loaded.</exception>
    public static void EnsureNativeLoaded()
    {
        try
        {
            torch.InitializeDeviceType(DeviceType.CPU);
        }
        catch (Exception ex) when (ex is TypeInitializationException or NotSupportedException or DllNotFoundException or BadImageFormatException)
        {
            throw new TorchNativeLibraryException(DescribeNativeLoadFailure(ProbeLoaderError()), ex);
        }
    }

    /// <summary>torch.cuda.is_available(), after making sure the native library loads.</summary>
    public static bool IsCudaAvailable()
    {
        EnsureNativeLoaded();
        return torch.cuda.is_available();
    }

    /// <summary>Parses and resolves a device name; see <see cref="ResolveDevice(TorchDeviceRequest)"/>.</summary>
    public static torch.Device ResolveDevice(string value) => ResolveDevice(ParseDevice(value));

    /// <summary>Auto picks CUDA when available, else CPU. Cuda never falls back.</summary>
    /// <exception cref="TorchCudaUnavailableException">Cuda was requested and is not available.</exception>
    public static torch.Device ResolveDevice(TorchDeviceRequest request)
    {
        switch (request)
        {
            case TorchDeviceRequest.Cpu:
                EnsureNativeLoaded();
                return torch.CPU;
            case TorchDeviceRequest.Auto:
                return IsCudaAvailable() ? torch.CUDA : torch.CPU;
            case TorchDeviceRequest.Cuda:
                if (!IsCudaAvailable())
                {
                    throw new TorchCudaUnavailableException(Backend);
                }

                return torch.CUDA;
            default:
                throw new ArgumentOutOfRangeException(nameof(request), request, "Unknown device request.");
        }
    }

    /// <summary>
    /// Tunes the host heap for tensor buffers (<see cref="HostHeap"/>), loads the natives, resolves the device, sets the
    /// intra-op thread count and seeds every generator.
    /// </summary>
    /// <param name="device">auto, cpu or cuda.</param>
    /// <param name="threads">Intra-op threads; 0 keeps libtorch's default (one per physical core).</param>
    /// <param name="seed">Seed for torch.manual_seed (and the CUDA generators when on a GPU).</param>
    public static TorchRuntimeInfo Initialize(string device = "auto", int threads = 0, long seed = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(threads);
        var heap = HostHeap.KeepFreedMemory();
        var resolved = ResolveDevice(device);
        if (threads > 0)
        {
            torch.set_num_threads(threads);
        }

        torch.manual_seed(seed);
        var cudaAvailable = torch.cuda.is_available();
        if (cudaAvailable)
        {
            torch.cuda.manual_seed_all(seed);
        }

        return new TorchRuntimeInfo(resolved, torch.get_num_threads(), seed, TorchSharpVersion, Backend, cudaAvailable, heap);
    }

    internal static string DescribeNativeLoadFailure(string? loaderError)
    {
        var message = $"Could not load the TorchSharp native library {NativeLibraryFileName} (TorchSharp {TorchSharpVersion}, TorchBackend={Backend}).";
        if (!string.IsNullOrWhiteSpace(loaderError))
        {
            message += " The loader said: " + loaderError.Trim().TrimEnd('.') + ".";
        }

        if (OperatingSystem.IsLinux())
        {
            message += " If it reports \"version `GLIBCXX_3.4.32' not found\", the system libstdc++ is older than the one"
                + " LibTorchSharp was built against and this output copy was not patched: rebuild the project that produced"
                + " this output (it must import build/TorchSharpGlibcxxFix.targets, which marks that requirement weak in"
                + " the output copy), or install a libstdc++6 from GCC 13 or newer.";
        }

        message += " Also check that the native package for TorchBackend=" + Backend + " was restored for this OS and architecture.";
        return message;
    }

    // TorchSharp's own exception blames a missing package reference whatever went wrong; the loader's
    // dlerror text (e.g. the missing GLIBCXX version) is what actually tells the user what to fix.
    private static string? ProbeLoaderError()
    {
        try
        {
            var handle = NativeLibrary.Load(ManagedLibraryName, typeof(torch).Assembly, null);
            NativeLibrary.Free(handle);
            return null;
        }
        catch (DllNotFoundException ex)
        {
            return KeepInformativeLoaderLines(ex.Message);
        }
        catch (BadImageFormatException ex)
        {
            return ex.Message;
        }
    }

    // The runtime lists every path it probed; only the lines that are not "no such file" say why the
    // library that does exist would not load.
    internal static string KeepInformativeLoaderLines(string loaderMessage)
    {
        var lines = loaderMessage.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var informative = lines
            .Where(l => !l.Contains("No such file or directory", StringComparison.Ordinal)
                && !l.StartsWith("Unable to load shared library", StringComparison.Ordinal))
            .ToArray();
        return informative.Length > 0 ? string.Join(" ", informative) : loaderMessage;
    }

    private static string ReadTorchSharpVersion()
    {
        var assembly = typeof(torch).Assembly;
        var informational = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        if (!string.IsNullOrEmpty(informational))
        {
            // Strip SourceLink's "+commit" suffix.
            var plus = informational.IndexOf('+', StringComparison.Ordinal);
            return plus >= 0 ? informational[..plus] : informational;
        }

        return assembly.GetName().Version?.ToString() ?? "unknown";
    }
}
