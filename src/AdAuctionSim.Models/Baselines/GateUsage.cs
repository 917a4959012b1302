using TorchSharp;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Baselines;

/// <summary>
/// Mean softmax weight per gate × expert over the training rows seen since the last read (models.md §4: gates often
/// collapse onto one expert; log it). Sums stay on the device as detached tensors, so no batch forces a host sync;
/// <see cref="Read"/> copies them once, when the trainer asks for the epoch's diagnostics.
/// </summary>
internal sealed class GateUsage
{
    private readonly Dictionary<string, (Tensor Sum, string[] Experts)> sums = new(StringComparer.Ordinal);
    private readonly List<string> order = [];
    private long rows;

    /// <summary>Adds one batch of gate weights [B, n] under a gate name, with the experts' names.</summary>
    public void Add(string gate, Tensor weights, IReadOnlyList<string> experts)
    {
        using var noGrad = no_grad();
        var batchSum = weights.detach().sum(dim: 0);
        if (sums.TryGetValue(gate, out var entry))
        {
            entry.Sum.add_(batchSum);
        }
        else
        {
            // Outlives the training step's dispose scope until the next Read.
            sums[gate] = (batchSum.clone().DetachFromDisposeScope(), [.. experts]);
            order.Add(gate);
        }
    }

    /// <summary>Counts the rows of one batch (call once per forward, after its gates).</summary>
    public void AddRows(long batchRows) => rows += batchRows;

    /// <summary>"gate.{gate}.{expert}" → mean weight, then clears the sums.</summary>
    public IReadOnlyDictionary<string, double> Read()
    {
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        if (rows > 0)
        {
            foreach (var gate in order)
            {
                var (sum, experts) = sums[gate];
                var host = sum.device_type == DeviceType.CPU ? sum : sum.cpu();
                var values = host.data<float>().ToArray();
                if (!ReferenceEquals(host, sum))
                {
                    host.Dispose();
                }
                for (var i = 0; i < values.Length; i++)
                {
                    result[$"gate.{gate}.{experts[i]}"] = values[i] / (double)rows;
                }
            }
        }
        foreach (var (sum, _) in sums.Values)
        {
            sum.Dispose();
        }
        sums.Clear();
        order.Clear();
        rows = 0;
        return result;
    }
}
