using System.Reflection;
using AdAuctionSim.Build;
using AdAuctionSim.Models.Runtime;

namespace AdAuctionSim.Models.Tests;

internal static class NativeLibraryPaths
{
    private const string RelativeNativePath = "runtimes/linux-x64/native/libLibTorchSharp.so";

    /// <summary>The copy the build put next to the test assembly (and patched, where needed).</summary>
    public static string OutputCopy => Path.Combine(AppContext.BaseDirectory, RelativeNativePath);

    /// <summary>The file in the NuGet global packages folder that the output copy came from.</summary>
    public static string PackageCopy
    {
        get
        {
            var root = typeof(NativeLibraryPaths).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .Single(a => a.Key == "NuGetPackageRoot").Value;
            Assert.False(string.IsNullOrEmpty(root), "NuGetPackageRoot was not recorded at build time.");
            return Path.Combine(root!, "torchsharp", TorchRuntime.TorchSharpVersion, RelativeNativePath);
        }
    }

    /// <summary>Same decision as the build's TorchSharpGlibcxxFix task: patch only when a system libstdc++ exists and lacks the tag.</summary>
    public static bool SystemLibStdCxxLacksTag(out string description)
    {
        var libstdcxx = ElfVerneedPatcher.FindFirstExisting(ElfVerneedPatcher.SystemLibStdCxxCandidates());
        if (libstdcxx is null)
        {
            description = "no system libstdc++ found";
            return false;
        }

        var has = ElfVerneedPatcher.ContainsVersionString(libstdcxx, ElfVerneedPatcher.LibTorchSharpGlibcxxVersion);
        description = $"{libstdcxx} {(has ? "provides" : "lacks")} {ElfVerneedPatcher.LibTorchSharpGlibcxxVersion}";
        return !has;
    }
}
