namespace AdAuctionSim.Models.Data;

/// <summary>The split of a request, by simulated time (codes as in the logs' <c>split</c> column).</summary>
public enum DatasetSplit : byte
{
    Train = 0,
    Validation = 1,
    Test = 2,
}
