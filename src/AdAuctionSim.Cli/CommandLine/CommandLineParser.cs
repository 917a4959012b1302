using System.Globalization;

namespace AdAuctionSim.Cli.CommandLine;

/// <summary>What the command line asks for.</summary>
internal abstract record ParseOutcome(bool Verbose);

/// <summary><c>--help</c>, <c>help</c> or <c>help &lt;command&gt;</c>: usage of a command, of a group (<c>scenario</c>), or of everything.</summary>
internal sealed record HelpRequest(bool Verbose, CommandSpec? Command, string? Group) : ParseOutcome(Verbose);

/// <summary><c>--version</c>.</summary>
internal sealed record VersionRequest(bool Verbose) : ParseOutcome(Verbose);

/// <summary>A command with its positional arguments and option values, all checked against the command's spec.</summary>
internal sealed record ParsedCommand(
    bool Verbose,
    CommandSpec Command,
    IReadOnlyList<string> Arguments,
    IReadOnlyDictionary<string, string> Values,
    IReadOnlySet<string> Flags) : ParseOutcome(Verbose)
{
    public string? Text(string option) => Values.GetValueOrDefault(option);

    public long? Integer(string option) =>
        Values.TryGetValue(option, out var v) ? long.Parse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) : null;

    public bool Flag(string option) => Flags.Contains(option);
}

/// <summary>
/// A small hand-written parser: <c>adsim [global options] &lt;command&gt; [arguments] [options]</c>, options as
/// <c>--name value</c> or <c>--name=value</c>, <c>--</c> ends the options. Every problem is a
/// <see cref="UsageException"/> naming the option, the value and what is allowed.
/// </summary>
internal static class CommandLineParser
{
    private static readonly OptionSpec HelpOption = new("help", OptionKind.Flag, "Show this help") { Short = 'h' };
    private static readonly OptionSpec VerboseOption =
        new("verbose", OptionKind.Flag, "Show information and debug logs, and stack traces on errors") { Short = 'v' };
    private static readonly OptionSpec VersionOption = new("version", OptionKind.Flag, "Print the version");

    /// <summary>Options every command accepts, in help order.</summary>
    public static IReadOnlyList<OptionSpec> GlobalOptions { get; } = [VerboseOption, HelpOption];

    public static ParseOutcome Parse(IReadOnlyList<string> args, IReadOnlyList<CommandSpec> commands)
    {
        var terminator = IndexOf(args, "--");
        var optionArgs = terminator < 0 ? args : args.Take(terminator).ToList();
        var help = optionArgs.Any(a => Is(a, HelpOption));
        var verbose = optionArgs.Any(a => Is(a, VerboseOption));
        var version = optionArgs.Any(a => Is(a, VersionOption));

        // Command words come first (global options may sit among them).
        var words = new List<string>();
        CommandSpec? command = null;
        var i = 0;
        for (; i < args.Count && command is null; i++)
        {
            var token = args[i];
            if (Is(token, HelpOption) || Is(token, VerboseOption) || Is(token, VersionOption))
            {
                continue;
            }
            if (words.Count > 0 && words[0] == "help")
            {
                words.Add(token);
                continue;
            }
            if (LooksLikeOption(token))
            {
                if (help || version)
                {
                    continue;
                }
                var where = words.Count == 0 ? "adsim" : $"adsim {string.Join(' ', words)}";
                throw new UsageException(
                    $"{where}: unknown option '{token}'. Before the command only --help, --verbose and --version are allowed; "
                    + $"{(words.Count == 0 ? "expected a command: " + CommandList(commands, "") : "expected a subcommand: " + CommandList(commands, words[0]))}."
                    + HelpHint(words.Count == 0 ? "" : words[0]));
            }
            words.Add(token);
            var path = string.Join(' ', words);
            command = commands.FirstOrDefault(c => c.Path == path);
            if (command is null && path != "help" && !commands.Any(c => c.Path.StartsWith(path + " ", StringComparison.Ordinal)))
            {
                if (words.Count == 1)
                {
                    throw new UsageException($"adsim: unknown command '{token}'; expected one of: {CommandList(commands, "")}." + HelpHint(""));
                }
                throw new UsageException(
                    $"adsim {words[0]}: unknown subcommand '{token}'; expected one of: {CommandList(commands, words[0])}." + HelpHint(words[0]));
            }
        }

        if (words.Count > 0 && words[0] == "help")
        {
            return HelpFor(words.Skip(1).ToList(), commands, verbose);
        }
        if (help)
        {
            return new HelpRequest(verbose, command, command is null && words.Count > 0 ? words[0] : null);
        }
        if (version)
        {
            if (words.Count == 0)
            {
                return new VersionRequest(verbose);
            }
            throw new UsageException($"adsim {string.Join(' ', words)}: --version is only allowed on its own (adsim --version)."
                + HelpHint(command?.Path ?? words[0]));
        }
        if (command is null)
        {
            if (words.Count == 0)
            {
                throw new UsageException($"adsim: missing command; expected one of: {CommandList(commands, "")}." + HelpHint(""));
            }
            throw new UsageException(
                $"adsim {words[0]}: missing subcommand; expected one of: {CommandList(commands, words[0])}." + HelpHint(words[0]));
        }
        return ParseCommand(command, args, i, verbose);
    }

