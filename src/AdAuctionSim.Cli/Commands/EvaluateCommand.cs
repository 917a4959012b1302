using System.Globalization;
using AdAuctionSim.Cli.Terminal;
using AdAuctionSim.Evaluation;
using AdAuctionSim.Evaluation.Metrics;
using AdAuctionSim.Evaluation.Runs;
using AdAuctionSim.Evaluation.Statistics;
using AdAuctionSim.Simulation.Output;

namespace AdAuctionSim.Cli.Commands;

/// <summary>
/// <c>adsim evaluate &lt;run-dir&gt;</c>: finds the training run and its simulation, runs <see cref="RunEvaluator"/>,
/// prints the headline figures per model and stage, and writes <c>metrics.csv</c> through a temporary file. Bad input
/// (folders, files, the baseline, an existing metrics file without <c>--force</c>) is a <see cref="CliInputException"/>:
/// exit 2, nothing written.
/// </summary>
internal sealed class EvaluateCommand(EvaluateArguments arguments, CliTerminal terminal) : ICliCommand
{
    public async Task<int> RunAsync(CancellationToken cancellation)
    {
        var named = terminal.Resolve(arguments.RunDirectory);
        var (trainDirectory, train) = FindRun(named);
        var simulation = FindSimulation(train, named);
        var models = new List<string> { RunEvaluator.TruthModel, RunEvaluator.LoggingModel };
        models.AddRange(train.Models.Select(m => m.Id));
        var baseline = arguments.Baseline
            ?? (models.Contains(EvaluateCommandSpec.DefaultBaseline) ? EvaluateCommandSpec.DefaultBaseline : RunEvaluator.LoggingModel);
        if (!models.Contains(baseline))
        {
            throw new CliInputException($"option --baseline: \"{baseline}\" is not a model of {terminal.Display(Path.Combine(trainDirectory, TrainRunFile.FileName))}; "
                + $"expected one of: {string.Join(", ", models)}");
        }
        var output = terminal.Resolve(arguments.Out ?? Path.Combine(trainDirectory, EvaluateCommandSpec.DefaultOutFile));
        OutputTarget.CheckFile(terminal, output, arguments.Force, MetricsCsv.IsMetricsFile, "a metrics file (adsim evaluate's CSV)",
            Path.Combine(trainDirectory, TrainRunFile.FileName), Path.Combine(simulation, LogColumns.ManifestFile));

        var options = new RunEvaluatorOptions { Threads = arguments.Threads, BootstrapResamples = arguments.Bootstrap };
        var request = new RunEvaluationRequest(simulation, trainDirectory, "", 0, WorldSeed(simulation));
        var result = await ProgressDisplay.StatusAsync(terminal, $"evaluating {models.Count} models on {terminal.Display(simulation)} ...",
            () => Evaluate(new RunEvaluator(options), request, cancellation), cancellation).ConfigureAwait(false);
        var seconds = result.Elapsed.TotalSeconds;
        var evaluation = result.Result;
        var summaries = MetricStatistics.Summarise(evaluation.Metrics, baseline, evaluation.Intervals);
        MetricsCsv.Write(output, evaluation.Metrics);

        terminal.Heading($"Evaluation of {terminal.Display(trainDirectory)}");
        var heldOut = evaluation.Metrics.FirstOrDefault(m => m.Space == EvaluationSpace.D)?.Rows ?? 0;
        terminal.WriteLine($"  simulation {terminal.Display(simulation)}: {heldOut} held-out requests (test split); stages {string.Join(", ", train.Stages)}; "
            + $"baseline {baseline}; {S(seconds)} on {arguments.Threads} thread{(arguments.Threads == 1 ? "" : "s")}");
        terminal.WriteLine("  D = every request, C = impressions that reached the parent stage; p̂ = q̂_k; "
            + (arguments.Bootstrap > 0 ? $"[95% interval: {MetricStatistics.BootstrapMethod(arguments.Bootstrap, options.BootstrapSeed)}]" : "no intervals (--bootstrap 0)"));
        Table(summaries, models, train.Stages, baseline).Write(terminal);
        if (evaluation.WinModel.Count > 0)
        {
            foreach (var line in WinModelLines(evaluation.WinModel, train.WinModel!.Floor))
            {
                terminal.WriteLine(line);
            }
        }
        terminal.WriteLine($"  {evaluation.Metrics.Count} rows written to {terminal.Display(output)} "
            + $"({MetricIds.All.Count} metric ids; see README \"Evaluating\"); Δ MAE = MAE minus {baseline}'s");
        return ExitCodes.Success;
    }

