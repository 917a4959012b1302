using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Tests;

[Collection(TorchSharpCollection.Name)]
public sealed class LayerTests
{
    // Held for the process: TorchSharp 0.107 may free a Scalar made for one call while libtorch reads it.
    private static readonly Scalar Half = 0.5.ToScalar();
    private static readonly Scalar Fifth = 0.2f.ToScalar();
    private static readonly Scalar Two = 2.ToScalar();
    private static readonly Scalar Three = 3.ToScalar();

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
        var h = nn.functional.relu(x.matmul(p["hidden.0.weight"].t()).Plus(p["hidden.0.bias"]));
        h = nn.functional.relu(h.matmul(p["hidden.1.weight"].t()).Plus(p["hidden.1.bias"]));
        var expected = h.matmul(p["output.weight"].t()).Plus(p["output.bias"]);
        Assert.True(y.allclose(expected, rtol: 1e-5, atol: 1e-6));
        // A linear output can be negative; hidden-only MLPs end in ReLU.
        Assert.True((mlp.forward(randn(256, 6)) < HeldScalars.Zero).any().item<bool>());
        Assert.True((new Mlp("h", 6, [5]).forward(randn(256, 6)) >= HeldScalars.Zero).all().item<bool>());
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
            var expected = nn.functional.relu(x.matmul(bank.Weight[i]).Plus(bank.Bias[i]));
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
            var expected = nn.functional.relu(x.select(1, i).matmul(bank.Weight[i]).Plus(bank.Bias[i]));
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
        Assert.True((g > HeldScalars.Zero).all().item<bool>());
        Assert.True(g.sum(1).allclose(ones(6), atol: 1e-6));
        // A bias-free gate maps the zero input to the uniform mixture.
        Assert.True(gate.forward(zeros(1, 8)).allclose(full(1, 5, Fifth), atol: 1e-6));

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

    [Fact]
    public void GateBank_OverEveryExpert_IsEachGateOnItsOwn_ForASharedInputAndForOneRowPerGate()
    {
        using var scope = NewDisposeScope();
        var gates = Enumerable.Range(0, 3).Select(t => new Gate($"g{t}", 6, 4)).ToArray();
        var bank = new GateBank("bank", gates, 4);
        var x = randn(9, 6);
        var rows = randn(9, 3, 6);

        var shared = bank.forward(x);
        var perGate = bank.forward(rows);

        Assert.Equal(new long[] { 9, 3, 4 }, shared.shape);
        Assert.True(shared.is_contiguous() && perGate.is_contiguous());
        for (var t = 0; t < 3; t++)
        {
            Assert.True(shared.select(1, t).allclose(gates[t].forward(x), rtol: 1e-5, atol: 1e-6), $"gate {t}, shared input");
            Assert.True(perGate.select(1, t).allclose(gates[t].forward(rows.select(1, t)), rtol: 1e-5, atol: 1e-6), $"gate {t}, its own row");
        }
        // The bank owns no parameters: the gates stay their owner's.
        Assert.Empty(bank.named_parameters());
        Assert.Equal(2.0 * 9 * 3 * 4 * 6, bank.ForwardFlops(x));
    }

    [Fact]
    public void GateBank_WithMembers_PutsEachGatesSoftmaxOnItsMembers_AndGivesOtherExpertsZeroWeightAndNoGradient()
    {
        using var scope = NewDisposeScope();
        // Five experts: gate 0 mixes {0, 3, 4}, gate 1 mixes {1, 3, 4}, gate 2 mixes all (PLE's task and shared gates).
        int[][] members = [[0, 3, 4], [1, 3, 4], [0, 1, 2, 3, 4]];
        var gates = members.Select((m, t) => new Gate($"g{t}", 6, m.Length)).ToArray();
        var bank = new GateBank("bank", gates, 5, members);
        var rows = randn(8, 3, 6);

        var w = bank.forward(rows);

        for (var t = 0; t < 3; t++)
        {
            var own = gates[t].forward(rows.select(1, t));
            var expected = zeros(8, 5).index_copy(1, tensor(members[t].Select(j => (long)j).ToArray()), own);
            Assert.True(w.select(1, t).allclose(expected, rtol: 1e-5, atol: 1e-6), $"gate {t}");
        }
        Assert.True(w.sum(2).allclose(ones(8, 3), rtol: 0, atol: 1e-5));
        // A loss on the weights trains each gate through its members only; the masked entries are exactly 0.
        (w * randn(8, 3, 5)).sum().backward();
        Assert.Equal(0f, w.select(1, 0).index_select(1, tensor(new long[] { 1, 2 })).abs().max().item<float>());
        foreach (var g in gates)
        {
            var grad = g.named_parameters().Single().parameter.grad!;
            Assert.True(grad.isfinite().all().item<bool>() && grad.abs().sum().item<float>() > 0);
        }
        Assert.Throws<ArgumentException>(() => new GateBank("bad", gates, 5, [[0, 3, 4], [1, 3, 4], [0, 1, 2, 3, 5]]));
        Assert.Throws<ArgumentException>(() => new GateBank("bad", gates, 5, [[3, 0, 4], [1, 3, 4], [0, 1, 2, 3, 4]]));
    }

