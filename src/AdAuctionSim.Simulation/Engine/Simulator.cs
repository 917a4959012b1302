using AdAuctionSim.Simulation.Stats;
using AdAuctionSim.Simulation.World;

namespace AdAuctionSim.Simulation.Engine;

/// <summary>How to run a simulation (not part of the scenario: none of these change the output).</summary>
public sealed record SimulationOptions
{
    /// <summary>Worker threads (1 or more). The output is byte-identical for any value.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;
    /// <summary>
    /// Requests per chunk; chunks are the unit of parallel work and of writing. Part of the output's definition:
    /// the realised statistics are summed per chunk, so a different chunk size changes their last bits.
    /// </summary>
    internal int ChunkSize { get; init; } = DefaultChunkSize;

    internal const int DefaultChunkSize = 1 << 16;
}

/// <summary>What a finished simulation reports.</summary>
public sealed record SimulationSummary(BiasReport Bias, long Requests, long DurationSeconds, long TrainEnd, long ValidationEnd);

/// <summary>
/// The game loop: advances the simulated clock over the scenario's requests chunk by chunk, simulates the chunks on
/// worker threads, and hands them to the sink in request order.
/// </summary>
public static class Simulator
{
    public static SimulationSummary Run(WorldModel world, ISimulationSink sink, SimulationOptions options,
        IProgress<long>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.ChunkSize, 1);
        var scenario = world.Scenario;
        var requests = scenario.Traffic.Requests;
        var clock = new SimulationClock(scenario.Traffic, scenario.Split);
        var chunkSize = (int)Math.Min(options.ChunkSize, requests);
        var chunks = (requests + chunkSize - 1) / chunkSize;
        var threads = (int)Math.Min(options.Threads, chunks);
        var total = new RealizedStatistics(world.Depth, world.SlotExamination.Length);