    private static ParsedCommand ParseCommand(CommandSpec command, IReadOnlyList<string> args, int start, bool verbose)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var flags = new HashSet<string>(StringComparer.Ordinal);
        var positional = new List<string>();
        var optionsEnded = false;
        for (var i = start; i < args.Count; i++)
        {
            var token = args[i];
            if (!optionsEnded && token == "--")
            {
                optionsEnded = true;
                continue;
            }
            if (optionsEnded || !LooksLikeOption(token))
            {
                positional.Add(token);
                continue;
            }
            if (Is(token, HelpOption) || Is(token, VerboseOption))
            {
                continue;
            }
            var (name, inline) = Split(token);
            var spec = Find(command, name)
                ?? throw Error(command, command.Options.Count == 0
                    ? $"unknown option '{name}'; this command takes no options (only --help and --verbose)"
                    : $"unknown option '{name}'{Suggest(command, name)}; the options are: " + string.Join(", ", command.Options.Select(o => "--" + o.Name)));
            var shown = "--" + spec.Name;
            if (values.ContainsKey(spec.Name) || flags.Contains(spec.Name))
            {
                throw Error(command, $"option {shown} is given more than once; give it once");
            }
            if (spec.Kind == OptionKind.Flag)
            {
                if (inline is not null)
                {
                    throw Error(command, $"option {shown} takes no value, but got \"{inline}\"; write just {shown}");
                }
                flags.Add(spec.Name);
                continue;
            }
            var value = inline;
            if (value is null)
            {
                // An integer may be negative ("--requests -5" is out of range, not a missing value); other values may not start with "--".
                var next = i + 1 < args.Count ? args[i + 1] : null;
                if (next is not null && (spec.Kind == OptionKind.Integer ? next != "--" : !next.StartsWith("--", StringComparison.Ordinal)))
                {
                    value = next;
                    i++;
                }
            }
            if (value is null)
            {
                throw Error(command, $"option {shown} needs a value: {spec.Allowed}");
            }
            values[spec.Name] = Check(command, spec, value);
        }

