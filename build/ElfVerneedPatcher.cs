// Compiled twice, so the code the build runs is the code the tests check:
//  - by RoslynCodeTaskFactory in build/TorchSharpGlibcxxFix.targets, against netstandard2.0-era reference
//    assemblies with no implicit usings (so: no spans, records or init accessors here), together with the
//    MSBuild task at the bottom;
//  - by tests/AdAuctionSim.Models.Tests, which defines ELF_VERNEED_PATCHER_NO_TASK because it has no
//    Microsoft.Build reference and already has the System usings implicitly.
#nullable enable
#if !ELF_VERNEED_PATCHER_NO_TASK
using System;
using System.Collections.Generic;
using System.IO;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
#endif
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace AdAuctionSim.Build;

/// <summary>One Elf64_Vernaux entry of .gnu.version_r: a version the object needs from a shared library.</summary>
internal sealed class VerneedRequirement
{
    public VerneedRequirement(string library, string version, long flagsOffset, ushort flags)
    {
        Library = library;
        Version = version;
        FlagsOffset = flagsOffset;
        Flags = flags;
    }

    /// <summary>The vn_file of the enclosing Elf64_Verneed, e.g. libstdc++.so.6.</summary>
    public string Library { get; }

    public string Version { get; }

    /// <summary>File offset of the entry's vna_flags field.</summary>
    public long FlagsOffset { get; }

    public ushort Flags { get; }

    public bool IsWeak => (Flags & ElfVerneedPatcher.VerFlagWeak) != 0;
}

internal enum VerneedPatchOutcome
{
    /// <summary>The file has no requirement on that version; nothing was written.</summary>
    NotRequired,

    /// <summary>Every matching requirement already had VER_FLG_WEAK; nothing was written.</summary>
    AlreadyWeak,

    /// <summary>VER_FLG_WEAK was set on at least one matching requirement.</summary>
    Patched,
}

internal sealed class VerneedPatchResult
{
    public VerneedPatchResult(VerneedPatchOutcome outcome, IReadOnlyList<VerneedRequirement> before)
    {
        Outcome = outcome;
        Before = before;
    }

    public VerneedPatchOutcome Outcome { get; }

    /// <summary>The matching requirements as they were before patching.</summary>
    public IReadOnlyList<VerneedRequirement> Before { get; }

    public string Describe(string version)
    {
        if (Outcome == VerneedPatchOutcome.NotRequired)
        {
            return "no requirement on " + version;
        }

        var parts = new List<string>();
        foreach (var r in Before)
        {
            var newFlags = (ushort)(r.Flags | ElfVerneedPatcher.VerFlagWeak);
            parts.Add(string.Format(
                CultureInfo.InvariantCulture,
                "{0}@{1}: vna_flags 0x{2:x} -> 0x{3:x} at file offset 0x{4:x}",
                r.Version,
                r.Library,
                r.Flags,
                newFlags,
                r.FlagsOffset));
        }

        var what = Outcome == VerneedPatchOutcome.Patched ? "marked weak" : "already weak";
        return what + " (" + string.Join("; ", parts) + ")";
    }
}

/// <summary>
/// Marks a symbol-version requirement of an ELF64 little-endian shared object as weak (VER_FLG_WEAK), so the
/// dynamic loader no longer refuses to load it when the providing library lacks that version. That is only
/// sound when no symbol actually bound to the version is used; for LibTorchSharp's GLIBCXX_3.4.32 the one
/// such symbol (std::ios_base_library_init) has no relocation, so the tag is only a marker.
/// </summary>
internal static class ElfVerneedPatcher
{
    public const ushort VerFlagWeak = 0x2;
    public const string LibTorchSharpGlibcxxVersion = "GLIBCXX_3.4.32";

    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const int Elf64HeaderSize = 64;
    private const int Elf64SectionHeaderSize = 64;
    private const int VerneedSize = 16;
    private const int VernauxSize = 16;

    /// <summary>Where Debian/Ubuntu/Fedora-style systems keep the libstdc++ the loader picks up, for this machine's architecture.</summary>
    public static IReadOnlyList<string> SystemLibStdCxxCandidates()
    {
        if (RuntimeInformation.OSArchitecture == Architecture.Arm64)
        {
            return new[]
            {
                "/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
                "/lib/aarch64-linux-gnu/libstdc++.so.6",
                "/usr/lib64/libstdc++.so.6",
            };
        }

        return new[]
        {
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/lib64/libstdc++.so.6",
            "/lib/x86_64-linux-gnu/libstdc++.so.6",
        };
    }

