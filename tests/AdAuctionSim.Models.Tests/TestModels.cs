using AdAuctionSim.Models.Core;
using AdAuctionSim.Simulation.Engine;
using AdAuctionSim.Simulation.Output;
using AdAuctionSim.Simulation.Scenarios;
using AdAuctionSim.Simulation.World;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Tests;

/// <summary>
/// Tiny simulations written once per test run into the temp folder (deleted at process exit, or by the next run if the
/// process was ended first): 12 000 requests, three stages with a 10% click rate so that every stage has labels on a few
/// thousand impressions.
/// </summary>
internal static class TestSimulation
{
    public static readonly Scenario Scenario = new()
    {
        Name = "models-tests",
        Seed = 5,
        Traffic = new TrafficOptions
        {
            Requests = 12_000,
            Days = 1,
            Users = 600,
            Advertisers = 4,
            CampaignsPerAdvertiser = 2,
            AdsPerCampaign = 3,
            CandidateAds = 3,
            Sites = 30,
            Slots = 3,
        },
        Funnel = new FunnelOptions { Stages = [new("click", 0.1), new("authorize", 0.3), new("convert", 0.4)] },
        LoggingPolicy = new LoggingPolicyOptions { BidMultipliers = [0.5, 1.0, 2.0], MultiplierProbabilities = [0.3, 0.4, 0.3] },
    };

    private const string RootPrefix = "adsim-models-tests-";
    private static readonly string Root = Path.Combine(Path.GetTempPath(), $"{RootPrefix}{Environment.ProcessId}-{Guid.NewGuid():N}");
    private static readonly Lazy<WorldModel> World = new(() => WorldModel.Build(Scenario));
    private static readonly Lazy<string> ParquetFolder = new(() => Write("parquet", OutputFormat.Parquet));
    private static readonly Lazy<string> CsvFolder = new(() => Write("csv", OutputFormat.Csv));

    static TestSimulation()
    {
        SweepOrphans();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => TryDelete(Root);
    }

    /// <summary>
    /// Deletes this run's root, when the collection that uses it is done (<see cref="TestSimulationCleanup"/>): the runner
    /// may end the test host before a deletion at process exit has finished.
    /// </summary>
    public static void DeleteRoot() => TryDelete(Root);

