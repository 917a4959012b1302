using System.Collections.Concurrent;
using AdAuctionSim.Simulation.Engine;

namespace AdAuctionSim.Simulation.Output;

/// <summary>
/// Accumulates one product's rows into fixed-size column buffers and encodes full buffers on a background thread,
/// so that simulation (and gathering) overlaps with Parquet encoding and compression. At most two full buffers are
/// in flight (one queued, one being encoded) besides the one being filled, so memory is bounded by three buffers
/// whatever the request count. Row-group boundaries depend only on the row count, never on chunking or threads.
/// </summary>
internal sealed class TableSink : IDisposable
{
    private const int MaxBuffers = 3;

    private readonly string _path;
    private readonly IReadOnlyList<TableColumn> _columns;
    private readonly ITableWriter _writer;
    private readonly int _capacity;
    private readonly BlockingCollection<TableBuffer> _full = new(boundedCapacity: 1);
    private readonly BlockingCollection<TableBuffer> _free = new();
    private readonly CancellationToken _cancellation;
    private readonly CancellationTokenSource _abort;
    private readonly Thread _encoder;
    private TableBuffer? _current;
    private int _allocated;
    private volatile Exception? _failure;
    private bool _finished;

    /// <param name="path">The product file (for messages).</param>
    /// <param name="columns">The product's layout.</param>
    /// <param name="writer">Encodes full buffers; owned by the sink.</param>
    /// <param name="capacity">Rows per buffer, that is per row group.</param>
    /// <param name="cancellation">Also stops the encoder, so a cancelled run does not wait for queued row groups.</param>
    public TableSink(string path, IReadOnlyList<TableColumn> columns, ITableWriter writer, int capacity, CancellationToken cancellation)
    {
        _cancellation = cancellation;
        _abort = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        _path = path;
        _columns = columns;
        _writer = writer;
        _capacity = capacity;
        _encoder = new Thread(Encode) { IsBackground = true, Name = $"adsim-write-{Path.GetFileNameWithoutExtension(path)}" };
        _encoder.Start();
    }

    public long Rows { get; private set; }

    /// <summary>Copies the given rows of the batch (in order) into the product.</summary>
    public void Append(RequestBatch batch, ReadOnlySpan<int> rows)
    {
        while (rows.Length > 0)
        {
            var buffer = _current ??= Rent();
            var n = Math.Min(rows.Length, buffer.Capacity - buffer.Count);
            var part = rows[..n];
            for (var c = 0; c < _columns.Count; c++)
            {
                _columns[c].Gather!(batch, part, buffer.Data[c], buffer.Count);
            }
            buffer.Count += n;
            Rows += n;
            rows = rows[n..];
            if (buffer.Count == buffer.Capacity)
            {
                Submit(buffer);
                _current = null;
            }
        }
    }

    /// <summary>Writes the last partial block, waits for the encoder and finishes the file; returns its SHA-256.</summary>
    public string Complete()
    {
        if (_current is { Count: > 0 } last)
        {
            Submit(last);
        }
        _current = null;
        _full.CompleteAdding();
        _encoder.Join();
        ThrowIfFailed();
        // The encoder may have stopped early because of cancellation: never finish a file that lacks rows.
        _cancellation.ThrowIfCancellationRequested();
        _finished = true;
        return _writer.Complete();
    }

    private TableBuffer Rent()
    {
        if (_free.TryTake(out var buffer))
        {
            return buffer;
        }
        if (_allocated < MaxBuffers)
        {
            _allocated++;
            return new TableBuffer(_columns, _capacity);
        }
        try
        {
            return _free.Take(_abort.Token);
        }
        catch (OperationCanceledException)
        {
            ThrowIfFailed();
            // Report the caller's token rather than the linked one.
            _cancellation.ThrowIfCancellationRequested();
            throw;
        }
    }

    private void Submit(TableBuffer buffer)
    {
        ThrowIfFailed();
        try
        {
            _full.Add(buffer, _abort.Token);
        }
        catch (OperationCanceledException)
        {
            ThrowIfFailed();
            // Report the caller's token rather than the linked one.
            _cancellation.ThrowIfCancellationRequested();
            throw;
        }
    }

    private void Encode()
    {
        try
        {
            foreach (var buffer in _full.GetConsumingEnumerable(_abort.Token))
            {
                _writer.Write(buffer);
                buffer.Count = 0;
                _free.Add(buffer);
            }
        }
        catch (OperationCanceledException) when (_abort.IsCancellationRequested)
        {
            // Aborted by Dispose or cancelled: the output is being thrown away.
        }
        catch (Exception e)
        {
            _failure = e;
            // Wakes a producer blocked on a full queue or an empty pool so it sees the failure.
            _abort.Cancel();
        }
    }

    private void ThrowIfFailed()
    {
        if (_failure is { } e)
        {
            throw new IOException($"Writing {_path} failed: {e.Message}", e);
        }
    }

    public void Dispose()
    {
        if (!_finished)
        {
            _finished = true;
            _abort.Cancel();
            _full.CompleteAdding();
            _encoder.Join();
        }
        _writer.Dispose();
        _full.Dispose();
        _free.Dispose();
        _abort.Dispose();
    }
}
