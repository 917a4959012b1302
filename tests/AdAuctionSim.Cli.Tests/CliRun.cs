namespace AdAuctionSim.Cli.Tests;

/// <summary>What one in-process run of <c>adsim</c> returned and printed.</summary>
internal sealed record CliResult(int ExitCode, string Out, string Error)
{
    public string[] OutLines => Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToArray();

    public override string ToString() => $"exit {ExitCode}{Environment.NewLine}--- stdout{Environment.NewLine}{Out}--- stderr{Environment.NewLine}{Error}";
}

/// <summary>
/// A temporary working directory for one test: runs the real entry point (<see cref="CliApp.RunAsync(string[], TextWriter, TextWriter, CancellationToken, string?, Action{Microsoft.Extensions.DependencyInjection.IServiceCollection}?)"/>)
/// in it with captured output, and is deleted afterwards.
/// </summary>
internal sealed class CliSandbox : IDisposable
{
    public CliSandbox()
    {
        Root = Path.Combine(Path.GetTempPath(), $"adsim-cli-tests-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    public string PathOf(string relative) => Path.Combine(Root, relative);

    public string Write(string relative, string text)
    {
        var path = PathOf(relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>Every file and directory under the sandbox, relative, sorted.</summary>
    public IReadOnlyList<string> Entries() =>
        Directory.EnumerateFileSystemEntries(Root, "*", SearchOption.AllDirectories)
            .Select(p => Path.GetRelativePath(Root, p).Replace('\\', '/'))
            .Order(StringComparer.Ordinal)
            .ToList();

    public CliResult Run(params string[] args) => Run(CancellationToken.None, args);

    public CliResult Run(CancellationToken cancellation, params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = CliApp.RunAsync(args, stdout, stderr, cancellation, Root).GetAwaiter().GetResult();
        return new CliResult(code, stdout.ToString(), stderr.ToString());
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Scenario texts for the tests (the repository's scenarios/ folder is not used).</summary>
internal static class Scenarios
{
    /// <summary>A small valid scenario: 20000 requests, 2000 users.</summary>
    public const string Tiny = """
        {
          // a tiny scenario for tests
          "name": "tiny",
          "seed": 7,
          "traffic": { "requests": 20000, "users": 2000, "advertisers": 10 },
        }
        """;
}
