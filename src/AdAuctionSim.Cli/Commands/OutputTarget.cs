using System.Security.Cryptography;
using AdAuctionSim.Cli.Terminal;
using AdAuctionSim.Models.Training;
using AdAuctionSim.Reports.Documents;
using AdAuctionSim.Simulation.OffPolicy;
using AdAuctionSim.Simulation.Output;

namespace AdAuctionSim.Cli.Commands;

/// <summary>
/// A folder a command writes as its output: the verb, the file that marks a finished output of it, and every name it
/// (or a command that writes into it by default: train's <c>runs/</c>, export-obp's <c>obp/</c>, evaluate's
/// <c>metrics.csv</c>) puts at its top level.
/// </summary>
internal sealed record OutputKind(string Verb, string Marker, IReadOnlySet<string> Names)
{
    public static readonly OutputKind Simulation = new("simulate", LogColumns.ManifestFile, Set(
        [LogColumns.ManifestFile, "runs", OpeCommandSpec.ExportFolder,
         .. ((string[])[LogColumns.AdsProduct, LogColumns.ImpressionsProduct, LogColumns.LostBidsProduct, LogColumns.TruthProduct])
            .SelectMany(p => (string[])[p + ".parquet", p + ".csv"])]));

    public static readonly OutputKind Training = new("train", TrainingRun.ManifestFile, Set(
        [TrainingRun.ManifestFile, TrainingRun.CheckpointsFolder, TrainingRun.CurvesFolder, TrainingRun.PredictionsFolder, EvaluateCommandSpec.DefaultOutFile]));

    public static readonly OutputKind Ope = new("ope", OpeReport.EstimatesFile, Set(
        [OpeReport.EstimatesFile, OpeReport.SummaryFile, OpeReport.TruthFile, RunReportWriter.HtmlFile, RunReportWriter.MarkdownFile, RunReportWriter.PlotsFolder]));

    public static readonly OutputKind BanditFeedback = new("export-obp", BanditFeedbackExport.MetaFile, Set(
        [BanditFeedbackExport.MetaFile, BanditFeedbackExport.ParquetFile, BanditFeedbackExport.CsvFile]));

    private static HashSet<string> Set(IEnumerable<string> names) => new(names, StringComparer.Ordinal);
}

/// <summary>
/// The checks every command makes on where it writes, before any work: the place can be written (no file stands where a
/// folder is needed, the folder accepts new files), an existing output is replaced only with <c>--force</c>, and
/// <c>--force</c> replaces only what the same verb wrote: never a folder that holds the command's own input, another
/// program's files or anything adsim did not put there. Each refusal is a <see cref="CliInputException"/> (exit 2) that
/// names the path and says that nothing was changed.
/// </summary>
internal static class OutputTarget
{
    /// <summary>
    /// Checks a folder output <paramref name="target"/> (full path) of <paramref name="kind"/>, which may exist only with
    /// <paramref name="force"/>; <paramref name="inputs"/> are the full paths of the files and folders the command reads.
    /// </summary>
    public static void CheckFolder(CliTerminal terminal, string target, OutputKind kind, bool force, params IEnumerable<string> inputs)
    {
        target = Path.TrimEndingDirectorySeparator(target);
        var shown = terminal.Display(target);
        if (Path.GetDirectoryName(target) is not { } parent)
        {
            throw new CliInputException($"option --out: {shown} is a root folder; expected a folder to create");
        }
        if (File.Exists(target))
        {
            throw new CliInputException($"option --out: {shown} is a file; expected a folder for the output of adsim {kind.Verb}; nothing was changed");
        }
        if (Directory.Exists(target))
        {
            if (!force)
            {
                throw new CliInputException($"output directory {shown} already exists; nothing was changed. Use --force to replace it, or --out to choose another directory.");
            }
            CheckReplaceable(terminal, target, kind, inputs);
            CheckWritable(terminal, parent, "option --out");
            return;
        }
        // Writing goes into a sibling folder: the nearest existing folder above the target must take new entries.
        CheckWritable(terminal, target, "option --out");
    }

