using Microsoft.Extensions.Logging;

namespace AdAuctionSim.Cli.Hosting;

/// <summary>
/// Writes log lines to standard error (the terminal's, or a test's writer) as <c>HH:mm:ss.fff level category: message</c>.
/// Standard output stays for results. The minimum level is set by the host's filters (Warning unless --verbose).
/// </summary>
internal sealed class TextWriterLoggerProvider(TextWriter writer) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new Logger(writer, ShortName(categoryName));

    public void Dispose()
    {
    }

    private static string ShortName(string category)
    {
        var dot = category.LastIndexOf('.');
        return dot < 0 ? category : category[(dot + 1)..];
    }

    private sealed class Logger(TextWriter writer, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }
            var level = logLevel switch
            {
                LogLevel.Trace => "trce",
                LogLevel.Debug => "dbug",
                LogLevel.Information => "info",
                LogLevel.Warning => "warn",
                LogLevel.Error => "fail",
                _ => "crit",
            };
            var line = $"{DateTime.Now:HH:mm:ss.fff} {level} {category}: {formatter(state, exception)}";
            writer.WriteLine(exception is null ? line : line + Environment.NewLine + exception);
        }
    }
}