    private static EvaluationResult Evaluate(RunEvaluator evaluator, RunEvaluationRequest request, CancellationToken cancellation)
    {
        try
        {
            return evaluator.Evaluate(request, cancellation);
        }
        catch (InvalidDataException e)
        {
            throw new CliInputException(e.Message);
        }
    }

    /// <summary>The simulation's world seed, for the seed column of metrics.csv (as <c>adsim run</c> writes it).</summary>
    private static long WorldSeed(string simulation)
    {
        try
        {
            return SimulationManifest.Read(simulation).Seed;
        }
        catch (InvalidDataException e)
        {
            throw new CliInputException(e.Message);
        }
    }

    private (string Directory, TrainRunFile Train) FindRun(string folder)
    {
        if (!Directory.Exists(folder))
        {
            throw new CliInputException(File.Exists(folder)
                ? $"{terminal.Display(folder)}: is a file; expected a training run folder (adsim train) or a simulation folder"
                : $"{terminal.Display(folder)}: no such folder; expected a training run folder (adsim train) or a simulation folder");
        }
        var directory = folder;
        if (!File.Exists(Path.Combine(folder, TrainRunFile.FileName)) && File.Exists(Path.Combine(folder, LogColumns.ManifestFile)))
        {
            directory = Path.Combine(folder, TrainCommandSpec.DefaultOut);
            if (!File.Exists(Path.Combine(directory, TrainRunFile.FileName)))
            {
                throw new CliInputException($"{terminal.Display(folder)} is a simulation folder without a training run "
                    + $"({terminal.Display(Path.Combine(directory, TrainRunFile.FileName))} is missing); run adsim train first, or name the run folder");
            }
        }
        try
        {
            return (directory, TrainRunFile.Read(directory));
        }
        catch (InvalidDataException e)
        {
            throw new CliInputException(e.Message);
        }
    }

    /// <summary>
    /// The simulation folder the user named, if they named one (a copy of a simulation is scored against its own truth,
    /// not the original's that train.json names); else the one train.json names; if that has moved, the folder two
    /// levels up when the run sits at its runs/train.
    /// </summary>
    private string FindSimulation(TrainRunFile train, string named)
    {
        if (File.Exists(Path.Combine(named, LogColumns.ManifestFile)))
        {
            var own = Path.TrimEndingDirectorySeparator(Path.GetFullPath(named));
            if (!string.Equals(own, Path.TrimEndingDirectorySeparator(Path.GetFullPath(train.Simulation)), StringComparison.Ordinal))
            {
                terminal.WriteLine($"  note: {terminal.Display(Path.Combine(train.Directory, TrainRunFile.FileName))} names the simulation "
                    + $"{train.Simulation}; scoring against {terminal.Display(own)}, the simulation folder given");
            }
            return own;
        }
        if (File.Exists(Path.Combine(train.Simulation, LogColumns.ManifestFile)))
        {
            return train.Simulation;
        }
        var above = Path.GetDirectoryName(Path.GetDirectoryName(train.Directory));
        if (above is not null && File.Exists(Path.Combine(above, LogColumns.ManifestFile)))
        {
            return above;
        }
        throw new CliInputException($"{terminal.Display(Path.Combine(train.Directory, TrainRunFile.FileName))}: field simulation: "
            + $"{train.Simulation} holds no {LogColumns.ManifestFile}, and neither does the folder above runs/; expected the simulation the run was trained on");
    }

