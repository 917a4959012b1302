using AdAuctionSim.Evaluation.Metrics;
using AdAuctionSim.Evaluation.Statistics;
using AdAuctionSim.Simulation.Output;

namespace AdAuctionSim.Evaluation.Runs;

/// <summary>Options of <see cref="RunEvaluator"/>.</summary>
public sealed record RunEvaluatorOptions
{
    /// <summary>Models evaluated at once (each on one thread); results do not depend on it.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Poisson-bootstrap resamples per headline figure of a single run (0: none).</summary>
    public int BootstrapResamples { get; init; } = 200;

    /// <summary>Seed of the bootstrap weights.</summary>
    public long BootstrapSeed { get; init; } = 1;

    /// <summary>Spaces whose headline figures get bootstrap intervals (the spaces of the headline table).</summary>
    public IReadOnlyList<EvaluationSpace> BootstrapSpaces { get; init; } = [EvaluationSpace.D, EvaluationSpace.C];

    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(Threads, 1, nameof(Threads));
        ArgumentOutOfRangeException.ThrowIfNegative(BootstrapResamples, nameof(BootstrapResamples));
    }
}

/// <summary>
/// The file-reading <see cref="IRunEvaluator"/>: reads a simulation's truth and logged view and a training run's
/// predictions, and scores every model and the two reference rows (<see cref="TruthModel"/>: p̂ = q, and
/// <see cref="LoggingModel"/>: the logging policy's own estimates) on the test split, per stage and space, with
/// <see cref="SpaceMetrics"/>. Construct it with <c>new RunEvaluator()</c> or with <see cref="RunEvaluatorOptions"/>.
/// </summary>
/// <remarks>
/// It lives in this project rather than in the CLI because <c>adsim run</c> (and any other host) needs the same
/// evaluation without the command line; it reads files through the simulator's readers and a small Parquet reader of
/// its own, never through the TorchSharp model suite. Models are evaluated in parallel, each into its own slot, and
/// the slots are concatenated in model order, so the output is identical for any thread count.
/// </remarks>
public sealed class RunEvaluator(RunEvaluatorOptions? options = null) : IRunEvaluator
{
    /// <summary>Reference row: the truth itself, q̂_k = q_k and r̂_k = q_1·…·q_k.</summary>
    public const string TruthModel = "truth";

    /// <summary>Reference row: the logging model's per-stage estimates logged as <c>logging_&lt;stage&gt;</c>.</summary>
    public const string LoggingModel = "logging";

    private readonly RunEvaluatorOptions _options = options ?? new RunEvaluatorOptions();

    /// <inheritdoc/>
    /// <exception cref="InvalidDataException">A file is missing or corrupt, or the files do not describe the same run (named in the message).</exception>
    public EvaluationResult Evaluate(RunEvaluationRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        _options.Validate();
        var train = TrainRunFile.Read(request.TrainDirectory);
        var data = EvaluationData.Load(request.SimulationDirectory, cancellationToken);
        if (train.SimulationManifestSha256 is { } trained)
        {
            var manifest = Path.Combine(Path.GetFullPath(request.SimulationDirectory), LogColumns.ManifestFile);
            if (!string.Equals(trained, LoggedView.ManifestSha256(request.SimulationDirectory), StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidDataException($"{Path.Combine(train.Directory, TrainRunFile.FileName)}: field simulationManifestSha256: the run was trained on "
                    + $"another simulation than {Path.GetDirectoryName(manifest)} (its manifest.json has a different SHA-256); evaluate a run against "
                    + "the simulation it was trained on");
            }
        }
        if (!train.Stages.SequenceEqual(data.Stages, StringComparer.Ordinal))
        {
            throw new InvalidDataException($"{Path.Combine(train.Directory, TrainRunFile.FileName)}: field stages [{string.Join(", ", train.Stages)}] "
                + $"differs from the simulation's stages [{string.Join(", ", data.Stages)}]; was it trained on another simulation?");
        }
        foreach (var model in train.Models)
        {
            if (model.Id is TruthModel or LoggingModel)
            {
                throw new InvalidDataException($"{Path.Combine(train.Directory, TrainRunFile.FileName)}: model id \"{model.Id}\" is reserved for a reference row");
            }
        }
        var spaces = new Spaces(data);
        // The true cumulative rates r_k and outcomes, computed once: every model is scored against them.
        var truth = new CumulativeTruth(Cumulative(data.Q), Cumulative(data.Y));
        var ids = new List<string> { TruthModel, LoggingModel };
        ids.AddRange(train.Models.Select(m => m.Id));
        var results = new EvaluationResult[ids.Count];
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = _options.Threads, CancellationToken = cancellationToken };
        var failures = new Exception?[ids.Count];
        Parallel.For(0, ids.Count, parallel, m =>
        {
            try
            {
                var (q, r) = m switch
                {
                    0 => (data.Q, truth.Rates),
                    1 => (data.Logging, Cumulative(data.Logging)),
                    _ => Scores(data, train.Models[m - 2]),
                };
                results[m] = EvaluateModel(request, ids[m], data, spaces, truth, q, r, cancellationToken);
            }
            catch (Exception e)
            {
                failures[m] = e;
            }
        });
        // The first failure in model order, as itself: the same message whatever the thread count.
        if (failures.FirstOrDefault(f => f is not null) is { } failure)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
        return new EvaluationResult(
            results.SelectMany(r => r.Metrics).ToList(),
            results.SelectMany(r => r.Reliability).ToList(),
            results.SelectMany(r => r.Deciles).ToList())
        {
            Intervals = results.SelectMany(r => r.Intervals).ToList(),
            WinModel = train.WinModel is { } win ? EvaluateWinModel(request, data, win, truth.Rates[^1]) : [],
        };
    }