    /// <summary>The first candidate that exists, or null.</summary>
    public static string? FindFirstExisting(IEnumerable<string> candidates)
    {
        foreach (var candidate in candidates)
        {
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>
    /// Whether the library's bytes contain the version name as a NUL-terminated string, which is how a
    /// libstdc++ that defines the version stores it in its dynamic string table.
    /// </summary>
    public static bool ContainsVersionString(string libraryPath, string version)
    {
        var haystack = File.ReadAllBytes(libraryPath);
        var needle = Encoding.ASCII.GetBytes(version + "\0");
        for (var i = 0; i <= haystack.Length - needle.Length; i++)
        {
            var j = 0;
            while (j < needle.Length && haystack[i + j] == needle[j])
            {
                j++;
            }

            if (j == needle.Length)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Every Elf64_Vernaux entry named <paramref name="version"/>, in file order.</summary>
    /// <exception cref="InvalidDataException">The data is not a well-formed ELF64 little-endian file.</exception>
    public static IReadOnlyList<VerneedRequirement> FindRequirements(byte[] elf, string version)
    {
        var found = new List<VerneedRequirement>();
        foreach (var requirement in ReadAllRequirements(elf))
        {
            if (string.Equals(requirement.Version, version, StringComparison.Ordinal))
            {
                found.Add(requirement);
            }
        }

        return found;
    }

    /// <summary>Every Elf64_Vernaux entry of every SHT_GNU_verneed section.</summary>
    /// <exception cref="InvalidDataException">The data is not a well-formed ELF64 little-endian file.</exception>
    public static IReadOnlyList<VerneedRequirement> ReadAllRequirements(byte[] elf)
    {
        if (elf.Length < Elf64HeaderSize || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
        {
            throw new InvalidDataException("Not an ELF file: the ELF magic number (0x7f 'E' 'L' 'F') is missing.");
        }

        if (elf[4] != 2)
        {
            throw new InvalidDataException("Unsupported ELF file: only ELFCLASS64 is handled, EI_CLASS is " + elf[4].ToString(CultureInfo.InvariantCulture) + ".");
        }

        if (elf[5] != 1)
        {
            throw new InvalidDataException("Unsupported ELF file: only little-endian (ELFDATA2LSB) is handled, EI_DATA is " + elf[5].ToString(CultureInfo.InvariantCulture) + ".");
        }

        var shoff = ReadOffset(elf, 0x28, "e_shoff");
        var shentsize = ReadU16(elf, 0x3A);
        long shnum = ReadU16(elf, 0x3C);
        if (shoff == 0)
        {
            throw new InvalidDataException("ELF file has no section header table (e_shoff is 0).");
        }

        if (shentsize < Elf64SectionHeaderSize)
        {
            throw new InvalidDataException("ELF file has e_shentsize " + shentsize.ToString(CultureInfo.InvariantCulture) + ", smaller than an Elf64_Shdr.");
        }

        if (shnum == 0)
        {
            // Extended numbering: with 0xff00 or more sections the real count lives in section 0's sh_size.
            CheckRange(elf, shoff, Elf64SectionHeaderSize, "section header 0");
            shnum = ReadOffset(elf, shoff + 32, "sh_size of section 0");
        }

        CheckRange(elf, shoff, shnum * shentsize, "section header table");

        var result = new List<VerneedRequirement>();
        for (long i = 0; i < shnum; i++)
        {
            var sh = shoff + (i * shentsize);
            if (ReadU32(elf, sh + 4) != ShtGnuVerneed)
            {
                continue;
            }

            var secOffset = ReadOffset(elf, sh + 24, "sh_offset");
            var secSize = ReadOffset(elf, sh + 32, "sh_size");
            var link = ReadU32(elf, sh + 40);
            var entryCount = ReadU32(elf, sh + 44);
            CheckRange(elf, secOffset, secSize, "SHT_GNU_verneed section");
            if (link >= shnum)
            {
                throw new InvalidDataException("SHT_GNU_verneed section links to string table " + link.ToString(CultureInfo.InvariantCulture) + ", past the section count.");
            }

            var strSh = shoff + (link * shentsize);
            var strOffset = ReadOffset(elf, strSh + 24, "string table sh_offset");
            var strSize = ReadOffset(elf, strSh + 32, "string table sh_size");
            CheckRange(elf, strOffset, strSize, "string table");

            var vn = secOffset;
            for (uint n = 0; n < entryCount; n++)
            {
                CheckWithin(vn, VerneedSize, secOffset, secSize, "Elf64_Verneed");
                var vnVersion = ReadU16(elf, vn);
                if (vnVersion != 1)
                {
                    throw new InvalidDataException("Unsupported Elf64_Verneed vn_version " + vnVersion.ToString(CultureInfo.InvariantCulture) + " at offset 0x" + vn.ToString("x", CultureInfo.InvariantCulture) + ".");
                }

                var vnCnt = ReadU16(elf, vn + 2);
                var library = ReadString(elf, strOffset, strSize, ReadU32(elf, vn + 4));
                var aux = vn + ReadU32(elf, vn + 8);
                for (var a = 0; a < vnCnt; a++)
                {
                    CheckWithin(aux, VernauxSize, secOffset, secSize, "Elf64_Vernaux");
                    var flags = ReadU16(elf, aux + 4);
                    var name = ReadString(elf, strOffset, strSize, ReadU32(elf, aux + 8));
                    result.Add(new VerneedRequirement(library, name, aux + 4, flags));
                    var vnaNext = ReadU32(elf, aux + 12);
                    if (vnaNext == 0)
                    {
                        break;
                    }

                    aux += vnaNext;
                }

                var vnNext = ReadU32(elf, vn + 12);
                if (vnNext == 0)
                {
                    break;
                }

                vn += vnNext;
            }
        }

        return result;
    }

    /// <summary>Sets VER_FLG_WEAK on every requirement named <paramref name="version"/>, in memory. Idempotent.</summary>
    /// <exception cref="InvalidDataException">The data is not a well-formed ELF64 little-endian file.</exception>
    public static VerneedPatchResult MarkWeak(byte[] elf, string version)
    {
        var matches = FindRequirements(elf, version);
        if (matches.Count == 0)
        {
            return new VerneedPatchResult(VerneedPatchOutcome.NotRequired, matches);
        }

        var changed = false;
        foreach (var r in matches)
        {
            if (!r.IsWeak)
            {
                var flags = (ushort)(r.Flags | VerFlagWeak);
                elf[r.FlagsOffset] = (byte)(flags & 0xff);
                elf[r.FlagsOffset + 1] = (byte)(flags >> 8);
                changed = true;
            }
        }

        return new VerneedPatchResult(changed ? VerneedPatchOutcome.Patched : VerneedPatchOutcome.AlreadyWeak, matches);
    }

    /// <summary>
    /// Patches a file the way <see cref="MarkWeak"/> patches bytes. The new content goes to a temporary file
    /// beside it that then replaces it, so a hard link or a read-only file is never written through and
    /// whatever else the old inode is shared with (a NuGet cache copy) stays as it was.
    /// </summary>
    public static VerneedPatchResult MarkWeakInFile(string path, string version)
    {
        var data = File.ReadAllBytes(path);
        var result = MarkWeak(data, version);
        if (result.Outcome != VerneedPatchOutcome.Patched)
        {
            return result;
        }

        var directory = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        var temp = Path.Combine(directory, "." + Path.GetFileName(path) + "." + Guid.NewGuid().ToString("N") + ".tmp");
        try
        {
            // File.Copy carries the Unix permission bits over (an executable .so stays executable).
            File.Copy(path, temp);
            var attributes = File.GetAttributes(temp);
            if ((attributes & FileAttributes.ReadOnly) != 0)
            {
                File.SetAttributes(temp, attributes & ~FileAttributes.ReadOnly);
            }

            File.WriteAllBytes(temp, data);
            if ((attributes & FileAttributes.ReadOnly) != 0)
            {
                File.SetAttributes(temp, attributes);
            }

            // On Unix this is rename(2): atomic, and it replaces the directory entry rather than the inode.
            File.Replace(temp, path, null);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }

        return result;
    }

    private static string ReadString(byte[] elf, long tableOffset, long tableSize, uint index)
    {
        if (index >= tableSize)
        {
            throw new InvalidDataException("String index " + index.ToString(CultureInfo.InvariantCulture) + " is outside the linked string table.");
        }

        var start = tableOffset + index;
        var end = start;
        var limit = tableOffset + tableSize;
        while (end < limit && elf[end] != 0)
        {
            end++;
        }

        if (end == limit)
        {
            throw new InvalidDataException("Unterminated string at string table index " + index.ToString(CultureInfo.InvariantCulture) + ".");
        }

        return Encoding.ASCII.GetString(elf, (int)start, (int)(end - start));
    }

    private static void CheckRange(byte[] elf, long offset, long size, string what)
    {
        if (offset < 0 || size < 0 || offset > elf.Length || size > elf.Length - offset)
        {
            throw new InvalidDataException("Truncated or corrupt ELF file: the " + what + " lies outside the file.");
        }
    }

    private static void CheckWithin(long offset, long size, long sectionOffset, long sectionSize, string what)
    {
        if (offset < sectionOffset || offset + size > sectionOffset + sectionSize)
        {
            throw new InvalidDataException("Corrupt ELF file: an " + what + " entry at offset 0x" + offset.ToString("x", CultureInfo.InvariantCulture) + " lies outside its SHT_GNU_verneed section.");
        }
    }

    private static ushort ReadU16(byte[] elf, long offset)
    {
        CheckRange(elf, offset, 2, "16-bit field at 0x" + offset.ToString("x", CultureInfo.InvariantCulture));
        return (ushort)(elf[offset] | (elf[offset + 1] << 8));
    }

    private static uint ReadU32(byte[] elf, long offset)
    {
        CheckRange(elf, offset, 4, "32-bit field at 0x" + offset.ToString("x", CultureInfo.InvariantCulture));
        return (uint)(elf[offset] | (elf[offset + 1] << 8) | (elf[offset + 2] << 16) | (elf[offset + 3] << 24));
    }

    private static long ReadOffset(byte[] elf, long offset, string what)
    {
        var low = ReadU32(elf, offset);
        var high = ReadU32(elf, offset + 4);
        if (high > int.MaxValue / 2)
        {
            throw new InvalidDataException("Corrupt ELF file: " + what + " is implausibly large.");
        }

        return ((long)high << 32) | low;
    }
}

#if !ELF_VERNEED_PATCHER_NO_TASK
/// <summary>
/// MSBuild side of build/TorchSharpGlibcxxFix.targets: patches output copies of libLibTorchSharp.so when the
/// build machine's libstdc++ lacks the version they ask for, and refuses to touch anything outside OutputRoot.
/// </summary>
public sealed class TorchSharpGlibcxxFix : Task
{
    [Required]
    public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();

    /// <summary>$(OutDir) or $(PublishDir): every file patched must be inside it.</summary>
    [Required]
    public string OutputRoot { get; set; } = string.Empty;

    public string Version { get; set; } = ElfVerneedPatcher.LibTorchSharpGlibcxxVersion;

    [Output]
    public ITaskItem[] PatchedFiles { get; set; } = Array.Empty<ITaskItem>();

    public override bool Execute()
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux))
        {
            Log.LogMessage(MessageImportance.Low, "TorchSharpGlibcxxFix: not a Linux build machine; nothing to do.");
            return true;
        }

        if (Files.Length == 0)
        {
            return true;
        }

        var candidates = ElfVerneedPatcher.SystemLibStdCxxCandidates();
        var libstdcxx = ElfVerneedPatcher.FindFirstExisting(candidates);
        if (libstdcxx == null)
        {
            Log.LogMessage(MessageImportance.Normal, "TorchSharpGlibcxxFix: no system libstdc++ found at " + string.Join(", ", candidates) + "; leaving libLibTorchSharp.so as shipped.");
            return true;
        }

        if (ElfVerneedPatcher.ContainsVersionString(libstdcxx, Version))
        {
            Log.LogMessage(MessageImportance.Low, "TorchSharpGlibcxxFix: " + libstdcxx + " provides " + Version + "; nothing to patch.");
            return true;
        }

        var root = Path.GetFullPath(OutputRoot);
        if (!root.EndsWith("/", StringComparison.Ordinal))
        {
            root += "/";
        }

        var patched = new List<ITaskItem>();
        foreach (var item in Files)
        {
            var path = Path.GetFullPath(item.ItemSpec);
            if (!path.StartsWith(root, StringComparison.Ordinal))
            {
                Log.LogError("TorchSharpGlibcxxFix: refusing to patch " + path + ": it is not inside the output directory " + root + ".");
                continue;
            }

            try
            {
                var result = ElfVerneedPatcher.MarkWeakInFile(path, Version);
                var importance = result.Outcome == VerneedPatchOutcome.Patched ? MessageImportance.High : MessageImportance.Normal;
                Log.LogMessage(importance, "TorchSharpGlibcxxFix: " + path + ": " + result.Describe(Version) + ", because " + libstdcxx + " lacks " + Version + ".");
                if (result.Outcome == VerneedPatchOutcome.Patched)
                {
                    patched.Add(new TaskItem(path));
                }
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                Log.LogError("TorchSharpGlibcxxFix: could not patch " + path + ": " + ex.Message);
            }
        }

        PatchedFiles = patched.ToArray();
        return !Log.HasLoggedErrors;
    }
}
#endif
