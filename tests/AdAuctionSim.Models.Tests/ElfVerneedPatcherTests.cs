using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using AdAuctionSim.Build;
using Xunit.Abstractions;

namespace AdAuctionSim.Models.Tests;

public sealed partial class ElfVerneedPatcherTests : IDisposable
{
    private const string Version = ElfVerneedPatcher.LibTorchSharpGlibcxxVersion;

    private readonly ITestOutputHelper _output;
    private readonly string _tempDir;

    public ElfVerneedPatcherTests(ITestOutputHelper output)
    {
        _output = output;
        _tempDir = Path.Combine(Path.GetTempPath(), "adsim-elf-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_tempDir);
    }

    public void Dispose() => Directory.Delete(_tempDir, recursive: true);

    [LinuxX64Fact]
    public void OutputCopy_IsWeakExactlyWhenTheSystemLibStdCxxLacksTheTag()
    {
        var output = File.ReadAllBytes(NativeLibraryPaths.OutputCopy);
        var package = File.ReadAllBytes(NativeLibraryPaths.PackageCopy);
        var lacksTag = NativeLibraryPaths.SystemLibStdCxxLacksTag(out var why);
        _output.WriteLine(why);

        if (lacksTag)
        {
            var requirement = Assert.Single(ElfVerneedPatcher.FindRequirements(output, Version));
            Assert.Equal("libstdc++.so.6", requirement.Library);
            Assert.True(requirement.IsWeak, $"{why}, so the build should have marked the requirement weak in {NativeLibraryPaths.OutputCopy}.");

            // Nothing but that one flag may differ from the package file.
            Assert.Equal(package.Length, output.Length);
            var differing = Enumerable.Range(0, package.Length).Where(i => package[i] != output[i]).ToArray();
            Assert.Equal([requirement.FlagsOffset], differing.Select(i => (long)i).ToArray());
        }
        else
        {
            Assert.Equal(package, output);
        }
    }

    [LinuxX64Fact]
    public void PackageCopy_InTheNuGetCache_IsNeverPatched()
    {
        var package = File.ReadAllBytes(NativeLibraryPaths.PackageCopy);

        var requirement = Assert.Single(ElfVerneedPatcher.FindRequirements(package, Version));
        Assert.Equal("libstdc++.so.6", requirement.Library);
        Assert.False(requirement.IsWeak, $"{NativeLibraryPaths.PackageCopy} was modified: its {Version} requirement is weak.");
    }

    [LinuxX64Fact]
    public void ReadAllRequirements_MatchesWhatReadelfShowsForTheRealLibrary()
    {
        var all = ElfVerneedPatcher.ReadAllRequirements(File.ReadAllBytes(NativeLibraryPaths.PackageCopy));

        // readelf -V: 5 Verneed entries (ld-linux, libm, libgcc_s, libc, libstdc++) with 1+1+1+5+20 Vernaux.
        Assert.Equal(28, all.Count);
        Assert.Equal(20, all.Count(r => r.Library == "libstdc++.so.6"));
        Assert.Contains(all, r => r.Library == "libc.so.6" && r.Version == "GLIBC_2.34");
        Assert.All(all, r => Assert.False(r.IsWeak));
    }

    [LinuxX64Fact]
    public void MarkWeakInFile_PatchesOnlyTheFlag_AndIsIdempotent()
    {
        var original = File.ReadAllBytes(NativeLibraryPaths.PackageCopy);
        var copy = Path.Combine(_tempDir, "libLibTorchSharp.so");
        File.WriteAllBytes(copy, original);

        var first = ElfVerneedPatcher.MarkWeakInFile(copy, Version);
        _output.WriteLine(first.Describe(Version));
        var afterFirst = File.ReadAllBytes(copy);
        var second = ElfVerneedPatcher.MarkWeakInFile(copy, Version);
        var afterSecond = File.ReadAllBytes(copy);

        Assert.Equal(VerneedPatchOutcome.Patched, first.Outcome);
        Assert.Equal(VerneedPatchOutcome.AlreadyWeak, second.Outcome);
        Assert.Equal(afterFirst, afterSecond);
        var before = Assert.Single(first.Before);
        Assert.Equal(0, before.Flags);
        Assert.Contains("vna_flags 0x0 -> 0x2", first.Describe(Version), StringComparison.Ordinal);

        var after = Assert.Single(ElfVerneedPatcher.FindRequirements(afterSecond, Version));
        Assert.Equal(ElfVerneedPatcher.VerFlagWeak, after.Flags);
        var differing = Enumerable.Range(0, original.Length).Where(i => original[i] != afterSecond[i]).ToArray();
        Assert.Equal([before.FlagsOffset], differing.Select(i => (long)i).ToArray());

        // Every other requirement keeps its flags.
        var others = ElfVerneedPatcher.ReadAllRequirements(afterSecond).Where(r => r.Version != Version);
        Assert.All(others, r => Assert.False(r.IsWeak));
        Assert.Empty(Directory.GetFiles(_tempDir, "*.tmp"));
    }

    [LinuxX64Fact]
    public void MarkWeakInFile_ThroughAHardLink_LeavesTheOtherLinkUntouched()
    {
        var original = File.ReadAllBytes(NativeLibraryPaths.PackageCopy);
        var cacheStandIn = Path.Combine(_tempDir, "cache.so");
        var outputLink = Path.Combine(_tempDir, "output.so");
        File.WriteAllBytes(cacheStandIn, original);
        Assert.True(Link(cacheStandIn, outputLink) == 0, $"link(2) failed with errno {Marshal.GetLastPInvokeError()}.");

        var result = ElfVerneedPatcher.MarkWeakInFile(outputLink, Version);

        Assert.Equal(VerneedPatchOutcome.Patched, result.Outcome);
        Assert.Equal(original, File.ReadAllBytes(cacheStandIn));
        Assert.True(Assert.Single(ElfVerneedPatcher.FindRequirements(File.ReadAllBytes(outputLink), Version)).IsWeak);
    }

    [LinuxX64Fact]
    [SupportedOSPlatform("linux")]
    public void MarkWeakInFile_OnAReadOnlyFile_PatchesItAndKeepsItsMode()
    {
        var copy = Path.Combine(_tempDir, "readonly.so");
        File.WriteAllBytes(copy, File.ReadAllBytes(NativeLibraryPaths.PackageCopy));
        const UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        File.SetUnixFileMode(copy, mode);

        var result = ElfVerneedPatcher.MarkWeakInFile(copy, Version);

        Assert.Equal(VerneedPatchOutcome.Patched, result.Outcome);
        Assert.Equal(mode, File.GetUnixFileMode(copy));
        Assert.True(Assert.Single(ElfVerneedPatcher.FindRequirements(File.ReadAllBytes(copy), Version)).IsWeak);
    }

    [LinuxX64Fact]
    public void MarkWeak_OnAVersionTheFileDoesNotNeed_ChangesNothing()
    {
        var bytes = File.ReadAllBytes(NativeLibraryPaths.PackageCopy);
        var pristine = (byte[])bytes.Clone();

        var result = ElfVerneedPatcher.MarkWeak(bytes, "GLIBCXX_9.9.99");

        Assert.Equal(VerneedPatchOutcome.NotRequired, result.Outcome);
        Assert.Empty(result.Before);
        Assert.Equal(pristine, bytes);
    }

    [Fact]
    public void MarkWeakInFile_RejectsANonElfFile_AndLeavesItAlone()
    {
        var path = Path.Combine(_tempDir, "not-elf.so");
        File.WriteAllText(path, "this is a text file pretending to be a shared library, long enough to hold an ELF header");
        var before = File.ReadAllBytes(path);

        var ex = Assert.Throws<InvalidDataException>(() => ElfVerneedPatcher.MarkWeakInFile(path, Version));

        Assert.Contains("Not an ELF file", ex.Message, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllBytes(path));
    }

    [Fact]
    public void ReadAllRequirements_RejectsTruncatedAndForeignElfFiles()
    {
        byte[] Header(byte elfClass, byte data)
        {
            var header = new byte[64];
            header[0] = 0x7f;
            header[1] = (byte)'E';
            header[2] = (byte)'L';
            header[3] = (byte)'F';
            header[4] = elfClass;
            header[5] = data;
            return header;
        }

        Assert.Contains("ELF magic", Assert.Throws<InvalidDataException>(() => ElfVerneedPatcher.ReadAllRequirements([0x7f, (byte)'E'])).Message, StringComparison.Ordinal);
        Assert.Contains("ELFCLASS64", Assert.Throws<InvalidDataException>(() => ElfVerneedPatcher.ReadAllRequirements(Header(1, 1))).Message, StringComparison.Ordinal);
        Assert.Contains("little-endian", Assert.Throws<InvalidDataException>(() => ElfVerneedPatcher.ReadAllRequirements(Header(2, 2))).Message, StringComparison.Ordinal);
        Assert.Contains("no section header table", Assert.Throws<InvalidDataException>(() => ElfVerneedPatcher.ReadAllRequirements(Header(2, 1))).Message, StringComparison.Ordinal);

        var pointsPastEnd = Header(2, 1);
        pointsPastEnd[0x28] = 0xff; // e_shoff
        pointsPastEnd[0x3A] = 64; // e_shentsize
        pointsPastEnd[0x3C] = 3; // e_shnum
        Assert.Contains("outside the file", Assert.Throws<InvalidDataException>(() => ElfVerneedPatcher.ReadAllRequirements(pointsPastEnd)).Message, StringComparison.Ordinal);
    }

    [LibraryImport("libc", EntryPoint = "link", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Link(string existingPath, string newPath);
}