    /// <summary>
    /// Deletes the roots of earlier test processes that are no longer running. The test host deletes its root at exit,
    /// but the runner ends a host that takes long to exit (several test projects at once on two cores), which can cut the
    /// deletion short and leave the root behind; the next run clears it. A root whose process is alive is left alone.
    /// </summary>
    private static void SweepOrphans()
    {
        string[] roots;
        try
        {
            roots = Directory.GetDirectories(Path.GetTempPath(), RootPrefix + "*");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }
        foreach (var root in roots)
        {
            var rest = Path.GetFileName(root)[RootPrefix.Length..];
            var dash = rest.IndexOf('-', StringComparison.Ordinal);
            if (dash > 0 && int.TryParse(rest.AsSpan(0, dash), out var pid) && pid != Environment.ProcessId && !IsRunning(pid))
            {
                TryDelete(root);
            }
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>Deletes a folder and everything in it; one already gone (DirectoryNotFoundException is an IOException), or
    /// busy, is left as it is.</summary>
    private static void TryDelete(string folder)
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary>The simulation folder in Parquet (shared: do not modify; copy it with <see cref="CopyTo"/>).</summary>
    public static string Parquet => ParquetFolder.Value;

    /// <summary>The same simulation in CSV.</summary>
    public static string Csv => CsvFolder.Value;

    /// <summary>A fresh folder under the test root.</summary>
    public static string NewFolder(string name)
    {
        var path = Path.Combine(Root, $"{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>A private copy of a simulation folder, for tests that damage files.</summary>
    public static string CopyTo(string source, string name)
    {
        var target = NewFolder(name);
        foreach (var file in Directory.GetFiles(source))
        {
            File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        }
        return target;
    }

    private static string Write(string name, OutputFormat format)
    {
        var folder = Path.Combine(Root, name);
        SimulationOutput.Write(World.Value, new SimulationOutputOptions(folder, format), new SimulationOptions { Threads = 1 });
        return folder;
    }
}

/// <summary>Gradients as dense tensors: the feature encoder's tables produce sparse ones.</summary>
internal static class Gradients
{
    public static Tensor? Dense(Tensor parameter) => parameter.grad is { } g ? (g.is_sparse ? g.to_dense() : g) : null;
}

/// <summary>What a probe model saw in its training batches, accumulated on the device and read once.</summary>
internal sealed class BatchProbe
{
    public Tensor? LostRows { get; set; }
    public Tensor? Rows { get; set; }
    public Tensor? MinWinPropensity { get; set; }
    public Tensor? MaxWinPropensity { get; set; }

    public void Observe(TrainingBatch batch)
    {
        using var noGrad = no_grad();
        Accumulate(LostRows, batch.Won.OneMinus().sum(), v => LostRows = v, (a, b) => a.Plus(b));
        Accumulate(Rows, tensor((float)batch.Size), v => Rows = v, (a, b) => a.Plus(b));
        Accumulate(MinWinPropensity, batch.WinPropensity.min(), v => MinWinPropensity = v, minimum);
        Accumulate(MaxWinPropensity, batch.WinPropensity.max(), v => MaxWinPropensity = v, maximum);
    }

    public static float Read(Tensor? t) => t is null ? float.NaN : t.cpu().item<float>();

    private static void Accumulate(Tensor? current, Tensor value, Action<Tensor> set, Func<Tensor, Tensor, Tensor> combine)
    {
        var next = (current is null ? value.clone() : combine(current, value)).DetachFromDisposeScope();
        current?.Dispose();
        set(next);
    }
}

/// <summary>
/// The simplest conditional-head model: the shared encoder (d = 4) and one linear layer to K logits, a_k; trained in
/// the conditional label mode (stage k on impression rows that reached stage k−1). Optionally uses lost bids (they
/// carry no labels, so they add nothing to this loss) and adds NaN to its loss from a given global step.
/// </summary>
internal sealed class LogisticTestModel : MultiTaskModel
{
    public const string ModelId = "test-logistic";

    private readonly FeatureEncoder encoder;
    private readonly Linear head;
    private readonly bool _usesLostBids;
    private readonly long? _nanFromStep;

    // Held for the process: TorchSharp 0.107 may free a Scalar made for one call while libtorch reads it.
    private static readonly Scalar NaN = double.NaN.ToScalar();

    public LogisticTestModel(ModelContext context, bool usesLostBids = false, long? nanFromStep = null, string id = ModelId, bool sparseEmbeddings = true,
        int embeddingDim = 4)
        : base(id, context)
    {
        encoder = new FeatureEncoder("encoder", context.Schema, embeddingDim, sparseEmbeddings);
        head = nn.Linear(encoder.FlatWidth, context.Depth);
        _usesLostBids = usesLostBids;
        _nanFromStep = nanFromStep;
        RegisterComponents();
    }

    public BatchProbe Probe { get; } = new();

    public override HeadKind Kind => HeadKind.Conditional;

    public override bool UsesLostBids => _usesLostBids;

    public override ModelOutput forward(Tensor rows) => new(head.forward(encoder.Flat(rows)), HeadKind.Conditional);

    public override Tensor Loss(TrainingBatch batch, ModelOutput output, TrainingStep step)
    {
        Probe.Observe(batch);
        var k = Depth;
        // Parent of stage k: s_{k−1}, with s_0 = won (1 on impressions, 0 on lost bids).
        var parent = cat([batch.Won.unsqueeze(1), batch.Labels.narrow(1, 0, k - 1)], 1);
        var bce = Losses.BceWithLogits(output.Logits, batch.Labels) * parent;
        var loss = (bce.sum(dim: 0) / parent.sum(dim: 0).clamp_min(HeldScalars.One)).sum();
        return _nanFromStep is { } from && step.Step >= from ? loss.Plus(NaN) : loss;
    }
}

/// <summary>
/// A model whose loss pushes every logit up without bound (loss = −mean logit): its validation log loss gets worse
/// every epoch, so early stopping must keep epoch 1.
/// </summary>
internal sealed class DriftTestModel : MultiTaskModel
{
    public const string ModelId = "test-drift";

    private readonly Parameter bias;

    public DriftTestModel(ModelContext context) : base(ModelId, context)
    {
        bias = nn.Parameter(zeros(context.Depth));
        RegisterComponents();
    }

    public override HeadKind Kind => HeadKind.Conditional;

    public override ModelOutput forward(Tensor rows) => new(bias.unsqueeze(0).expand(rows.shape[0], Depth), HeadKind.Conditional);

    public override Tensor Loss(TrainingBatch batch, ModelOutput output, TrainingStep step) => -output.Logits.mean();

    public float[] Bias() => bias.detach().cpu().data<float>().ToArray();
}

internal static class TestEntries
{
    public static ModelEntry Logistic { get; } =
        new(LogisticTestModel.ModelId, "logistic test model", c => new LogisticTestModel(c), _ => null);

    public static ModelContext Context(Data.LoggedDataset data, ModelOptions? options = null) =>
        new(data.Depth, data.Stages, data.Schema, options ?? new ModelOptions());
}

/// <summary>
/// A constant-logit model that takes its starting logits from the trainer's label rates (<see cref="ILabelRateInitialised"/>)
/// and records what it was given and whether that came before its first training forward.
/// </summary>
internal sealed class RateTestModel : MultiTaskModel, ILabelRateInitialised
{
    public const string ModelId = "test-rates";

    private readonly Parameter bias;

    public RateTestModel(ModelContext context) : base(ModelId, context)
    {
        bias = nn.Parameter(zeros(context.Depth));
        RegisterComponents();
    }

    public IReadOnlyList<double>? Rates { get; private set; }
    public bool InitialisedBeforeFirstStep { get; private set; }
    private bool stepped;

    public override HeadKind Kind => HeadKind.Cumulative;

    public void InitialiseFromLabelRates(IReadOnlyList<double> cumulativeRates)
    {
        Rates = [.. cumulativeRates];
        InitialisedBeforeFirstStep = !stepped;
        using var _ = no_grad();
        bias.copy_(tensor(cumulativeRates.Select(r => (float)Math.Log(r / (1 - r))).ToArray()));
    }

    public override ModelOutput forward(Tensor rows)
    {
        stepped |= training;
        return new(bias.unsqueeze(0).expand(rows.shape[0], Depth), HeadKind.Cumulative);
    }

    public override Tensor Loss(TrainingBatch batch, ModelOutput output, TrainingStep step) =>
        Losses.BceWithLogits(output.Logits, batch.Labels).mean();
}
