using AdAuctionSim.Simulation.Output;

namespace AdAuctionSim.Evaluation.Runs;

/// <summary>
/// The held-out rows of one simulation joined across its products, as plain arrays over the test requests of D (in
/// truth row order): request id, won, the true rates q_k and potential outcomes y_k, the logged cumulative labels s_k
/// (false off O), the logging model's q̂_k and the true win probabilities. Built once per evaluation and shared read-only by every model.
/// </summary>
internal sealed class EvaluationData
{
    private readonly long[] _allRequestIds;

    private EvaluationData(IReadOnlyList<string> stages, long[] allRequestIds, int[] testRows, long[] requestIds, bool[] won,
        double[][] q, bool[][] y, bool[][] s, double[][] logging, double[] winProbability, double[] winProbabilityAtBid)
    {
        WinProbability = winProbability;
        WinProbabilityAtBid = winProbabilityAtBid;
        Stages = stages;
        _allRequestIds = allRequestIds;
        TestRows = testRows;
        RequestIds = requestIds;
        Won = won;
        Q = q;
        Y = y;
        S = s;
        Logging = logging;
    }

    public IReadOnlyList<string> Stages { get; }

    /// <summary>Rows of the truth file (all of D) that are in the test split, ascending.</summary>
    public int[] TestRows { get; }

    /// <summary>Held-out rows: request id, won, q_k, y_k, s_k and the logging model's q̂_k, each [stage][test row].</summary>
    public long[] RequestIds { get; }
    public bool[] Won { get; }
    public double[][] Q { get; }
    public bool[][] Y { get; }
    public bool[][] S { get; }
    public double[][] Logging { get; }

    /// <summary>Held-out rows: the true P(win | x) and P(win | x, b) at the logged bid.</summary>
    public double[] WinProbability { get; }
    public double[] WinProbabilityAtBid { get; }

    public int Count => RequestIds.Length;

    /// <summary>Reads the truth and the logged view of a simulation folder and joins them by request id.</summary>
    /// <exception cref="InvalidDataException">A file is missing or corrupt, or the products do not describe the same requests.</exception>
    public static EvaluationData Load(string simulation, CancellationToken cancellation)
    {
        var truthView = TruthView.Open(simulation);
        var logged = LoggedView.Open(simulation);
        var truth = truthView.Read();
        cancellation.ThrowIfCancellationRequested();
        var stages = truth.Stages;
        var k = stages.Count;
        var index = new RequestIndex(truth.RequestId, truth.File);
        var loggingNames = stages.Select(st => LogColumns.LoggingPrefix + st).ToArray();
        var impressions = logged.Read(LoggedProduct.Impressions, [LogColumns.RequestId, .. stages, .. loggingNames]);
        var lost = logged.Read(LoggedProduct.LostBids, [LogColumns.RequestId, .. loggingNames]);
        cancellation.ThrowIfCancellationRequested();

        var n = truth.Rows;
        var allS = new bool[k][];
        var allLogging = new double[k][];
        for (var j = 0; j < k; j++)
        {
            allS[j] = new bool[n];
            allLogging[j] = new double[n];
        }
        var seen = new bool[n];
        Join(impressions, index, truth, seen, won: true, stages, allS, allLogging);
        Join(lost, index, truth, seen, won: false, stages, null, allLogging);
        var missing = Array.IndexOf(seen, false);
        if (missing >= 0)
        {
            throw new InvalidDataException($"{truth.File}: request {truth.RequestId[missing]} is in neither {impressions.File} nor {lost.File}");
        }

        var test = new List<int>();
        for (var i = 0; i < n; i++)
        {
            if (truth.Split[i] == 2)
            {
                test.Add(i);
            }
        }
        var rows = test.ToArray();
        var ids = new long[rows.Length];
        var wonTest = new bool[rows.Length];
        var winTest = new double[rows.Length];
        var winAtBidTest = new double[rows.Length];
        var q = new double[k][];
        var y = new bool[k][];
        var s = new bool[k][];
        var logging = new double[k][];
        for (var j = 0; j < k; j++)
        {
            q[j] = new double[rows.Length];
            y[j] = new bool[rows.Length];
            s[j] = new bool[rows.Length];
            logging[j] = new double[rows.Length];
        }
        for (var t = 0; t < rows.Length; t++)
        {
            var i = rows[t];
            ids[t] = truth.RequestId[i];
            wonTest[t] = truth.Won[i];
            winTest[t] = truth.WinProbability[i];
            winAtBidTest[t] = truth.WinProbabilityAtBid[i];
            for (var j = 0; j < k; j++)
            {
                q[j][t] = truth.Q[j][i];
                y[j][t] = truth.Outcome[j][i];
                s[j][t] = allS[j][i];
                logging[j][t] = allLogging[j][i];
            }
        }
        return new EvaluationData(stages, truth.RequestId, rows, ids, wonTest, q, y, s, logging, winTest, winAtBidTest);
    }