    /// <summary>The fitted win model's scores on the held-out requests (<see cref="WinModelMetrics"/>).</summary>
    private static List<WinModelFigure> EvaluateWinModel(RunEvaluationRequest request, EvaluationData data, TrainedWinModel win, double[] reach)
    {
        if (win.ScoresSha256 is { } expected)
        {
            LoggedView.VerifyHash(win.ScoresPath, expected, TrainRunFile.FileName);
        }
        var (ids, policy, atBid) = WinScoreFile.Read(win.ScoresPath);
        var held = data.HeldOut(win.ScoresPath, ids, [policy, atBid], [WinScoreFile.PolicyColumn, WinScoreFile.AtBidColumn]);
        return WinModelMetrics.Compute(held[1], held[0], data.Won, data.WinProbabilityAtBid, data.WinProbability, reach, win.Floor)
            .Select(f => new WinModelFigure(request.Point, request.Repeat, win.Source, f.Id, f.Value.Value, f.Rows, f.Value.Note))
            .ToList();
    }

    private static (double[][] Q, double[][] R) Scores(EvaluationData data, TrainedModel model)
    {
        if (model.PredictionsSha256 is { } expected)
        {
            LoggedView.VerifyHash(model.PredictionsPath, expected, TrainRunFile.FileName);
        }
        var (ids, q, r) = PredictionFile.Read(model.PredictionsPath, data.Stages);
        return data.HeldOut(model.PredictionsPath, ids, q, r);
    }

