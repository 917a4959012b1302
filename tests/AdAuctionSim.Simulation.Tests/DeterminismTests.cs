using System.Security.Cryptography;
using AdAuctionSim.Simulation.Engine;
using AdAuctionSim.Simulation.Scenarios;
using AdAuctionSim.Simulation.World;

namespace AdAuctionSim.Simulation.Tests;

/// <summary>The same scenario and seed give bit-identical requests whatever the thread count or chunk size.</summary>
public sealed class DeterminismTests
{
    private static readonly Scenario Small = new() { Seed = 404, Traffic = new TrafficOptions { Requests = 60_000, Users = 3000 } };

    [Fact]
    public void SameSeedGivesIdenticalRequestsAndStatisticsForAnyThreadCount()
    {
        var a = Digest(WorldModel.Build(Small), threads: 1, chunk: 4096, withStatistics: true);
        var b = Digest(WorldModel.Build(Small), threads: 2, chunk: 4096, withStatistics: true);
        var c = Digest(WorldModel.Build(Small), threads: 3, chunk: 4096, withStatistics: true);
        Assert.Equal(a, b);
        Assert.Equal(a, c);
        Assert.NotEqual(a, Digest(WorldModel.Build(Small with { Seed = 405 }), threads: 2, chunk: 4096, withStatistics: true));
    }

    [Fact]
    public void EveryRequestIsAPureFunctionOfSeedAndIdWhateverTheChunking()
    {
        var a = Digest(WorldModel.Build(Small), threads: 1, chunk: 60_000, withStatistics: false);
        Assert.Equal(a, Digest(WorldModel.Build(Small), threads: 2, chunk: 777, withStatistics: false));
    }

    private static string Digest(WorldModel world, int threads, int chunk, bool withStatistics)
    {
        var sink = new HashingSink();
        var summary = Simulator.Run(world, sink, new SimulationOptions { Threads = threads, ChunkSize = chunk });
        if (withStatistics)
        {
            sink.Add(BitConverter.GetBytes(summary.Bias.ClickRate));
            sink.Add(BitConverter.GetBytes(summary.Bias.WinSelectionRatio));
            sink.Add(BitConverter.GetBytes(summary.Bias.Stages[^1].ClickSelectionRatio ?? double.NaN));
        }
        return Convert.ToHexString(sink.Finish());
    }

    /// <summary>One running hash per column, so the digest does not depend on how requests were chunked.</summary>
    private sealed class HashingSink : ISimulationSink
    {
        private readonly IncrementalHash[] _columns = Enumerable.Range(0, 14).Select(_ => IncrementalHash.CreateHash(HashAlgorithmName.SHA256)).ToArray();

        public void Add(byte[] bytes) => _columns[^1].AppendData(bytes);

        public byte[] Finish() => _columns.SelectMany(c => c.GetHashAndReset()).ToArray();

        public void Write(RequestBatch b)
        {
            var n = b.Count;
            Append(0, b.RequestId.AsSpan(0, n));
            Append(1, b.Timestamp.AsSpan(0, n));
            Append(2, b.User.AsSpan(0, n));
            Append(3, b.Ad.AsSpan(0, n));
            Append(4, b.Candidates.AsSpan(0, n * b.CandidateCount));
            Append(5, b.Bid.AsSpan(0, n));
            Append(6, b.PscoreAd.AsSpan(0, n));
            Append(7, b.LoggingQ.AsSpan(0, n * b.Depth));
            Append(8, b.WinPropensity.AsSpan(0, n));
            Append(9, b.Won.AsSpan(0, n));
            Append(10, b.Price.AsSpan(0, n));
            Append(11, b.Q.AsSpan(0, n * b.Depth));
            Append(12, b.Outcome.AsSpan(0, n * b.Depth));
        }

        private void Append<T>(int column, ReadOnlySpan<T> values) where T : unmanaged =>
            _columns[column].AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values));
    }
}