    /// <summary>
    /// A model's scores restricted to the held-out rows: the predictions file's request ids must be exactly the
    /// truth's (D), in any order.
    /// </summary>
    public (double[][] Q, double[][] R) HeldOut(string path, long[] requestIds, double[][] q, double[][] r)
    {
        var k = q.Length;
        var held = HeldOut(path, requestIds, [.. q, .. r],
            [.. Stages.Select(s => PredictionFile.ConditionalPrefix + s), .. Stages.Select(s => PredictionFile.CumulativePrefix + s)]);
        return (held[..k], held[k..]);
    }

    /// <summary>
    /// Probability columns of a per-request score file (named <paramref name="names"/>, for messages) restricted to the
    /// held-out rows: the file's request ids must be exactly the truth's (D), in any order, and every value in [0, 1].
    /// </summary>
    public double[][] HeldOut(string path, long[] requestIds, double[][] columns, IReadOnlyList<string> names)
    {
        if (requestIds.Length != _allRequestIds.Length)
        {
            throw new InvalidDataException($"{path}: holds {requestIds.Length} rows; the simulation has {_allRequestIds.Length} requests (D)");
        }
        // Row of the file for each truth row: identity when both are in the same order.
        int[]? position = null;
        if (!requestIds.AsSpan().SequenceEqual(_allRequestIds))
        {
            var index = new RequestIndex(_allRequestIds, path);
            position = new int[requestIds.Length];
            Array.Fill(position, -1);
            for (var p = 0; p < requestIds.Length; p++)
            {
                var row = index.RowOf(requestIds[p]);
                if (row < 0 || position[row] >= 0)
                {
                    throw new InvalidDataException($"{path}: request_id {requestIds[p]} at row {p} is {(row < 0 ? "not a request of the simulation" : "listed twice")}");
                }
                position[row] = p;
            }
        }
        var held = new double[columns.Length][];
        for (var c = 0; c < columns.Length; c++)
        {
            held[c] = new double[Count];
            for (var t = 0; t < Count; t++)
            {
                var p = position is null ? TestRows[t] : position[TestRows[t]];
                held[c][t] = Check(columns[c][p], path, names[c], p);
            }
        }
        return held;
    }

    private static double Check(double value, string path, string column, int row) =>
        value is >= 0 and <= 1
            ? value
            : throw new InvalidDataException(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{path}: column \"{column}\", row {row}: {value:R} is not a probability in [0, 1]"));

    private static void Join(LoggedColumns columns, RequestIndex index, TruthColumns truth, bool[] seen, bool won,
        IReadOnlyList<string> stages, bool[][]? labels, double[][] logging)
    {
        var ids = columns.Int64(LogColumns.RequestId);
        var stageLabels = labels is null ? null : stages.Select(columns.Int32).ToArray();
        var estimates = stages.Select(st => columns.Double(LogColumns.LoggingPrefix + st)).ToArray();
        for (var r = 0; r < ids.Length; r++)
        {
            var row = index.RowOf(ids[r]);
            if (row < 0)
            {
                throw new InvalidDataException($"{columns.File}: request_id {ids[r]} at row {r} is not in {truth.File}");
            }
            if (seen[row])
            {
                throw new InvalidDataException($"{columns.File}: request_id {ids[r]} at row {r} is logged twice");
            }
            if (truth.Won[row] != won)
            {
                throw new InvalidDataException($"{columns.File}: request_id {ids[r]} at row {r} is {(won ? "an impression" : "a lost bid")}, "
                    + $"but {truth.File} says won = {truth.Won[row].ToString().ToLowerInvariant()}");
            }
            seen[row] = true;
            for (var j = 0; j < stages.Count; j++)
            {
                if (stageLabels is not null)
                {
                    labels![j][row] = stageLabels[j][r] != 0;
                }
                logging[j][row] = estimates[j][r];
            }
        }
    }

    /// <summary>Row of a request id in an ascending id column: direct when the ids are contiguous, binary search otherwise.</summary>
    private sealed class RequestIndex
    {
        private readonly long[] _ids;
        private readonly bool _contiguous;

        public RequestIndex(long[] ids, string file)
        {
            _ids = ids;
            for (var i = 1; i < ids.Length; i++)
            {
                if (ids[i] <= ids[i - 1])
                {
                    throw new InvalidDataException($"{file}: request_id is not strictly ascending at row {i} ({ids[i - 1]} then {ids[i]})");
                }
            }
            _contiguous = ids.Length == 0 || ids[^1] - ids[0] == ids.Length - 1;
        }

        public int RowOf(long id)
        {
            if (_contiguous)
            {
                var row = _ids.Length == 0 ? -1 : id - _ids[0];
                return row >= 0 && row < _ids.Length ? (int)row : -1;
            }
            var found = Array.BinarySearch(_ids, id);
            return found >= 0 ? found : -1;
        }
    }
}