        if (positional.Count < command.Arguments.Count)
        {
            var missing = command.Arguments[positional.Count];
            throw Error(command, $"missing argument {missing.Name} ({missing.Help})");
        }
        if (positional.Count > command.Arguments.Count)
        {
            var extra = positional[command.Arguments.Count];
            throw Error(command, LooksLikeOption(extra)
                ? $"unexpected argument '{extra}' after '--'"
                : $"unexpected argument '{extra}'; expected {(command.Arguments.Count == 0 ? "no arguments" : string.Join(" ", command.Arguments.Select(a => a.Name)))}");
        }
        return new ParsedCommand(verbose, command, positional, values, flags);
    }

    /// <summary>Checks a value against its option and returns it normalised (integers without separators, choices lower-case).</summary>
    private static string Check(CommandSpec command, OptionSpec spec, string value)
    {
        var shown = "--" + spec.Name;
        switch (spec.Kind)
        {
            case OptionKind.Integer:
                var digits = value.Replace("_", "", StringComparison.Ordinal);
                if (value.Length == 0 || value.StartsWith('_') || value.EndsWith('_')
                    || !long.TryParse(digits, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n))
                {
                    // Digits that do not fit a 64-bit integer are an integer all the same, just far out of range.
                    var unsigned = digits.StartsWith('-') || digits.StartsWith('+') ? digits[1..] : digits;
                    var tooLong = value.Length > 0 && !value.StartsWith('_') && !value.EndsWith('_')
                        && unsigned.Length > 0 && unsigned.All(char.IsAsciiDigit);
                    throw Error(command, tooLong
                        ? $"option {shown}: value {value} is out of range; expected {spec.Allowed}"
                        : $"option {shown}: \"{value}\" is not an integer; expected {spec.Allowed}");
                }
                if (n < spec.Min || n > spec.Max)
                {
                    throw Error(command, $"option {shown}: value {n.ToString(CultureInfo.InvariantCulture)} is out of range; expected {spec.Allowed}");
                }
                return n.ToString(CultureInfo.InvariantCulture);
            case OptionKind.Choice:
                var choice = spec.Choices.FirstOrDefault(c => string.Equals(c, value, StringComparison.OrdinalIgnoreCase))
                    ?? throw Error(command, $"option {shown}: value \"{value}\" is not allowed; expected {spec.Allowed}");
                return choice;
            default:
                if (value.Length == 0)
                {
                    throw Error(command, $"option {shown}: the value is empty; expected {spec.Allowed}");
                }
                return value;
        }
    }

    private static HelpRequest HelpFor(IReadOnlyList<string> topic, IReadOnlyList<CommandSpec> commands, bool verbose)
    {
        var words = topic.Where(t => !LooksLikeOption(t)).ToList();
        if (words.Count == 0)
        {
            return new HelpRequest(verbose, null, null);
        }
        var path = string.Join(' ', words);
        var command = commands.FirstOrDefault(c => c.Path == path);
        if (command is not null)
        {
            return new HelpRequest(verbose, command, null);
        }
        if (words.Count == 1 && commands.Any(c => c.Path.StartsWith(path + " ", StringComparison.Ordinal)))
        {
            return new HelpRequest(verbose, null, path);
        }
        throw new UsageException(
            $"adsim help: unknown command '{path}'; expected one of: {string.Join(", ", commands.Select(c => c.Path))}." + HelpHint(""));
    }

    private static bool LooksLikeOption(string token) => token.Length > 1 && token[0] == '-';

    private static bool Is(string token, OptionSpec option) =>
        token == "--" + option.Name || option.Short is { } s && token == "-" + s;

    private static int IndexOf(IReadOnlyList<string> args, string value)
    {
        for (var i = 0; i < args.Count; i++)
        {
            if (args[i] == value)
            {
                return i;
            }
        }
        return -1;
    }

    private static (string Name, string? Inline) Split(string token)
    {
        var eq = token.IndexOf('=', StringComparison.Ordinal);
        return eq > 0 ? (token[..eq], token[(eq + 1)..]) : (token, null);
    }

    private static OptionSpec? Find(CommandSpec command, string name) =>
        command.Options.FirstOrDefault(o => name == "--" + o.Name || o.Short is { } s && name == "-" + s);

    private static string Suggest(CommandSpec command, string name)
    {
        var bare = name.TrimStart('-');
        var best = command.Options
            .Select(o => (o.Name, Distance: Distance(bare, o.Name)))
            .Where(x => x.Distance <= Math.Max(1, x.Name.Length / 3) || x.Name.StartsWith(bare, StringComparison.Ordinal) && bare.Length >= 2)
            .OrderBy(x => x.Distance)
            .FirstOrDefault();
        return best.Name is null ? "" : $" (did you mean --{best.Name}?)";
    }

    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }
        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }
        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
            }
        }
        return d[a.Length, b.Length];
    }

    private static string CommandList(IReadOnlyList<CommandSpec> commands, string group) => group.Length == 0
        ? string.Join(", ", commands.Select(c => c.Path.Split(' ')[0]).Append("help").Distinct())
        : string.Join(", ", commands.Where(c => c.Path.StartsWith(group + " ", StringComparison.Ordinal)).Select(c => c.Path[(group.Length + 1)..]));

    private static string HelpHint(string path) =>
        Environment.NewLine + $"Run 'adsim {(path.Length == 0 ? "" : path + " ")}--help' for usage.";

    private static UsageException Error(CommandSpec command, string message) =>
        new($"adsim {command.Path}: {message}." + HelpHint(command.Path));
}
