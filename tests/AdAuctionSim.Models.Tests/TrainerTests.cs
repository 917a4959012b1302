using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Data;
using AdAuctionSim.Models.Prediction;
using AdAuctionSim.Models.Runtime;
using AdAuctionSim.Models.Training;
using AdAuctionSim.Simulation.Output;
using Parquet;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Tests;

/// <summary>The trainer, checkpoints, predictions and the run folder, with the test models of TestModels.cs.</summary>
[Collection(TorchSharpCollection.Name)]
public sealed class TrainerTests
{
    private static readonly TrainerOptions Small = new()
    {
        Device = "cpu",
        BatchSize = 256,
        Epochs = 3,
        LearningRate = 0.01,
        Seed = 11,
        Threads = 1,
    };

    // Held for the process: TorchSharp 0.107 may free a Scalar made for one call while libtorch reads it. All integral:
    // arange's own start and step defaults (0, 1) are, so it still makes int64 indices, and square() is pow(2).
    private static readonly Scalar IntZero = 0.ToScalar();
    private static readonly Scalar IntOne = 1.ToScalar();
    private static readonly Scalar Two = 2.ToScalar();

    public TrainerTests()
    {
        TorchRuntime.Initialize("cpu", threads: 1, seed: 11);
    }

    [Fact]
    public void The_benchmark_reports_the_warm_up_alone_not_the_probe_or_the_timed_window()
    {
        using var data = Load();
        using var model = new LogisticTestModel(TestEntries.Context(data));
        var clock = System.Diagnostics.Stopwatch.StartNew();

        var timing = TrainingBenchmark.TimeSteps(model, data, Small, warmupSteps: 3, minSteps: 5, minSeconds: 0.2,
            maxWarmupSeconds: 0, beforeTiming: () => Thread.Sleep(300));
        var total = clock.Elapsed.TotalSeconds;

        // No quiet period is waited for at a zero cap: exactly the minimum of warm-up steps.
        Assert.Equal(3, timing.Warmup.Steps);
        Assert.True(timing.Steps >= 5 && timing.Seconds >= 0.2, $"{timing.Steps} steps in {timing.Seconds} s");
        // Warm-up, the 0.3 s before the clock and the timed window follow each other inside the call.
        Assert.True(timing.Warmup.Seconds + 0.3 + timing.Seconds <= total,
            $"warm-up {timing.Warmup.Seconds} s + 0.3 s + timed {timing.Seconds} s > {total} s for the whole call");
    }

    [Fact]
    public void The_loss_is_finite_and_falls_and_validation_beats_the_untrained_model()
    {
        using var data = Load();
        using var model = new LogisticTestModel(TestEntries.Context(data));
        var untrained = Trainer.ValidationLogLoss(model, data);

        var result = Trainer.Fit(model, data, Small);

        Assert.Equal(3, result.EpochsRun);
        Assert.All(result.Curve, e => Assert.True(double.IsFinite(e.TrainLoss) && double.IsFinite(e.ValidationLogLoss), e.ToString()));
        Assert.True(result.Curve[2].TrainLoss < result.Curve[0].TrainLoss, $"train loss {result.Curve[0].TrainLoss} -> {result.Curve[2].TrainLoss}");
        Assert.True(result.BestValidationLogLoss < untrained, $"validation {untrained} -> {result.BestValidationLogLoss}");
        Assert.Equal(result.Curve.Min(e => e.ValidationLogLoss), result.BestValidationLogLoss);
        Assert.Equal(3, result.Curve[0].ValidationLogLossByStage.Count);
        Assert.Equal(result.Curve[0].ValidationLogLossByStage.Average(), result.Curve[0].ValidationLogLoss, 12);
        var trainRows = data.CountOf(DatasetSplit.Train, includeLostBids: false);
        Assert.Equal(trainRows, result.TrainRows);
        Assert.Equal(3L * trainRows, result.Samples);
        Assert.True(result.SamplesPerSecond > 0);
        Assert.Equal(1, result.Threads);
        Assert.Equal(256, result.BatchSize);
    }

