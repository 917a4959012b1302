using System.Text.RegularExpressions;
using AdAuctionSim.Cli.Terminal;
using Spectre.Console;

namespace AdAuctionSim.Cli.Tests;

/// <summary><c>adsim simulate</c> end to end on a tiny scenario: files, summary, existing output, failures, cancellation.</summary>
public sealed class SimulateTests
{
    [Fact]
    public void Simulates_a_tiny_scenario_then_refuses_to_overwrite_it_unless_forced()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("tiny.json", Scenarios.Tiny);

        var first = sandbox.Run("simulate", "tiny.json", "--threads", "2");

        Assert.True(first.ExitCode == 0, first.ToString());
        var dir = sandbox.PathOf("simulations/tiny");
        var files = Directory.GetFiles(dir).Select(Path.GetFileName).ToList();
        foreach (var prefix in new[] { "impressions", "lost_bids", "truth", "manifest" })
        {
            Assert.Contains(files, f => f!.StartsWith(prefix, StringComparison.Ordinal));
        }
        Assert.Contains("Output: simulations/tiny (parquet)", first.OutLines);
        Assert.Contains(first.OutLines, l => l.Contains("win rate", StringComparison.Ordinal));
        Assert.Contains(first.OutLines, l => l.Contains("simulate+write", StringComparison.Ordinal));
        Assert.Contains(first.OutLines, l => l.StartsWith("simulated 20000/20000 requests (100%)", StringComparison.Ordinal));
        Assert.Equal("", first.Error);
        var snapshot = Snapshot(dir);

        var again = sandbox.Run("simulate", "tiny.json");

        Assert.True(again.ExitCode == 2, again.ToString());
        Assert.Contains("simulations/tiny", again.Error, StringComparison.Ordinal);
        Assert.Contains("--force", again.Error, StringComparison.Ordinal);
        Assert.Equal(snapshot, Snapshot(dir));

        var forced = sandbox.Run("simulate", "tiny.json", "--force", "--requests", "5000", "--seed", "3");

