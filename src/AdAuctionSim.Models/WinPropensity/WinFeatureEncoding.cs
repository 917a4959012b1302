using TorchSharp;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.WinPropensity;

/// <summary>
/// How the TorchSharp estimators read <see cref="WinLogData"/>: one shared table with field f at offset
/// Σ_{g&lt;f}(card_g + 1) (the +1 is the field's unseen row), the log bid centred on the training mean, and the
/// standardised log base bid as an optional covariate. Fixed at fit time so scoring uses the training statistics.
/// </summary>
internal sealed class WinFeatureEncoding
{
    /// <summary>
    /// Rows scored per forward pass, so scoring a million requests does not hold all their embeddings at once. Below
    /// libtorch's parallel grain (32,768 elements), so the per-row element-wise kernels (softplus, sigmoid) run in one
    /// piece: split between threads at a point off the vector boundary, a row computed in the scalar tail differs from
    /// the same row in a vector lane in the last bit (at 65,536 the ragged last chunk of 300,000 requests gave 5 rows
    /// other π̂ on 2 threads than on 1).
    /// </summary>
    public const int ScoringChunk = 16_384;

    private readonly long[] _offsets;
    private readonly int[] _cardinalities;
    private readonly bool _useBaseBid;

    public WinFeatureEncoding(WinLogData train, bool useBaseBid)
    {
        var f = train.FieldCount;
        _offsets = new long[f];
        _cardinalities = [.. train.Cardinalities];
        long total = 0;
        for (var j = 0; j < f; j++)
        {
            _offsets[j] = total;
            total += _cardinalities[j] + 1L;
        }
        TableRows = total;
        _useBaseBid = useBaseBid;

        double sumBid = 0, sumBase = 0, sumBaseSq = 0;
        var n = train.Count;
        for (var i = 0; i < n; i++)
        {
            var lb = Math.Log(train.Bid[i]);
            var l0 = Math.Log(train.BaseBid(i));
            sumBid += lb;
            sumBase += l0;
            sumBaseSq += l0 * l0;
        }
        LogBidCenter = sumBid / n;
        BaseMean = sumBase / n;
        BaseSd = Math.Sqrt(Math.Max(sumBaseSq / n - BaseMean * BaseMean, 1e-12));
    }

    /// <summary>Rows of the shared table (unseen rows included).</summary>
    public long TableRows { get; }

    /// <summary>Mean training ln b, subtracted from every log price and bid so the location parameters start near 0.</summary>
    public double LogBidCenter { get; }

    public double BaseMean { get; }
    public double BaseSd { get; }

    /// <summary>[N, F] int64 rows of the shared table.</summary>
    public Tensor Rows(WinLogData data)
    {
        var f = data.FieldCount;
        var ids = new long[(long)data.Count * f];
        for (var i = 0; i < data.Count; i++)
        {
            for (var j = 0; j < f; j++)
            {
                var id = data.FeatureIds[i * f + j];
                var card = _cardinalities[j];
                ids[i * f + j] = _offsets[j] + (id >= 0 && id < card ? id : card);
            }
        }
        return torch.tensor(ids, [data.Count, f]);
    }

    /// <summary>[N, 1] standardised ln(base bid), or zeros when the covariate is off.</summary>
    public Tensor BaseCovariate(WinLogData data, ScalarType type)
    {
        var z = new double[data.Count];
        if (_useBaseBid)
        {
            for (var i = 0; i < z.Length; i++)
            {
                z[i] = (Math.Log(data.BaseBid(i)) - BaseMean) / BaseSd;
            }
        }
        using var raw = torch.tensor(z, [data.Count, 1]);
        return raw.to_type(type);
    }

    /// <summary>ln(price) − <see cref="LogBidCenter"/>.</summary>
    public double CenteredLog(double price) => Math.Log(price) - LogBidCenter;
}