    private EvaluationResult EvaluateModel(RunEvaluationRequest request, string model, EvaluationData data, Spaces spaces, CumulativeTruth truth,
        double[][] q, double[][] r, CancellationToken cancellation)
    {
        var metrics = new List<MetricRow>();
        var reliability = new List<ReliabilityBin>();
        var deciles = new List<DecileError>();
        var intervals = new List<MetricInterval>();
        var ranking = new ScoreRanking();
        var buffers = new Buffers(data.Count);
        var stages = data.Stages;
        var (trueCumulative, potentialCumulative) = (truth.Rates, truth.Outcomes);
        for (var k = 0; k < stages.Count; k++)
        {
            cancellation.ThrowIfCancellationRequested();
            var stage = stages[k];
            foreach (var space in Enum.GetValues<EvaluationSpace>())
            {
                var rows = spaces.Rows(space, k);
                var hasLabels = space is EvaluationSpace.O or EvaluationSpace.C or EvaluationSpace.OMinusC;
                var undefined = space == EvaluationSpace.OMinusC && k > 0
                    ? $"on O\\C the parent stage {stages[k - 1]} was not reached, so the logged {stage} label is 0 by construction, not an observation"
                    : null;

                // Conditional target: q̂_k against q_k, y_k and (on C, and naively on O) the logged s_k.
                var n = buffers.Gather(rows, q[k], data.Q[k], data.Y[k], data.S[k], data.RequestIds, data.Q[0]);
                var figures = SpaceMetrics.Compute(ranking, buffers.P(n), buffers.Q(n), buffers.Y(n), buffers.S(n), hasLabels, undefined);
                AddRows(metrics, request, model, stage, space, MetricIds.Conditional, figures);
                AddReliability(reliability, request, model, stage, space, figures);
                if (_options.BootstrapResamples > 0 && _options.BootstrapSpaces.Contains(space) && n > 0)
                {
                    var bounds = PoissonBootstrap.Intervals(ranking, buffers.P(n), buffers.Q(n), buffers.Y(n), buffers.Ids(n),
                        _options.BootstrapResamples, _options.BootstrapSeed);
                    var method = MetricStatistics.BootstrapMethod(_options.BootstrapResamples, _options.BootstrapSeed);
                    for (var b = 0; b < bounds.Length; b++)
                    {
                        intervals.Add(new MetricInterval(request.Point, request.Repeat, model, stage, space, PoissonBootstrap.Metrics[b],
                            bounds[b].Low, bounds[b].High, method));
                    }
                }
                var group = spaces.Deciles(space, k);
                var (meanCtr, errors) = SpaceMetrics.ByGroup(buffers.P(n), buffers.Q(n), buffers.Ctr(n), group, 10);
                for (var d = 0; d < 10; d++)
                {
                    var e = errors[d];
                    deciles.Add(new DecileError(request.Point, request.Repeat, model, stage, space, d, meanCtr[d], e.Bias.Value, e.Mae.Value,
                        e.Rmse.Value, e.Rows));
                }

                // Cumulative target (post-click stages): r̂_k against r_k, y_1·…·y_k and s_k, a real observation on all of O.
                if (k > 0)
                {
                    n = buffers.Gather(rows, r[k], trueCumulative[k], potentialCumulative[k], data.S[k], data.RequestIds, data.Q[0]);
                    figures = SpaceMetrics.Compute(ranking, buffers.P(n), buffers.Q(n), buffers.Y(n), buffers.S(n), hasLabels, null);
                    AddRows(metrics, request, model, stage, space, MetricIds.Cumulative, figures);
                    var dependence = space is EvaluationSpace.C or EvaluationSpace.OMinusC
                        ? MetricValue.Undefined($"on {(space == EvaluationSpace.C ? "C" : "O\\C")} the rows depend on the stage (whether the stage before was reached), "
                            + "so the parent stage's calibration is over other rows and the ratio closes nothing; see D, O and D\\O")
                        : Dependence(rows, r[k - 1], q[k], r[k], trueCumulative[k - 1], data.Q[k], trueCumulative[k]);
                    metrics.Add(new MetricRow(request.Point, request.Repeat, request.Seed, model, stage, space, MetricIds.DependenceRatio,
                        dependence.Value, rows.Length, dependence.Note));
                }
            }
        }
        return new EvaluationResult(metrics, reliability, deciles) { Intervals = intervals };
    }

    private static void AddRows(List<MetricRow> metrics, RunEvaluationRequest request, string model, string stage, EvaluationSpace space,
        IReadOnlyList<MetricDefinition> definitions, SpaceFigures figures)
    {
        for (var m = 0; m < definitions.Count; m++)
        {
            if (figures.Values[m] is { } value)
            {
                metrics.Add(new MetricRow(request.Point, request.Repeat, request.Seed, model, stage, space, definitions[m].Id, value.Value,
                    figures.Rows, value.Note));
            }
        }
    }

    private static void AddReliability(List<ReliabilityBin> bins, RunEvaluationRequest request, string model, string stage, EvaluationSpace space,
        SpaceFigures figures)
    {
        var sums = figures.Sums;
        for (var b = 0; b < sums.Count.Length; b++)
        {
            var c = sums.Count[b];
            bins.Add(new ReliabilityBin(request.Point, request.Repeat, model, stage, space, b,
                c == 0 ? double.NaN : sums.SumScore[b] / c,
                c == 0 ? double.NaN : sums.SumTarget[b] / c,
                c == 0 || !figures.ObservedLabels ? double.NaN : sums.SumLabel[b] / c,
                (long)c));
        }
    }

    /// <summary><see cref="BinaryMetrics.DependenceRatio"/> on the given rows of six per-request arrays.</summary>
    private static MetricValue Dependence(int[] rows, double[] parent, double[] stage, double[] cumulative, double[] trueParent,
        double[] trueStage, double[] trueCumulative)
    {
        return BinaryMetrics.DependenceRatioOfSums(rows.Length, Sum(parent), Sum(stage), Sum(cumulative), Sum(trueParent), Sum(trueStage),
            Sum(trueCumulative));

        double Sum(double[] values)
        {
            var sum = 0.0;
            foreach (var t in rows)
            {
                sum += values[t];
            }
            return sum;
        }
    }

