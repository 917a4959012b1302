using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Runtime;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Tests;

[Collection(TorchSharpCollection.Name)]
public sealed class LayerTests
{
    public LayerTests() => TorchRuntime.Initialize("cpu", threads: 1, seed: 11);

    [Fact]
    public void Mlp_HiddenThenLinearOutput_HasTheExpectedShapesNamesAndActivations()
    {
        using var scope = NewDisposeScope();
        var mlp = new Mlp("mlp", 6, [5, 4], output: 3);
        var x = randn(7, 6);

        var y = mlp.forward(x);

        Assert.Equal(new long[] { 7, 3 }, y.shape);
        Assert.Equal(3, mlp.OutputWidth);
        Assert.Equal(
            ["hidden.0.weight", "hidden.0.bias", "hidden.1.weight", "hidden.1.bias", "output.weight", "output.bias"],
            mlp.named_parameters().Select(p => p.name).ToArray());
        // The same arithmetic by hand: ReLU after each hidden layer, none after the output.
        var p = mlp.named_parameters().ToDictionary(t => t.name, t => t.parameter);
        var h = nn.functional.relu(x.matmul(p["hidden.0.weight"].t()) + p["hidden.0.bias"]);
        h = nn.functional.relu(h.matmul(p["hidden.1.weight"].t()) + p["hidden.1.bias"]);
        var expected = h.matmul(p["output.weight"].t()) + p["output.bias"];
        Assert.True(y.allclose(expected, rtol: 1e-5, atol: 1e-6));
        // A linear output can be negative; hidden-only MLPs end in ReLU.
        Assert.True((mlp.forward(randn(256, 6)) < 0).any().item<bool>());
        Assert.True((new Mlp("h", 6, [5]).forward(randn(256, 6)) >= 0).all().item<bool>());
    }

    [Fact]
    public void Mlp_WithNothing_IsTheIdentity_AndRejectsBadWidths()
    {
        using var scope = NewDisposeScope();
        var x = randn(3, 4);
        var mlp = new Mlp("id", 4, []);

        Assert.Equal(4, mlp.OutputWidth);
        Assert.Empty(mlp.parameters());
        Assert.True(mlp.forward(x).allclose(x, rtol: 0, atol: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Mlp("bad", 4, [0]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Mlp("bad", 0, [3]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Mlp("bad", 4, [3], dropout: 1.0));
    }

    [Fact]
    public void ExpertBank_SharedInput_EqualsALoopOverIndependentExperts()
    {
        using var scope = NewDisposeScope();
        var bank = new ExpertBank("experts", 10, 4, 6);
        var x = randn(9, 10);

        var y = bank.forward(x);

        Assert.Equal(new long[] { 9, 4, 6 }, y.shape);
        Assert.Equal(["weight", "bias"], bank.named_parameters().Select(p => p.name).ToArray());
        for (var i = 0; i < 4; i++)
        {
            var expected = nn.functional.relu(x.matmul(bank.Weight[i]) + bank.Bias[i]);
            Assert.True(y.select(1, i).allclose(expected, rtol: 1e-5, atol: 1e-6), $"expert {i}");
        }
    }

    [Fact]
    public void ExpertBank_PerExpertInput_GivesEachExpertItsOwnRow()
    {
        using var scope = NewDisposeScope();
        var bank = new ExpertBank("experts", 5, 3, 4);
        var x = randn(2, 3, 5);

        var y = bank.forward(x);

        Assert.Equal(new long[] { 2, 3, 4 }, y.shape);
        for (var i = 0; i < 3; i++)
        {
            var expected = nn.functional.relu(x.select(1, i).matmul(bank.Weight[i]) + bank.Bias[i]);
            Assert.True(y.select(1, i).allclose(expected, rtol: 1e-5, atol: 1e-6), $"expert {i}");
        }
        // The same row given to every expert is the shared-input case.
        var shared = randn(2, 5);
        Assert.True(bank.forward(shared.unsqueeze(1).expand(-1, 3, -1)).allclose(bank.forward(shared)));
        Assert.Throws<ArgumentException>(() => bank.forward(randn(5)));
        Assert.Throws<ArgumentException>(() => bank.forward(randn(2, 4)));
        Assert.Throws<ArgumentException>(() => bank.forward(randn(2, 2, 5)));
    }

    [Fact]
    public void ExpertBank_Init_IsXavierUniformPerExpert_AndExpertsDiffer()
    {
        using var scope = NewDisposeScope();
        const int input = 40, hidden = 24, experts = 6;
        var bank = new ExpertBank("experts", input, experts, hidden);
        var bound = Math.Sqrt(6.0 / (input + hidden));
        var w = bank.Weight.detach();

        Assert.True(w.abs().max().item<float>() <= bound);
        // Uniform(−a, a) has variance a²/3; 5760 draws put the sample variance well within 10 %.
        var variance = w.var().item<float>();
        Assert.InRange(variance, 0.9 * bound * bound / 3, 1.1 * bound * bound / 3);
        Assert.Equal(0f, bank.Bias.detach().abs().max().item<float>());
        for (var i = 0; i < experts; i++)
        {
            for (var j = i + 1; j < experts; j++)
            {
                Assert.True((w[i] - w[j]).abs().max().item<float>() > 0.1 * bound, $"experts {i} and {j} start alike");
            }
        }
    }

    [Fact]
    public void Gate_IsABiasFreeSoftmax_AndMixWeighsTheExperts()
    {
        using var scope = NewDisposeScope();
        var gate = new Gate("gate", 8, 5);
        var x = randn(6, 8);

        var g = gate.forward(x);

        Assert.Equal(["linear.weight"], gate.named_parameters().Select(p => p.name).ToArray());
        Assert.Equal(new long[] { 6, 5 }, g.shape);
        Assert.True((g > 0).all().item<bool>());
        Assert.True(g.sum(1).allclose(ones(6), atol: 1e-6));
        // A bias-free gate maps the zero input to the uniform mixture.
        Assert.True(gate.forward(zeros(1, 8)).allclose(full(1, 5, 0.2f), atol: 1e-6));

        var experts = randn(6, 5, 3);
        var expected = (g.unsqueeze(2) * experts).sum(1);
        Assert.True(Gate.Mix(g, experts).allclose(expected, rtol: 1e-5, atol: 1e-6));
        var twoGates = stack([g, g.flip(1)], 1);
        var mixed = Gate.Mix(twoGates, experts);
        Assert.Equal(new long[] { 6, 2, 3 }, mixed.shape);
        Assert.True(mixed.select(1, 1).allclose((g.flip(1).unsqueeze(2) * experts).sum(1), rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void Layers_WorkAtBatchSizeOne()
    {
        using var scope = NewDisposeScope();
        var bank = new ExpertBank("experts", 4, 3, 2);
        var gate = new Gate("gate", 4, 3);
        var x = randn(1, 4);

        var h = Gate.Mix(gate.forward(x), bank.forward(x));

        Assert.Equal(new long[] { 1, 2 }, h.shape);
        Assert.Equal(new long[] { 1, 7 }, new Mlp("m", 4, [3], output: 7).forward(x).shape);
    }
}
