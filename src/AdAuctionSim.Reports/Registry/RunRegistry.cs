using AdAuctionSim.Evaluation;
using AdAuctionSim.Reports.Documents;
using LiteDB;

namespace AdAuctionSim.Reports.Registry;

/// <summary>Where a run stands. A run is complete only once its report is written.</summary>
public static class RunStatus
{
    public const string Running = "running";
    public const string Complete = "complete";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";
}

/// <summary>One phase timing as the registry stores it.</summary>
public sealed class RegistryTiming
{
    public string Phase { get; set; } = "";
    public string Unit { get; set; } = "";
    public double Seconds { get; set; }
    public string Covers { get; set; } = "";
    public bool Reused { get; set; }

    public static RegistryTiming From(PhaseTiming t)
    {
        ArgumentNullException.ThrowIfNull(t);
        return new() { Phase = t.Phase, Unit = t.Unit, Seconds = t.Seconds, Covers = t.Covers, Reused = t.Reused };
    }
}

/// <summary>One metric summary as the registry stores it.</summary>
public sealed class RegistryMetric
{
    public string Point { get; set; } = "";
    public string Model { get; set; } = "";
    public string Stage { get; set; } = "";
    public string Space { get; set; } = "";
    public string Metric { get; set; } = "";
    public double Mean { get; set; }
    public double CiLow { get; set; }
    public double CiHigh { get; set; }
    public int Repeats { get; set; }
    public double PValue { get; set; }

    public static RegistryMetric From(MetricSummary s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return new()
        {
            Point = s.Point, Model = s.Model, Stage = s.Stage, Space = ReportCsv.SpaceName(s.Space), Metric = s.Metric,
            Mean = s.Mean, CiLow = s.CiLow, CiHigh = s.CiHigh, Repeats = s.Repeats, PValue = s.PValue,
        };
    }

    /// <summary>The key two runs' metrics are matched on.</summary>
    public string Key => $"{Point}|{Model}|{Stage}|{Space}|{Metric}";
}

/// <summary>A run in the registry: what ran, on what code, how it went, its figures and where its files are.</summary>
public sealed class RunRecord
{
    /// <summary>Sortable unique id (UTC start time and a random suffix).</summary>
    [BsonId]
    public string Id { get; set; } = "";
    public string ScenarioName { get; set; } = "";
    public string ScenarioFile { get; set; } = "";
    /// <summary>The resolved scenario with its run sections, as JSON.</summary>
    public string Scenario { get; set; } = "";
    public string CodeVersion { get; set; } = "";
    public string Status { get; set; } = RunStatus.Running;
    public DateTime StartedUtc { get; set; }
    public DateTime? FinishedUtc { get; set; }
    /// <summary>Times this run was resumed.</summary>
    public int Resumes { get; set; }
    public string Device { get; set; } = "";
    public int Threads { get; set; }
    public string Machine { get; set; } = "";
    public int ProcessId { get; set; }
    public List<string> Models { get; set; } = [];
    public string Baseline { get; set; } = "";
    public int Points { get; set; }
    public int Repeats { get; set; }
    /// <summary>The run folder (absolute).</summary>
    public string Directory { get; set; } = "";
    /// <summary>Report files, absolute; empty until the run is complete.</summary>
    public string ReportHtml { get; set; } = "";
    public string ReportMarkdown { get; set; } = "";
    public string MetricsCsv { get; set; } = "";
    /// <summary>Why the run failed (one line), empty otherwise.</summary>
    public string Error { get; set; } = "";
    public List<RegistryTiming> Timings { get; set; } = [];
    public List<RegistryMetric> Metrics { get; set; } = [];
}

