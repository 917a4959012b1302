using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Core;

/// <summary>
/// The shared feature encoder (models.md §0.2): every observed categorical field through one embedding table with
/// per-field offsets. Input [B, F] rows of that table (offsets added by the data layer, unseen ids in each field's
/// reserved bucket); output [B, F, d], or [B, F·d] with <see cref="Flat"/>.
/// </summary>
/// <remarks>
/// The table produces sparse gradients by default (one row per lookup), which the trainer's
/// <see cref="Training.ModelOptimizer"/> applies to the looked-up rows only; a dense gradient would touch every row of
/// the table on every step. Pass <c>sparse: false</c> for code that needs a dense gradient tensor.
/// </remarks>
public sealed class FeatureEncoder : nn.Module<Tensor, Tensor>
{
    private readonly Embedding table;

    public FeatureEncoder(string name, FeatureSchema schema, int dim, bool sparse = true) : base(name)
    {
        Schema = schema;
        Dim = dim;
        table = nn.Embedding(schema.TotalRows, dim, sparse: sparse);
        nn.init.normal_(table.weight, 0, 0.01);
        RegisterComponents();
    }

    public FeatureSchema Schema { get; }
    public int Dim { get; }
    public int FlatWidth => Schema.Count * Dim;

    /// <summary>[B, F, d].</summary>
    public override Tensor forward(Tensor rows) => table.call(rows);

    /// <summary>[B, F·d].</summary>
    public Tensor Flat(Tensor rows) => table.call(rows).flatten(1);
}
