using AdAuctionSim.Simulation.Scenarios;

namespace AdAuctionSim.Simulation.Engine;

/// <summary>
/// The simulated clock. Requests arrive in id order over <c>days</c> days with the hour-of-day intensity of the
/// scenario: request i arrives at Λ⁻¹((i + u_i) / N), where Λ is the cumulative intensity and u_i a per-request
/// jitter, so arrival times increase with the id and the split by id is a split by time.
/// </summary>
internal sealed class SimulationClock
{
    private readonly double[] _cumulative; // at the start of each hour segment, then the total
    private readonly double[] _rate;       // intensity of each hour segment
    private readonly long _requests;
    private readonly long _trainEnd;
    private readonly long _validationEnd;

    public SimulationClock(TrafficOptions traffic, SplitOptions split)
    {
        var hours = traffic.Days * 24;
        var segments = (int)Math.Ceiling(hours - 1e-9);
        _cumulative = new double[segments + 1];
        _rate = new double[segments];
        for (var h = 0; h < segments; h++)
        {
            var length = Math.Min(1.0, hours - h);
            _rate[h] = traffic.HourProfile[h % 24];
            _cumulative[h + 1] = _cumulative[h] + _rate[h] * length;
        }
        _requests = traffic.Requests;
        _trainEnd = (long)Math.Round(_requests * split.Train);
        _validationEnd = Math.Min(_requests, (long)Math.Round(_requests * (split.Train + split.Validation)));
        DurationSeconds = (long)Math.Ceiling(hours * 3600);
    }

    public long DurationSeconds { get; }

    /// <summary>Rows [0, TrainEnd) are training rows, [TrainEnd, ValidationEnd) validation, the rest test.</summary>
    public long TrainEnd => _trainEnd;
    public long ValidationEnd => _validationEnd;

    public DataSplit SplitOf(long requestId) =>
        requestId < _trainEnd ? DataSplit.Train : requestId < _validationEnd ? DataSplit.Validation : DataSplit.Test;

    /// <summary>Arrival time in whole simulated seconds.</summary>
    public long SecondsOf(long requestId, double jitter)
    {
        var target = (requestId + jitter) / _requests * _cumulative[^1];
        // First segment whose end lies beyond the target (zero-intensity hours are skipped by construction).
        int lo = 0, hi = _rate.Length - 1;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_cumulative[mid + 1] > target)
            {
                hi = mid;
            }
            else
            {
                lo = mid + 1;
            }
        }
        var within = _rate[lo] > 0 ? (target - _cumulative[lo]) / _rate[lo] : 0;
        return (long)((lo + Math.Clamp(within, 0, 1)) * 3600);
    }
}
