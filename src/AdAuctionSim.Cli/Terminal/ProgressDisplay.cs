using System.Diagnostics;
using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace AdAuctionSim.Cli.Terminal;

/// <summary>
/// Runs long work on a worker thread and shows its progress: a live bar with count, rate and ETA on a terminal,
/// or a plain line every ~10% when output is redirected (CI logs, files, tests).
/// </summary>
internal static class ProgressDisplay
{
    /// <summary>Runs <paramref name="work"/>, which reports how many of <paramref name="total"/> items are done.</summary>
    public static async Task<T> RunAsync<T>(CliTerminal terminal, string label, string verb, string unit, long total,
        Func<IProgress<long>, T> work, CancellationToken cancellation)
    {
        if (terminal.Ansi is not { } ansi)
        {
            var plain = new PlainProgress(terminal.Out, verb, unit, total);
            return await Task.Run(() => work(plain), cancellation).ConfigureAwait(false);
        }
        return await ansi.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(
                new TaskDescriptionColumn(),
                new ProgressBarColumn(),
                new PercentageColumn(),
                new CountColumn(unit),
                new RateColumn(unit),
                new RemainingTimeColumn(),
                new SpinnerColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask(label, maxValue: total);
                var result = await Task.Run(() => work(new TaskProgress(task)), cancellation).ConfigureAwait(false);
                task.Value = total;
                task.StopTask();
                return result;
            })
            .ConfigureAwait(false);
    }

    /// <summary>Shows a spinner while <paramref name="work"/> runs (terminal only) and returns its result and duration.</summary>
    public static async Task<(T Result, TimeSpan Elapsed)> StatusAsync<T>(CliTerminal terminal, string status, Func<T> work,
        CancellationToken cancellation)
    {
        var clock = Stopwatch.StartNew();
        T result;
        if (terminal.Ansi is { } ansi)
        {
            result = await ansi.Status()
                .StartAsync(Markup.Escape(status), _ => Task.Run(work, cancellation))
                .ConfigureAwait(false);
        }
        else
        {
            terminal.Out.WriteLine(status);
            result = await Task.Run(work, cancellation).ConfigureAwait(false);
        }
        return (result, clock.Elapsed);
    }

    private sealed class TaskProgress(ProgressTask task) : IProgress<long>
    {
        public void Report(long value) => task.Value = value;
    }

    /// <summary>"simulated 300000/1000000 requests (30%)" each time another tenth is done.</summary>
    private sealed class PlainProgress(TextWriter writer, string verb, string unit, long total) : IProgress<long>
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private int _nextTenth = 1;

        public void Report(long value)
        {
            var tenth = total == 0 ? 10 : (int)Math.Min(10, value * 10 / total);
            if (tenth < _nextTenth)
            {
                return;
            }
            _nextTenth = tenth + 1;
            var rate = value / Math.Max(_clock.Elapsed.TotalSeconds, 1e-9);
            writer.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{verb} {value}/{total} {unit} ({value * 100 / Math.Max(total, 1)}%), {rate:F0} {unit}/s, {_clock.Elapsed.TotalSeconds:F1} s"));
        }
    }

    private sealed class CountColumn(string unit) : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
            new Text(string.Create(CultureInfo.InvariantCulture, $"{task.Value:N0}/{task.MaxValue:N0} {unit}"));
    }

    private sealed class RateColumn(string unit) : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
            new Text(task.Speed is { } speed
                ? string.Create(CultureInfo.InvariantCulture, $"{speed:N0} {unit}/s")
                : $"- {unit}/s", new Style(Color.Grey));
    }
}