    /// <summary>
    /// Towers of two hidden layers (shared first product, a batched middle layer, the one-unit output), of one (the
    /// suite's default shape, kept batch-major) and of none, each against a loop over the towers' own MLPs, in values and
    /// in the gradients of the input and of every parameter, from a shared input and from one row per stage.
    /// </summary>
    [Theory]
    [InlineData(new[] { 4, 2 })]
    [InlineData(new[] { 4 })]
    [InlineData(new int[0])]
    public void Towers_RunTogether_GiveEachTowersOwnMlpOnItsRow_WithTheSameGradients(int[] hidden)
    {
        using var scope = NewDisposeScope();
        var towers = new Baselines.Towers("towers", 3, 5, hidden);
        var mlps = towers.named_children().Single().module.children().Cast<Mlp>().ToArray();
        using (no_grad())
        {
            // Non-zero biases, so that a bias applied to the wrong stage shows.
            foreach (var (name, p) in towers.named_parameters().Where(p => p.name.EndsWith("bias", StringComparison.Ordinal)))
            {
                p.uniform_(-1, 1);
            }
        }
        var shared = randn(7, 5, requires_grad: true);
        var perStage = randn(7, 3, 5, requires_grad: true);

        var fromShared = towers.forward(shared);
        var fromRows = towers.forward(perStage);

        Assert.Equal(new long[] { 7, 3 }, fromShared.shape);
        Assert.Equal(new long[] { 7, 3 }, fromRows.shape);
        Assert.True(fromShared.is_contiguous() && fromRows.is_contiguous());
        var loopShared = cat(mlps.Select(m => m.forward(shared)).ToArray(), 1);
        var loopRows = cat(mlps.Select((m, k) => m.forward(perStage.select(1, k))).ToArray(), 1);
        Assert.True(fromShared.allclose(loopShared, rtol: 1e-5, atol: 1e-6));
        Assert.True(fromRows.allclose(loopRows, rtol: 1e-5, atol: 1e-6));

        var upstream = randn(7, 3);
        foreach (var (together, loop, input) in new[] { (fromRows, loopRows, perStage), (fromShared, loopShared, shared) })
        {
            var batched = autograd.grad([(together * upstream).sum()], [input, .. towers.parameters()]);
            var looped = autograd.grad([(loop * upstream).sum()], [input, .. towers.parameters()]);
            foreach (var (a, b) in batched.Zip(looped))
            {
                Assert.True(a.allclose(b, rtol: 1e-5, atol: 1e-6));
            }
        }
        var widths = new[] { 5 }.Concat(hidden).Append(1).ToArray();
        Assert.Equal(2.0 * 7 * 3 * widths.Zip(widths.Skip(1)).Sum(w => w.First * w.Second), towers.ForwardFlops(shared));
        Assert.Throws<ArgumentException>(() => towers.forward(randn(7, 2, 5)));
    }