    /// <summary>
    /// With a win-weighted validation loss each stage's validation log loss is Σ w·BCE / Σ w over the validation
    /// impressions, w = 1/max(π, ε_w) from the dataset's win propensity (here the oracle column), and its calibration
    /// ratio Σ w·r̂_k / Σ w·s_k.
    /// </summary>
    [Fact]
    public void A_win_weighted_validation_loss_weighs_each_validation_impression_by_its_inverse_win_propensity()
    {
        using var data = Load();
        using var model = new LogisticTestModel(TestEntries.Context(data));
        var options = Small with { Epochs = 1, WinPropensity = WinPropensitySource.Oracle, ValidationLoss = ValidationWeighting.WinWeighted };

        var result = Trainer.Fit(model, data, options);

        var rows = data.Rows(DatasetSplit.Validation, includeLostBids: false);
        double[] bce, rates, labels;
        using (NewDisposeScope())
        using (no_grad())
        {
            model.eval();
            using var index = tensor(rows.Select(r => (long)r).ToArray());
            var output = model.forward(data.Features.index_select(0, index));
            bce = Losses.BceFromLog(output.LogCumulative(), data.Labels.index_select(0, index)).to_type(ScalarType.Float64).data<double>().ToArray();
            rates = output.LogCumulative().to_type(ScalarType.Float64).exp().data<double>().ToArray();
            labels = data.Labels.index_select(0, index).to_type(ScalarType.Float64).data<double>().ToArray();
        }
        var pi = data.WinPropensity.cpu().data<float>().ToArray();
        var k = data.Depth;
        // Σ w·r̂_k and Σ w·s_k: the weighted calibration ratio of each stage.
        var rateSum = new double[k];
        var labelSum = new double[k];
        for (var i = 0; i < rows.Length; i++)
        {
            var w = 1 / Math.Max((double)pi[rows[i]], 0.01);
            for (var stage = 0; stage < k; stage++)
            {
                rateSum[stage] += w * rates[(i * k) + stage];
                labelSum[stage] += w * labels[(i * k) + stage];
            }
        }
        for (var stage = 0; stage < k; stage++)
        {
            double weighted = 0, weights = 0, plain = 0;
            for (var i = 0; i < rows.Length; i++)
            {
                var w = 1 / Math.Max((double)pi[rows[i]], 0.01);
                weighted += w * bce[(i * k) + stage];
                weights += w;
                plain += bce[(i * k) + stage];
            }
            Assert.Equal(weighted / weights, result.Curve[0].ValidationLogLossByStage[stage], 9);
            Assert.Equal(rateSum[stage] / labelSum[stage], result.Curve[0].ValidationCalibrationByStage[stage], 9);
            Assert.True(Math.Abs((weighted / weights) - (plain / rows.Length)) > 1e-6, $"stage {stage}: the weights changed nothing");
        }
        Assert.Equal(result.Curve[0].ValidationLogLossByStage.Average(), result.BestValidationLogLoss, 12);
    }

    /// <summary>
    /// The trainer hands the win propensity over unfloored, so ipw-escm2's <c>win_weight.floor_rate</c> counts the rows whose
    /// π̂ is below ε_w (models.md §15.2: report the clipping rate). With the batch floored first it always read 0.
    /// </summary>
    [Fact]
    public void A_training_step_reports_the_share_of_rows_whose_win_propensity_is_at_its_floor()
    {
        using var scope = NewDisposeScope();
        using var data = Load();
        var options = Small with { WinPropensity = WinPropensitySource.Oracle };
        using var model = ModelCatalog.Get("ipw-escm2").Create(TestEntries.Context(data));
        using var optimizer = new ModelOptimizer(model, options);
        var train = data.Rows(DatasetSplit.Train, includeLostBids: false).Take(256).ToArray();
        var low = train.Where((_, i) => i % 3 == 0).ToHashSet();
        var pi = new float[data.WinPropensity.shape[0]];
        for (var i = 0; i < pi.Length; i++)
        {
            pi[i] = low.Contains(i) ? 0.004f : 0.5f;
        }
        using (no_grad())
        {
            data.WinPropensity.copy_(tensor(pi));
        }

        Trainer.Step(model, data, optimizer, tensor(train.Select(i => (long)i).ToArray()), options, new TrainingStep(0, 10, 0));
        var diagnostics = model.Diagnostics();

        Assert.Equal(low.Count / (double)train.Length, diagnostics["win_weight.floor_rate"], 6);
        // Weights 1/0.01 on the floored third and 1/0.5 elsewhere: ESS = (Σw)² / Σw².
        double sum = (low.Count * 100.0) + ((train.Length - low.Count) * 2.0);
        double squares = (low.Count * 100.0 * 100.0) + ((train.Length - low.Count) * 4.0);
        Assert.Equal(sum * sum / squares, diagnostics["win_weight.ess"], 3);
    }

