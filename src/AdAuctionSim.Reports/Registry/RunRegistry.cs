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
/// The run registry: a LiteDB file opened in shared mode (each operation takes the file's cross-process lock), so that
/// several <c>adsim run</c> processes can record their runs in one file at once.
/// </summary>
public sealed class RunRegistry : IDisposable
{
    public const string DefaultFileName = "registry.db";
    private const string Collection = "runs";

    private readonly LiteDatabase _database;

    public RunRegistry(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        Path = System.IO.Path.GetFullPath(path);
        System.IO.Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        // Strings are stored as given: LiteDB's default mapper would trim them and turn "" into null.
        var mapper = new BsonMapper { EmptyStringToNull = false, TrimWhitespace = false };
        _database = new LiteDatabase(new ConnectionString { Filename = Path, Connection = ConnectionType.Shared }, mapper);
        Runs.EnsureIndex(r => r.StartedUtc);
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
            Runs.Insert(run);
        }
        catch (LiteException e) when (e.ErrorCode == LiteException.INDEX_DUPLICATE_KEY)
        {
            throw new InvalidOperationException($"run {run.Id} is already in the registry {Path}", e);
        }
    }

    /// <summary>Replaces the stored run with this one.</summary>
    public void Update(RunRecord run)
    {
        ArgumentNullException.ThrowIfNull(run);
        if (!Runs.Update(run))
        {
            throw new InvalidOperationException($"run {run.Id} is not in the registry {Path}");
        }
    }

    public RunRecord? Find(string id) => Runs.FindById(id);

    /// <summary>Runs, newest first.</summary>
    public IReadOnlyList<RunRecord> List(int limit = int.MaxValue) =>
        Runs.Query().OrderByDescending(r => r.StartedUtc).Limit(limit).ToList();

    public void Dispose() => _database.Dispose();
}
