using System.Diagnostics;
using System.Globalization;
using AdAuctionSim.Cli.Runs;
using AdAuctionSim.Cli.Terminal;
using AdAuctionSim.Reports.Registry;

namespace AdAuctionSim.Cli.Commands;

/// <summary>Opening the registry for the read-only commands: a missing file is bad input, not an empty registry.</summary>
internal static class RegistryAccess
{
    public static RunRegistry Open(CliTerminal terminal, string? path)
    {
        var full = terminal.Resolve(path ?? RunPlan.DefaultRegistry);
        if (!File.Exists(full))
        {
            throw new CliInputException($"there is no run registry at {terminal.Display(full)}; 'adsim run' creates it, or give its path with --registry");
        }
        return new RunRegistry(full, readOnly: true);
    }

    public static RunRecord Find(CliTerminal terminal, RunRegistry registry, string id) =>
        registry.Find(id) ?? throw new CliInputException($"there is no run {id} in {terminal.Display(registry.Path)}; see 'adsim runs list'");

    /// <summary>
    /// The status to show: a run marked running whose process is gone from this machine crashed or was killed without
    /// being able to say so, so it shows as failed.
    /// </summary>
    public static string Status(RunRecord run)
    {
        if (run.Status != RunStatus.Running || run.Machine != Environment.MachineName)
        {
            return run.Status;
        }
        try
        {
            using var process = Process.GetProcessById(run.ProcessId);
            return process.HasExited ? $"{RunStatus.Failed} (process ended)" : run.Status;
        }
        catch (ArgumentException)
        {
            return $"{RunStatus.Failed} (process ended)";
        }
    }

    public static string Seconds(RunRecord run) => run.FinishedUtc is { } end
        ? (end - run.StartedUtc).TotalSeconds.ToString("F1", CultureInfo.InvariantCulture) + " s"
        : "-";

    public static string Number(double v) => double.IsNaN(v) ? "n/a" : v.ToString("G4", CultureInfo.InvariantCulture);

    public static string Interval(RegistryMetric m) =>
        Number(m.Mean) + (double.IsFinite(m.CiLow) ? $" [{Number(m.CiLow)}, {Number(m.CiHigh)}]" : "");
}

/// <summary><c>adsim runs list</c>.</summary>
internal sealed class RunsListCommand(RunsListArguments arguments, CliTerminal terminal) : ICliCommand
{
    public Task<int> RunAsync(CancellationToken cancellation)
    {
        using var registry = RegistryAccess.Open(terminal, arguments.Registry);
        var runs = registry.List(arguments.Limit);
        if (runs.Count == 0)
        {
            terminal.WriteLine($"No runs in {terminal.Display(registry.Path)}.");
            return Task.FromResult(ExitCodes.Success);
        }
        var table = new TextTable("id", "status", "scenario", "models", "points x repeats", "started (UTC)", "wall time").RightAlign(4, 6);
        foreach (var r in runs)
        {
            table.Add(r.Id, RegistryAccess.Status(r), r.ScenarioName, r.Models.Count.ToString(CultureInfo.InvariantCulture),
                $"{r.Points} x {r.Repeats}", r.StartedUtc.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture), RegistryAccess.Seconds(r));
        }
        table.Write(terminal);
        return Task.FromResult(ExitCodes.Success);
    }
}

/// <summary><c>adsim runs show &lt;id&gt;</c>.</summary>
internal sealed class RunsShowCommand(RunsShowArguments arguments, CliTerminal terminal) : ICliCommand
{
    public Task<int> RunAsync(CancellationToken cancellation)
    {
        using var registry = RegistryAccess.Open(terminal, arguments.Registry);
        var r = RegistryAccess.Find(terminal, registry, arguments.Id);
        terminal.Heading($"Run {r.Id}");
        KeyValueList.Write(terminal,
        [
            ("status", RegistryAccess.Status(r) + (r.Error.Length > 0 ? $": {r.Error}" : "")),
            ("scenario", $"{r.ScenarioName} ({r.ScenarioFile})"),
            ("code version", r.CodeVersion),
            ("device", $"{r.Device}, {r.Threads} threads"),
            ("started (UTC)", r.StartedUtc.ToString("u", CultureInfo.InvariantCulture)),
            ("wall time", RegistryAccess.Seconds(r) + (r.Resumes > 0 ? $" (last attempt; resumed {r.Resumes} time{(r.Resumes == 1 ? "" : "s")})" : "")),
            ("models", string.Join(", ", r.Models)),
            ("baseline", r.Baseline),
            ("points x repeats", $"{r.Points} x {r.Repeats}"),
            ("folder", r.Directory),
            ("report", r.ReportHtml.Length > 0 ? r.ReportHtml : "(none: the run is not complete)"),
            ("metrics", r.MetricsCsv.Length > 0 ? r.MetricsCsv : "-"),
        ]);
        if (r.Timings.Count > 0)
        {
            terminal.WriteLine();
            terminal.Heading("Timings");
            var timings = new TextTable("phase", "units", "seconds", "covers").RightAlign(1, 2);
            foreach (var g in r.Timings.GroupBy(t => t.Phase))
            {
                timings.Add(g.Key, g.Count().ToString(CultureInfo.InvariantCulture), g.Sum(t => t.Seconds).ToString("F1", CultureInfo.InvariantCulture), g.First().Covers);
            }
            timings.Write(terminal);
        }
        var onD = r.Metrics.Where(m => m.Space == "D").ToList();
        if (onD.Count > 0)
        {
            terminal.WriteLine();
            terminal.Heading($"Metrics on D (mean [95% CI]; * p < 0.05 against {r.Baseline})");
            var table = new TextTable("point", "model", "stage", "metric", "mean [95% CI]", "p").RightAlign(4, 5);
            foreach (var m in onD)
            {
                table.Add(m.Point.Length == 0 ? "-" : m.Point, m.Model, m.Stage, m.Metric, RegistryAccess.Interval(m) + (m.PValue < 0.05 ? " *" : ""),
                    RegistryAccess.Number(m.PValue));
            }
            table.Write(terminal);
        }
        terminal.WriteLine();
        terminal.Heading("Resolved scenario");
        terminal.Out.Write(r.Scenario);
        return Task.FromResult(ExitCodes.Success);
    }
}

