namespace AdAuctionSim.Simulation.Engine;

/// <summary>
/// Receives the simulated requests chunk by chunk, in request order, on one thread at a time.
/// A sink must copy what it keeps: the batch is reused after <see cref="Write"/> returns.
/// </summary>
public interface ISimulationSink
{
    void Write(RequestBatch batch);
}