    /// <summary>
    /// A model that asks for label rates gets, before its first step, each stage's share of the train impressions that
    /// reached it, as libtorch's mean of the logged labels over those rows gives it (lost bids and other splits out).
    /// </summary>
    [Fact]
    public void A_label_rate_initialised_model_gets_the_train_impressions_cumulative_rates_before_its_first_step()
    {
        using var data = Load();
        using var model = new RateTestModel(TestEntries.Context(data));
        using var rows = data.RowIndex(DatasetSplit.Train, includeLostBids: false);
        var expected = data.Labels.index_select(0, rows).to_type(ScalarType.Float64).mean([0]).data<double>().ToArray();
        using var everything = data.RowIndex(DatasetSplit.Train, includeLostBids: true);
        var withLostBids = data.Labels.index_select(0, everything).to_type(ScalarType.Float64).mean([0]).data<double>().ToArray();

        Trainer.Fit(model, data, Small with { Epochs = 1 });

        Assert.True(model.InitialisedBeforeFirstStep);
        Assert.Equal(expected.Length, model.Rates!.Count);
        for (var k = 0; k < expected.Length; k++)
        {
            Assert.Equal(expected[k], model.Rates[k], 12);
            Assert.InRange(model.Rates[k], 1e-6, 1 - 1e-6);
        }
        Assert.True(model.Rates[0] > withLostBids[0] * 1.01, $"click rate {model.Rates[0]} should be over impressions only, not {withLostBids[0]}");
        Assert.True(model.Rates[1] < model.Rates[0]);
    }

    [Fact]
    public void Early_stopping_ends_training_after_patience_epochs_and_restores_the_best_state()
    {
        using var data = Load();
        using var model = new DriftTestModel(TestEntries.Context(data));
        float[]? afterFirst = null;

        var result = Trainer.Fit(model, data, Small with { Epochs = 10, LearningRate = 0.05 },
            e => afterFirst ??= model.Bias());

        Assert.Equal(3, result.EpochsRun);
        Assert.True(result.StoppedEarly);
        Assert.Equal(1, result.BestEpoch);
        Assert.True(result.Curve[1].ValidationLogLoss > result.Curve[0].ValidationLogLoss);
        Assert.True(result.Curve[2].ValidationLogLoss > result.Curve[1].ValidationLogLoss);
        Assert.Equal([true, false, false], result.Curve.Select(e => e.Improved));
        Assert.Equal(afterFirst, model.Bias());
        Assert.Equal(result.BestValidationLogLoss, Trainer.ValidationLogLoss(model, data), 6);
    }

    [Fact]
    public void Patience_sets_how_many_epochs_without_improvement_training_waits()
    {
        using var data = Load();
        using var model = new DriftTestModel(TestEntries.Context(data));

        var result = Trainer.Fit(model, data, Small with { Epochs = 10, LearningRate = 0.05, Patience = 3 });

        Assert.Equal((4, 1, 1, true), (result.EpochsRun, result.BestEpoch, result.KeptEpoch, result.StoppedEarly));
        Assert.Equal("4 epochs (best 1, stopped early)", result.DescribeEpochs());
    }