/// <summary><c>adsim compare &lt;id&gt; &lt;id&gt;</c>.</summary>
internal sealed class CompareCommand(CompareArguments arguments, CliTerminal terminal) : ICliCommand
{
    public Task<int> RunAsync(CancellationToken cancellation)
    {
        using var registry = RegistryAccess.Open(terminal, arguments.Registry);
        var a = RegistryAccess.Find(terminal, registry, arguments.First);
        var b = RegistryAccess.Find(terminal, registry, arguments.Second);
        foreach (var run in (RunRecord[])[a, b])
        {
            if (run.Metrics.Count == 0)
            {
                throw new CliInputException($"run {run.Id} has no metrics (status {RegistryAccess.Status(run)}); only complete runs can be compared");
            }
        }
        bool Chosen(RegistryMetric m) => arguments.AllSpaces || m.Space == "D";
        var second = b.Metrics.Where(Chosen).GroupBy(m => m.Key).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        terminal.Heading($"{a.Id} ({a.ScenarioName}, {a.CodeVersion}) vs {b.Id} ({b.ScenarioName}, {b.CodeVersion})");
        WriteScenarioDifferences(a, b);
        var table = new TextTable("point", "model", "stage", "space", "metric", "first", "second", "second - first").RightAlign(5, 6, 7);
        var matched = 0;
        foreach (var m in a.Metrics.Where(Chosen))
        {
            if (!second.TryGetValue(m.Key, out var other))
            {
                continue;
            }
            matched++;
            table.Add(m.Point.Length == 0 ? "-" : m.Point, m.Model, m.Stage, m.Space, m.Metric, RegistryAccess.Interval(m), RegistryAccess.Interval(other),
                RegistryAccess.Number(other.Mean - m.Mean));
        }
        if (matched == 0)
        {
            terminal.WriteLine("  The two runs share no metric (different points, models, stages or metrics).");
            return Task.FromResult(ExitCodes.Success);
        }
        table.Write(terminal);
        var onlyA = a.Metrics.Where(Chosen).Count(m => !second.ContainsKey(m.Key));
        var firstKeys = a.Metrics.Where(Chosen).Select(m => m.Key).ToHashSet(StringComparer.Ordinal);
        var onlyB = second.Keys.Count(k => !firstKeys.Contains(k));
        terminal.WriteLine($"  {matched} metrics matched; {onlyA} only in {a.Id}, {onlyB} only in {b.Id}.");
        return Task.FromResult(ExitCodes.Success);
    }

    /// <summary>Says whether the two runs resolved the same scenario, and if not, which fields differ (the first few).</summary>
    private void WriteScenarioDifferences(RunRecord a, RunRecord b)
    {
        const int shown = 8;
        IReadOnlyList<ScenarioDifferences.Difference> differences;
        try
        {
            differences = ScenarioDifferences.Between(a.Scenario, b.Scenario);
        }
        catch (System.Text.Json.JsonException)
        {
            terminal.WriteLine("  The registry holds no readable resolved scenario for one of the runs; they may be different scenarios.");
            return;
        }
        if (differences.Count == 0)
        {
            terminal.WriteLine("  Both runs resolved the same scenario (seeds, world, models, training and evaluation).");
            return;
        }
        var listed = string.Join("; ", differences.Take(shown).Select(d => $"{d.Path} {d.First} → {d.Second}"));
        var more = differences.Count > shown ? $"; and {differences.Count - shown} more (adsim runs show prints each run's scenario)" : "";
        terminal.WriteLine($"  The runs resolved different scenarios, so each difference below mixes the scenario's effect with any "
            + $"change of code; {differences.Count} field{(differences.Count == 1 ? " differs" : "s differ")}: {listed}{more}.");
    }
}
