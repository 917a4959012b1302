using AdAuctionSim.Models.Training;
using AdAuctionSim.Models.Baselines;
using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Tests;

[Collection(TorchSharpCollection.Name)]
public sealed class BaselineModelTests
{
    private static readonly string[] BaselineIds = ["single-task", "shared-bottom", "omoe", "mmoe", "cgc", "ple", "stem"];

    // Held for the process: TorchSharp 0.107 may free a Scalar made for one call while libtorch reads it.
    private static readonly Scalar Half = 0.5.ToScalar();
    private static readonly Scalar Three = 3f.ToScalar();
    private static readonly Scalar Six = 6f.ToScalar();

    public BaselineModelTests() => TorchRuntime.Initialize("cpu", threads: 1, seed: 5);

    public static TheoryData<string, int> IdsByDepth()
    {
        var data = new TheoryData<string, int>();
        foreach (var id in BaselineIds)
        {
            foreach (var k in new[] { 2, 3, 4 })
            {
                data.Add(id, k);
            }
        }
        return data;
    }

    public static TheoryData<string, int, LabelMode> IdsByDepthAndMode()
    {
        var data = new TheoryData<string, int, LabelMode>();
        foreach (var id in BaselineIds)
        {
            foreach (var k in new[] { 2, 3, 4 })
            {
                data.Add(id, k, LabelMode.Conditional);
                data.Add(id, k, LabelMode.Cumulative);
            }
        }
        return data;
    }

    /// <summary>Every depth in the default (conditional) mode; cumulative mode at K = 3 only, to keep the suite fast.</summary>
    public static TheoryData<string, int, LabelMode> TrainingCases()
    {
        var data = new TheoryData<string, int, LabelMode>();
        foreach (var id in BaselineIds)
        {
            foreach (var k in new[] { 2, 3, 4 })
            {
                data.Add(id, k, LabelMode.Conditional);
            }
            data.Add(id, 3, LabelMode.Cumulative);
        }
        return data;
    }

    public static TheoryData<string> Ids() => [.. BaselineIds];

    [Fact]
    public void Catalog_OffersEveryBaseline_ForEveryDepthFromTwo()
    {
        foreach (var id in BaselineIds)
        {
            var entry = ModelCatalog.Get(id);
            Assert.Equal(id, entry.Id);
            Assert.False(string.IsNullOrWhiteSpace(entry.Summary));
            Assert.DoesNotContain('\n', entry.Summary);
            for (var k = 2; k <= 6; k++)
            {
                Assert.Null(entry.Unsupported(k));
            }
            Assert.NotNull(entry.Unsupported(1));
        }
        Assert.Subset(ModelCatalog.Ids.ToHashSet(), BaselineIds.ToHashSet());
    }

    [Theory]
    [MemberData(nameof(IdsByDepthAndMode))]
    public void Forward_GivesOneLogitPerStage_WithRatesInsideTheUnitInterval(string id, int depth, LabelMode mode)
    {
        using var scope = NewDisposeScope();
        var funnel = SyntheticFunnel.Create(depth, rows: 64, seed: 1);
        using var model = Build(id, funnel, new ModelOptions { LabelMode = mode });

        var output = model.forward(funnel.Features);

        Assert.Equal(id, model.Id);
        Assert.Equal(new long[] { 64, depth }, output.Logits.shape);
        var expectedKind = mode == LabelMode.Cumulative ? HeadKind.Cumulative : HeadKind.Conditional;
        Assert.Equal(expectedKind, model.Kind);
        Assert.Equal(expectedKind, output.Kind);
        var logR = output.LogCumulative();
        var logQ = output.LogConditional();
        Assert.True(logR.isfinite().all().item<bool>() && logQ.isfinite().all().item<bool>());
        // r̂ ∈ (0, 1) and q̂ ∈ (0, 1); a cumulative head's q̂ = r̂_k / r̂_{k−1} is clamped at 1 (models.md §0.3).
        Assert.True((logR < HeldScalars.Zero).all().item<bool>());
        Assert.True((mode == LabelMode.Conditional ? logQ < HeldScalars.Zero : logQ <= HeldScalars.Zero).all().item<bool>());
        Assert.True((logR.exp() > HeldScalars.Zero).all().item<bool>() && (logQ.exp() > HeldScalars.Zero).all().item<bool>());
        if (mode == LabelMode.Conditional)
        {
            // r̂_k = Π_{j≤k} q̂_j never rises along the funnel.
            var steps = logR.narrow(1, 1, depth - 1) - logR.narrow(1, 0, depth - 1);
            Assert.True((steps <= HeldScalars.Zero).all().item<bool>());
        }
    }

