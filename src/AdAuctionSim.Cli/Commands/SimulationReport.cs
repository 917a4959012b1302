using System.Globalization;
using AdAuctionSim.Cli.Terminal;
using AdAuctionSim.Simulation.Output;

namespace AdAuctionSim.Cli.Commands;

/// <summary>The human summary after <c>adsim simulate</c>: files, time per phase, and the realised bias figures.</summary>
internal static class SimulationReport
{
    public static void Write(CliTerminal terminal, SimulationOutputResult result, OutputFormat format, SimulationTimings timings)
    {
        var bias = result.Summary.Bias;
        terminal.WriteLine();
        terminal.Heading($"Output: {terminal.Display(result.Directory)} ({SimulateCommand.Format(format)})");
        var files = new TextTable("file", "rows", "size").RightAlign(1, 2);
        foreach (var (file, rows, bytes) in OutputFiles.List(result))
        {
            files.Add(file, rows?.ToString(CultureInfo.InvariantCulture) ?? "", Size(bytes));
        }
        files.Write(terminal);
        var counts = result.Manifest.RowCounts;
        var split = counts.BySplit;
        terminal.WriteLine($"  {counts.Requests} requests = {counts.Impressions} impressions + {counts.LostBids} lost bids; "
            + $"train/validation/test requests {split.Train.Requests}/{split.Validation.Requests}/{split.Test.Requests}");

        var requests = result.Summary.Requests;
        var rate = requests / Math.Max(timings.SimulateAndWrite.TotalSeconds, 1e-9);
        terminal.WriteLine();
        terminal.Heading("Time");
        terminal.WriteLine($"  {timings.Seconds(timings.Total)} total: world build {timings.Seconds(timings.WorldBuild)}, "
            + $"simulate+write {timings.Seconds(timings.SimulateAndWrite)}");
        terminal.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {rate:F0} requests/s (simulate+write) on {timings.Threads} thread{(timings.Threads == 1 ? "" : "s")}, {Environment.ProcessorCount} cores"));

        terminal.WriteLine();
        terminal.Heading($"Realised bias (D = all {requests} requests; logged = the {bias.Impressions} won impressions)");
        terminal.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  win rate {R(bias.WinRate)} (mean true win propensity {R(bias.MeanTrueWinPropensity)}), "
            + $"win selection ratio {R(bias.WinSelectionRatio)}"));
        terminal.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  click rate (logged) {R(bias.ClickRate)}; inverse-win-propensity ESS {bias.InverseWinPropensityEss:F0} "
            + $"= {R(bias.InverseWinPropensityEssShare)} of impressions"));
        var stages = new TextTable("stage", "target", "mean q (D, parent reached)", "realised on D", "95% CI", "logged")
            .RightAlign(1, 2, 3, 4, 5);
        foreach (var s in bias.Stages)
        {
            stages.Add(s.Stage, ScenarioFiles.F(s.TargetRate), R(s.EntireSpaceMeanQ), R(s.EntireSpaceRate.Rate),
                $"[{R(s.EntireSpaceRate.Lower)}, {R(s.EntireSpaceRate.Upper)}]", R(s.LoggedRate.Rate));
        }
        stages.Write(terminal);
        terminal.WriteLine("  Rates are conditional on the stage before (click: per request). target: the mean of q_k the world is built to have over");
        terminal.WriteLine("  the requests of D whose parent stage happened (their potential outcomes); mean q (D, parent reached): what it has there.");
        terminal.WriteLine("  Realised on D: the stage's outcome rate on those requests, as if every request had been shown; logged: the label rate");
        terminal.WriteLine("  the logs show (C, the impressions that reached the stage before).");
        terminal.WriteLine();
        var selection = new TextTable("stage", "mean q (all D)", "mean q (O)", "mean q (C)", "win part O/D", "funnel part C/O", "click selection ratio C/D",
            "hidden part").RightAlign(1, 2, 3, 4, 5, 6, 7);
        foreach (var s in bias.Stages.Where(s => s.ClickSelectionRatio is not null))
        {
            selection.Add(s.Stage, R(s.CounterfactualMeanQ), R(s.ImpressionMeanQ), R(s.LoggedParentMeanQ),
                s.WinSelectionPart is { } win ? R(win) : "-", s.FunnelSelectionPart is { } funnel ? R(funnel) : "-", R(s.ClickSelectionRatio!.Value),
                s.HiddenSelectionPart is { } hidden ? R(hidden) : "-");
        }
        selection.Write(terminal);
        terminal.WriteLine("  Selection a click-space model of a post-click stage sees: mean q_k over all of D (every request, the counterfactual rate under");
        terminal.WriteLine("  do(stage k-1 reached)), over the impressions O and over C. Click selection ratio C/D (DESIGN.md §3) = win part O/D");
        terminal.WriteLine("  (which requests the auction let us show: the logging bidder's value estimate, win-value correlation) x funnel part C/O");
        terminal.WriteLine("  (which impressions reached the stage before: click-CVR correlation, hidden confounding). 1 = no selection.");
        terminal.WriteLine("  Hidden part (hiddenSelectionPart): the share of the funnel part the logged features cannot explain, the funnel part");
        terminal.WriteLine("  over the same ratio of E[q_k | x] (the rate averaged over the per-request part of the hidden trait). No x-based");
        terminal.WriteLine("  method can remove it. It is 1 when the trait is a pure user trait (bias.hiddenPerRequest 0): user id is a feature.");
    }

    /// <summary>A rate or ratio with four decimals; n/a where undefined.</summary>
    internal static string R(double v) => double.IsFinite(v) ? v.ToString("F4", CultureInfo.InvariantCulture) : "n/a";

    internal static string Size(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:F1} KiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):F1} MiB"),
    };
}
