using System.Globalization;
using System.Security.Cryptography;
using CsvHelper;
using Parquet;
using Parquet.Schema;

namespace AdAuctionSim.Simulation.Output;

/// <summary>Writes one product file block by block; the file is complete only after <see cref="Complete"/>.</summary>
internal interface ITableWriter : IDisposable
{
    /// <summary>Appends a block of rows (a Parquet row group).</summary>
    void Write(TableBuffer buffer);

    /// <summary>Finishes the file (footer, flush, close) and returns the SHA-256 of its bytes, lower-case hex.</summary>
    string Complete();

    long Rows { get; }
}

internal static class TableWriter
{
    public static ITableWriter Create(OutputFormat format, string path, IReadOnlyList<TableColumn> columns) => format switch
    {
        OutputFormat.Parquet => new ParquetTableWriter(path, columns),
        OutputFormat.Csv => new CsvTableWriter(path, columns),
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "unknown output format"),
    };

    public static string Extension(OutputFormat format) => format switch
    {
        OutputFormat.Parquet => ".parquet",
        OutputFormat.Csv => ".csv",
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "unknown output format"),
    };

    /// <summary>A new file that must not exist yet (the output folder is fresh), large write buffer.</summary>
    public static FileStream OpenNew(string path) =>
        new(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20, FileOptions.SequentialScan);
}

/// <summary>
/// Forwards writes to a file and hashes them on the way, so a product's SHA-256 costs no second read. Writes are
/// strictly sequential: seeking is refused, which also proves that no writer patches bytes it already wrote.
/// </summary>
internal sealed class HashingStream(Stream inner) : Stream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _position;

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => _position;

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException("product files are written sequentially");
    }

    /// <summary>Hash of everything written so far, lower-case hex.</summary>
    public string Sha256() => Convert.ToHexStringLower(_hash.GetHashAndReset());

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _hash.AppendData(buffer);
        inner.Write(buffer);
        _position += buffer.Length;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void WriteByte(byte value) => Write([value]);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override void Flush() => inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken)
    {
        inner.Flush();
        return Task.CompletedTask;
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException("product files are written sequentially");
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
            _hash.Dispose();
        }
        base.Dispose(disposing);
    }
}

/// <summary>
/// Parquet via Parquet.Net: one row group per <see cref="TableBuffer"/>, Snappy pages, plain encoding except the
/// dictionary-encoded split names, required (non-nullable) columns. The bytes depend only on the rows and the
/// row-group size (the footer holds no time stamp), so they are identical across runs and thread counts.
/// Snappy costs about a tenth of the simulate-and-write CPU and saves about a third of the bytes.
/// </summary>
internal sealed class ParquetTableWriter : ITableWriter
{
    private static readonly ReadOnlyMemory<char>[] SplitText = LogColumns.SplitNames.Select(s => s.AsMemory()).ToArray();

    private readonly IReadOnlyList<TableColumn> _columns;
    private readonly DataField[] _fields;
    private readonly HashingStream _stream;
    private readonly ParquetWriter _writer;
    private readonly ParquetOptions _options;
    private readonly CompressionMethod[] _codecs;
    private ReadOnlyMemory<char>[] _splitScratch = [];
    private bool _completed;

    public ParquetTableWriter(string path, IReadOnlyList<TableColumn> columns)
    {
        _columns = columns;
        _fields = columns.Select(Field).ToArray();
        _codecs = columns.Select(Codec).ToArray();
        var options = _options = new ParquetOptions
        {
            CompressionMethod = CompressionMethod.Snappy,
            // Parquet.Net dictionary-encodes only strings, and the only strings are the split names (three values):
            // always take the dictionary. It is both smaller and faster than plain strings, which cost Parquet.Net
            // ten times an int column per value.
            DictionaryEncodingThreshold = 1,
        };
        foreach (var field in _fields.Where(f => f.ClrType == typeof(ReadOnlyMemory<char>) || f.ClrType == typeof(string)))
        {
            options.ColumnEncodingHints[field.Path.ToString()] = EncodingHint.Dictionary;
        }
        _stream = new HashingStream(TableWriter.OpenNew(path));
        try
        {
            _writer = ParquetWriter.CreateAsync(new ParquetSchema(_fields), _stream, options).GetAwaiter().GetResult();
        }
        catch
        {
            _stream.Dispose();
            throw;
        }
    }

    public long Rows { get; private set; }

    /// <summary>
    /// Snappy for ids, labels, split names and the doubles that take few values; none for continuous doubles
    /// (probabilities, bids, prices), which Snappy shrinks by a few percent at a large share of the write time.
    /// </summary>
    internal static CompressionMethod Codec(TableColumn column) =>
        column.Kind != ColumnKind.Double || LowCardinalityDoubles.Contains(column.Name)
            ? CompressionMethod.Snappy
            : CompressionMethod.None;

    internal static readonly HashSet<string> LowCardinalityDoubles = ["bid_multiplier", "pscore_multiplier", "value_per_conversion"];

    private static DataField Field(TableColumn column) => column.Kind switch
    {
        ColumnKind.Int64 => new DataField<long>(column.Name),
        ColumnKind.Int32 => new DataField<int>(column.Name),
        ColumnKind.Double => new DataField<double>(column.Name),
        ColumnKind.Boolean => new DataField<bool>(column.Name),
        ColumnKind.Split => new DataField<string>(column.Name, nullable: false),
        _ => throw new InvalidOperationException($"unknown column kind {column.Kind}"),
    };