    [Theory]
    [MemberData(nameof(TrainingCases))]
    public void Loss_IsFinite_AndFallsOverFiftyAdamSteps(string id, int depth, LabelMode mode)
    {
        using var scope = NewDisposeScope();
        var funnel = SyntheticFunnel.Create(depth, rows: 256, seed: 2);
        using var batch = funnel.Batch();
        using var model = Build(id, funnel, new ModelOptions { LabelMode = mode });
        using var optimizer = Trainer.CreateOptimizer(model, new TrainerOptions { LearningRate = 0.01, EmbeddingWeightDecay = 0 });
        var losses = new float[51];

        for (var step = 0; step <= 50; step++)
        {
            using var stepScope = NewDisposeScope();
            optimizer.ZeroGrad();
            var loss = model.Loss(batch, model.forward(batch.Features), new TrainingStep(step, 50, 0));
            losses[step] = loss.item<float>();
            if (step < 50)
            {
                loss.backward();
                optimizer.Step();
            }
        }

        Assert.All(losses, l => Assert.True(float.IsFinite(l), $"loss {l}"));
        // Every stage starts near ln 2 at initialisation.
        Assert.InRange(losses[0], 0.3 * depth, 1.2 * depth);
        Assert.True(losses[50] < 0.6 * losses[0], $"{id} K={depth} {mode}: loss {losses[0]:F4} → {losses[50]:F4}");
        // Better than the best constant rates: the network learnt the features, not only the base rates.
        var constant = funnel.ConstantRateLoss(mode);
        Assert.True(losses[50] < constant, $"{id} K={depth} {mode}: loss {losses[50]:F4}, constant-rate loss {constant:F4}");
    }

    [Theory]
    [MemberData(nameof(IdsByDepth))]
    public void BatchOfOne_ForwardLossAndBackwardWork(string id, int depth)
    {
        using var scope = NewDisposeScope();
        var funnel = SyntheticFunnel.Create(depth, rows: 1, seed: 3);
        using var batch = funnel.Batch();
        using var model = Build(id, funnel, new ModelOptions());

        var output = model.forward(batch.Features);
        var loss = model.Loss(batch, output, default);
        loss.backward();

        Assert.Equal(new long[] { 1, depth }, output.Logits.shape);
        Assert.True(float.IsFinite(loss.item<float>()));
        Assert.All(model.parameters(), p => Assert.True(Gradients.Dense(p) is null || Gradients.Dense(p)!.isfinite().all().item<bool>()));

        model.eval();
        using (no_grad())
        {
            Assert.Equal(new long[] { 1, depth }, model.forward(batch.Features).Logits.shape);
        }
    }

    [Theory]
    [InlineData("omoe")]
    [InlineData("mmoe")]
    [InlineData("cgc")]
    [InlineData("ple")]
    [InlineData("stem")]
    public void ExpertOutputs_DifferAtInit(string id)
    {
        // models.md §16.4 test 1: PaddleRec's constant init kept every expert identical (PaddleRec#721).
        using var scope = NewDisposeScope();
        var funnel = SyntheticFunnel.Create(3, rows: 128, seed: 4);
        using var model = Build(id, funnel, new ModelOptions());

        var experts = ((IExpertModel)model).FirstLevelExperts(funnel.Features);

        var n = experts.shape[1];
        Assert.True(n >= 4, $"{id} has {n} experts");
        for (var i = 0; i < n; i++)
        {
            Assert.True(experts.select(1, i).abs().max().item<float>() > 0, $"{id}: expert {i} is dead");
            for (var j = i + 1; j < n; j++)
            {
                var gap = (experts.select(1, i) - experts.select(1, j)).abs().max().item<float>();
                Assert.True(gap > 1e-3, $"{id}: experts {i} and {j} give the same output (max gap {gap})");
            }
        }
    }

