using AdAuctionSim.Models.Runtime;
using TorchSharp;

namespace AdAuctionSim.Models.Tests;

[Collection(TorchSharpCollection.Name)]
public sealed class TorchRuntimeTests
{
    [Fact]
    public void The_test_host_runs_with_the_large_gen0_budget_of_test_runsettings()
    {
        // tests/test.runsettings: rare collections keep TorchSharp's unpinned temporary Scalars from being finalized mid-call.
        Assert.Equal("0x10000000", Environment.GetEnvironmentVariable("DOTNET_GCgen0size"));
        Assert.Equal("0", Environment.GetEnvironmentVariable("DOTNET_TieredCompilation"));
    }

    [Fact]
    public void Initialize_KeepsFreedHostMemory_OnGlibc_AndSaysSo()
    {
        var info = TorchRuntime.Initialize("cpu", threads: 1, seed: 1);

        Assert.Equal(HostHeap.KeepFreedMemory(), info.HostAllocator);
        if (OperatingSystem.IsLinux() && File.Exists("/lib/x86_64-linux-gnu/libc.so.6"))
        {
            // Debian's glibc: both mallopt settings must have been accepted.
            Assert.StartsWith("glibc ", info.HostAllocator, StringComparison.Ordinal);
            Assert.Contains("freed memory kept (mmap threshold 32 MiB", info.HostAllocator, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("auto", TorchDeviceRequest.Auto)]
    [InlineData("cpu", TorchDeviceRequest.Cpu)]
    [InlineData(" CUDA ", TorchDeviceRequest.Cuda)]
    public void ParseDevice_AcceptsTheKnownNames(string value, TorchDeviceRequest expected)
    {
        Assert.Equal(expected, TorchRuntime.ParseDevice(value));
    }

    [Theory]
    [InlineData("gpu")]
    [InlineData("")]
    [InlineData("cuda:0")]
    public void ParseDevice_RejectsAnythingElse_NamingTheAllowedValues(string value)
    {
        var ex = Assert.Throws<ArgumentException>(() => TorchRuntime.ParseDevice(value));

        Assert.Equal("value", ex.ParamName);
        Assert.Contains($"'{value}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("auto, cpu, cuda", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Backend_IsTheOneThisBuildWasMadeWith()
    {
        // The tests are built with the default TorchBackend; a cuda build of them would say so here.
        Assert.Contains(TorchRuntime.Backend, new[] { "cpu", "cuda-linux", "cuda-windows" });
        Assert.Equal("0.107.0", TorchRuntime.TorchSharpVersion);
    }

    [Fact]
    public void Cpu_ResolvesToCpu()
    {
        Assert.Equal(DeviceType.CPU, TorchRuntime.ResolveDevice("cpu").type);
    }

    [Fact]
    public void Auto_ResolvesToCpu_UnlessThisIsACudaBuildOnAGpu()
    {
        var device = TorchRuntime.ResolveDevice("auto");

        if (TorchRuntime.Backend == "cpu")
        {
            Assert.False(torch.cuda.is_available());
            Assert.Equal(DeviceType.CPU, device.type);
        }
        else
        {
            Assert.Equal(torch.cuda.is_available() ? DeviceType.CUDA : DeviceType.CPU, device.type);
        }
    }

    [Fact]
    public void Cuda_WithoutCuda_ThrowsWithTheBuildHint()
    {
        if (TorchRuntime.IsCudaAvailable())
        {
            Assert.Equal(DeviceType.CUDA, TorchRuntime.ResolveDevice("cuda").type);
            return;
        }

        var ex = Assert.Throws<TorchCudaUnavailableException>(() => TorchRuntime.ResolveDevice("cuda"));

        Assert.Equal(TorchRuntime.Backend, ex.TorchBackend);
        Assert.Contains("CUDA was requested", ex.Message, StringComparison.Ordinal);
        Assert.Contains("-p:TorchBackend=cuda-linux", ex.Message, StringComparison.Ordinal);
        if (TorchRuntime.Backend == "cpu")
        {
            Assert.Contains("CPU native package (TorchBackend=cpu)", ex.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Initialize_SetsThreadsAndSeed_AndDescribesTheRuntime()
    {
        var info = TorchRuntime.Initialize("cpu", threads: 1, seed: 42);
        var first = torch.rand(4).data<float>().ToArray();
        TorchRuntime.Initialize("cpu", threads: 1, seed: 42);
        var second = torch.rand(4).data<float>().ToArray();

        Assert.Equal(DeviceType.CPU, info.Device.type);
        Assert.Equal(1, info.ThreadCount);
        Assert.Equal(1, torch.get_num_threads());
        Assert.Equal(42, info.Seed);
        Assert.Equal(TorchRuntime.Backend, info.TorchBackend);
        Assert.Equal("0.107.0", info.TorchSharpVersion);
        Assert.Equal(first, second);
    }

    [Fact]
    public void Initialize_RejectsNegativeThreads()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => TorchRuntime.Initialize("cpu", threads: -1));
    }

    [Fact]
    public void NativeLoadFailureMessage_NamesTheLibraryAndTheGlibcxxFix()
    {
        var message = TorchRuntime.DescribeNativeLoadFailure("libLibTorchSharp.so: version `GLIBCXX_3.4.32' not found");

        Assert.Contains(TorchRuntime.NativeLibraryFileName, message, StringComparison.Ordinal);
        Assert.Contains("version `GLIBCXX_3.4.32' not found", message, StringComparison.Ordinal);
        Assert.Contains("TorchBackend=" + TorchRuntime.Backend, message, StringComparison.Ordinal);
        if (OperatingSystem.IsLinux())
        {
            Assert.Contains("build/TorchSharpGlibcxxFix.targets", message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void LoaderMessage_KeepsOnlyTheLinesThatSayWhyALibraryDidNotLoad()
    {
        const string message = "Unable to load shared library 'LibTorchSharp' or one of its dependencies. In order to help diagnose loading problems, consider using a tool like strace.\n"
            + "/app/runtimes/linux-x64/native/LibTorchSharp.so: cannot open shared object file: No such file or directory\n"
            + "/lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.32' not found (required by /app/runtimes/linux-x64/native/libLibTorchSharp.so)\n"
            + "/app/libLibTorchSharp.so: cannot open shared object file: No such file or directory\n";

        Assert.Equal(
            "/lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.32' not found (required by /app/runtimes/linux-x64/native/libLibTorchSharp.so)",
            TorchRuntime.KeepInformativeLoaderLines(message));
        Assert.Equal("something else entirely", TorchRuntime.KeepInformativeLoaderLines("something else entirely"));
    }
}
