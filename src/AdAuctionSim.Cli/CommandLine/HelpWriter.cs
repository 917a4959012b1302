using System.Reflection;

namespace AdAuctionSim.Cli.CommandLine;

/// <summary>Usage text: for everything, for a group (<c>adsim scenario</c>) or for one command, every option with its default.</summary>
internal static class HelpWriter
{
    public static string Version =>
        typeof(HelpWriter).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(HelpWriter).Assembly.GetName().Version?.ToString()
        ?? "unknown";

    public static void Write(TextWriter w, HelpRequest request, IReadOnlyList<CommandSpec> commands)
    {
        if (request.Command is { } command)
        {
            WriteCommand(w, command);
        }
        else
        {
            WriteOverview(w, commands, request.Group);
        }
    }

    private static void WriteOverview(TextWriter w, IReadOnlyList<CommandSpec> commands, string? group)
    {
        var shown = group is null ? commands : commands.Where(c => c.Path.StartsWith(group + " ", StringComparison.Ordinal)).ToList();
        w.WriteLine($"adsim {Version}: synthetic ad-auction simulator");
        w.WriteLine();
        w.WriteLine(group is null ? "Usage: adsim <command> [arguments] [options]" : $"Usage: adsim {group} <command> [arguments] [options]");
        w.WriteLine();
        w.WriteLine("Commands:");
        var rows = shown.Select(c => (Left: c.Usage.Replace(" [options]", "", StringComparison.Ordinal)[6..], c.Summary)).ToList();
        if (group is null)
        {
            rows.Add(("help [command]", "Show help for a command (same as adsim <command> --help)"));
        }
        WriteRows(w, rows);
        w.WriteLine();
        w.WriteLine("Global options:");
        WriteRows(w, [.. CommandLineParser.GlobalOptions.Select(Row), ("    --version", "Print the version")]);
        w.WriteLine();
        w.WriteLine("Exit codes: 0 success, 1 failure, 2 bad input (arguments or scenario), 130 cancelled (Ctrl+C).");
        w.WriteLine($"Run 'adsim {(group is null ? "" : group + " ")}<command> --help' for the options of a command.");
    }

    private static void WriteCommand(TextWriter w, CommandSpec command)
    {
        w.WriteLine($"Usage: {command.Usage}");
        w.WriteLine();
        w.WriteLine(command.Summary + ".");
        foreach (var line in Wrap(command.Description, 100))
        {
            w.WriteLine(line);
        }
        if (command.Arguments.Count > 0)
        {
            w.WriteLine();
            w.WriteLine("Arguments:");
            WriteRows(w, command.Arguments.Select(a => (a.Name, a.Help)).ToList());
        }
        w.WriteLine();
        w.WriteLine("Options:");
        WriteRows(w, [.. command.Options.Select(Row), .. CommandLineParser.GlobalOptions.Select(Row)]);
    }

    private static (string, string) Row(OptionSpec o)
    {
        var name = (o.Short is { } s ? $"-{s}, " : "    ") + "--" + o.Name + (o.Kind == OptionKind.Flag ? "" : " " + o.ValueName);
        var help = o.Help;
        if (o.Kind is OptionKind.Integer or OptionKind.Choice)
        {
            help += $"; {o.Allowed}";
        }
        if (o.Default is not null)
        {
            help += $" (default: {o.Default})";
        }
        return (name, help);
    }

    private static void WriteRows(TextWriter w, IReadOnlyList<(string Left, string Right)> rows)
    {
        var width = rows.Max(r => r.Left.Length) + 2;
        foreach (var (left, right) in rows)
        {
            w.WriteLine($"  {left.PadRight(width)}{right}");
        }
    }

    private static IEnumerable<string> Wrap(string text, int width)
    {
        foreach (var paragraph in text.Split(Environment.NewLine))
        {
            if (paragraph.StartsWith(' '))
            {
                yield return paragraph;
                continue;
            }
            var line = "";
            foreach (var word in paragraph.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (line.Length > 0 && line.Length + 1 + word.Length > width)
                {
                    yield return line;
                    line = "";
                }
                line = line.Length == 0 ? word : line + " " + word;
            }
            if (line.Length > 0)
            {
                yield return line;
            }
        }
    }
}