    /// <summary>
    /// STEM's one-function mixture is the written form, Mix(g ⊙ own, e) + Mix(g ⊙ (1 − own), e.detach()), in values and in
    /// the gradients of the gates and of the experts; and it does detach: an expert outside a gate's mask gets nothing
    /// from that gate.
    /// </summary>
    [Theory]
    [InlineData(37, 6, false)]
    [InlineData(2048, 64, true)]
    [InlineData(301, 20, true)]
    public void Stem_TaskSpecificMix_IsTheWrittenMixture_InValuesAndGradients(int rows, int width, bool expertMajor)
    {
        using var scope = NewDisposeScope();
        manual_seed(4);
        var g = rand(rows, 4, 5).requires_grad_(true);
        // The expert bank gives [B, n, H] as a view of an expert-major [n, B, H] tensor; the host pass reads that layout.
        var e = (expertMajor ? randn(5, rows, width).transpose(0, 1) : randn(rows, 5, width)).requires_grad_(true);
        var own = tensor(new float[] { 1, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1 }).view(4, 5);
        var upstream = randn(rows, 4, width);

        var fused = StemLevel.TaskSpecificMix.apply(g, e, own);
        var written = Gate.Mix(g * own, e).Plus(Gate.Mix(g * own.OneMinus(), e.detach()));
        Assert.True(fused.allclose(written, rtol: 1e-5, atol: 1e-6));
        var a = autograd.grad([(fused * upstream).sum()], [g, e]);
        var b = autograd.grad([(written * upstream).sum()], [g, e]);
        // Sums of H products in another order: float rounding grows with H.
        Assert.True(a[0].allclose(b[0], rtol: 1e-5, atol: 1e-6 * width), $"gate gradients: max difference {(a[0] - b[0]).abs().max().item<float>()}");
        Assert.True(a[1].allclose(b[1], rtol: 1e-5, atol: 1e-6), $"expert gradients: max difference {(a[1] - b[1]).abs().max().item<float>()}");

        // Only gate 1's output, whose mask leaves out experts 0 and 2: those experts get no gradient, the gate all of it.
        var only = autograd.grad([StemLevel.TaskSpecificMix.apply(g, e, own).select(1, 1).sum()], [g, e]);
        Assert.Equal(0f, only[1].select(1, 0).abs().max().item<float>());
        Assert.Equal(0f, only[1].select(1, 2).abs().max().item<float>());
        Assert.True(only[1].select(1, 1).abs().sum().item<float>() > 0);
        Assert.True(only[0].select(1, 1).abs().min().item<float>() > 0);

        // The same bits on 1, 2 and 3 threads.
        var threads = get_num_threads();
        var runs = new List<Tensor>();
        try
        {
            foreach (var count in new[] { 1, 2, 3 })
            {
                set_num_threads(count);
                var y = StemLevel.TaskSpecificMix.apply(g, e, own);
                runs.Add(cat([y.flatten(), .. autograd.grad([(y * upstream).sum()], [g, e]).Select(t => t.flatten())]));
            }
        }
        finally
        {
            set_num_threads(threads);
        }
        Assert.All(runs, r => Assert.True(r.eq(runs[0]).all().item<bool>()));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Stem_FirstStageLoss_SendsNoGradientIntoOtherStagesEmbeddingsOrExperts(int depth)
    {
        // models.md §16.4 test 4 and §7.1 "Task-specific Backward".
        using var scope = NewDisposeScope();
        var funnel = SyntheticFunnel.Create(depth, rows: 256, seed: 6);
        using var batch = funnel.Batch();
        const int d = 8;
        using var model = (Stem)Build("stem", funnel, new ModelOptions { EmbeddingDim = d });
        var p = model.named_parameters().ToDictionary(t => t.name, t => t.parameter);

        var logits = model.forward(batch.Features).Logits;
        Losses.BceWithLogits(logits.select(1, 0), batch.Labels.select(1, 0)).mean().backward();

        var table = Gradients.Dense(p["encoder.table.weight"])!;
        var expertWeight = Gradients.Dense(p["levels.0.experts.weight"])!;
        var expertBias = Gradients.Dense(p["levels.0.experts.bias"])!;
        Assert.True(table.narrow(1, 0, d).abs().sum().item<float>() > 0, "stage 1's own embedding copy");
        Assert.True(table.narrow(1, depth * d, d).abs().sum().item<float>() > 0, "the shared embedding copy");
        Assert.True(expertWeight[0].abs().sum().item<float>() > 0, "stage 1's own expert");
        for (var j = depth; j < depth + 2; j++)
        {
            Assert.True(expertWeight[j].abs().sum().item<float>() > 0, $"shared expert {j - depth} is not detached");
        }
        for (var t = 1; t < depth; t++)
        {
            Assert.Equal(0f, table.narrow(1, t * d, d).abs().max().item<float>());
            Assert.Equal(0f, expertWeight[t].abs().max().item<float>());
            Assert.Equal(0f, expertBias[t].abs().max().item<float>());
            var otherGate = Gradients.Dense(p[$"levels.0.taskGates.{t}.linear.weight"]);
            Assert.True(otherGate is null || otherGate.abs().max().item<float>() == 0f);
        }
        // Gate 1 still learns from the detached experts' values.
        Assert.True(Gradients.Dense(p["levels.0.taskGates.0.linear.weight"])!.abs().sum().item<float>() > 0);

        // The check can fail: stage 2's own loss does reach stage 2's copy and expert.
        model.zero_grad();
        Losses.BceWithLogits(model.forward(batch.Features).Logits.select(1, 1), batch.Labels.select(1, 1)).mean().backward();
        Assert.True(Gradients.Dense(p["encoder.table.weight"])!.narrow(1, d, d).abs().sum().item<float>() > 0);
        Assert.True(Gradients.Dense(p["levels.0.experts.weight"])![1].abs().sum().item<float>() > 0);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void Mmoe_WithOneExpert_EqualsSharedBottom_GivenTheSameWeights(int depth)
    {
        // models.md §16.4 test 8: one expert, softmax over one = 1, so h is that expert, a one-layer bottom.
        using var scope = NewDisposeScope();
        var funnel = SyntheticFunnel.Create(depth, rows: 128, seed: 7);
        var options = new ModelOptions { Hidden = [64], Experts = 1, ExpertHidden = 64 };
        using var bottom = Build("shared-bottom", funnel, options);
        using var mmoe = Build("mmoe", funnel, options);
        var from = bottom.named_parameters().ToDictionary(t => t.name, t => t.parameter);
        var to = mmoe.named_parameters().ToDictionary(t => t.name, t => t.parameter);

        using (no_grad())
        {
            to["encoder.table.weight"].copy_(from["encoder.table.weight"]);
            to["experts.weight"].copy_(from["bottom.hidden.0.weight"].t().unsqueeze(0));
            to["experts.bias"].copy_(from["bottom.hidden.0.bias"].unsqueeze(0));
            foreach (var (name, value) in from.Where(kv => kv.Key.StartsWith("towers.", StringComparison.Ordinal)))
            {
                to[name].copy_(value);
            }
        }
        var a = bottom.forward(funnel.Features).Logits;
        var b = mmoe.forward(funnel.Features).Logits;

        Assert.Equal(from.Keys.Count(k => k.StartsWith("towers.", StringComparison.Ordinal)), to.Keys.Count(k => k.StartsWith("towers.", StringComparison.Ordinal)));
        Assert.True(a.allclose(b, rtol: 1e-5, atol: 1e-5), $"max gap {(a - b).abs().max().item<float>()}");
        Assert.True(a.std().item<float>() > 1e-3, "the comparison must not be between constants");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Ple_WithOneLevel_EqualsCgc(int depth)
    {
        using var scope = NewDisposeScope();
        var funnel = SyntheticFunnel.Create(depth, rows: 128, seed: 8);
        var context = funnel.Context(new ModelOptions());
        using var cgc = ModelCatalog.Get("cgc").Create(context);
        using var onePle = new Ple(context, new PleOptions { Levels = 1 });
        using var ple = ModelCatalog.Get("ple").Create(context);

        // Strict: the same parameters, so one level has no shared gate.
        onePle.load_state_dict(cgc.state_dict(), strict: true);
        var a = cgc.forward(funnel.Features).Logits;
        var b = onePle.forward(funnel.Features).Logits;

        Assert.True(a.allclose(b, rtol: 1e-6, atol: 1e-6));
        Assert.DoesNotContain(cgc.named_parameters(), t => t.name.Contains("sharedGate", StringComparison.Ordinal));
        // The catalog's PLE has two levels: a shared gate on level 1 only, and level 2's experts read H-wide inputs.
        var names = ple.named_parameters().Select(t => t.name).ToArray();
        Assert.Contains("levels.0.sharedGate.linear.weight", names);
        Assert.DoesNotContain("levels.1.sharedGate.linear.weight", names);
        Assert.Equal(new long[] { depth + 2, 64, 64 }, ple.named_parameters().Single(t => t.name == "levels.1.experts.weight").parameter.shape);
        Assert.Equal(2, ((Ple)ple).Options.Levels);
        Assert.Equal(1, ((Ple)cgc).Options.Levels);
    }

    [Fact]
    public void Ple_LastLevelGates_MixOwnAndSharedExpertsOnly()
    {
        // models.md §6.4: at level 2, task gate k reads u_k^1 (H wide), not the embedding; weights are [m_k + m_s, ·].
        using var scope = NewDisposeScope();
        var funnel = SyntheticFunnel.Create(3, rows: 32, seed: 9);
        using var ple = ModelCatalog.Get("ple").Create(funnel.Context(new ModelOptions { ExpertHidden = 16 }));
        var p = ple.named_parameters().ToDictionary(t => t.name, t => t.parameter);

        Assert.Equal(new long[] { 3, funnel.Schema.Count * 8 }, p["levels.0.taskGates.0.linear.weight"].shape);
        Assert.Equal(new long[] { 3, 16 }, p["levels.1.taskGates.0.linear.weight"].shape);
        Assert.Equal(new long[] { 3 * 1 + 2, funnel.Schema.Count * 8 }, p["levels.0.sharedGate.linear.weight"].shape);
        // The last level's gate 1 mixes stage 1's and the shared experts only: rewriting stage 2's level-2 expert
        // leaves stage 1's logit exactly as it was.
        var before = ple.forward(funnel.Features).Logits.select(1, 0).clone();
        using (no_grad())
        {
            p["levels.1.experts.weight"][1].zero_();
            p["levels.1.experts.bias"][1].fill_(Three);
        }
        var after = ple.forward(funnel.Features).Logits;
        Assert.True(after.select(1, 0).allclose(before));
    }

    [Theory]
    [MemberData(nameof(Ids))]
    public void ConditionalLoss_IgnoresRowsOutsideEachStagesSampleSpace(string id)
    {
        using var scope = NewDisposeScope();
        var funnel = SyntheticFunnel.Create(3, rows: 256, seed: 10);
        using var model = Build(id, funnel, new ModelOptions());
        var output = model.forward(funnel.Features);
        using var batch = funnel.Batch();
        var baseline = BaselineLoss.PerStage(batch, output).detach().clone();
        var labels = batch.Labels;

        for (var k = 1; k < 3; k++)
        {
            // Flip stage k's label on the rows whose parent label is 0.
            var outside = labels.select(1, k - 1) < Half;
            Assert.True(outside.any().item<bool>() && (~outside).any().item<bool>());
            var changed = labels.clone();
            changed.select(1, k).copy_(where(outside, labels.select(1, k).OneMinus(), labels.select(1, k)));
            using var edited = new TrainingBatch(batch.Features.clone(), changed, batch.Won.clone(), batch.WinPropensity.clone());

            var perStage = BaselineLoss.PerStage(edited, output).detach();

            Assert.Equal(baseline[k].item<float>(), perStage[k].item<float>());
            Assert.Equal(baseline.narrow(0, 0, k).data<float>().ToArray(), perStage.narrow(0, 0, k).data<float>().ToArray());
        }
    }

    [Fact]
    public void PerStageLoss_MatchesAHandComputedValue_OnFourRows()
    {
        using var scope = NewDisposeScope();
        // Rows: (clicked, converted), (clicked, not), (not clicked), (lost bid: labels ignored even if set).
        var logits = tensor(new float[] { 0.5f, -1f, 2f, 0.3f, -0.7f, 4f, 1.5f, 1.5f }).view(4, 2);
        var labels = tensor(new float[] { 1, 1, 1, 0, 0, 0, 1, 1 }).view(4, 2);
        var won = tensor(new float[] { 1, 1, 1, 0 });
        using var batch = new TrainingBatch(zeros(4, 1, ScalarType.Int64), labels, won, ones(4));

        var conditional = BaselineLoss.PerStage(batch, new ModelOutput(logits, HeadKind.Conditional)).data<float>().ToArray();
        var cumulative = BaselineLoss.PerStage(batch, new ModelOutput(logits, HeadKind.Cumulative)).data<float>().ToArray();

        static double Bce(double y, double a) => Math.Log(1 + Math.Exp(a)) - y * a;
        // Stage 1 over the three impressions; stage 2 over the two clicked ones; lost bid nowhere.
        var click = (Bce(1, 0.5) + Bce(1, 2) + Bce(0, -0.7)) / 3;
        var convert = (Bce(1, -1) + Bce(0, 0.3)) / 2;
        var convertAll = (Bce(1, -1) + Bce(0, 0.3) + Bce(0, 4)) / 3;
        Assert.Equal(click, conditional[0], 5);
        Assert.Equal(convert, conditional[1], 5);
        Assert.Equal(click, cumulative[0], 4);
        Assert.Equal(convertAll, cumulative[1], 4);
    }

    [Theory]
    [InlineData(LabelMode.Conditional)]
    [InlineData(LabelMode.Cumulative)]
    public void EmptyStageMask_ContributesZero_WithFiniteGradients(LabelMode mode)
    {
        using var scope = NewDisposeScope();
        var funnel = SyntheticFunnel.Create(3, rows: 32, seed: 12);
        using var model = Build("mmoe", funnel, new ModelOptions { LabelMode = mode });
        // Nobody clicked; one batch row is a lost bid.
        var won = ones(32);
        won[0] = tensor(0f);
        using var batch = new TrainingBatch(funnel.Features.clone(), zeros(32, 3), won, ones(32));

        var output = model.forward(batch.Features);
        var perStage = BaselineLoss.PerStage(batch, output);
        var loss = model.Loss(batch, output, default);
        loss.backward();

        Assert.True(float.IsFinite(loss.item<float>()));
        if (mode == LabelMode.Conditional)
        {
            Assert.Equal(0f, perStage[1].item<float>());
            Assert.Equal(0f, perStage[2].item<float>());
        }
        Assert.True(perStage[0].item<float>() > 0);
        Assert.All(model.parameters(), p => Assert.True(Gradients.Dense(p) is null || Gradients.Dense(p)!.isfinite().all().item<bool>()));

        // A batch of lost bids only: every stage empty, loss exactly 0, no NaN.
        using var lost = new TrainingBatch(funnel.Features.clone(), zeros(32, 3), zeros(32), ones(32));
        Assert.Equal(0f, model.Loss(lost, model.forward(lost.Features), default).item<float>());
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void ConditionalStageLoss_MatchesTheLibtorchReference_InValueAndGradient(int depth)
    {
        using var scope = NewDisposeScope();
        var funnel = SyntheticFunnel.Create(depth, rows: 512, seed: 20 + depth);
        using var impressions = funnel.Batch();
        // Every fifth row a lost bid whose labels are set (they must be ignored); logits spread wide, with rows past
        // softplus's linear switch (|a| > 20) and far beyond it.
        var won = tensor(Enumerable.Range(0, funnel.Rows).Select(i => i % 5 == 4 ? 0f : 1f).ToArray());
        var labels = impressions.Labels.clone();
        labels[TensorIndex.Slice(4, null, 5)] = ones(depth);
        using var batch = new TrainingBatch(impressions.Features.clone(), labels, won, ones(funnel.Rows));
        var values = randn(new long[] { funnel.Rows, depth }, generator: new Generator(7)).mul(Six);
        values[0, 0] = tensor(40f);
        values[1, 0] = tensor(-40f);
        values[2, 0] = tensor(100f);
        values[3, 0] = tensor(-100f);
        float[] weights = [.. new[] { 1f, 0.5f, 2f, 0.25f }.Take(depth)];
        var reference = values.clone().requires_grad_(true);
        var fused = values.clone().requires_grad_(true);

        var expected = BaselineLoss.PerStage(batch, new ModelOutput(reference, HeadKind.Conditional)).mul(tensor(weights)).sum();
        var actual = ConditionalStageLoss.Apply(fused, batch.Labels, batch.Won, weights);
        expected.backward();
        actual.backward();

        Assert.Equal(0, actual.dim());
        Assert.Equal(expected.item<float>(), actual.item<float>(), expected.item<float>() * 2e-6);
        var g = reference.grad!;
        var scale = g.abs().max().item<float>();
        Assert.True(scale > 0);
        Assert.True((fused.grad! - g).abs().max().item<float>() <= scale * 1e-6, "gradients differ beyond float rounding");
        // Rows outside every stage's sample space (the lost bids) get exactly zero gradient.
        Assert.Equal(0f, fused.grad![TensorIndex.Slice(4, null, 5)].abs().max().item<float>());
    }

    [Fact]
    public void StageWeights_ScaleEachStage_AndMustMatchTheDepth()
    {
        using var scope = NewDisposeScope();
        var funnel = SyntheticFunnel.Create(3, rows: 128, seed: 13);
        using var batch = funnel.Batch();
        using var model = Build("shared-bottom", funnel, new ModelOptions { StageWeights = [1.0, 0.5, 2.0] });

        var output = model.forward(batch.Features);
        var perStage = BaselineLoss.PerStage(batch, output).data<float>().ToArray();

        Assert.Equal(perStage[0] + 0.5 * perStage[1] + 2 * perStage[2], model.Loss(batch, output, default).item<float>(), 5);
        Assert.Throws<ArgumentException>(() => Build("mmoe", funnel, new ModelOptions { StageWeights = [1.0, 1.0] }));
        Assert.Throws<ArgumentException>(() => Build("mmoe", funnel, new ModelOptions { StageWeights = [1.0, double.NaN, 1.0] }));
    }

    [Theory]
    [InlineData("omoe", 1)]
    [InlineData("mmoe", 3)]
    [InlineData("cgc", 3)]
    [InlineData("ple", 7)]
    [InlineData("stem", 3)]
    public void Diagnostics_ReportMeanGateWeights_OfTrainingBatchesOnly(string id, int gates)
    {
        var funnel = SyntheticFunnel.Create(3, rows: 64, seed: 14);
        using var model = Build(id, funnel, new ModelOptions());
        // Two training steps, each in its own dispose scope as the trainer does; the sums must outlive them.
        for (var step = 0; step < 2; step++)
        {
            using var stepScope = NewDisposeScope();
            model.forward(funnel.Features);
        }
        model.eval();
        using (NewDisposeScope())
        using (no_grad())
        {
            model.forward(funnel.Features);
        }

        var diagnostics = model.Diagnostics();

        var byGate = diagnostics.GroupBy(kv => kv.Key[..kv.Key.LastIndexOf('.')]).ToArray();
        Assert.Equal(gates, byGate.Length);
        Assert.All(byGate, g => Assert.Equal(1.0, g.Sum(kv => kv.Value), 4));
        Assert.All(diagnostics, kv => Assert.StartsWith("gate.", kv.Key, StringComparison.Ordinal));
        Assert.Empty(model.Diagnostics());
    }

    [Fact]
    public void PleLevel_AboveTheFirst_FeedsEachExpertItsOwnRow_TaskRowsThenTheSharedRow()
    {
        using var scope = NewDisposeScope();
        // Input and hidden widths equal, so an expert applied twice or to the wrong row would still have the right shape.
        var level = new PleLevel("level", ["click", "convert"], input: 6, hidden: 6, specific: 1, shared: 2, sharedGate: true,
            new GateUsage(), "L2");
        var p = level.named_parameters().ToDictionary(t => t.name, t => t.parameter);
        var u = randn(5, 3, 6);

        var experts = level.Experts(u);

        Assert.Equal(new long[] { 5, 4, 6 }, experts.shape);
        long[] rows = [0, 1, 2, 2];
        for (var j = 0; j < 4; j++)
        {
            var expected = nn.functional.relu(u.select(1, rows[j]).mm(p["experts.weight"][j]).Plus(p["experts.bias"][j]));
            Assert.True(experts.select(1, j).allclose(expected, rtol: 1e-5, atol: 1e-6), $"expert {j}");
        }
        Assert.Equal(new long[] { 5, 3, 6 }, level.forward(u).shape);
    }

    /// <summary>
    /// STEM's one-pass first-layer inputs are the libtorch form: the expert inputs and the gate inputs (x_t + x_s, and x_s
    /// for a shared gate) equal it exactly, the embedding gradient up to float rounding, also when only one output is
    /// used; and they are what the layer reads: the first layer from the embedding rows equals the layer on the copies.
    /// </summary>
    [Theory]
    [InlineData(3, 8, false)]
    [InlineData(2, 4, true)]
    [InlineData(4, 12, true)]
    public void Stem_FirstLayerInputs_AreTheLibtorchForm_InValuesAndGradients(int depth, int d, bool sharedGate)
    {
        using var scope = NewDisposeScope();
        manual_seed(21);
        long[] rows = [.. ExpertLayout.Rows(depth, 1, 2)];
        var embedding = randn(67, 5, (depth + 1) * d).requires_grad_(true);
        var gates = depth + (sharedGate ? 1 : 0);
        var upExperts = randn(rows.Length, 67, 5 * d);
        var upGates = randn(gates, 67, 5 * d);

        var (e, g) = StemInputs.Apply(embedding, d, rows, sharedGate);
        var (re, rg) = StemInputs.Reference(embedding, d, rows, sharedGate);

        Assert.Equal(re.shape, e.shape);
        Assert.Equal(new long[] { gates, 67, 5 * d }, g.shape);
        Assert.True(e.allclose(re, rtol: 0, atol: 0), "expert inputs");
        Assert.True(g.allclose(rg, rtol: 0, atol: 0), "gate inputs");
        var a = autograd.grad([(e * upExperts).sum().Plus((g * upGates).sum())], [embedding])[0];
        var b = autograd.grad([(re * upExperts).sum().Plus((rg * upGates).sum())], [embedding])[0];
        Assert.True(a.allclose(b, rtol: 1e-5, atol: 1e-6), "embedding gradient");
        Assert.True(a.abs().min().item<float>() > 0, "every copy of every field hears its experts or gates");
        var onlyGates = autograd.grad([(StemInputs.Apply(embedding, d, rows, sharedGate).Gates * upGates).sum()], [embedding])[0];
        var referenceGates = autograd.grad([(StemInputs.Reference(embedding, d, rows, sharedGate).Gates * upGates).sum()], [embedding])[0];
        Assert.True(onlyGates.allclose(referenceGates, rtol: 1e-5, atol: 1e-6), "gates only");
        var onlyExperts = autograd.grad([(StemInputs.Apply(embedding, d, rows, sharedGate).Experts * upExperts).sum()], [embedding])[0];
        var referenceExperts = autograd.grad([(StemInputs.Reference(embedding, d, rows, sharedGate).Experts * upExperts).sum()], [embedding])[0];
        Assert.True(onlyExperts.allclose(referenceExperts, rtol: 1e-5, atol: 1e-6), "experts only");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Stem_FirstLayerFromEmbeddingRows_IsTheLayerOnTheCopies(int depth)
    {
        using var scope = NewDisposeScope();
        var funnel = SyntheticFunnel.Create(depth, rows: 64, seed: 22);
        using var model = (Stem)Build("stem", funnel, new ModelOptions { EmbeddingDim = 8 });
        model.eval();
        var level = (StemLevel)model.named_modules().Single(m => m.name == "levels.0").module;
        var encoder = (FeatureEncoder)model.named_modules().Single(m => m.name == "encoder").module;

        var fused = level.FromEmbedding(encoder.call(funnel.Features), 8);
        var written = level.forward(model.Embeddings(funnel.Features));

        Assert.True(fused.allclose(written, rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void Stem_EmbeddingCopies_AreTheTableSplitIntoKPlusOneSlices()
    {
        using var scope = NewDisposeScope();
        var funnel = SyntheticFunnel.Create(2, rows: 5, seed: 15);
        using var model = (Stem)Build("stem", funnel, new ModelOptions { EmbeddingDim = 4 });
        var table = model.named_parameters().Single(t => t.name == "encoder.table.weight").parameter;

        var copies = model.Embeddings(funnel.Features);

        Assert.Equal(new long[] { 5, 3, funnel.Schema.Count * 4 }, copies.shape);
        Assert.Equal(new long[] { funnel.Schema.TotalRows, 12 }, table.shape);
        var rows = table.index_select(0, funnel.Features.flatten()).view(5, funnel.Schema.Count, 12);
        for (var c = 0; c < 3; c++)
        {
            Assert.True(copies.select(1, c).allclose(rows.narrow(2, c * 4, 4).flatten(1), rtol: 0, atol: 0));
        }
    }

    private static MultiTaskModel Build(string id, SyntheticFunnel funnel, ModelOptions options) =>
        ModelCatalog.Get(id).Create(funnel.Context(options));
}

/// <summary>
/// A small logged funnel with a known answer: single-valued fields, per-stage logistic conditional rates
/// q_k = σ(β_k + Σ_f θ_{k,f}[x_f]), and cumulative labels s_k = s_{k−1} · Bernoulli(q_k), all from one seed.
/// </summary>
internal sealed class SyntheticFunnel
{
    private static readonly int[] Cardinalities = [7, 5, 11, 4];
    private readonly float[] labels;

    private SyntheticFunnel(int depth, int rows, Tensor features, float[] labels)
    {
        Depth = depth;
        Rows = rows;
        Features = features;
        this.labels = labels;
        Schema = new FeatureSchema(Cardinalities.Select((_, f) => $"f{f}").ToArray(), Cardinalities);
    }

    public int Depth { get; }
    public int Rows { get; }
    public FeatureSchema Schema { get; }

    /// <summary>[N, F] int64 rows of the shared table (offsets added).</summary>
    public Tensor Features { get; }

    public static SyntheticFunnel Create(int depth, int rows, int seed)
    {
        var random = new Random(seed);
        var f = Cardinalities.Length;
        var theta = new double[depth][][];
        var beta = new double[depth];
        for (var k = 0; k < depth; k++)
        {
            beta[k] = k == 0 ? -0.5 : 0.3;
            theta[k] = Cardinalities.Select(c => Enumerable.Range(0, c).Select(_ => 1.6 * Normal(random)).ToArray()).ToArray();
        }
        var offsets = new long[f];
        for (var j = 1; j < f; j++)
        {
            offsets[j] = offsets[j - 1] + Cardinalities[j - 1];
        }
        var ids = new long[rows * f];
        var labels = new float[rows * depth];
        for (var i = 0; i < rows; i++)
        {
            var reached = true;
            var values = new int[f];
            for (var j = 0; j < f; j++)
            {
                values[j] = random.Next(Cardinalities[j]);
                ids[i * f + j] = offsets[j] + values[j];
            }
            for (var k = 0; k < depth; k++)
            {
                var logit = beta[k];
                for (var j = 0; j < f; j++)
                {
                    logit += theta[k][j][values[j]];
                }
                reached = reached && random.NextDouble() < 1 / (1 + Math.Exp(-logit));
                labels[i * depth + k] = reached ? 1f : 0f;
            }
        }
        var features = tensor(ids).view(rows, f);
        return new SyntheticFunnel(depth, rows, features, labels);
    }

    public ModelContext Context(ModelOptions options) =>
        new(Depth, Enumerable.Range(0, Depth).Select(k => k == 0 ? "click" : $"stage{k + 1}").ToArray(), Schema, options);

    /// <summary>A batch of impressions only (won = 1), with fresh tensors the caller disposes.</summary>
    public TrainingBatch Batch() =>
        new(Features.clone(), tensor(labels).view(Rows, Depth), ones(Rows), ones(Rows));

    /// <summary>The loss of the best constant rates (each stage's base rate on its own sample space).</summary>
    public double ConstantRateLoss(LabelMode mode)
    {
        var total = 0.0;
        for (var k = 0; k < Depth; k++)
        {
            double n = 0, positives = 0;
            for (var i = 0; i < Rows; i++)
            {
                if (mode == LabelMode.Cumulative || k == 0 || labels[i * Depth + k - 1] > 0.5f)
                {
                    n++;
                    positives += labels[i * Depth + k];
                }
            }
            if (n == 0 || positives == 0 || positives == n)
            {
                continue;
            }
            var p = positives / n;
            total += -(p * Math.Log(p) + (1 - p) * Math.Log(1 - p));
        }
        return total;
    }

    private static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
