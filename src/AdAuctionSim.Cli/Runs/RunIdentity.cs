using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using AdAuctionSim.Simulation.Output;

namespace AdAuctionSim.Cli.Runs;

/// <summary>Run ids and the code version a run records.</summary>
internal static partial class RunIdentity
{
    /// <summary>
    /// A new run id: UTC start time to the second, the scenario name and 6 random hex digits
    /// (<c>20250301-142233-quickstart-3fa2c1</c>). Ids sort by start time; the random suffix keeps two processes that
    /// start in the same second apart.
    /// </summary>
    public static string NewId(string scenarioName, DateTime utcNow) =>
        $"{utcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}-{scenarioName}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3))}";

    /// <summary>Whether the text can be a run id (and so a folder name): letters, digits, '-', '_' and '.', not starting with '.'.</summary>
    public static bool IsValid(string id) => IdPattern().IsMatch(id);

    /// <summary>
    /// <c>git describe --always --dirty --tags</c> in <paramref name="directory"/> when it is a git checkout with git
    /// installed, else the assembly's informational version.
    /// </summary>
    public static string CodeVersion(string directory)
    {
        try
        {
            var start = new ProcessStartInfo("git", ["-C", directory, "describe", "--always", "--dirty", "--tags"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            using var git = Process.Start(start);
            if (git is not null)
            {
                var text = git.StandardOutput.ReadToEnd().Trim();
                if (git.WaitForExit(5000) && git.ExitCode == 0 && text.Length > 0)
                {
                    return $"git {text}";
                }
            }
        }
        catch (Exception e) when (e is Win32Exception or InvalidOperationException or IOException)
        {
            // No git on this machine: fall back to the build's own version.
        }
        return SimulationManifest.CurrentCodeVersion;
    }

    [GeneratedRegex("^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$")]
    private static partial Regex IdPattern();
}