        Assert.True(forced.ExitCode == 0, forced.ToString());
        Assert.Contains(forced.OutLines, l => l.Contains("5000 requests", StringComparison.Ordinal));
        Assert.Equal(["simulations", "simulations/tiny", "tiny.json"], sandbox.Entries().Where(e => e.Count(c => c == '/') < 2));
    }

    /// <summary>
    /// The selection table prints the three means the ratios divide: win part O/D, funnel part C/O, and their product, the
    /// click selection ratio C/D, each the quotient of the printed means (to the rounding of four decimals).
    /// </summary>
    [Fact]
    public void The_selection_table_prints_the_means_each_ratio_divides_and_the_ratio_is_the_product_of_its_parts()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("tiny.json", Scenarios.Tiny);

        var result = sandbox.Run("simulate", "tiny.json", "--threads", "1");

        Assert.True(result.ExitCode == 0, result.ToString());
        var header = Assert.Single(result.OutLines, l => l.TrimStart().StartsWith("stage ", StringComparison.Ordinal) && l.Contains("mean q (O)", StringComparison.Ordinal));
        Assert.Contains("win part O/D", header, StringComparison.Ordinal);
        Assert.Contains("funnel part C/O", header, StringComparison.Ordinal);
        Assert.Contains("click selection ratio C/D", header, StringComparison.Ordinal);
        // Rows: stage, mean q (D), mean q (O), mean q (C), win part, funnel part, ratio, part not explained by x; the tiny
        // scenario's funnel has two post-click stages, and its hidden trait is a user trait, which x (user id) explains.
        var rows = result.OutLines.SkipWhile(l => l != header).Skip(1)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).TakeWhile(f => f.Length == 8).ToList();
        Assert.All(rows, f => Assert.Equal("1.0000", f[7]));
        Assert.Equal(["authorize", "convert"], rows.Select(f => f[0]));
        const double half = 0.00005;   // half a unit of the fourth decimal
        static void Quotient(double ratio, double top, double bottom) =>
            Assert.InRange(ratio, (top - half) / (bottom + half) - half, (top + half) / (bottom - half) + half);
        foreach (var f in rows)
        {
            double N(int i) => double.Parse(f[i], System.Globalization.CultureInfo.InvariantCulture);
            var (d, o, c, win, funnel, ratio) = (N(1), N(2), N(3), N(4), N(5), N(6));
            Quotient(win, o, d);
            Quotient(funnel, c, o);
            Quotient(ratio, c, d);
            Assert.InRange(ratio, ((win - half) * (funnel - half)) - half, ((win + half) * (funnel + half)) + half);
        }
    }

    [Fact]
    public void Writes_csv_into_the_directory_given_by_out()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("tiny.json", Scenarios.Tiny);

        var result = sandbox.Run("simulate", "tiny.json", "--out", "runs/a", "--format", "CSV", "--requests", "3000");

        Assert.True(result.ExitCode == 0, result.ToString());
        var files = Directory.GetFiles(sandbox.PathOf("runs/a")).Select(Path.GetFileName).ToList();
        Assert.Contains(files, f => f!.StartsWith("impressions", StringComparison.Ordinal) && f.EndsWith(".csv", StringComparison.Ordinal));
        Assert.Contains("Output: runs/a (csv)", result.OutLines);
    }

    [Fact]
    public void An_unexpected_failure_exits_1_with_one_line_and_the_stack_trace_only_when_verbose()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("tiny.json", Scenarios.Tiny);

        // A folder name longer than the file system takes (255 bytes): the file system refuses to make it, a failure that
        // no check of the arguments foresees.
        var tooLong = new string('x', 300);
        var quiet = sandbox.Run("simulate", "tiny.json", "--out", tooLong, "--requests", "1000");
        var verbose = sandbox.Run("simulate", "tiny.json", "--out", tooLong, "--requests", "1000", "--verbose");

        Assert.True(quiet.ExitCode == 1, quiet.ToString());
        Assert.StartsWith("adsim simulate: error: ", quiet.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", quiet.Error, StringComparison.Ordinal);
        Assert.Contains("--verbose", quiet.Error, StringComparison.Ordinal);
        Assert.True(verbose.ExitCode == 1, verbose.ToString());
        Assert.Contains("   at ", verbose.Error, StringComparison.Ordinal);
        Assert.Contains("info SimulateCommand:", verbose.Error, StringComparison.Ordinal);
        Assert.Equal(["tiny.json"], sandbox.Entries());
    }

    [Fact]
    public void Cancelling_during_the_simulation_exits_130_and_writes_nothing()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("tiny.json", Scenarios.Tiny);
        using var cancel = new CancellationTokenSource();
        var stdout = new CancelOnText(cancel, "simulated ");
        var stderr = new StringWriter();

        // Cancel at the first progress line (10% done), as Ctrl+C would through the host's lifetime.
        var code = CliApp.RunAsync(["simulate", "tiny.json", "--requests", "3000000"],
            stdout, stderr, cancel.Token, sandbox.Root).GetAwaiter().GetResult();

        Assert.True(code == 130, $"exit {code}: {stdout}{stderr}");
        Assert.True(cancel.IsCancellationRequested);
        Assert.Equal("adsim simulate: cancelled; nothing was written." + Environment.NewLine, stderr.ToString());
        // Neither simulations/tiny nor its partial sibling, nor the simulations/ folder made for them.
        Assert.Equal(["tiny.json"], sandbox.Entries());
    }

    [Fact]
    public void On_an_interactive_terminal_shows_a_progress_bar_and_tables()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("tiny.json", Scenarios.Tiny);
        var screen = new StringWriter();
        var ansi = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.Yes,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.Yes,
            Out = new AnsiConsoleOutput(screen),
        });
        ansi.Profile.Width = 160;
        var stderr = new StringWriter();

        var code = CliApp.RunAsync(["simulate", "tiny.json", "--requests", "5000"],
            new CliTerminal(new StringWriter(), stderr, sandbox.Root, ansi), CancellationToken.None).GetAwaiter().GetResult();

        var text = Regex.Replace(screen.ToString(), @"\x1b\[[0-9;?]*[A-Za-z]", "");
        Assert.True(code == 0, $"exit {code}: {text}{stderr}");
        Assert.True(text.Contains("5,000/5,000 requests", StringComparison.Ordinal), text);
        Assert.Matches(@"│ impressions\.parquet +│ +\d+ │", text);
        Assert.Matches(@"│ click +│ +0\.04 │", text);
        Assert.Equal("", stderr.ToString());
    }

    private static Dictionary<string, (long, DateTime)> Snapshot(string dir) =>
        Directory.GetFiles(dir).ToDictionary(f => f, f => (new FileInfo(f).Length, File.GetLastWriteTimeUtc(f)));

    /// <summary>Standard output that cancels when a line contains some text.</summary>
    private sealed class CancelOnText(CancellationTokenSource cancel, string text) : StringWriter
    {
        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            if (value is not null && value.Contains(text, StringComparison.Ordinal))
            {
                cancel.Cancel();
            }
        }
    }
}
