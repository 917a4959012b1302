using System.Diagnostics;
using System.Globalization;
using AdAuctionSim.Cli.Terminal;
using Spectre.Console;

namespace AdAuctionSim.Cli.Runs;

/// <summary>
/// Progress of a whole run: an overall count of units (simulations, trained models, evaluations) and the phase in hand
/// (requests simulated, epochs trained). Calls come from the worker thread.
/// </summary>
internal interface IRunProgress
{
    /// <summary>A phase starts: what it is and how many items it has (1 when it has no finer steps).</summary>
    void Phase(string description, long total, string unit);

    /// <summary>Items of the current phase done so far.</summary>
    void Report(long done);

    /// <summary>The current unit is finished (or reused); <paramref name="summary"/> says how it went.</summary>
    void UnitDone(string summary);

    /// <summary>A line that is not progress (a heading, a note).</summary>
    void Note(string line);
}

/// <summary>Plain lines for redirected output: one per unit, and a line every tenth of a long phase.</summary>
internal sealed class PlainRunProgress(TextWriter writer, int units) : IRunProgress
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private int _done;
    private string _phase = "";
    private string _unit = "";
    private long _total;
    private int _nextTenth;

    public void Phase(string description, long total, string unit)
    {
        (_phase, _total, _unit, _nextTenth) = (description, total, unit, 1);
        writer.WriteLine($"[{_done + 1}/{units}] {description} ...");
    }

    public void Report(long done)
    {
        if (_total <= 1)
        {
            return;
        }
        var tenth = (int)Math.Min(10, done * 10 / _total);
        if (tenth < _nextTenth)
        {
            return;
        }
        _nextTenth = tenth + 1;
        writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {_phase}: {done}/{_total} {_unit} ({done * 100 / _total}%), {_clock.Elapsed.TotalSeconds:F1} s into the run"));
    }

    public void UnitDone(string summary)
    {
        _done++;
        writer.WriteLine($"[{_done}/{units}] {summary}");
    }

    public void Note(string line) => writer.WriteLine(line);
}

/// <summary>Live bars on a terminal: the run's units, and the phase in hand with its own count and ETA.</summary>
internal sealed class LiveRunProgress : IRunProgress
{
    private readonly ProgressContext _context;
    private readonly ProgressTask _overall;
    private ProgressTask? _phase;

    public LiveRunProgress(ProgressContext context, int units)
    {
        _context = context;
        _overall = context.AddTask("run", maxValue: units);
    }

    public void Phase(string description, long total, string unit)
    {
        _phase?.StopTask();
        _phase = _context.AddTask(Markup.Escape($"{description} ({unit})"), maxValue: Math.Max(total, 1));
    }

    public void Report(long done)
    {
        if (_phase is { } p)
        {
            p.Value = done;
        }
    }

    public void UnitDone(string summary)
    {
        if (_phase is { } p)
        {
            p.Value = p.MaxValue;
            p.Description = Markup.Escape(summary);
            p.StopTask();
            _phase = null;
        }
        _overall.Increment(1);
    }

    /// <summary>Notes are not shown under live bars: the bars say the same, and the report keeps every timing.</summary>
    public void Note(string line)
    {
    }

    /// <summary>Runs <paramref name="work"/> under live bars on the terminal, or with plain lines when output is redirected.</summary>
    public static async Task<T> RunAsync<T>(CliTerminal terminal, int units, Func<IRunProgress, T> work, CancellationToken cancellation)
    {
        if (terminal.Ansi is not { } ansi)
        {
            var plain = new PlainRunProgress(terminal.Out, units);
            return await Task.Run(() => work(plain), cancellation).ConfigureAwait(false);
        }
        return await ansi.Progress()
            .AutoClear(false)
            .HideCompleted(true)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(context => Task.Run(() => work(new LiveRunProgress(context, units)), cancellation))
            .ConfigureAwait(false);
    }
}