    /// <summary>
    /// Without early stopping every epoch is trained although the validation log loss rises after the first, and the
    /// model keeps the last epoch's state, not the best one's; the best epoch is still reported.
    /// </summary>
    [Fact]
    public void Without_early_stopping_every_epoch_is_trained_and_the_last_state_kept()
    {
        using var data = Load();
        using var model = new DriftTestModel(TestEntries.Context(data));
        var states = new List<float[]>();

        var result = Trainer.Fit(model, data, Small with { Epochs = 4, LearningRate = 0.05, EarlyStopping = false },
            e => states.Add(model.Bias()));

        Assert.Equal((4, 1, 4, false), (result.EpochsRun, result.BestEpoch, result.KeptEpoch, result.StoppedEarly));
        Assert.True(result.KeptLast);
        Assert.Equal(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"4 epochs (best 1; epoch 4 kept, validation log loss {result.Curve[3].ValidationLogLoss:F5})"), result.DescribeEpochs());
        Assert.True(result.Curve[3].ValidationLogLoss > result.Curve[0].ValidationLogLoss);
        Assert.Equal(states[3], model.Bias());
        Assert.NotEqual(states[0], model.Bias());
        Assert.Equal(result.Curve[3].ValidationLogLoss, Trainer.ValidationLogLoss(model, data), 6);
    }

    [Theory]
    [InlineData(50)]
    [InlineData(1)]
    public void A_nan_loss_stops_training_naming_the_model_epoch_and_batch(int checkInterval)
    {
        using var data = Load();
        var batches = (data.CountOf(DatasetSplit.Train, includeLostBids: false) + Small.BatchSize - 1) / Small.BatchSize;
        // Global step `batches + 1` is epoch 2, batch 2 (both 1-based).
        using var model = new LogisticTestModel(TestEntries.Context(data), nanFromStep: batches + 1);

        var e = Assert.Throws<TrainingDivergedException>(() =>
            Trainer.Fit(model, data, Small with { DivergenceCheckInterval = checkInterval }));

        Assert.Equal(LogisticTestModel.ModelId, e.ModelId);
        Assert.Equal(2, e.Epoch);
        Assert.Equal(2, e.Batch);
        Assert.True(double.IsNaN(e.Value));
        Assert.Contains("\"test-logistic\"", e.Message, StringComparison.Ordinal);
        Assert.Contains($"epoch 2, batch 2 of {batches}", e.Message, StringComparison.Ordinal);
        Assert.Contains("NaN", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_checkpoint_round_trip_gives_identical_predictions()
    {
        using var data = Load();
        using var trained = new LogisticTestModel(TestEntries.Context(data));
        Trainer.Fit(trained, data, Small with { Epochs = 1 });
        var path = Path.Combine(TestSimulation.NewFolder("checkpoint"), "model.bin");
        Trainer.SaveCheckpoint(trained, path);
        var expected = Predictions.Score(trained, data);

        manual_seed(99);
        using var fresh = new LogisticTestModel(TestEntries.Context(data));
        var before = Predictions.Score(fresh, data);
        Trainer.LoadCheckpoint(fresh, path);
        var after = Predictions.Score(fresh, data);

        Assert.NotEqual(expected.R[0], before.R[0]);
        for (var k = 0; k < data.Depth; k++)
        {
            Assert.Equal(expected.Q[k], after.Q[k]);
            Assert.Equal(expected.R[k], after.R[k]);
        }
        using var other = new DriftTestModel(TestEntries.Context(data));
        var e = Assert.Throws<InvalidDataException>(() => Trainer.LoadCheckpoint(other, path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Batches_hold_lost_bids_only_for_models_that_use_them_and_carry_the_chosen_win_propensity()
    {
        using var data = Load();
        using var impressionsOnly = new LogisticTestModel(TestEntries.Context(data));
        using var withLost = new LogisticTestModel(TestEntries.Context(data), usesLostBids: true);

        Trainer.Fit(impressionsOnly, data, Small with { Epochs = 1 });
        Trainer.Fit(withLost, data, Small with { Epochs = 1, WinPropensity = WinPropensitySource.None });

        var trainImpressions = data.CountOf(DatasetSplit.Train, includeLostBids: false);
        var trainAll = data.CountOf(DatasetSplit.Train, includeLostBids: true);
        Assert.True(trainAll > trainImpressions);
        Assert.Equal(0f, BatchProbe.Read(impressionsOnly.Probe.LostRows));
        Assert.Equal(trainImpressions, BatchProbe.Read(impressionsOnly.Probe.Rows));
        Assert.Equal(trainAll - trainImpressions, BatchProbe.Read(withLost.Probe.LostRows));
        Assert.Equal(trainAll, BatchProbe.Read(withLost.Probe.Rows));
        // Oracle: the logged column as it is (the model that reads it applies ε_w and counts the rows at the floor); none: all ones.
        using var rows = data.RowIndex(DatasetSplit.Train, includeLostBids: false);
        using var logged = data.WinPropensity.index_select(0, rows);
        Assert.Equal(logged.min().item<float>(), BatchProbe.Read(impressionsOnly.Probe.MinWinPropensity));
        Assert.Equal(logged.max().item<float>(), BatchProbe.Read(impressionsOnly.Probe.MaxWinPropensity));
        Assert.True(logged.min().item<float>() < 0.999f);
        Assert.Equal(1f, BatchProbe.Read(withLost.Probe.MinWinPropensity));
        Assert.Equal(1f, BatchProbe.Read(withLost.Probe.MaxWinPropensity));
    }

    [Fact]
    public void The_optimiser_decays_and_updates_the_embedding_tables_row_wise_and_the_rest_with_plain_adam()
    {
        using var data = Load();
        using var model = new LogisticTestModel(TestEntries.Context(data));
        using var optimizer = Trainer.CreateOptimizer(model, Small);

        var embedding = model.modules().OfType<Embedding>().SelectMany(m => m.parameters()).Select(p => p.Handle).ToHashSet();
        Assert.Single(embedding);
        Assert.Equal(embedding, optimizer.EmbeddingTables.Select(p => p.Handle).ToHashSet());
        Assert.Equal(2, optimizer.DenseParameters.Count);
        Assert.DoesNotContain(optimizer.DenseParameters, p => embedding.Contains(p.Handle));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.1)]
    public void The_flat_dense_adam_follows_torch_adam_step_by_step_with_weight_decay_and_a_changed_rate_and_skips_parameters_without_a_gradient(double weightDecay)
    {
        using var scope = NewDisposeScope();
        Tensor Net(Tensor x, Linear a, Linear b) => b.call(nn.functional.relu(a.call(x)));
        manual_seed(5);
        var ours = (A: nn.Linear(6, 5), B: nn.Linear(5, 2), Idle: nn.Linear(2, 2));
        manual_seed(5);
        var torchs = (A: nn.Linear(6, 5), B: nn.Linear(5, 2), Idle: nn.Linear(2, 2));
        Parameter[] Params((Linear A, Linear B, Linear Idle) m) => [.. m.A.parameters(), .. m.B.parameters(), .. m.Idle.parameters()];
        using var flat = new FlatAdam(Params(ours), 0.01, weightDecay);
        // TorchSharp's Adam is the reference here, the one place it runs (TemporaryScalarTests exempts this test).
        using var reference = optim.Adam(Params(torchs), lr: 0.01, weight_decay: weightDecay);
        for (var step = 0; step < 6; step++)
        {
            if (step == 2)
            {
                // A schedule's change between steps (the win-model trainer halves the rate on a plateau).
                flat.LearningRate *= 0.5;
                foreach (var group in reference.ParamGroups)
                {
                    group.LearningRate *= 0.5;
                }
            }
            var x = randn(16, 6);
            var y = randn(16, 2);
            foreach (var (m, update) in new[] { (ours, (Action)flat.Step), (torchs, () => reference.step()) })
            {
                foreach (var p in Params(m))
                {
                    p.grad = null;
                }
                // The last layer leaves the loss on steps 3 and 4 (no gradient, so no update): the fused path runs before, the
                // per-parameter one after, when the step counts differ.
                var output = Net(x, m.A, m.B);
                var loss = (step is 3 or 4 ? output : m.Idle.call(output)).sub(y).pow(Two).mean();
                loss.backward();
                update();
            }
            foreach (var (a, b) in Params(ours).Zip(Params(torchs)))
            {
                Assert.True(allclose(a, b, rtol: 0, atol: 1e-6), $"step {step}: flat and torch Adam differ");
            }
        }
    }

    [Fact]
    public void Lazy_row_wise_adam_matches_dense_adam_on_the_first_step_and_leaves_rows_outside_the_batch_alone_after()
    {
        using var data = Load();
        var options = Small with { EmbeddingWeightDecay = 0 };
        using var rows = data.RowIndex(DatasetSplit.Train, includeLostBids: false);
        var first = rows.narrow(0, 0, 64);
        var second = rows.narrow(0, 64, 64);
        manual_seed(3);
        using var sparse = new LogisticTestModel(TestEntries.Context(data));
        manual_seed(3);
        using var dense = new LogisticTestModel(TestEntries.Context(data), sparseEmbeddings: false);
        using var sparseOptimizer = Trainer.CreateOptimizer(sparse, options);
        using var denseOptimizer = Trainer.CreateOptimizer(dense, options);
        var table = (Func<LogisticTestModel, Tensor>)(m => m.named_parameters().Single(p => p.name == "encoder.table.weight").parameter);
        var before = table(sparse).detach().clone();

        Trainer.Step(sparse, data, sparseOptimizer, first, options, new TrainingStep(0, 2, 1));
        Trainer.Step(dense, data, denseOptimizer, first, options, new TrainingStep(0, 2, 1));
        Assert.True(table(sparse).grad is null || table(sparse).grad!.is_sparse);
        Assert.True(allclose(table(sparse), table(dense), rtol: 0, atol: 1e-7), "first step: lazy and dense Adam differ");
        Assert.True(allclose(sparse.parameters().Last(), dense.parameters().Last(), rtol: 0, atol: 1e-7));

        // Rows looked up by the first batch but not by the second: dense Adam keeps moving them by momentum, lazy Adam does not.
        var firstRows = data.Features.index_select(0, first).flatten().unique().Item1;
        var secondRows = data.Features.index_select(0, second).flatten().unique().Item1;
        var onlyFirst = firstRows.masked_select(isin(firstRows, secondRows).logical_not());
        Assert.True(onlyFirst.numel() > 0);
        var afterFirst = table(sparse).index_select(0, onlyFirst).detach().clone();
        Trainer.Step(sparse, data, sparseOptimizer, second, options, new TrainingStep(1, 2, 1));
        Trainer.Step(dense, data, denseOptimizer, second, options, new TrainingStep(1, 2, 1));
        Assert.True(eq(table(sparse).index_select(0, onlyFirst), afterFirst).all().item<bool>());
        Assert.False(allclose(table(dense).index_select(0, onlyFirst), afterFirst, rtol: 0, atol: 1e-9));
        // Rows never looked up stay where they started in both.
        var touched = cat([firstRows, secondRows]).unique().Item1;
        using var rowCount = before.shape[0].ToScalar();
        var all = arange(IntZero, rowCount, IntOne);
        var untouched = all.masked_select(isin(all, touched).logical_not());
        Assert.True(eq(table(sparse).index_select(0, untouched), before.index_select(0, untouched)).all().item<bool>());
        Assert.True(eq(table(dense).index_select(0, untouched), before.index_select(0, untouched)).all().item<bool>());
    }

    [Fact]
    public void The_host_row_update_equals_the_tensor_row_update_over_several_steps_with_decay_and_repeated_rows()
    {
        using var data = Load();
        var options = Small with { EmbeddingWeightDecay = 0.01 };
        using var rows = data.RowIndex(DatasetSplit.Train, includeLostBids: false);
        // Rows of 12 floats: one SIMD vector of 8 (or 12 scalars without AVX) and a scalar remainder in the host pass.
        manual_seed(5);
        using var host = new LogisticTestModel(TestEntries.Context(data), embeddingDim: 12);
        manual_seed(5);
        using var tensors = new LogisticTestModel(TestEntries.Context(data), embeddingDim: 12);
        using var hostOptimizer = Trainer.CreateOptimizer(host, options);
        using var tensorOptimizer = Trainer.CreateOptimizer(tensors, options);
        tensorOptimizer.HostUpdates = false;
        var table = (Func<LogisticTestModel, Tensor>)(m => m.named_parameters().Single(p => p.name == "encoder.table.weight").parameter);
        var start = table(host).detach().clone();

        for (var step = 0; step < 4; step++)
        {
            // Overlapping batches: rows come back with moments from earlier steps, and a batch repeats table rows.
            var batch = rows.narrow(0, step * 32, 96);
            Trainer.Step(host, data, hostOptimizer, batch, options, new TrainingStep(step, 4, 1));
            Trainer.Step(tensors, data, tensorOptimizer, batch, options, new TrainingStep(step, 4, 1));
        }

        Assert.False(allclose(table(host), start, rtol: 0, atol: 1e-4), "the table did not move");
        Assert.True(allclose(table(host), table(tensors), rtol: 0, atol: 1e-6),
            $"host and tensor row updates differ by {(table(host) - table(tensors)).abs().max().item<float>()}");
        foreach (var (a, b) in host.parameters().Zip(tensors.parameters()))
        {
            Assert.True(allclose(a, b, rtol: 0, atol: 1e-6));
        }
    }

    [Fact]
    public void A_run_writes_checkpoints_curves_and_predictions_for_every_request_of_D()
    {
        using var data = Load();
        var parent = TestSimulation.NewFolder("run");
        var output = Path.Combine(parent, "train");
        var options = new TrainingRunOptions { OutputDirectory = output, Trainer = Small with { Epochs = 2 } };

        var run = TrainingRun.Execute(data, [TestEntries.Logistic], options);

        Assert.Equal(output, run.Directory);
        Assert.Equal(["train"], Directory.GetFileSystemEntries(parent).Select(Path.GetFileName));
        Assert.True(File.Exists(Path.Combine(output, "checkpoints", "test-logistic.bin")));
        Assert.True(File.Exists(Path.Combine(output, TrainingRun.ManifestFile)));
        var curves = File.ReadAllLines(Path.Combine(output, "curves", "test-logistic.csv"));
        Assert.Equal("epoch,train_loss,validation_log_loss,validation_log_loss_click,validation_log_loss_authorize,"
            + "validation_log_loss_convert,validation_calibration_click,validation_calibration_authorize,validation_calibration_convert,"
            + "seconds,train_seconds,improved", curves[0]);
        Assert.Equal(1 + run.Models[0].Training.EpochsRun, curves.Length);

        var (names, columns) = ReadParquet(Path.Combine(output, "predictions", "test-logistic.parquet"));
        Assert.Equal(Predictions.Columns(data.Stages), names);
        Assert.Equal(["request_id", "q_hat_click", "q_hat_authorize", "q_hat_convert", "r_hat_click", "r_hat_authorize", "r_hat_convert"], names);
        Assert.Equal(data.RequestId, (long[])columns["request_id"]);
        var previous = Enumerable.Repeat(1.0, data.Count).ToArray();
        var product = Enumerable.Repeat(1.0, data.Count).ToArray();
        foreach (var stage in data.Stages)
        {
            var q = (double[])columns["q_hat_" + stage];
            var r = (double[])columns["r_hat_" + stage];
            Assert.Equal(data.Count, r.Length);
            for (var i = 0; i < data.Count; i++)
            {
                Assert.True(q[i] > 0 && q[i] < 1 && r[i] > 0 && r[i] < 1, $"{stage} row {i}: q̂ {q[i]}, r̂ {r[i]}");
                Assert.True(r[i] <= previous[i] * (1 + 1e-6), $"{stage} row {i}: r̂ {r[i]} above the stage before {previous[i]}");
                product[i] *= q[i];
                Assert.Equal(product[i], r[i], 1e-6);
            }
            previous = r;
        }

        Assert.Throws<OutputExistsException>(() => TrainingRun.Execute(data, [TestEntries.Logistic], options));
        var again = TrainingRun.Execute(data, [TestEntries.Logistic], options with { Force = true, Trainer = Small with { Epochs = 1 } });
        Assert.Equal(1, again.Models[0].Training.EpochsRun);
        Assert.Equal(["train"], Directory.GetFileSystemEntries(parent).Select(Path.GetFileName));
    }

    [Fact]
    public void The_same_seed_gives_byte_identical_predictions()
    {
        using var data = Load();
        var parent = TestSimulation.NewFolder("seeded");
        var options = new TrainingRunOptions { OutputDirectory = Path.Combine(parent, "a"), Trainer = Small with { Epochs = 1 } };

        // Torch's generator is moved on in between: each model is seeded afresh by the run.
        TrainingRun.Execute(data, [TestEntries.Logistic], options);
        randn(1000).Dispose();
        TrainingRun.Execute(data, [TestEntries.Logistic], options with { OutputDirectory = Path.Combine(parent, "b") });
        TrainingRun.Execute(data, [TestEntries.Logistic], options with { OutputDirectory = Path.Combine(parent, "c"), Trainer = Small with { Epochs = 1, Seed = 12 } });

        var a = File.ReadAllBytes(Path.Combine(parent, "a", "predictions", "test-logistic.parquet"));
        Assert.Equal(a, File.ReadAllBytes(Path.Combine(parent, "b", "predictions", "test-logistic.parquet")));
        Assert.NotEqual(a, File.ReadAllBytes(Path.Combine(parent, "c", "predictions", "test-logistic.parquet")));
    }

    [Fact]
    public void A_run_refuses_a_model_that_cannot_serve_the_depth_before_writing_anything()
    {
        using var data = Load();
        var parent = TestSimulation.NewFolder("refused");
        var refusing = TestEntries.Logistic with { Unsupported = depth => $"needs exactly 2 stages, got {depth}" };

        var e = Assert.Throws<ArgumentException>(() => TrainingRun.Execute(data, [refusing],
            new TrainingRunOptions { OutputDirectory = Path.Combine(parent, "train"), Trainer = Small }));

        Assert.Contains("test-logistic", e.Message, StringComparison.Ordinal);
        Assert.Contains("depth 3", e.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(parent));
    }

    private static LoggedDataset Load() => LoggedDataset.Load(LoggedView.Open(TestSimulation.Parquet));

    internal static (IReadOnlyList<string> Names, Dictionary<string, Array> Columns) ReadParquet(string path) =>
        ReadParquetAsync(path).GetAwaiter().GetResult();

    private static async Task<(IReadOnlyList<string>, Dictionary<string, Array>)> ReadParquetAsync(string path)
    {
        await using var reader = await ParquetReader.CreateAsync(path);
        var fields = reader.Schema.DataFields;
        var rows = 0L;
        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            rows += group.RowCount;
        }
        var columns = new Dictionary<string, Array>(StringComparer.Ordinal);
        foreach (var field in fields)
        {
            columns[field.Name] = field.ClrType == typeof(long) ? new long[rows] : new double[rows];
        }
        var at = 0;
        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            var n = (int)group.RowCount;
            foreach (var field in fields)
            {
                if (columns[field.Name] is long[] longs)
                {
                    await group.ReadAsync(field, longs.AsMemory(at, n));
                }
                else
                {
                    await group.ReadAsync(field, ((double[])columns[field.Name]).AsMemory(at, n));
                }
            }
            at += n;
        }
        return (fields.Select(f => f.Name).ToArray(), columns);
    }
}