    /// <summary>
    /// Checks a file output <paramref name="target"/> (full path): its folder exists and accepts files; an existing file is
    /// replaced only with <paramref name="force"/>, only when it is none of <paramref name="inputs"/> and only when
    /// <paramref name="isOutput"/> recognises it as what the command writes (<paramref name="what"/> names that).
    /// </summary>
    public static void CheckFile(CliTerminal terminal, string target, bool force, Func<string, bool> isOutput, string what, params IEnumerable<string> inputs)
    {
        var shown = terminal.Display(target);
        if (Directory.Exists(target))
        {
            throw new CliInputException($"option --out: {shown} is a folder; expected a file name for {what}");
        }
        if (Path.GetDirectoryName(target) is not { } parent || !Directory.Exists(parent))
        {
            throw new CliInputException($"option --out: the folder {terminal.Display(Path.GetDirectoryName(target) ?? target)} does not exist");
        }
        if (File.Exists(target))
        {
            if (!force)
            {
                throw new CliInputException($"{shown} already exists; nothing was changed. Use --force to replace it, or --out to write another file.");
            }
            if (inputs.FirstOrDefault(i => Within(i, target)) is { } input)
            {
                throw new CliInputException($"option --out: {shown} is an input of this command; --force would overwrite it, so nothing was changed. Choose another --out");
            }
            if (!isOutput(target))
            {
                throw new CliInputException($"option --out: {shown} is not {what}; --force replaces only such a file, so nothing was changed. Choose another --out");
            }
        }
        CheckWritable(terminal, parent, "option --out");
    }

    /// <summary>
    /// Checks that <paramref name="folder"/> (full path) exists and accepts new files, or can be created: no file stands
    /// in its path and its nearest existing ancestor accepts new entries. <paramref name="field"/> names the option.
    /// </summary>
    public static void CheckWritable(CliTerminal terminal, string folder, string field)
    {
        var existing = Path.TrimEndingDirectorySeparator(folder);
        while (!Directory.Exists(existing))
        {
            if (File.Exists(existing))
            {
                throw new CliInputException(existing == Path.TrimEndingDirectorySeparator(folder)
                    ? $"{field}: {terminal.Display(existing)} is a file; expected a folder; nothing was changed"
                    : $"{field}: cannot create {terminal.Display(folder)}: {terminal.Display(existing)} is a file; nothing was changed");
            }
            existing = Path.GetDirectoryName(existing) ?? throw new CliInputException($"{field}: cannot create {terminal.Display(folder)}");
        }
        var probe = Path.Combine(existing, $".adsim-write-check-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}");
        try
        {
            using (File.Create(probe, 1, FileOptions.DeleteOnClose))
            {
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliInputException($"{field}: cannot write in {terminal.Display(existing)} ({e.Message}); nothing was changed");
        }
    }

    private static void CheckReplaceable(CliTerminal terminal, string target, OutputKind kind, IEnumerable<string> inputs)
    {
        var shown = terminal.Display(target);
        if (inputs.FirstOrDefault(i => Within(i, target)) is { } input)
        {
            throw new CliInputException($"option --out: {shown} holds this command's input {terminal.Display(input)}; --force would delete it, so nothing "
                + "was changed. Choose another --out");
        }
        var entries = Directory.EnumerateFileSystemEntries(target).Select(e => Path.GetFileName(e)).Order(StringComparer.Ordinal).ToList();
        if (entries.Count == 0)
        {
            return;
        }
        if (!entries.Contains(kind.Marker, StringComparer.Ordinal))
        {
            throw new CliInputException($"option --out: {shown} is not an output of adsim {kind.Verb} (it has no {kind.Marker}); --force replaces only "
                + "such a folder, so nothing was changed. Choose another --out");
        }
        var foreign = entries.Where(e => !kind.Names.Contains(e)).ToList();
        if (foreign.Count > 0)
        {
            throw new CliInputException($"option --out: {shown} holds {foreign.Count} entr{(foreign.Count == 1 ? "y" : "ies")} that adsim {kind.Verb} did "
                + $"not write ({string.Join(", ", foreign.Take(5))}{(foreign.Count > 5 ? ", ..." : "")}); --force would delete them, so nothing was "
                + "changed. Move them away or choose another --out");
        }
    }

    /// <summary>Whether <paramref name="path"/> is <paramref name="folder"/> or lies inside it (full paths).</summary>
    internal static bool Within(string path, string folder)
    {
        var relative = Path.GetRelativePath(Path.TrimEndingDirectorySeparator(folder), Path.TrimEndingDirectorySeparator(path));
        return relative == "." || !(Path.IsPathRooted(relative) || relative == ".." || relative.StartsWith(".." + Path.DirectorySeparatorChar, StringComparison.Ordinal));
    }
}
