using Spectre.Console;

namespace AdAuctionSim.Cli.Terminal;

/// <summary>
/// Where a run writes and how: standard output and error, whether output is an interactive terminal (live progress,
/// tables) or redirected (plain lines), and the directory relative paths are resolved against.
/// Tests pass string writers and a temporary directory.
/// </summary>
internal sealed class CliTerminal
{
    public CliTerminal(TextWriter output, TextWriter error, string workingDirectory, IAnsiConsole? ansi = null)
    {
        Out = TextWriter.Synchronized(output);
        Error = TextWriter.Synchronized(error);
        WorkingDirectory = Path.GetFullPath(workingDirectory);
        Ansi = ansi;
    }

    public TextWriter Out { get; }
    public TextWriter Error { get; }
    public string WorkingDirectory { get; }

    /// <summary>The Spectre console when standard output is an interactive terminal; null when output is plain text.</summary>
    public IAnsiConsole? Ansi { get; }

    public bool Interactive => Ansi is not null;

    /// <summary>The process's own console: interactive when standard output is a terminal that Spectre can drive.</summary>
    public static CliTerminal FromConsole()
    {
        var interactive = !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
        return new CliTerminal(Console.Out, Console.Error, Environment.CurrentDirectory, interactive ? AnsiConsole.Console : null);
    }

    /// <summary>A path as the user gave it, made absolute against <see cref="WorkingDirectory"/>.</summary>
    public string Resolve(string path) => Path.GetFullPath(path, WorkingDirectory);

    /// <summary>A path for messages: relative to the working directory when it lies beneath it.</summary>
    public string Display(string fullPath)
    {
        var relative = Path.GetRelativePath(WorkingDirectory, fullPath);
        return relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative) ? fullPath : relative;
    }

    public void WriteLine(string line = "")
    {
        if (Ansi is not null)
        {
            Ansi.WriteLine(line);
        }
        else
        {
            Out.WriteLine(line);
        }
    }

    /// <summary>A heading line: bold on a terminal, plain otherwise.</summary>
    public void Heading(string text)
    {
        if (Ansi is not null)
        {
            Ansi.MarkupLine($"[bold]{Markup.Escape(text)}[/]");
        }
        else
        {
            Out.WriteLine(text);
        }
    }
}
