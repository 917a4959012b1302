using System.Diagnostics;
using System.Globalization;
using AdAuctionSim.Simulation.Output;
using AdAuctionSim.Cli.Runs;
using AdAuctionSim.Cli.Terminal;
using AdAuctionSim.Reports.Documents;
using AdAuctionSim.Models.Runtime;
using Microsoft.Extensions.Logging;

namespace AdAuctionSim.Cli.Commands;

/// <summary>
/// <c>adsim ope &lt;scenario.json&gt;</c>: off-policy evaluation against the simulator's truth. For every sweep point and
/// repeat it simulates, trains the models the <c>ope</c> section's policies and reward model score with (none when they use
/// the truth or the logging model), values every policy by each estimator and by the truth, and writes the report. All of
/// it happens in a sibling folder renamed into place at the end, so bad input or a failure leaves no output.
/// </summary>
internal sealed class OpeCommand(OpeArguments arguments, CliTerminal terminal, ILogger<OpeCommand> logger) : ICliCommand
{
    public async Task<int> RunAsync(CancellationToken cancellation)
    {
        var total = Stopwatch.StartNew();
        var plan = RunPlan.Load(terminal, arguments.Scenario, opeOnly: true);
        var ope = plan.Ope!;
        var target = Path.TrimEndingDirectorySeparator(terminal.Resolve(arguments.Out ?? Path.Combine(RunPlan.DefaultOut, "ope-" + plan.Scenario.Name)));
        OutputTarget.CheckFolder(terminal, target, OutputKind.Ope, arguments.Force, terminal.Resolve(arguments.Scenario));
        plan = plan with { SimulationThreads = arguments.Threads };
        var runtime = await CliTorchRuntime.InitializeAsync(plan.Trainer.Device, plan.Trainer.Threads, plan.Trainer.Seed,
            $"{arguments.Scenario}: training.device \"{plan.Trainer.Device}\"", cancellation).ConfigureAwait(false);
        var (worlds, _) = await ProgressDisplay.StatusAsync(terminal, $"building {plan.WorldsText} ...", () => plan.BuildWorlds(cancellation), cancellation)
            .ConfigureAwait(false);
        var temp = OutputFolder.CreatePartial(target);
        terminal.Heading($"Off-policy evaluation of {plan.Scenario.Name} ({arguments.Scenario}) -> {terminal.Display(target)}");
        terminal.WriteLine($"  {plan.Points.Count} point{(plan.Points.Count == 1 ? "" : "s")} × {plan.Repeats} repeat{(plan.Repeats == 1 ? "" : "s")}; "
            + (plan.Models.Count == 0 ? "no models to train" : $"models {string.Join(", ", plan.Models.Select(m => m.Id))}") + "; " + ope.Describe());
        try
        {
            var runner = new ExperimentRunner(plan, temp, null, runtime, opeOnly: true, worlds);
            var outcome = await LiveRunProgress.RunAsync(terminal, runner.Units, p => TorchThread.Invoke(() => runner.Execute(p, cancellation), cancellation), cancellation).ConfigureAwait(false);
            cancellation.ThrowIfCancellationRequested();
            var data = new OpeReportData(ope.Options.Reward, ope.Options.Split, [.. plan.Points.Select(p => p.Label)], outcome.OpeEstimates, outcome.OpeTruths);
            var clock = Stopwatch.StartNew();
            var facts = new List<(string, string)>
            {
                ("scenario", $"{plan.Scenario.Name} ({arguments.Scenario})"),
                ("code version", RunIdentity.CodeVersion(terminal.WorkingDirectory)),
                ("points × repeats", $"{plan.Points.Count} × {plan.Repeats}"),
                ("policies", string.Join(", ", ope.Policies.Select(p => p.Name))),
                ("reward model", ope.RewardModelText),
                ("models trained", plan.Models.Count == 0 ? "none" : string.Join(", ", plan.Models.Select(m => m.Id))),
                ("device", runtime.Device.ToString().ToLowerInvariant()),
            };
            var timings = outcome.Timings.ToList();
            OpeReport.WriteReport(temp, $"Off-policy evaluation: {plan.Scenario.Name}", facts, data, timings, plan.ResolvedJson);
            Directory.Delete(Path.Combine(temp, ExperimentRunner.WorkFolder), recursive: true);
            cancellation.ThrowIfCancellationRequested();
            OutputFolder.Publish(temp, target, arguments.Force);
            terminal.WriteLine();
            PrintSummary(data);
            var seconds = string.Create(CultureInfo.InvariantCulture, $"{total.Elapsed.TotalSeconds:F1} s (simulation, training, replay, estimates and report; report {clock.Elapsed.TotalSeconds:F1} s)");
            terminal.Heading($"Off-policy evaluation complete in {seconds}: {terminal.Display(Path.Combine(target, RunReportWriter.HtmlFile))}");
            return ExitCodes.Success;
        }
        catch
        {
            if (!OutputFolder.TryDelete(temp))
            {
                logger.LogWarning("Could not remove {Directory}", temp);
            }
            throw;
        }
    }

    /// <summary>One line per point, policy and estimator: mean estimate, truth, relative error and warnings.</summary>
    private void PrintSummary(OpeReportData data)
    {
        var table = new TextTable("point", "policy", "estimator", "estimate", "truth", "rel. error", "MSE", "warned").RightAlign(3, 4, 5, 6, 7);
        foreach (var s in data.Summaries)
        {
            table.Add(s.Point.Length == 0 ? "-" : s.Point, s.Policy, s.Estimator, G(s.MeanEstimate), G(s.MeanTruth), G(s.RelativeError), G(s.SquaredError),
                double.IsNaN(s.Warned) ? "n/a" : s.Warned.ToString("P0", CultureInfo.InvariantCulture));
        }
        table.Write(terminal);
        if (data.Reward == "surplus")
        {
            terminal.WriteLine("  rel. error is |estimate − truth| ÷ |truth|: for a surplus near 0 it grows without bound, so compare such policies by MSE");
        }
        var disagree = data.Truths.Where(t => !t.Agrees).ToList();
        terminal.WriteLine(disagree.Count == 0
            ? $"  exact true values agree with the Monte Carlo cross-check ({data.Truths.Count} policy × repeat pairs)"
            : $"  {disagree.Count} of {data.Truths.Count} exact values lie outside their 95% Monte Carlo interval (about 5% expected by chance)");
    }

    private static string G(double v) => double.IsNaN(v) ? "n/a" : v.ToString("G4", CultureInfo.InvariantCulture);
}
