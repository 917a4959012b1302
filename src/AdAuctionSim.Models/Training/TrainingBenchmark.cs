using System.Diagnostics;
using System.Runtime;
using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Data;
using AdAuctionSim.Models.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Training;

/// <summary>The machine's measured matrix-multiply rate: float32 n×n by n×n products on one device.</summary>
/// <param name="FlopsPerSecond">2·n³ multiply-adds per product ÷ seconds, median of the timed rounds.</param>
/// <param name="Size">n.</param>
/// <param name="Products">Products per timed round.</param>
/// <param name="Rounds">Timed rounds (the median is reported).</param>
public sealed record MatmulRate(double FlopsPerSecond, int Size, int Products, int Rounds);

/// <summary>Forward-pass multiply-adds of one sample, by the layers that hold them.</summary>
/// <param name="Linear">2·in·out per application of every <c>nn.Linear</c> (MLPs, towers, gates, heads), and the matmuls of
/// modules that run their layers as batched products (<see cref="IMatmulWork"/>: towers).</param>
/// <param name="Experts">2·n·in·H of every <see cref="ExpertBank"/>.</param>
public sealed record FlopCount(double Linear, double Experts)
{
    /// <summary>Forward FLOPs per sample.</summary>
    public double Forward => Linear + Experts;

    /// <summary>
    /// Training FLOPs per sample: forward + backward, where the backward pass of a matmul costs two matmuls of the same
    /// size (the gradient with respect to the input and to the weight), so 3 × forward.
    /// </summary>
    public double Training => 3 * Forward;
}

/// <summary>Timed training steps of one model, with the seconds of each part of the step summed over the steps.</summary>
public sealed record StepTiming(int Steps, int BatchSize, double Seconds, double ForwardSeconds, double BackwardSeconds, double UpdateSeconds)
{
    /// <summary>Untimed warm-up steps taken before the timed ones, and their seconds.</summary>
    public (int Steps, double Seconds) Warmup { get; init; }

    public double SamplesPerSecond => Steps * (double)BatchSize / Seconds;
}

/// <summary>
/// The pieces of <c>adsim bench train</c>: the matrix-multiply rate, the FLOPs of one sample and the timed training step,
/// which is <see cref="Trainer.Step"/> itself (the same gather, forward, loss, backward and optimiser update as training).
/// </summary>
public static class TrainingBenchmark
{
    /// <summary>Seconds without a newly compiled method that end the warm-up of <see cref="TimeSteps"/>.</summary>
    public const double JitQuietSeconds = 0.5;

