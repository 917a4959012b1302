using System.Globalization;

namespace AdAuctionSim.Cli.CommandLine;

/// <summary>What kind of value an option takes.</summary>
internal enum OptionKind
{
    /// <summary>No value: present or not.</summary>
    Flag,
    /// <summary>A whole number within <see cref="OptionSpec.Min"/> and <see cref="OptionSpec.Max"/>.</summary>
    Integer,
    /// <summary>Free text (a path).</summary>
    Text,
    /// <summary>One of <see cref="OptionSpec.Choices"/> (case-insensitive).</summary>
    Choice,
}

/// <summary>One option of a command: its name, value, limits, default and help line.</summary>
internal sealed record OptionSpec(string Name, OptionKind Kind, string Help)
{
    /// <summary>Placeholder for the value in usage lines, for example <c>N</c> or <c>DIR</c>.</summary>
    public string ValueName { get; init; } = "VALUE";
    /// <summary>The default as the help shows it; null when the option has none worth stating.</summary>
    public string? Default { get; init; }
    public long Min { get; init; } = long.MinValue;
    public long Max { get; init; } = long.MaxValue;
    public IReadOnlyList<string> Choices { get; init; } = [];
    /// <summary>One-letter alias without the dash, for example <c>v</c> for <c>-v</c>.</summary>
    public char? Short { get; init; }

    /// <summary>What values are allowed, as error messages and help say it.</summary>
    public string Allowed => Kind switch
    {
        OptionKind.Integer => $"an integer from {Min.ToString(CultureInfo.InvariantCulture)} to {Max.ToString(CultureInfo.InvariantCulture)}",
        OptionKind.Choice => "one of: " + string.Join(", ", Choices),
        OptionKind.Text => ValueName switch
        {
            "DIR" => "a directory path",
            "FILE" => "a file path",
            _ => "a non-empty value",
        },
        _ => "no value",
    };
}

/// <summary>A positional argument of a command.</summary>
internal sealed record ArgumentSpec(string Name, string Help);

/// <summary>
/// A command (verb path such as <c>simulate</c> or <c>scenario validate</c>) with its arguments and options.
/// <see cref="Bind"/> turns a parse into the handler's typed arguments.
/// </summary>
internal sealed record CommandSpec(
    string Path,
    string Summary,
    string Description,
    IReadOnlyList<ArgumentSpec> Arguments,
    IReadOnlyList<OptionSpec> Options,
    Type Handler,
    Func<ParsedCommand, object> Bind)
{
    public string Usage =>
        $"adsim {Path}{string.Concat(Arguments.Select(a => $" {a.Name}"))}{(Options.Count > 0 ? " [options]" : "")}";
}

/// <summary>A command line that could not be understood. Exit code 2; the message names the option and value.</summary>
internal sealed class UsageException(string message) : Exception(message);