    public void Write(TableBuffer buffer)
    {
        var n = buffer.Count;
        if (n == 0)
        {
            return;
        }
        using (var group = _writer.CreateRowGroup())
        {
            for (var c = 0; c < _columns.Count; c++)
            {
                var field = _fields[c];
                var data = buffer.Data[c];
                // Parquet.Net reads the codec from the options as each column chunk is written (pinned package
                // version; OutputTests checks the codecs in the written files).
                _options.CompressionMethod = _codecs[c];
                var task = _columns[c].Kind switch
                {
                    ColumnKind.Int64 => group.WriteAsync(field, new ReadOnlyMemory<long>((long[])data, 0, n)),
                    ColumnKind.Int32 => group.WriteAsync(field, new ReadOnlyMemory<int>((int[])data, 0, n)),
                    ColumnKind.Double => group.WriteAsync(field, new ReadOnlyMemory<double>((double[])data, 0, n)),
                    ColumnKind.Boolean => group.WriteAsync(field, new ReadOnlyMemory<bool>((bool[])data, 0, n)),
                    ColumnKind.Split => group.WriteAsync(field, SplitColumn((byte[])data, n)),
                    _ => throw new InvalidOperationException($"unknown column kind {_columns[c].Kind}"),
                };
                task.GetAwaiter().GetResult();
            }
            group.CompleteValidate();
        }
        Rows += n;
    }

    /// <summary>The split codes as text; the three strings are shared, so this allocates nothing per row.</summary>
    private ReadOnlyMemory<ReadOnlyMemory<char>> SplitColumn(byte[] codes, int n)
    {
        if (_splitScratch.Length < n)
        {
            _splitScratch = new ReadOnlyMemory<char>[codes.Length];
        }
        for (var i = 0; i < n; i++)
        {
            _splitScratch[i] = SplitText[codes[i]];
        }
        return new ReadOnlyMemory<ReadOnlyMemory<char>>(_splitScratch, 0, n);
    }

    public string Complete()
    {
        _completed = true;
        try
        {
            _writer.DisposeAsync().AsTask().GetAwaiter().GetResult();
            _stream.Flush();
            return _stream.Sha256();
        }
        finally
        {
            _stream.Dispose();
        }
    }

    public void Dispose()
    {
        if (!_completed)
        {
            // Abandoned (failure or cancellation): the folder is deleted, so only release the file handle.
            _completed = true;
            try
            {
                _writer.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or NotSupportedException or ObjectDisposedException)
            {
                // The partial file is about to be deleted; a footer that cannot be written does not matter.
            }
            _stream.Dispose();
        }
    }
}

/// <summary>
/// CSV via CsvHelper: UTF-8 without BOM, header row, "\n" line ends, invariant culture, doubles in round-trip ("R")
/// form, booleans true/false. Numbers are formatted straight into CsvHelper's UTF-8 buffer (no string per value).
/// </summary>
internal sealed class CsvTableWriter : ITableWriter
{
    private static readonly CsvWriterOptions Options = new()
    {
        NewLine = "\n",
        TrueValue = "true",
        FalseValue = "false",
        FormatProvider = CultureInfo.InvariantCulture,
    };

    private readonly IReadOnlyList<TableColumn> _columns;
    private readonly HashingStream _stream;
    private readonly CsvWriter _csv;
    private bool _completed;

    public CsvTableWriter(string path, IReadOnlyList<TableColumn> columns)
    {
        _columns = columns;
        _stream = new HashingStream(TableWriter.OpenNew(path));
        _csv = CsvWriter.Create(_stream, Options, leaveOpen: true);
        _csv.WriteHeader(columns.Select(c => c.Name).ToArray());
    }

    public long Rows { get; private set; }

    public void Write(TableBuffer buffer)
    {
        var data = buffer.Data;
        for (var i = 0; i < buffer.Count; i++)
        {
            for (var c = 0; c < _columns.Count; c++)
            {
                switch (_columns[c].Kind)
                {
                    case ColumnKind.Int64:
                        _csv.WriteField(((long[])data[c])[i], "");
                        break;
                    case ColumnKind.Int32:
                        _csv.WriteField(((int[])data[c])[i], "");
                        break;
                    case ColumnKind.Double:
                        _csv.WriteField(((double[])data[c])[i], "R");
                        break;
                    case ColumnKind.Boolean:
                        _csv.WriteField(((bool[])data[c])[i]);
                        break;
                    case ColumnKind.Split:
                        _csv.WriteField(LogColumns.SplitNames[((byte[])data[c])[i]]);
                        break;
                    default:
                        throw new InvalidOperationException($"unknown column kind {_columns[c].Kind}");
                }
            }
            _csv.EndRecord();
        }
        Rows += buffer.Count;
    }

    public string Complete()
    {
        _completed = true;
        try
        {
            _csv.Flush();
            _csv.Dispose();
            _stream.Flush();
            return _stream.Sha256();
        }
        finally
        {
            _stream.Dispose();
        }
    }

    public void Dispose()
    {
        if (!_completed)
        {
            _completed = true;
            try
            {
                _csv.Dispose();
            }
            catch (IOException)
            {
                // The partial file is about to be deleted.
            }
            _stream.Dispose();
        }
    }
}
