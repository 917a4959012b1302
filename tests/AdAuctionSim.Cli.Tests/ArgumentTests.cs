using System.Text.RegularExpressions;
using AdAuctionSim.Cli.Commands;

namespace AdAuctionSim.Cli.Tests;

/// <summary>Bad command lines are bad input (exit 2) with a message naming the option, the value and what is allowed; help and version.</summary>
public sealed class ArgumentTests
{
    [Theory]
    [InlineData("frobnicate", "'frobnicate'", "simulate, train, evaluate, run, ope, export-obp, runs, compare, scenario, bench, help")]
    [InlineData("", "missing command", "simulate, train, evaluate, run, ope, export-obp, runs, compare, scenario, bench, help")]
    [InlineData("scenario", "missing subcommand", "validate, show")]
    [InlineData("scenario check tiny.json", "'check'", "validate, show")]
    [InlineData("bench", "missing subcommand", "simulate")]
    [InlineData("simulate", "<scenario.json>", "missing argument")]
    [InlineData("simulate tiny.json other.json", "'other.json'", "unexpected argument")]
    [InlineData("simulate tiny.json --thread 2", "'--thread'", "did you mean --threads?")]
    [InlineData("simulate tiny.json --threads", "--threads", "needs a value: an integer from 1 to 1024")]
    [InlineData("simulate tiny.json --threads 0", "--threads", "value 0 is out of range; expected an integer from 1 to 1024")]
    [InlineData("simulate tiny.json --threads two", "--threads", "\"two\" is not an integer; expected an integer from 1 to 1024")]
    [InlineData("simulate tiny.json --requests -5", "--requests", "value -5 is out of range; expected an integer from 1 to 10000000000")]
    [InlineData("simulate tiny.json --requests 1.5", "--requests", "\"1.5\" is not an integer")]
    [InlineData("simulate tiny.json --requests=", "--requests", "\"\" is not an integer")]
    [InlineData("simulate tiny.json --requests 99999999999999999999", "--requests", "value 99999999999999999999 is out of range; expected an integer from 1 to 10000000000")]
    [InlineData("simulate tiny.json --seed -99999999999999999999", "--seed", "value -99999999999999999999 is out of range; expected an integer from 0 to")]
    [InlineData("scenario validate tiny.json --x", "'--x'", "unknown option '--x'; this command takes no options (only --help and --verbose)")]
    [InlineData("simulate tiny.json --seed -1", "--seed", "value -1 is out of range; expected an integer from 0 to")]
    [InlineData("simulate tiny.json --chunk 0", "'--chunk'", "unknown option")]
    [InlineData("simulate tiny.json --format json", "--format", "value \"json\" is not allowed; expected one of: parquet, csv")]
    [InlineData("simulate tiny.json --out", "--out", "needs a value: a directory path")]
    [InlineData("simulate tiny.json --force=yes", "--force", "takes no value")]
    [InlineData("simulate tiny.json --threads 2 --threads 3", "--threads", "more than once")]
    [InlineData("simulate tiny.json --version", "--version", "only allowed on its own")]
    [InlineData("--threads 2 simulate tiny.json", "'--threads'", "Before the command")]
    [InlineData("scenario validate", "<file>", "missing argument")]
    [InlineData("scenario show tiny.json --out x", "'--out'", "unknown option")]
    [InlineData("bench simulate --requests 10", "--requests", "value 10 is out of range; expected an integer from 1000 to 10000000000")]
    [InlineData("bench simulate --threads 0", "--threads", "value 0 is out of range")]
    [InlineData("bench simulate extra", "'extra'", "unexpected argument")]
    [InlineData("bench train --model mmoe --rounds 0", "--rounds", "value 0 is out of range; expected an integer from 1 to 99")]
    [InlineData("help frobnicate", "'frobnicate'", "unknown command")]
    public void Bad_arguments_exit_2_with_a_message_naming_the_option_and_value(string commandLine, string named, string says)
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("tiny.json", Scenarios.Tiny);
        var before = sandbox.Entries();

        var result = sandbox.Run(commandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries));

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains(named, result.Error, StringComparison.Ordinal);
        Assert.Contains(says, result.Error, StringComparison.Ordinal);
        Assert.Contains("--help' for usage", result.Error, StringComparison.Ordinal);
        Assert.Equal("", result.Out);
        Assert.Equal(before, sandbox.Entries());
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    [InlineData("help")]
    public void Help_lists_every_command(string flag)
    {
        using var sandbox = new CliSandbox();

        var result = sandbox.Run(flag);

        Assert.True(result.ExitCode == 0, result.ToString());
        foreach (var command in CommandCatalog.All)
        {
            Assert.Contains(command.Path, result.Out, StringComparison.Ordinal);
        }
        Assert.Contains("--verbose", result.Out, StringComparison.Ordinal);
        Assert.Contains("--version", result.Out, StringComparison.Ordinal);
        Assert.Equal("", result.Error);
    }

    public static TheoryData<string> CommandPaths => new(CommandCatalog.All.Select(c => c.Path));

    [Theory]
    [MemberData(nameof(CommandPaths))]
    public void Help_of_each_command_lists_every_option_with_its_default(string path)
    {
        using var sandbox = new CliSandbox();
        var command = CommandCatalog.All.Single(c => c.Path == path);
        var words = path.Split(' ');

        foreach (var args in new string[][] { [.. words, "--help"], ["help", .. words], [.. words, "tiny.json", "--threads", "0", "-h"] })
        {
            var result = sandbox.Run(args);

            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.StartsWith($"Usage: adsim {path}", result.Out, StringComparison.Ordinal);
            foreach (var option in command.Options)
            {
                var line = Assert.Single(result.OutLines, l => Regex.IsMatch(l, $@"^\s+(-\w, )?--{option.Name}( |$)"));
                if (option.Default is not null)
                {
                    Assert.Contains($"(default: {option.Default})", line, StringComparison.Ordinal);
                }
            }
            Assert.Contains("--verbose", result.Out, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Group_help_lists_its_subcommands()
    {
        using var sandbox = new CliSandbox();

        var result = sandbox.Run("scenario", "--help");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("scenario validate <file>", result.Out, StringComparison.Ordinal);
        Assert.Contains("scenario show <file>", result.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("bench simulate", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Version_prints_the_informational_version()
    {
        using var sandbox = new CliSandbox();

        var result = sandbox.Run("--version");

        Assert.Equal(0, result.ExitCode);
        Assert.Matches(@"^adsim \d+\.\d+\.\d+\S*\r?\n$", result.Out);
    }
}
