using AdAuctionSim.Cli.CommandLine;
using AdAuctionSim.Cli.Commands;
using AdAuctionSim.Cli.Hosting;
using AdAuctionSim.Cli.Terminal;
using AdAuctionSim.Reports.Registry;
using AdAuctionSim.Simulation.Output;
using AdAuctionSim.Simulation.Scenarios;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging;

namespace AdAuctionSim.Cli;

/// <summary>
/// Runs one <c>adsim</c> command line: parses it, builds a generic host (logging to standard error, the console
/// lifetime that turns Ctrl+C into cancellation), runs the command's handler and maps what it throws to an exit code.
/// </summary>
internal static class CliApp
{
    /// <summary>Runs a command line with plain (non-interactive) output into the given writers; for tests.</summary>
    public static Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancellation,
        string? workingDirectory = null, Action<IServiceCollection>? services = null) =>
        RunAsync(args, new CliTerminal(stdout, stderr, workingDirectory ?? Environment.CurrentDirectory), cancellation, services);

    /// <summary>Runs a command line; <paramref name="services"/> adds to or replaces the host's services (tests register fakes).</summary>
    public static async Task<int> RunAsync(IReadOnlyList<string> args, CliTerminal terminal, CancellationToken cancellation,
        Action<IServiceCollection>? services = null)
    {
        ParseOutcome outcome;
        object arguments;
        try
        {
            outcome = CommandLineParser.Parse(args, CommandCatalog.All);
            switch (outcome)
            {
                case HelpRequest help:
                    HelpWriter.Write(terminal.Out, help, CommandCatalog.All);
                    return ExitCodes.Success;
                case VersionRequest:
                    terminal.Out.WriteLine($"adsim {HelpWriter.Version}");
                    return ExitCodes.Success;
            }
            arguments = ((ParsedCommand)outcome).Command.Bind((ParsedCommand)outcome);
        }
        catch (UsageException e)
        {
            terminal.Error.WriteLine(e.Message);
            return ExitCodes.BadInput;
        }
        var parsed = (ParsedCommand)outcome;
        var name = $"adsim {parsed.Command.Path}";

        using var host = BuildHost(parsed, arguments, terminal, services);
        var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("adsim");
        var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation, lifetime.ApplicationStopping);
        try
        {
            await host.StartAsync(stop.Token).ConfigureAwait(false);
            logger.LogDebug("Running {Command} with {Arguments}", parsed.Command.Path, arguments);
            var command = (ICliCommand)host.Services.GetRequiredService(parsed.Command.Handler);
            return await command.RunAsync(stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            terminal.Error.WriteLine($"{name}: cancelled; nothing was written.");
            return ExitCodes.Cancelled;
        }
        catch (ScenarioValidationException e)
        {
            terminal.Error.WriteLine(e.Message);
            return ExitCodes.BadInput;
        }
        catch (OutputExistsException e)
        {
            terminal.Error.WriteLine($"{name}: {e.Message}");
            terminal.Error.WriteLine("Nothing was changed. Or choose another directory with --out.");
            return ExitCodes.BadInput;
        }
        catch (RegistryUnreadableException e)
        {
            terminal.Error.WriteLine($"{name}: {e.Message}");
            return ExitCodes.BadInput;
        }
        catch (CliInputException e)
        {
            terminal.Error.WriteLine($"{name}: {e.Message}");
            return ExitCodes.BadInput;
        }
        catch (Exception e) when (stop.IsCancellationRequested)
        {
            // Whatever the work threw once Ctrl+C was pressed, the user asked it to stop.
            logger.LogDebug(e, "Failed after cancellation");
            terminal.Error.WriteLine($"{name}: cancelled; nothing was written.");
            return ExitCodes.Cancelled;
        }
        catch (Exception e)
        {
            terminal.Error.WriteLine($"{name}: error: {OneLine(e)}");
            terminal.Error.WriteLine(parsed.Verbose ? e.ToString() : "Run with --verbose for the stack trace.");
            return ExitCodes.Failure;
        }
        finally
        {
            try
            {
                await host.StopAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or AggregateException)
            {
                logger.LogDebug(e, "Host stop failed");
            }
        }
    }

    private static IHost BuildHost(ParsedCommand parsed, object arguments, CliTerminal terminal, Action<IServiceCollection>? services)
    {
        // The empty builder reads no appsettings.json or environment: a command's behaviour depends on its arguments only.
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings
        {
            ApplicationName = "adsim",
            ContentRootPath = terminal.WorkingDirectory,
            DisableDefaults = true,
        });
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new TextWriterLoggerProvider(terminal.Error));
        builder.Logging.SetMinimumLevel(parsed.Verbose ? LogLevel.Debug : LogLevel.Warning);
        // Ctrl+C (SIGINT) and SIGTERM stop the host; its ApplicationStopping token cancels the command.
        builder.Services.AddSingleton<IHostLifetime, ConsoleLifetime>();
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        builder.Services.AddSingleton(terminal);
        builder.Services.AddAdsimServices();
        builder.Services.AddSingleton(arguments.GetType(), arguments);
        builder.Services.AddTransient(parsed.Command.Handler);
        services?.Invoke(builder.Services);
        return builder.Build();
    }

    private static string OneLine(Exception e)
    {
        var message = e.Message.ReplaceLineEndings(" ");
        return e.InnerException is { } inner && !message.Contains(inner.Message, StringComparison.Ordinal)
            ? $"{message} ({inner.Message.ReplaceLineEndings(" ")})"
            : message;
    }
}