    private static TextTable Table(IReadOnlyList<MetricSummary> summaries, IReadOnlyList<string> models, IReadOnlyList<string> stages, string baseline)
    {
        var index = summaries.ToDictionary(s => (s.Model, s.Stage, s.Space, s.Metric));
        // Δ is taken of the MAE, not of the signed bias: a model that over-corrects has a negative bias, which a Δ bias
        // would show as an improvement on a baseline that over-predicts.
        var withIntervals = summaries.Any(s => s.Metric == MetricIds.Bias && double.IsFinite(s.CiLow));
        var table = new TextTable("model", "stage", "AUC y (D)", withIntervals ? "bias (D) [95%]" : "bias (D)", "MAE (D)", "Δ MAE", "ECE (D)", "AUC obs (C)", "log loss (C)", "bias (C)")
            .RightAlign(2, 3, 4, 5, 6, 7, 8, 9);
        foreach (var model in models)
        {
            foreach (var stage in stages)
            {
                string F(EvaluationSpace space, string metric) => index.TryGetValue((model, stage, space, metric), out var s) ? N(s.Mean) : "—";
                var bias = index.GetValueOrDefault((model, stage, EvaluationSpace.D, MetricIds.Bias));
                var interval = bias is not null && double.IsFinite(bias.CiLow) ? $" [{N(bias.CiLow)}, {N(bias.CiHigh)}]" : "";
                var mae = index.GetValueOrDefault((model, stage, EvaluationSpace.D, MetricIds.Mae));
                var delta = model == baseline || mae is null ? "" : N(mae.MeanDifference);
                table.Add(model, stage, F(EvaluationSpace.D, MetricIds.AucPotential), (bias is null ? "—" : N(bias.Mean)) + interval,
                    F(EvaluationSpace.D, MetricIds.Mae), delta, F(EvaluationSpace.D, MetricIds.Ece), F(EvaluationSpace.C, MetricIds.AucObserved),
                    F(EvaluationSpace.C, MetricIds.LogLoss), F(EvaluationSpace.C, MetricIds.Bias));
            }
        }
        return table;
    }

    /// <summary>The fitted win model's held-out figures (<see cref="WinModelMetrics"/>) as five lines; an undefined one as n/a with its reason.</summary>
    internal static IEnumerable<string> WinModelLines(IReadOnlyList<WinModelFigure> figures, double floor)
    {
        var byId = figures.ToDictionary(f => f.Metric, StringComparer.Ordinal);
        string F(string id, string format = "F4")
        {
            var f = byId[id];
            return double.IsNaN(f.Value) ? $"n/a ({f.Note})" : f.Value.ToString(format, CultureInfo.InvariantCulture);
        }
        long Rows(string id) => byId[id].Rows;
        yield return $"  win model {figures[0].Source} on the held-out requests (models.md §14.4; {WinModelMetrics.All.Count} figures in the run's evaluation):";
        yield return $"    Ŵ(b | x) at the logged bid against won (D, {Rows(WinModelMetrics.AtBidLogLoss)} requests): log loss {F(WinModelMetrics.AtBidLogLoss)}, "
            + $"AUC {F(WinModelMetrics.AtBidAuc)}, ECE {F(WinModelMetrics.AtBidEce)}; MAE against the true P(win | x, b) {F(WinModelMetrics.AtBidMae)}";
        yield return $"    π̂(x) against the true P(win | x) (D): bias {F(WinModelMetrics.PolicyBias, "+0.0000;-0.0000;0.0000")}, MAE {F(WinModelMetrics.PolicyMae)}, "
            + $"ECE {F(WinModelMetrics.PolicyEce)}";
        var weights = string.Create(CultureInfo.InvariantCulture, $"1/max(π̂, {floor:G})");
        yield return $"    weights {weights} on the impressions (O, {Rows(WinModelMetrics.EssShare)}): correlation of ln π̂ with ln π "
            + $"{F(WinModelMetrics.PolicyLogCorrelation, "F3")}, ESS share {F(WinModelMetrics.EssShare, "F3")} (true weights {F(WinModelMetrics.TrueEssShare, "F3")})";
        yield return $"    win selection: mean true r_K on D minus on O {F(WinModelMetrics.ReachGap, "G3")} (standard error {F(WinModelMetrics.ReachGapStandardError, "G2")}); "
            + $"weighting O by {weights} closes {F(WinModelMetrics.GapRecovered, "F2")} of it, the true weights {F(WinModelMetrics.TrueGapRecovered, "F2")}";
    }

    private static string N(double value) => double.IsNaN(value) ? "n/a" : value.ToString("F4", CultureInfo.InvariantCulture);

    private static string S(double seconds) => seconds.ToString(seconds < 10 ? "F2" : "F1", CultureInfo.InvariantCulture) + " s";
}