    /// <summary>
    /// Times float32 n×n matmuls on <paramref name="device"/>: one warm-up round, then <paramref name="rounds"/> rounds of
    /// <paramref name="products"/> products each; returns the median round's rate.
    /// </summary>
    public static MatmulRate MeasureMatmul(Device device, int size = 1024, int products = 8, int rounds = 5)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 16);
        ArgumentOutOfRangeException.ThrowIfLessThan(products, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(rounds, 1);
        HostThreads.FollowIntraOpCount();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var a = randn(size, size, device: device);
        var b = randn(size, size, device: device);
        var rates = new double[rounds];
        for (var r = -1; r < rounds; r++)
        {
            Synchronize(device);
            var clock = Stopwatch.StartNew();
            for (var p = 0; p < products; p++)
            {
                using (NewDisposeScope())
                {
                    a.mm(b);
                }
            }
            Synchronize(device);
            if (r >= 0)
            {
                rates[r] = 2.0 * size * size * (double)size * products / clock.Elapsed.TotalSeconds;
            }
        }
        Array.Sort(rates);
        return new MatmulRate(rates[rounds / 2], size, products, rounds);
    }

    /// <summary>
    /// Counts the multiply-adds of one forward pass on <paramref name="batch"/> rows of the dataset, by forward hooks on
    /// every <c>nn.Linear</c>, <see cref="ExpertBank"/> and other <see cref="IMatmulWork"/> module (so a layer applied to
    /// several vectors per sample is counted each time), divided by the batch size. APEM's attention modules count their
    /// score and pooling products through <see cref="IMatmulWork"/>, and its fused passes report the products of the
    /// modules they stand in for, so the count does not depend on which form ran. Element-wise work, softmax, gate mixing and embedding
    /// lookups are not counted: the floor this gives is the matmul work only.
    /// </summary>
    public static FlopCount CountFlops(MultiTaskModel model, LoggedDataset data, int batch)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        var n = Math.Min(batch, data.Count);
        var wasTraining = model.training;
        model.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            model.to(data.Device);
            var (linear, experts) = CountModuleFlops(model, () => model.forward(data.Features.narrow(0, 0, n)));
            return new FlopCount(linear / n, experts / n);
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <summary>
    /// The forward hooks of <see cref="CountFlops"/> on every module under <paramref name="root"/> while
    /// <paramref name="forward"/> runs: 2 × multiply-adds of the <c>nn.Linear</c> and <see cref="IMatmulWork"/> modules
    /// (Linear) and of the <see cref="ExpertBank"/>s (Experts), for the whole batch.
    /// </summary>
    internal static (double Linear, double Experts) CountModuleFlops(nn.Module root, Action forward)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(forward);
        double linear = 0, experts = 0;
        var removers = new List<Action>();
        try
        {
            // TorchSharp's modules() lists the descendants only; the root may be a counted module itself.
            foreach (var module in root.modules().Prepend(root).Distinct(ReferenceEqualityComparer.Instance))
            {
                switch (module)
                {
                    case Linear l:
                        var lh = l.register_forward_hook((_, input, output) =>
                        {
                            linear += 2.0 * (input.numel() / l.in_features) * l.in_features * l.out_features;
                            return output;
                        });
                        removers.Add(lh.remove);
                        break;
                    case ExpertBank e:
                        var eh = e.register_forward_hook((_, input, output) =>
                        {
                            experts += e.ForwardFlops(input);
                            return output;
                        });
                        removers.Add(eh.remove);
                        break;
                    case IMatmulWork w when module is nn.Module<Tensor, Tensor> m:
                        var wh = m.register_forward_hook((_, input, output) =>
                        {
                            linear += w.ForwardFlops(input);
                            return output;
                        });
                        removers.Add(wh.remove);
                        break;
                    case IMatmulWork w when module is nn.Module<Tensor, Tensor, Tensor> m:
                        var wh2 = m.register_forward_hook((_, _, input, output) =>
                        {
                            linear += w.ForwardFlops(input);
                            return output;
                        });
                        removers.Add(wh2.remove);
                        break;
                }
            }
            forward();
            return (linear, experts);
        }
        finally
        {
            foreach (var remove in removers)
            {
                remove();
            }
        }
    }

    /// <summary>
    /// Trains <paramref name="model"/> for at least <paramref name="warmupSteps"/> untimed steps and until the JIT has compiled
    /// no method for <see cref="JitQuietSeconds"/> (at most <paramref name="maxWarmupSeconds"/>), then times steps until at least
    /// <paramref name="minSeconds"/> have passed and <paramref name="minSteps"/> were taken. Batches of
    /// <see cref="TrainerOptions.BatchSize"/> train rows (impressions, plus lost bids for models that use them) are drawn
    /// in shuffled order, a new permutation per pass, as in training. The clock covers the whole step: batch gather,
    /// forward, loss, backward and optimiser update, and waits for the device at the end. <paramref name="beforeTiming"/>, when
    /// given, runs after the warm-up and just before the clock starts (the benchmark measures the matmul rate there, so that
    /// the rate and the window it scales are measured under the same load of the host).
    /// </summary>
    public static StepTiming TimeSteps(MultiTaskModel model, LoggedDataset data, TrainerOptions options, int warmupSteps = 10,
        int minSteps = 30, double minSeconds = 3.0, double maxWarmupSeconds = 10, Action? beforeTiming = null,
        CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        HostThreads.FollowIntraOpCount();
        model.to(data.Device);
        model.train();
        using var rows = data.RowIndex(DatasetSplit.Train, model.UsesLostBids);
        var n = rows.shape[0];
        if (n < options.BatchSize)
        {
            throw new InvalidDataException($"{data.ImpressionsFile}: {n} train rows, fewer than one batch of {options.BatchSize}; simulate more requests");
        }
        var perPass = (int)(n / options.BatchSize);
        using var optimizer = Trainer.CreateOptimizer(model, options);
        using var orderScope = NewDisposeScope();
        Tensor? order = null;
        var step = 0;
        Trainer.StepPhases? phases = null;
        var totalSteps = (long)warmupSteps + minSteps;

        void One()
        {
            cancellation.ThrowIfCancellationRequested();
            var b = step % perPass;
            if (b == 0)
            {
                order?.Dispose();
                order = rows.index_select(0, randperm(n, device: data.Device));
            }
            using (NewDisposeScope())
            {
                Trainer.Step(model, data, optimizer, order!.narrow(0, (long)b * options.BatchSize, options.BatchSize), options,
                    new TrainingStep(step, Math.Max(totalSteps, step + 1), 1 + step / perPass), phases);
            }
            step++;
        }

        // Warm up until the step runs steady-state code: at least warmupSteps steps, then on until the JIT has compiled
        // no new method (tier-up rejits included) for JitQuietSeconds, at most maxWarmupSeconds. With only a fixed number of
        // steps, .NET's tiered compilation was still recompiling hot methods (the host kernels among them) during the timed
        // window, on a thread that competes with the intra-op threads for the cores.
        var warmup = Stopwatch.StartNew();
        var compiled = JitInfo.GetCompiledMethodCount();
        var quietSince = TimeSpan.Zero;
        var warmed = 0;
        while (warmed < warmupSteps
            || ((warmup.Elapsed - quietSince).TotalSeconds < JitQuietSeconds && warmup.Elapsed.TotalSeconds < maxWarmupSeconds))
        {
            One();
            warmed++;
            var now = JitInfo.GetCompiledMethodCount();
            if (now != compiled)
            {
                compiled = now;
                quietSince = warmup.Elapsed;
            }
        }
        Synchronize(data.Device);
        var warmupSeconds = warmup.Elapsed.TotalSeconds;
        beforeTiming?.Invoke();
        phases = new Trainer.StepPhases();
        var clock = Stopwatch.StartNew();
        var timed = 0;
        while (timed < minSteps || clock.Elapsed.TotalSeconds < minSeconds)
        {
            One();
            timed++;
        }
        Synchronize(data.Device);
        return new StepTiming(timed, options.BatchSize, clock.Elapsed.TotalSeconds, phases.Forward, phases.Backward, phases.Update)
        {
            Warmup = (warmed, warmupSeconds),
        };
    }

    private static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA)
        {
            cuda.synchronize();
        }
    }
}
