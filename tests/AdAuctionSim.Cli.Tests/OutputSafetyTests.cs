namespace AdAuctionSim.Cli.Tests;

/// <summary>
/// Where the commands write: <c>--force</c> replaces only an earlier output of the same verb (never a folder holding the
/// command's input or files adsim did not write), a file in the way of an output folder is bad input, and a file given
/// as the registry is never initialised over. Each refusal exits 2 and changes nothing.
/// </summary>
public sealed class OutputSafetyTests
{
    [Fact]
    public void Simulate_force_replaces_only_an_earlier_simulation_and_never_its_own_input()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("work/tiny.json", Scenarios.Tiny);
        sandbox.Write("work/notes.txt", "keep me\n");
        sandbox.Write("plain/readme.txt", "not a simulation\n");
        sandbox.Write("afile", "x\n");
        Assert.True(sandbox.Run("simulate", "work/tiny.json", "--out", "sim", "--requests", "2000").ExitCode == 0);
        sandbox.Write("sim/notes.txt", "added by hand\n");
        var before = Snapshot(sandbox);

        var overInput = sandbox.Run("simulate", "work/tiny.json", "--out", "work", "--force", "--requests", "2000");
        var overCurrent = sandbox.Run("simulate", "work/tiny.json", "--out", ".", "--force", "--requests", "2000");
        var overForeign = sandbox.Run("simulate", "work/tiny.json", "--out", "plain", "--force", "--requests", "2000");
        var overAdded = sandbox.Run("simulate", "work/tiny.json", "--out", "sim", "--force", "--requests", "2000");
        var overFile = sandbox.Run("simulate", "work/tiny.json", "--out", "afile", "--force", "--requests", "2000");
        var underFile = sandbox.Run("simulate", "work/tiny.json", "--out", "afile/sub", "--requests", "2000");

        Assert.Contains("option --out: work holds this command's input work/tiny.json; --force would delete it", overInput.Error, StringComparison.Ordinal);
        Assert.Contains("holds this command's input work/tiny.json", overCurrent.Error, StringComparison.Ordinal);
        Assert.Contains("option --out: plain is not an output of adsim simulate (it has no manifest.json)", overForeign.Error, StringComparison.Ordinal);
        Assert.Contains("option --out: sim holds 1 entry that adsim simulate did not write (notes.txt)", overAdded.Error, StringComparison.Ordinal);
        Assert.Contains("option --out: afile is a file; expected a folder", overFile.Error, StringComparison.Ordinal);
        Assert.Contains("option --out: cannot create afile/sub: afile is a file", underFile.Error, StringComparison.Ordinal);
        foreach (var result in new[] { overInput, overCurrent, overForeign, overAdded, overFile, underFile })
        {
            Assert.True(result.ExitCode == 2, result.ToString());
            Assert.Contains("nothing was changed", result.Error, StringComparison.Ordinal);
        }
        Assert.Equal(before, Snapshot(sandbox));

        File.Delete(sandbox.PathOf("sim/notes.txt"));
        var replaced = sandbox.Run("simulate", "work/tiny.json", "--out", "sim", "--force", "--requests", "3000");
        Assert.True(replaced.ExitCode == 0, replaced.ToString());
        Assert.Contains("\"requests\": 3000", File.ReadAllText(sandbox.PathOf("sim/manifest.json")), StringComparison.Ordinal);
    }

    [Fact]
    public void Train_and_export_obp_never_replace_the_simulation_they_read()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("tiny.json", Scenarios.Tiny);
        Assert.True(sandbox.Run("simulate", "tiny.json", "--out", "sim", "--requests", "2000").ExitCode == 0);
        var before = Snapshot(sandbox);

        var train = sandbox.Run("train", "sim", "--models", "esmm", "--out", "sim", "--force");
        var trainIntoFile = sandbox.Run("train", "sim", "--models", "esmm", "--out", "sim/impressions.parquet", "--force");
        var export = sandbox.Run("export-obp", "sim", "--out", "sim", "--force");

        Assert.Contains("option --out: sim holds this command's input sim; --force would delete it", train.Error, StringComparison.Ordinal);
        Assert.Contains("option --out: sim/impressions.parquet is a file; expected a folder for the output of adsim train", trainIntoFile.Error,
            StringComparison.Ordinal);
        Assert.Contains("option --out: sim holds this command's input sim", export.Error, StringComparison.Ordinal);
        foreach (var result in new[] { train, trainIntoFile, export })
        {
            Assert.True(result.ExitCode == 2, result.ToString());
        }
        Assert.Equal(before, Snapshot(sandbox));

        // An earlier export is an output of export-obp: --force replaces it.
        Assert.True(sandbox.Run("export-obp", "sim").ExitCode == 0);
        var again = sandbox.Run("export-obp", "sim", "--force");
        Assert.True(again.ExitCode == 0, again.ToString());
    }

    [Fact]
    public void A_file_that_is_not_a_registry_is_refused_and_left_as_it_is()
    {
        using var sandbox = new CliSandbox();
        var scenario = sandbox.Write("tiny.json", Scenarios.Tiny);
        var empty = sandbox.Write("empty.db", "");
        var noise = sandbox.PathOf("noise.db");
        File.WriteAllBytes(noise, Enumerable.Range(0, 20_000).Select(i => (byte)(i * 7919 % 251)).ToArray());
        var before = Snapshot(sandbox);

        foreach (var (file, args) in new[]
        {
            (scenario, new[] { "runs", "list", "--registry", "tiny.json" }),
            (empty, ["runs", "show", "20261130-000000-x-000000", "--registry", "empty.db"]),
            (noise, ["compare", "20261130-000000-x-000000", "20261130-000000-y-000000", "--registry", "noise.db"]),
        })
        {
            var result = sandbox.Run(args);
            Assert.True(result.ExitCode == 2, result.ToString());
            Assert.Contains($"{file} is not a run registry (expected a LiteDB file", result.Error, StringComparison.Ordinal);
            Assert.Contains("it was left as it is", result.Error, StringComparison.Ordinal);
        }
        Assert.Equal(before, Snapshot(sandbox));
    }

    /// <summary>Every file under the sandbox with its bytes, for "nothing was changed".</summary>
    private static Dictionary<string, string> Snapshot(CliSandbox sandbox) =>
        sandbox.Entries().ToDictionary(e => e, e => File.Exists(sandbox.PathOf(e)) ? Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(sandbox.PathOf(e)))) : "dir");
}