    /// <summary>
    /// The host pass of <see cref="AttentionPool"/> is its libtorch reference in values and in every gradient, with and
    /// without a column scale, for widths on and off the 8-float vector (the scalar tails), and gives the same bits
    /// whether one thread or two share the batch.
    /// </summary>
    [Theory]
    [InlineData(96, 14, 32, 8, true)]
    [InlineData(96, 16, 6, 8, false)]
    [InlineData(70, 5, 11, 3, true)]
    [InlineData(65, 3, 19, 13, false)]
    public void AttentionPool_HostPass_IsTheReference_InValuesAndGradients_AndThreadIndependent(int batch, int rows, int columns, int width, bool scaled)
    {
        using var scope = NewDisposeScope();
        var s = (randn(batch, rows, columns) * Two).requires_grad_(true);
        var g = scaled ? rand(batch, columns).requires_grad_(true) : null;
        var x = randn(batch, rows, width, requires_grad: true);
        var upstream = randn(batch, columns, width);
        Tensor[] inputs = g is null ? [s, x] : [s, g, x];

        var fused = AttentionPool.Apply(s, g, x);
        var reference = AttentionPool.Reference(s, g, x);

        Assert.Equal(new long[] { batch, columns, width }, fused.shape);
        Assert.True(fused.allclose(reference, rtol: 1e-5, atol: 1e-6), $"max difference {(fused - reference).abs().max().item<float>()}");
        var fromFused = autograd.grad([(fused * upstream).sum()], inputs);
        var fromReference = autograd.grad([(reference * upstream).sum()], inputs);
        for (var i = 0; i < inputs.Length; i++)
        {
            Assert.True(fromFused[i].allclose(fromReference[i], rtol: 1e-4, atol: 1e-5),
                $"input {i}: max difference {(fromFused[i] - fromReference[i]).abs().max().item<float>()}");
        }

        var (values, gradients) = OnThreads([2, 1], () =>
        {
            var y = AttentionPool.Apply(s, g, x);
            return (y, cat(autograd.grad([(y * upstream).sum()], inputs).Select(d => d.flatten()).ToList()));
        });
        Assert.True(values[1].eq(values[0]).all().item<bool>());
        Assert.True(gradients[1].eq(gradients[0]).all().item<bool>());
        Assert.Equal(2.0 * batch * rows * columns * width, AttentionPool.PoolFlops(batch, rows, columns, width));
        Assert.Throws<ArgumentException>(() => AttentionPool.Apply(s, g, randn(batch, rows + 1, width)));
        Assert.Throws<ArgumentException>(() => AttentionPool.Apply(s, rand(batch, columns + 1), x));
    }

    /// <summary>
    /// <see cref="ColumnSoftmax"/>'s host pass is libtorch's softmax over dimension 1 in values and gradient, with masked
    /// (−∞) logits weighted exactly 0, and gives the same bits on 1, 2 and 3 threads at sample counts on and off the
    /// block and vector boundaries.
    /// </summary>
    [Theory]
    [InlineData(1, 4, 158)]
    [InlineData(3, 8, 1355)]
    [InlineData(2, 5, 2048)]
    [InlineData(1, 1, 7)]
    public void ColumnSoftmax_HostPass_IsTheReference_AndThreadIndependent(int gates, int experts, int samples)
    {
        using var scope = NewDisposeScope();
        var logits = randn(gates, experts, samples) * Three;
        if (experts > 1)
        {
            logits[0, experts - 1] = float.NegativeInfinity;   // a non-member of gate 0
        }
        logits.requires_grad_(true);
        var upstream = randn(gates, experts, samples);

        var host = ColumnSoftmax.Apply(logits);
        var reference = ColumnSoftmax.Reference(logits);

        Assert.True(host.allclose(reference, rtol: 1e-5, atol: 1e-7), $"max difference {(host - reference).abs().max().item<float>()}");
        if (experts > 1)
        {
            Assert.True(host[0, experts - 1].eq(HeldScalars.Zero).all().item<bool>());
        }
        var fromHost = autograd.grad([(host * upstream).sum()], [logits])[0];
        var fromReference = autograd.grad([(reference * upstream).sum()], [logits])[0];
        Assert.True(fromHost.allclose(fromReference, rtol: 1e-4, atol: 1e-6), $"max difference {(fromHost - fromReference).abs().max().item<float>()}");
        Assert.False(fromHost.isnan().any().item<bool>());

        var (values, gradients) = OnThreads([1, 2, 3], () =>
        {
            var y = ColumnSoftmax.Apply(logits);
            return (y, autograd.grad([(y * upstream).sum()], [logits])[0]);
        });
        Assert.All(values, v => Assert.True(v.eq(values[0]).all().item<bool>()));
        Assert.All(gradients, v => Assert.True(v.eq(gradients[0]).all().item<bool>()));
        Assert.Throws<ArgumentException>(() => ColumnSoftmax.Apply(randn(experts, samples)));
    }

