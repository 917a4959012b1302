using AdAuctionSim.Models.Core;
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
    private readonly Dictionary<string, Bank> banks = new(StringComparer.Ordinal);
    private readonly List<string> order = [];
    private long rows;

    /// <summary>Adds one batch of one gate's weights [B, n] under the gate's name, with the experts' names.</summary>
    public void Add(string gate, Tensor weights, IReadOnlyList<string> experts) =>
        Add(weights.unsqueeze(1), [gate], experts);

    /// <summary>
    /// Adds one batch of T gates' weights [B, T, n] over a layer's n experts (<paramref name="experts"/> names them);
    /// gate t is named <paramref name="gates"/>[t] and reports the experts in <paramref name="members"/>[t] (all n when
    /// null), the others being outside its softmax.
    /// </summary>
    public void Add(Tensor weights, IReadOnlyList<string> gates, IReadOnlyList<string> experts, IReadOnlyList<int[]>? members = null)
    {
        using var noGrad = no_grad();
        var batchSum = weights.detach().sum(dim: 0);   // [T, n]
        var key = string.Join('\u0001', gates);
        if (banks.TryGetValue(key, out var bank))
        {
            bank.Sum.PlusInPlace(batchSum);
            return;
        }
        var columns = members is null
            ? gates.Select(_ => Enumerable.Range(0, experts.Count).ToArray()).ToArray()
            : members.Select(m => m.ToArray()).ToArray();
        // Outlives the training step's dispose scope until the next Read.
        banks[key] = new Bank(batchSum.clone().DetachFromDisposeScope(), [.. gates], columns, [.. experts]);
        order.Add(key);
    }

    /// <summary>Counts the rows of one batch (call once per forward, after its gates).</summary>
    public void AddRows(long batchRows) => rows += batchRows;

    /// <summary>"gate.{gate}.{expert}" → mean weight, then clears the sums.</summary>
    public IReadOnlyDictionary<string, double> Read()
    {
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        if (rows > 0)
        {
            foreach (var key in order)
            {
                var bank = banks[key];
                var host = bank.Sum.device_type == DeviceType.CPU ? bank.Sum : bank.Sum.cpu();
                var values = host.data<float>().ToArray();
                if (!ReferenceEquals(host, bank.Sum))
                {
                    host.Dispose();
                }
                var n = bank.Experts.Length;
                for (var t = 0; t < bank.Gates.Length; t++)
                {
                    foreach (var j in bank.Columns[t])
                    {
                        result[$"gate.{bank.Gates[t]}.{bank.Experts[j]}"] = values[t * n + j] / (double)rows;
                    }
                }
            }
        }
        foreach (var bank in banks.Values)
        {
            bank.Sum.Dispose();
        }
        banks.Clear();
        order.Clear();
        rows = 0;
        return result;
    }

    private sealed record Bank(Tensor Sum, string[] Gates, int[][] Columns, string[] Experts);
}
