using System.Security.Cryptography;

namespace AdAuctionSim.Simulation.Output;

/// <summary>
/// How every command puts a folder of output in place: it writes into a sibling <c>&lt;name&gt;.partial-&lt;hex&gt;</c>
/// folder (on the same file system, so the final rename is atomic) and renames it onto the target only when complete.
/// An existing target is replaced only when asked, by moving it aside first and deleting it after the rename, so a
/// replacement that fails leaves the previous output where it was.
/// </summary>
public static class OutputFolder
{
    /// <summary>Creates the target's parent if needed and an empty sibling folder to write into; returns its path.</summary>
    /// <exception cref="ArgumentException">The target is a root folder.</exception>
    public static string CreatePartial(string target)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(target));
        var parent = Path.GetDirectoryName(full)
            ?? throw new ArgumentException($"{target} is a root folder; expected a folder to create", nameof(target));
        Directory.CreateDirectory(parent);
        var temp = Path.Combine(parent, $"{Path.GetFileName(full)}.partial-{RandomSuffix()}");
        Directory.CreateDirectory(temp);
        return temp;
    }

    /// <summary>
    /// Renames the finished folder <paramref name="temp"/> onto <paramref name="target"/>. With
    /// <paramref name="replace"/> an existing target is moved aside first and deleted after; without it an existing
    /// target (one made by someone else while this command was writing) is an <see cref="OutputExistsException"/>.
    /// </summary>
    public static void Publish(string temp, string target, bool replace)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(temp);
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(target));
        if (!Path.Exists(full))
        {
            Directory.Move(temp, full);
            return;
        }
        if (!replace)
        {
            throw new OutputExistsException(target);
        }
        var aside = $"{full}.old-{RandomSuffix()}";
        Move(full, aside);
        try
        {
            Directory.Move(temp, full);
        }
        catch
        {
            // Put the previous output back so a failed replacement leaves things as they were.
            if (!Path.Exists(full))
            {
                Move(aside, full);
            }
            throw;
        }
        TryDelete(aside);
    }

    /// <summary>Deletes a file or folder, best effort (a leftover is clutter, not a wrong result).</summary>
    /// <returns>Whether the path is gone.</returns>
    public static bool TryDelete(string path)
    {
        try
        {
            if (File.Exists(path))
            {
                File.Delete(path);
            }
            else if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static void Move(string from, string to)
    {
        if (File.Exists(from))
        {
            File.Move(from, to);
        }
        else
        {
            Directory.Move(from, to);
        }
    }

    private static string RandomSuffix() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
}
