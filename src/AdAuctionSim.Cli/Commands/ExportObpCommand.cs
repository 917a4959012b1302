using System.Globalization;
using AdAuctionSim.Cli.Terminal;
using AdAuctionSim.Simulation.OffPolicy;
using AdAuctionSim.Simulation.Output;

namespace AdAuctionSim.Cli.Commands;

/// <summary>
/// <c>adsim export-obp &lt;simulation-dir&gt;</c>: the logged view as Open Bandit Pipeline bandit feedback
/// (<see cref="BanditFeedbackExport"/>), written into a sibling folder and renamed into place when complete.
/// </summary>
internal sealed class ExportObpCommand(ExportObpArguments arguments, CliTerminal terminal) : ICliCommand
{
    public Task<int> RunAsync(CancellationToken cancellation)
    {
        var folder = terminal.Resolve(arguments.Simulation);
        if (!Directory.Exists(folder))
        {
            throw new CliInputException($"<simulation-dir>: {arguments.Simulation} is not a folder; expected a folder written by adsim simulate");
        }
        LoggedView view;
        try
        {
            view = LoggedView.Open(folder);
        }
        catch (Exception e) when (e is InvalidDataException or FileNotFoundException or IOException)
        {
            throw new CliInputException($"<simulation-dir>: {arguments.Simulation}: {e.Message}");
        }
        var target = Path.TrimEndingDirectorySeparator(terminal.Resolve(arguments.Out ?? Path.Combine(arguments.Simulation, OpeCommandSpec.ExportFolder)));
        OutputTarget.CheckFolder(terminal, target, OutputKind.BanditFeedback, arguments.Force, folder);
        byte? split = arguments.Split switch
        {
            "train" => 0,
            "validation" => 1,
            "test" => 2,
            _ => null,
        };
        var reward = OpeRewards.Parse(arguments.Reward);
        LoggedFeedback feedback;
        try
        {
            feedback = LoggedFeedback.Read(view, split);
        }
        catch (InvalidDataException e)
        {
            throw new CliInputException($"<simulation-dir>: {e.Message}");
        }
        cancellation.ThrowIfCancellationRequested();
        var temp = OutputFolder.CreatePartial(target);
        try
        {
            BanditFeedbackExport.Write(temp, feedback, reward, view.ReadScenario().LoggingPolicy.BidMultipliers);
            cancellation.ThrowIfCancellationRequested();
            OutputFolder.Publish(temp, target, arguments.Force);
        }
        catch
        {
            OutputFolder.TryDelete(temp);
            throw;
        }
        terminal.Heading(string.Create(CultureInfo.InvariantCulture,
            $"Exported {feedback.Rounds} rounds ({feedback.Actions} actions: {feedback.Candidates} candidates × {feedback.Multipliers} bid levels) to {terminal.Display(target)}: "
            + $"{BanditFeedbackExport.ParquetFile}, {BanditFeedbackExport.CsvFile}, {BanditFeedbackExport.MetaFile}"));
        return Task.FromResult(ExitCodes.Success);
    }
}