/// <summary>
/// The registry file cannot be used: it is not a LiteDB file, it is damaged, or it cannot be opened (permissions).
/// The message names the file; the file itself is left as it was.
/// </summary>
public sealed class RegistryUnreadableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The run registry: a LiteDB file opened in shared mode (each operation takes the file's cross-process lock), so that
/// several <c>adsim run</c> processes can record their runs in one file at once. An existing file is opened only if its
/// header says it is a LiteDB file, so the registry never initialises (overwrites) a file it did not create; opened
/// read-only it writes nothing and needs no write permission. Any failure to read or write the file is a
/// <see cref="RegistryUnreadableException"/> naming it.
/// </summary>
public sealed class RunRegistry : IDisposable
{
    public const string DefaultFileName = "registry.db";
    private const string Collection = "runs";

    // LiteDB 5's header page: this text at byte 32, then the file format version (8) at byte 59.
    private const string HeaderText = "** This is a LiteDB file **";
    private const int HeaderOffset = 32;
    private const int VersionOffset = 59;
    private const byte FileVersion = 8;

    private readonly LiteDatabase _database;

    /// <param name="path">The file; created (with its folder) when missing, unless <paramref name="readOnly"/>.</param>
    /// <param name="readOnly">Open for reading only: a missing file is an error, and nothing is written to the file.</param>
    public RunRegistry(string path, bool readOnly = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        Path = System.IO.Path.GetFullPath(path);
        if (File.Exists(Path) || readOnly)
        {
            CheckHeader(Path);
        }
        else
        {
            System.IO.Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        }
        // Strings are stored as given: LiteDB's default mapper would trim them and turn "" into null.
        var mapper = new BsonMapper { EmptyStringToNull = false, TrimWhitespace = false };
        _database = Guard(() => new LiteDatabase(new ConnectionString { Filename = Path, Connection = ConnectionType.Shared, ReadOnly = readOnly }, mapper));
        if (!readOnly)
        {
            Guard(() => Runs.EnsureIndex(r => r.StartedUtc));
        }
    }

    public string Path { get; }

    private ILiteCollection<RunRecord> Runs => _database.GetCollection<RunRecord>(Collection);

    /// <summary>Adds a new run.</summary>
    /// <exception cref="InvalidOperationException">A run with this id exists.</exception>
    public void Add(RunRecord run)
    {
        ArgumentNullException.ThrowIfNull(run);
        try
        {
            Guard(() => Runs.Insert(run));
        }
        catch (RegistryUnreadableException e) when (e.InnerException is LiteException { ErrorCode: LiteException.INDEX_DUPLICATE_KEY })
        {
            throw new InvalidOperationException($"run {run.Id} is already in the registry {Path}", e);
        }
    }

    /// <summary>Replaces the stored run with this one.</summary>
    public void Update(RunRecord run)
    {
        ArgumentNullException.ThrowIfNull(run);
        if (!Guard(() => Runs.Update(run)))
        {
            throw new InvalidOperationException($"run {run.Id} is not in the registry {Path}");
        }
    }

    public RunRecord? Find(string id) => Guard(() => Runs.FindById(id));

    /// <summary>Runs, newest first.</summary>
    public IReadOnlyList<RunRecord> List(int limit = int.MaxValue) =>
        Guard(() => Runs.Query().OrderByDescending(r => r.StartedUtc).Limit(limit).ToList());

    public void Dispose() => _database.Dispose();

    /// <summary>Refuses a file that does not start with LiteDB 5's header, before LiteDB would initialise it.</summary>
    private static void CheckHeader(string path)
    {
        if (System.IO.Directory.Exists(path))
        {
            throw new RegistryUnreadableException($"the run registry {path} is a folder; expected a registry file ({DefaultFileName})");
        }
        var head = new byte[VersionOffset + 1];
        int read;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }
        catch (FileNotFoundException e)
        {
            throw new RegistryUnreadableException($"there is no run registry at {path}", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RegistryUnreadableException($"cannot open the run registry {path}: {e.Message}", e);
        }
        if (read < head.Length || System.Text.Encoding.ASCII.GetString(head, HeaderOffset, HeaderText.Length) != HeaderText)
        {
            throw new RegistryUnreadableException($"{path} is not a run registry (expected a LiteDB file, which starts with \"{HeaderText}\"); "
                + "it was left as it is. Give another file with --registry");
        }
        if (head[VersionOffset] != FileVersion)
        {
            throw new RegistryUnreadableException($"{path} is a LiteDB file of format version {head[VersionOffset]}; this build reads version {FileVersion} (LiteDB 5)");
        }
    }

    /// <summary>Runs a LiteDB operation; whatever it throws about the file (damage, permissions) names the file.</summary>
    private T Guard<T>(Func<T> operation)
    {
        try
        {
            return operation();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RegistryUnreadableException($"cannot use the run registry {Path}: {e.Message}", e);
        }
        catch (Exception e) when (e is LiteException or InvalidCastException or ArgumentException or IndexOutOfRangeException or InvalidOperationException
            or FormatException or OverflowException)
        {
            throw new RegistryUnreadableException($"the run registry {Path} is damaged or not a registry ({e.Message}); it was left as it is. "
                + "Give another file with --registry, or move it away to start a new one", e);
        }
    }
}