    /// <summary>
    /// <see cref="RowGates"/>'s host pass is the batched product, mask and softmax in values and in the gradients of the
    /// inputs and the weights, weights non-members exactly 0 (and sends their weight rows nothing), and gives the same bits
    /// on 1, 2 and 3 threads at sample counts on and off its blocks; <see cref="GateBank"/> on per-gate rows is that pass.
    /// </summary>
    [Theory]
    [InlineData(3, 5, 112, 2048, false)]
    [InlineData(4, 6, 64, 1355, true)]
    [InlineData(2, 3, 13, 7, true)]
    [InlineData(1, 1, 8, 300, false)]
    public void RowGates_HostPass_IsTheReference_AndThreadIndependent(int gates, int experts, int width, int samples, bool masked)
    {
        using var scope = NewDisposeScope();
        var x = randn(gates, samples, width).requires_grad_(true);
        var weight = randn(gates, experts, width).requires_grad_(true);
        int[][]? members = masked
            ? [.. Enumerable.Range(0, gates).Select(t => Enumerable.Range(0, experts).Where(j => j == t % experts || (j + t) % 3 != 0).ToArray())]
            : null;
        var upstream = randn(samples, gates, experts);
        Tensor[] inputs = [x, weight];

        var host = RowGates.Apply(x, weight, members);
        var reference = RowGates.Reference(x, weight, members);

        Assert.Equal(new long[] { samples, gates, experts }, host.shape);
        Assert.True(host.allclose(reference, rtol: 1e-4, atol: 1e-6), $"max difference {(host - reference).abs().max().item<float>()}");
        var fromHost = autograd.grad([(host * upstream).sum()], inputs);
        var fromReference = autograd.grad([(reference * upstream).sum()], inputs);
        AssertGradientsClose(fromHost, fromReference);
        for (var t = 0; members is not null && t < gates; t++)
        {
            for (var j = 0; j < experts; j++)
            {
                if (!members[t].Contains(j))
                {
                    Assert.Equal(0f, host.select(1, t).select(1, j).abs().max().item<float>());
                    Assert.Equal(0f, fromHost[1][t, j].abs().max().item<float>());
                }
            }
        }

        var (values, gradients) = OnThreads([1, 2, 3], () =>
        {
            var y = RowGates.Apply(x, weight, members);
            return (y, cat(autograd.grad([(y * upstream).sum()], inputs).Select(g => g.flatten()).ToList()));
        });
        Assert.All(values, v => Assert.True(v.eq(values[0]).all().item<bool>()));
        Assert.All(gradients, v => Assert.True(v.eq(gradients[0]).all().item<bool>()));
        Assert.Throws<ArgumentException>(() => RowGates.Apply(x, weight.narrow(2, 0, width - 1), members));
        Assert.Throws<ArgumentException>(() => RowGates.Apply(x, weight, [.. Enumerable.Range(0, gates).Select(t => t == 0 ? [] : new[] { 0 })]));
    }

    /// <summary><see cref="GateBank"/> on per-gate rows [B, T, input] gives the gates' own softmax(W_t x_t) over their members.</summary>
    [Fact]
    public void GateBank_OnPerGateRows_IsEachGatesSoftmaxOverItsMembers()
    {
        using var scope = NewDisposeScope();
        var gates = new[] { new Gate("a", 10, 2), new Gate("b", 10, 3), new Gate("c", 10, 1) };
        int[][] members = [[0, 2], [0, 1, 3], [3]];
        using var bank = new GateBank("bank", gates, 4, members);
        var x = randn(50, 3, 10);

        var p = bank.call(x);

        Assert.Equal(new long[] { 50, 3, 4 }, p.shape);
        for (var t = 0; t < 3; t++)
        {
            var own = gates[t].call(x.select(1, t));   // [B, members]
            var expected = zeros(50, 4).index_copy(1, tensor(members[t].Select(j => (long)j).ToArray()), own);
            Assert.True(p.select(1, t).allclose(expected, rtol: 1e-5, atol: 1e-6), $"gate {t}");
        }
    }

