using AdAuctionSim.Models.Runtime;
using AdAuctionSim.Models.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Tests;

[Collection(TorchSharpCollection.Name)]
public sealed class TorchTrainingSmokeTests
{
    // Held for the process: TorchSharp 0.107 may free a Scalar made for one call while libtorch reads it.
    private static readonly Scalar Half = 0.5.ToScalar();

    [Fact]
    public void OneAdamStep_OnATinyMlp_GivesAFiniteLossAndMovesEveryParameter()
    {
        TorchRuntime.Initialize("cpu", threads: 1, seed: 7);
        using var scope = NewDisposeScope();

        var model = nn.Sequential(
            ("hidden", nn.Linear(8, 16)),
            ("relu", nn.ReLU()),
            ("out", nn.Linear(16, 1)));
        var x = randn(64, 8);
        var y = (rand(64, 1) > Half).to_type(ScalarType.Float32);
        var before = model.parameters().Select(p => p.detach().clone()).ToArray();
        // The product's Adam (TorchSharp's makes Scalars nothing holds; TrainerTests compares the two).
        using var optimizer = new FlatAdam([.. model.parameters()], 0.01);

        model.zero_grad();
        var loss = nn.functional.binary_cross_entropy_with_logits(model.forward(x), y);
        loss.backward();
        optimizer.Step();

        var lossValue = loss.item<float>();
        Assert.True(float.IsFinite(lossValue), $"loss is {lossValue}");
        // A freshly initialised logistic output on random labels should sit near ln 2.
        Assert.InRange(lossValue, 0.3f, 1.5f);
        var after = model.parameters().ToArray();
        Assert.Equal(4, after.Length);
        for (var i = 0; i < after.Length; i++)
        {
            var change = (after[i] - before[i]).abs().max().item<float>();
            Assert.True(change > 0f, $"parameter {i} did not change after optimizer.Step()");
        }
    }
}
