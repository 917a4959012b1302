using AdAuctionSim.Simulation.Engine;

namespace AdAuctionSim.Simulation.Output;

/// <summary>
/// Splits each simulated chunk into the products: won rows to impressions, lost rows to lost bids, every row to the
/// truth, and counts rows per split. Runs on the simulator's consumer thread; encoding happens in the table sinks.
/// </summary>
internal sealed class OutputSink(TableSink impressions, TableSink lostBids, TableSink truth) : ISimulationSink
{
    private int[] _won = [];
    private int[] _lost = [];
    private int[] _all = [];

    public long[] RequestsBySplit { get; } = new long[3];
    public long[] ImpressionsBySplit { get; } = new long[3];

    public void Write(RequestBatch batch)
    {
        var count = batch.Count;
        if (_all.Length < count)
        {
            _won = new int[count];
            _lost = new int[count];
            _all = new int[count];
            for (var i = 0; i < count; i++)
            {
                _all[i] = i;
            }
        }
        int won = 0, lost = 0;
        var wonColumn = batch.Won;
        var split = batch.Split;
        for (var i = 0; i < count; i++)
        {
            var s = (int)split[i];
            RequestsBySplit[s]++;
            if (wonColumn[i])
            {
                ImpressionsBySplit[s]++;
                _won[won++] = i;
            }
            else
            {
                _lost[lost++] = i;
            }
        }
        impressions.Append(batch, _won.AsSpan(0, won));
        lostBids.Append(batch, _lost.AsSpan(0, lost));
        truth.Append(batch, _all.AsSpan(0, count));
    }
}