    /// <summary>
    /// <see cref="RowLayerNorm"/>'s host pass is libtorch's layer_norm with the per-group affine map in values and in the
    /// gradients of x, weight and bias, and gives the same bits on 1, 2 and 3 threads (libtorch's own backward sums the
    /// weight and bias gradients per thread); <see cref="HostLayerNorm"/> keeps libtorch's parameter names and shapes.
    /// </summary>
    [Theory]
    [InlineData(1, 32768, 8)]
    [InlineData(3, 2048, 8)]
    [InlineData(2, 300, 13)]
    [InlineData(1, 5, 1)]
    public void RowLayerNorm_HostPass_IsTheReference_AndThreadIndependent(int groups, int rows, int dim)
    {
        using var scope = NewDisposeScope();
        var x = (randn(groups, rows, dim) * Two).Plus(Half).requires_grad_(true);
        var weight = randn(groups, dim).Plus(HeldScalars.One).requires_grad_(true);
        var bias = randn(groups, dim).requires_grad_(true);
        var upstream = randn(groups, rows, dim);
        Tensor[] inputs = [x, weight, bias];

        var host = RowLayerNorm.Apply(x, weight, bias, 1e-5);
        var reference = RowLayerNorm.Reference(x, weight, bias, 1e-5);

        Assert.True(host.allclose(reference, rtol: 1e-4, atol: 1e-5), $"max difference {(host - reference).abs().max().item<float>()}");
        var fromHost = autograd.grad([(host * upstream).sum()], inputs);
        var fromReference = autograd.grad([(reference * upstream).sum()], inputs);
        AssertGradientsClose(fromHost, fromReference);

        var (values, gradients) = OnThreads([1, 2, 3], () =>
        {
            var y = RowLayerNorm.Apply(x, weight, bias, 1e-5);
            return (y, cat(autograd.grad([(y * upstream).sum()], inputs).Select(g => g.flatten()).ToList()));
        });
        Assert.All(values, v => Assert.True(v.eq(values[0]).all().item<bool>()));
        Assert.All(gradients, v => Assert.True(v.eq(gradients[0]).all().item<bool>()));

        var module = new HostLayerNorm("norm", dim);
        Assert.Equal(["weight", "bias"], module.named_parameters().Select(p => p.name));
        Assert.True(module.call(x[0]).allclose(nn.functional.layer_norm(x[0], [dim], null, null, 1e-5), rtol: 1e-4, atol: 1e-5));
        Assert.Throws<ArgumentException>(() => RowLayerNorm.Apply(x, weight[0], bias, 1e-5));
    }

    /// <summary>Each gradient equals its reference to 1e-3 relative, 1e-4 of the reference's largest magnitude (at least 1) absolute.</summary>
    private static void AssertGradientsClose(IList<Tensor> host, IList<Tensor> reference)
    {
        for (var i = 0; i < host.Count; i++)
        {
            var scale = reference[i].abs().max().item<float>();
            Assert.True(host[i].allclose(reference[i], rtol: 1e-3, atol: 1e-4 * Math.Max(1, scale)),
                $"input {i}: max difference {(host[i] - reference[i]).abs().max().item<float>()} of {scale}");
        }
    }

    /// <summary>
    /// The lane exponential of the fused passes is e^x to within 2.5 float ulps (relative 3·10⁻⁷) from −87 to 88, and
    /// clamps outside: about 10⁻³⁸ far below (a softmax term that vanishes beside the column's maximum, which is 1), finite above.
    /// </summary>
    [Fact]
    public unsafe void LaneExp_IsTheExponentialToAFewUlps()
    {
        var worst = 0.0;
        var values = new float[8];
        for (var start = -87.0; start < 88.0; start += 8 * 0.00173)
        {
            for (var l = 0; l < 8; l++)
            {
                values[l] = (float)(start + (l * 0.00173));
            }
            var e = LaneMath.Exp(System.Runtime.Intrinsics.Vector256.Create(values));
            for (var l = 0; l < 8; l++)
            {
                var exact = Math.Exp(values[l]);
                worst = Math.Max(worst, Math.Abs(e[l] - exact) / exact);
            }
        }
        Assert.InRange(worst, 0, 3e-7);
        var far = LaneMath.Exp(System.Runtime.Intrinsics.Vector256.Create(-1000f));
        Assert.InRange(far[0], 0f, 1e-37f);
        Assert.True(float.IsFinite(LaneMath.Exp(System.Runtime.Intrinsics.Vector256.Create(1000f))[0]));
        Assert.Equal(1f, LaneMath.Exp(System.Runtime.Intrinsics.Vector256<float>.Zero)[0]);
    }

    /// <summary>Runs <paramref name="body"/> once per intra-op thread count of <paramref name="counts"/>, then restores the count.</summary>
    internal static (Tensor[] Values, Tensor[] Gradients) OnThreads(int[] counts, Func<(Tensor Value, Tensor Gradient)> body)
    {
        var threads = get_num_threads();
        var values = new Tensor[counts.Length];
        var gradients = new Tensor[counts.Length];
        try
        {
            for (var i = 0; i < counts.Length; i++)
            {
                set_num_threads(counts[i]);
                (values[i], gradients[i]) = body();
            }
        }
        finally
        {
            set_num_threads(threads);
        }
        return (values, gradients);
    }
}
