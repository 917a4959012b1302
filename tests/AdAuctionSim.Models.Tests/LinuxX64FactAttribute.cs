using System.Runtime.InteropServices;

namespace AdAuctionSim.Models.Tests;

/// <summary>
/// A fact about the linux-x64 native asset (the only ELF libLibTorchSharp.so this repo restores), reported
/// as skipped, not passed, on any other platform.
/// </summary>
public sealed class LinuxX64FactAttribute : FactAttribute
{
    public LinuxX64FactAttribute()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.OSArchitecture != Architecture.X64)
        {
            Skip = "Needs the linux-x64 libLibTorchSharp.so; this is " + RuntimeInformation.RuntimeIdentifier + ".";
        }
    }
}