        using var pipeline = new OrderedPipeline(world, clock, chunkSize, chunks, threads, requests);
        pipeline.Start(cancellation);
        try
        {
            for (long c = 0; c < chunks; c++)
            {
                var (batch, stats) = pipeline.Take(c, cancellation);
                sink.Write(batch);
                total.Merge(stats);
                pipeline.Return(batch, stats);
                progress?.Report(Math.Min(requests, (c + 1) * chunkSize));
            }
        }
        finally
        {
            pipeline.Stop();
        }
        return new SimulationSummary(BiasReport.From(total, scenario), requests, clock.DurationSeconds, clock.TrainEnd, clock.ValidationEnd);
    }

    /// <summary>Simulates one chunk into a batch (also used by the in-memory benchmark and tests).</summary>
    internal static void FillChunk(RequestKernel kernel, SimulationClock clock, ulong requestKey, long chunk, int chunkSize,
        long requests, RequestBatch batch)
    {
        var first = chunk * chunkSize;
        var count = (int)Math.Min(chunkSize, requests - first);
        // Users are drawn from a large Zipf table and their records are large: hint the cache two steps ahead
        // (alias entry, then the record it points to) so the memory latency overlaps with other requests.
        const int ahead = 8;
        for (var i = 0; i < count; i++)
        {
            var id = first + i;
            if (i + 2 * ahead < count)
            {
                kernel.Prefetch(id + 2 * ahead, userEntry: true);
            }
            if (i + ahead < count)
            {
                kernel.Prefetch(id + ahead, userEntry: false);
            }
            var jitter = CounterRng.Uniform(CounterRng.Bits(CounterRng.RequestBase(requestKey, id), CounterRng.Time));
            kernel.Simulate(id, clock.SecondsOf(id, jitter), clock.SplitOf(id), batch, i);
        }
        batch.Count = count;
        batch.ChunkIndex = chunk;
    }

    /// <summary>
    /// Workers claim chunk indices in order and simulate them into pooled batches; the consumer takes them strictly
    /// in order. At most <c>2 × threads</c> batches exist, so memory does not grow with the request count.
    /// </summary>
    private sealed class OrderedPipeline : IDisposable
    {
        private readonly WorldModel _world;
        private readonly SimulationClock _clock;
        private readonly int _chunkSize;
        private readonly long _chunks;
        private readonly int _threads;
        private readonly long _requests;
        private readonly object _gate = new();
        private readonly Stack<(RequestBatch, RealizedStatistics)> _free = new();
        private readonly Dictionary<long, (RequestBatch, RealizedStatistics)> _ready = [];
        private readonly List<Thread> _workers = [];
        private long _nextChunk;
        private long _consumed;
        private Exception? _failure;
        private bool _stopping;

        public OrderedPipeline(WorldModel world, SimulationClock clock, int chunkSize, long chunks, int threads, long requests)
        {
            _world = world;
            _clock = clock;
            _chunkSize = chunkSize;
            _chunks = chunks;
            _threads = threads;
            _requests = requests;
            for (var i = 0; i < 2 * threads; i++)
            {
                _free.Push((new RequestBatch(chunkSize, world.Depth, world.CandidateCount),
                    new RealizedStatistics(world.Depth, world.SlotExamination.Length)));
            }
        }

        public void Start(CancellationToken cancellation)
        {
            for (var t = 0; t < _threads; t++)
            {
                var thread = new Thread(() => Work(cancellation)) { IsBackground = true, Name = $"adsim-sim-{t}" };
                _workers.Add(thread);
                thread.Start();
            }
        }

        private void Work(CancellationToken cancellation)
        {
            var kernel = new RequestKernel(_world, _world.RequestKey);
            try
            {
                while (true)
                {
                    (RequestBatch Batch, RealizedStatistics Stats) slot;
                    long chunk;
                    lock (_gate)
                    {
                        // Stay within a window ahead of the consumer so the pool never runs dry out of order.
                        while (!_stopping && (_free.Count == 0 || _nextChunk >= _consumed + 2 * _threads) && _nextChunk < _chunks)
                        {
                            Monitor.Wait(_gate);
                        }
                        if (_stopping || _nextChunk >= _chunks)
                        {
                            return;
                        }
                        chunk = _nextChunk++;
                        slot = _free.Pop();
                    }
                    cancellation.ThrowIfCancellationRequested();
                    FillChunk(kernel, _clock, _world.RequestKey, chunk, _chunkSize, _requests, slot.Batch);
                    slot.Stats.Reset();
                    slot.Stats.Add(slot.Batch);
                    lock (_gate)
                    {
                        _ready[chunk] = slot;
                        Monitor.PulseAll(_gate);
                    }
                }
            }
            catch (Exception e)
            {
                lock (_gate)
                {
                    _failure ??= e;
                    _stopping = true;
                    Monitor.PulseAll(_gate);
                }
            }
        }

        public (RequestBatch, RealizedStatistics) Take(long chunk, CancellationToken cancellation)
        {
            lock (_gate)
            {
                while (!_ready.ContainsKey(chunk))
                {
                    if (_failure is not null)
                    {
                        if (_failure is OperationCanceledException)
                        {
                            throw new OperationCanceledException("Simulation cancelled.", _failure, cancellation);
                        }
                        throw new InvalidOperationException($"Simulation worker failed: {_failure.Message}", _failure);
                    }
                    cancellation.ThrowIfCancellationRequested();
                    Monitor.Wait(_gate, 100);
                }
                var slot = _ready[chunk];
                _ready.Remove(chunk);
                return slot;
            }
        }

        public void Return(RequestBatch batch, RealizedStatistics stats)
        {
            lock (_gate)
            {
                _free.Push((batch, stats));
                _consumed++;
                Monitor.PulseAll(_gate);
            }
        }

        public void Stop()
        {
            lock (_gate)
            {
                _stopping = true;
                Monitor.PulseAll(_gate);
            }
            foreach (var t in _workers)
            {
                t.Join();
            }
        }

        public void Dispose() => Stop();
    }
}