    /// <summary>The held-out rows' true cumulative rates r_k and cumulative potential outcomes, [stage][row].</summary>
    private sealed record CumulativeTruth(double[][] Rates, bool[][] Outcomes);

    /// <summary>Running products over the stages: r_k = Π_{j≤k} q_j.</summary>
    private static double[][] Cumulative(double[][] rates)
    {
        var result = new double[rates.Length][];
        for (var k = 0; k < rates.Length; k++)
        {
            result[k] = new double[rates[k].Length];
            for (var i = 0; i < rates[k].Length; i++)
            {
                result[k][i] = k == 0 ? rates[0][i] : result[k - 1][i] * rates[k][i];
            }
        }
        return result;
    }

    /// <summary>Running conjunctions over the stages: y_1 ∧ … ∧ y_k.</summary>
    private static bool[][] Cumulative(bool[][] outcomes)
    {
        var result = new bool[outcomes.Length][];
        for (var k = 0; k < outcomes.Length; k++)
        {
            result[k] = new bool[outcomes[k].Length];
            for (var i = 0; i < outcomes[k].Length; i++)
            {
                result[k][i] = outcomes[k][i] && (k == 0 || result[k - 1][i]);
            }
        }
        return result;
    }

    /// <summary>
    /// The held-out rows of each space per stage (indices into the test rows, ascending) and each row's true-CTR decile
    /// within that space, computed once and shared by every model.
    /// </summary>
    private sealed class Spaces
    {
        private readonly int[][][] _rows;
        private readonly byte[][][] _deciles;

        public Spaces(EvaluationData data)
        {
            var k = data.Stages.Count;
            var spaces = Enum.GetValues<EvaluationSpace>();
            _rows = new int[k][][];
            _deciles = new byte[k][][];
            var ranking = new ScoreRanking();
            for (var stage = 0; stage < k; stage++)
            {
                _rows[stage] = new int[spaces.Length][];
                _deciles[stage] = new byte[spaces.Length][];
                foreach (var space in spaces)
                {
                    var rows = new List<int>();
                    for (var t = 0; t < data.Count; t++)
                    {
                        var won = data.Won[t];
                        var reachedParent = won && (stage == 0 || data.S[stage - 1][t]);
                        var member = space switch
                        {
                            EvaluationSpace.D => true,
                            EvaluationSpace.O => won,
                            EvaluationSpace.C => reachedParent,
                            EvaluationSpace.OMinusC => won && !reachedParent,
                            _ => !won,
                        };
                        if (member)
                        {
                            rows.Add(t);
                        }
                    }
                    var array = rows.ToArray();
                    _rows[stage][(int)space] = array;
                    var ctr = new double[array.Length];
                    for (var i = 0; i < array.Length; i++)
                    {
                        ctr[i] = data.Q[0][array[i]];
                    }
                    _deciles[stage][(int)space] = SpaceMetrics.Deciles(ranking, ctr);
                }
            }
        }

        public int[] Rows(EvaluationSpace space, int stage) => _rows[stage][(int)space];

        public byte[] Deciles(EvaluationSpace space, int stage) => _deciles[stage][(int)space];
    }

    /// <summary>Contiguous copies of one space's rows, reused across spaces and stages of one model.</summary>
    private sealed class Buffers(int capacity)
    {
        private readonly double[] _p = new double[capacity];
        private readonly double[] _q = new double[capacity];
        private readonly bool[] _y = new bool[capacity];
        private readonly bool[] _s = new bool[capacity];
        private readonly long[] _ids = new long[capacity];
        private readonly double[] _ctr = new double[capacity];

        public int Gather(int[] rows, double[] p, double[] q, bool[] y, bool[] s, long[] ids, double[] ctr)
        {
            for (var i = 0; i < rows.Length; i++)
            {
                var t = rows[i];
                _p[i] = p[t];
                _q[i] = q[t];
                _y[i] = y[t];
                _s[i] = s[t];
                _ids[i] = ids[t];
                _ctr[i] = ctr[t];
            }
            return rows.Length;
        }

        public ReadOnlySpan<double> P(int n) => _p.AsSpan(0, n);
        public ReadOnlySpan<double> Q(int n) => _q.AsSpan(0, n);
        public ReadOnlySpan<bool> Y(int n) => _y.AsSpan(0, n);
        public ReadOnlySpan<bool> S(int n) => _s.AsSpan(0, n);
        public ReadOnlySpan<long> Ids(int n) => _ids.AsSpan(0, n);
        public ReadOnlySpan<double> Ctr(int n) => _ctr.AsSpan(0, n);
    }
}
