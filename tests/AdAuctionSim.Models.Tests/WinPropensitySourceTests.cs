using System.Text.Json;
using AdAuctionSim.Models.Core;
using AdAuctionSim.Models.Data;
using AdAuctionSim.Models.Runtime;
using AdAuctionSim.Models.Training;
using AdAuctionSim.Simulation.Output;
using TorchSharp;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Tests;

/// <summary>
/// The win-propensity source of a training run (models.md §15.4): the oracle column as logged, or a win model fitted
/// once on the train split that replaces the dataset's win-propensity tensor with π̂ — without ever reading the
/// logged <c>win_propensity</c> column. Uses the tiny simulation of <see cref="TestSimulation"/> (12 000 requests).
/// </summary>
[Collection(TorchSharpCollection.Name)]
public sealed class WinPropensitySourceTests
{
    private const double Floor = 0.01;

    // Held for the process: TorchSharp 0.107 may free a Scalar made for one call while libtorch reads it.
    private static readonly Scalar TamperedPropensity = 0.123f.ToScalar();

    public WinPropensitySourceTests()
    {
        TorchRuntime.Initialize("cpu", threads: 1, seed: 11);
    }

    [Fact]
    public void Oracle_leaves_the_logged_column_and_none_reports_unit_weights()
    {
        using var data = Load();
        var logged = Values(data);

        var oracle = TrainingRun.FitWinPropensity(data, WinPropensitySource.Oracle, Floor);
        var none = TrainingRun.FitWinPropensity(data, WinPropensitySource.None, Floor);

        Assert.Equal(logged, Values(data));
        Assert.Equal("oracle", oracle.Source);
        Assert.False(oracle.Fitted);
        var impressions = data.Rows(DatasetSplit.Train, includeLostBids: false);
        Assert.Equal(impressions.Average(r => (double)logged[r]), oracle.MeanPropensity!.Value, 6);
        Assert.InRange(oracle.EssShare!.Value, 0.01, 1);
        Assert.Null(oracle.AgainstLogged);
        Assert.Equal("none", none.Source);
        Assert.Equal(1, none.EssShare);
        Assert.Equal(logged, Values(data));
    }

    [Fact]
    public void Km_replaces_the_oracle_column_with_an_estimate_close_to_it_on_average()
    {
        using var data = Load();
        var logged = Values(data);

        var fit = TrainingRun.FitWinPropensity(data, WinPropensitySource.KaplanMeier, Floor);

        var estimate = Values(data);
        Assert.True(fit.Fitted);
        Assert.Equal("km", fit.Source);
        Assert.False(fit.CrossFitted);
        Assert.Equal(data.CountOf(DatasetSplit.Train, includeLostBids: true), fit.FitRows);
        Assert.True(fit.FitSeconds > 0);
        Assert.NotEmpty(fit.Diagnostics);
        Assert.NotEqual(logged, estimate);
        Assert.All(estimate, p => Assert.InRange(p, 1e-6f, 1f));
        var meanAbsoluteDifference = logged.Zip(estimate, (a, b) => Math.Abs((double)a - b)).Average();
        Assert.True(meanAbsoluteDifference < 0.1, $"mean |π̂ − π| = {meanAbsoluteDifference}");
        var impressions = data.Rows(DatasetSplit.Train, includeLostBids: false);
        Assert.Equal(impressions.Length, fit.TrainImpressions);
        Assert.Equal(impressions.Average(r => (double)estimate[r]), fit.MeanPropensity!.Value, 5);
        Assert.InRange(fit.EssShare!.Value, 0.01, 1);

        // models.md §14.4: π̂ held against the logged true π on the training impressions, computed from the two columns.
        var check = Assert.IsType<WinPropensityCheck>(fit.AgainstLogged);
        Assert.Equal(impressions.Average(r => Math.Abs((double)estimate[r] - logged[r])), check.MeanAbsoluteError, 5);
        Assert.Equal(impressions.Average(r => (double)logged[r]), check.LoggedMean, 5);
        var trueWeights = impressions.Select(r => 1 / Math.Max((double)logged[r], Floor)).ToArray();
        Assert.Equal(trueWeights.Sum() * trueWeights.Sum() / trueWeights.Sum(w => w * w) / trueWeights.Length, check.LoggedEssShare, 6);
        Assert.Equal(trueWeights.Max(), check.LoggedWeightMax, 6);
        Assert.Equal(impressions.Max(r => 1 / Math.Max((double)estimate[r], Floor)), check.WeightMax, 3);
        Assert.InRange(check.WeightP99, 1, check.WeightMax);
        Assert.InRange(check.LoggedWeightP99, 1, check.LoggedWeightMax);
        // KM sees the bid bucket, which drives most of π here: its π̂ ranks the requests the way π does.
        Assert.InRange(check.LogCorrelation, 0.2, 1);
    }

    [Fact]
    public void The_win_check_is_the_pearson_correlation_of_the_logs_and_ignores_rows_outside_the_summary()
    {
        double[] fitted = [0.5, 0.25, 0.125, 0.9, 0.001];
        double[] logged = [0.25, 0.125, 0.0625, 0.3, 0.5];
        int[] rows = [0, 1, 2];

        var check = WinPropensityCheck.Of(fitted, logged, rows, Floor)!;

        // ln π̂ = ln π + ln 2 on these rows: perfectly correlated, off by (0.25 + 0.125 + 0.0625) / 3 on average.
        Assert.Equal(1, check.LogCorrelation, 9);
        Assert.Equal((0.25 + 0.125 + 0.0625) / 3, check.MeanAbsoluteError, 12);
        Assert.Equal((0.25 + 0.125 + 0.0625) / 3, check.LoggedMean, 12);
        Assert.Equal(16, check.LoggedWeightMax, 12);
        Assert.Equal(8, check.WeightMax, 12);
        // Fitted weights 2, 4, 8: the 99th percentile is the lower neighbour of position 0.99 · 2, the second.
        Assert.Equal(4, check.WeightP99, 12);
        Assert.Null(WinPropensityCheck.Of(fitted, logged, [0], Floor));
        Assert.True(WinPropensityCheck.Of([0.5, 0.25, 0.125], [0.125, 0.25, 0.5], [0, 1, 2], Floor)!.LogCorrelation < -0.99);
    }

    [Theory]
    [InlineData(WinPropensitySource.KaplanMeier)]
    [InlineData(WinPropensitySource.CensoredLognormal)]
    public void The_win_model_never_reads_the_logged_win_propensity_column(WinPropensitySource source)
    {
        using var honest = Load();
        using var tampered = Load();
        using (no_grad())
        {
            tampered.WinPropensity.fill_(TamperedPropensity);
        }

        TrainingRun.FitWinPropensity(honest, source, Floor);
        TrainingRun.FitWinPropensity(tampered, source, Floor);

        Assert.Equal(Values(honest), Values(tampered));
    }

    /// <summary>
    /// models.md §14.3 offers 1/π(x) and 1/W(b_i | x_i): with the at-bid basis the dataset's tensor holds the fitted win
    /// model's Ŵ at each request's own bid, not its π̂(x) averaged over the bidder's multipliers.
    /// </summary>
    [Fact]
    public void The_at_bid_basis_puts_the_win_models_probability_at_each_requests_own_bid_in_the_tensor()
    {
        using var policyData = Load();
        using var data = Load();
        var policy = TrainingRun.FitWinPropensity(policyData, WinPropensitySource.CensoredLognormal, Floor);

        var fit = TrainingRun.FitWinPropensity(data, WinPropensitySource.CensoredLognormal, Floor, basis: WinWeightBasis.AtBid);

        // The same fit as the run's (train split, requests with lost bids), scored at the logged bids.
        var all = new WinPropensity.WinLogData(data.FeatureIds, data.Schema.Fields, data.Schema.Cardinalities, data.Bid, data.BidMultiplier,
            data.IsImpression.ToArray(), data.Price, data.BidMultipliers, data.MultiplierProbabilities, data.SecondPrice, data.ReservePrice);
        using var model = WinPropensity.WinPropensityModels.Create(WinPropensity.WinPropensityModels.CensoredLognormal);
        model.Fit(all.Select(data.Rows(DatasetSplit.Train, includeLostBids: true)));
        var expected = model.WinProbabilityAtBid(all).Select(p => (float)Math.Min(p, 1)).ToArray();
        Assert.Equal(expected, Values(data));
        Assert.NotEqual(Values(policyData), Values(data));
        Assert.Equal("at-bid", fit.Basis);
        Assert.Equal("policy", policy.Basis);
        Assert.Null(fit.AgainstLogged);
        Assert.NotNull(policy.AgainstLogged);
        var impressions = data.Rows(DatasetSplit.Train, includeLostBids: false);
        Assert.Equal(impressions.Average(r => (double)expected[r]), fit.MeanPropensity!.Value, 5);

        // The logs carry only π(x): at-bid weights need a fitted model.
        Assert.Throws<ArgumentException>(() => TrainingRun.FitWinPropensity(data, WinPropensitySource.Oracle, Floor, basis: WinWeightBasis.AtBid));
        Assert.Contains(new TrainerOptions { WinPropensity = WinPropensitySource.None, WinWeight = WinWeightBasis.AtBid }.Problems(),
            p => p.Contains("at-bid", StringComparison.Ordinal));
        Assert.Empty(new TrainerOptions { WinWeight = WinWeightBasis.AtBid }.Problems());
    }

    [Fact]
    public void The_classifier_is_cross_fitted_on_the_train_split()
    {
        using var data = Load();

        var fit = TrainingRun.FitWinPropensity(data, WinPropensitySource.Classifier, Floor, folds: 2);

        Assert.True(fit.Fitted);
        Assert.True(fit.CrossFitted);
        Assert.Equal(2, fit.Folds);
        Assert.All(Values(data), p => Assert.InRange(p, 0f, 1f));
        Assert.InRange(fit.MeanPropensity!.Value, 0.01, 1);
    }

    [Theory]
    [InlineData(WinPropensitySource.Oracle)]
    [InlineData(WinPropensitySource.KaplanMeier)]
    [InlineData(WinPropensitySource.CensoredLognormal)]
    [InlineData(WinPropensitySource.Classifier)]
    [InlineData(WinPropensitySource.None)]
    public void A_one_epoch_ipw_escm2_run_completes_and_records_the_source(WinPropensitySource source)
    {
        using var data = Load();
        var folder = Path.Combine(TestSimulation.NewFolder("win-source"), "run");
        var options = new TrainingRunOptions
        {
            OutputDirectory = folder,
            Trainer = new TrainerOptions { Device = "cpu", BatchSize = 1024, Epochs = 1, Seed = 3, Threads = 1, WinPropensity = source },
            DrGradients = DrGradientMode.Paddle,
        };

        var result = TrainingRun.Execute(data, [ModelCatalog.Get("ipw-escm2")], options);

        Assert.Equal(WinPropensitySources.Id(source), result.WinPropensity!.Source);
        Assert.Equal(WinPropensitySources.IsEstimated(source), result.WinPropensity.Fitted);
        Assert.True(double.IsFinite(result.Models[0].Training.BestValidationLogLoss));
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, TrainingRun.ManifestFile)));
        var win = manifest.RootElement.GetProperty("winPropensity");
        Assert.Equal(WinPropensitySources.Id(source), win.GetProperty("source").GetString());
        Assert.True(win.GetProperty("essShare").GetDouble() is > 0 and <= 1);
        Assert.True(win.TryGetProperty("fitSeconds", out _));
        Assert.True(win.TryGetProperty("meanPropensity", out _));
        Assert.Equal("paddle", manifest.RootElement.GetProperty("drGradients").GetString());

        // A fitted model's scores of every request of D are kept for the evaluator, named and hashed in train.json.
        var scores = Path.Combine(folder, TrainingRun.WinScoresFile);
        if (!result.WinPropensity.Fitted)
        {
            Assert.False(File.Exists(scores));
            Assert.Equal(JsonValueKind.Null, win.GetProperty("scores").ValueKind);
            return;
        }
        Assert.Equal(TrainingRun.WinScoresFile, win.GetProperty("scores").GetString());
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(scores))), win.GetProperty("scoresSha256").GetString());
        Assert.Equal(Floor, win.GetProperty("floor").GetDouble());
        var (names, columns) = TrainerTests.ReadParquet(scores);
        Assert.Equal(["request_id", TrainingRun.WinScoresPolicyColumn, TrainingRun.WinScoresAtBidColumn], names);
        Assert.Equal(data.RequestId, (long[])columns["request_id"]);
        var policy = (double[])columns[TrainingRun.WinScoresPolicyColumn];
        var atBid = (double[])columns[TrainingRun.WinScoresAtBidColumn];
        Assert.Equal(result.WinPropensity.ScoreValues!.Policy, policy);
        Assert.Equal(result.WinPropensity.ScoreValues.AtBid, atBid);
        // The policy basis trains on π̂: the tensor holds the file's first column in float.
        Assert.Equal(policy.Select(p => (float)p), Values(data));
        Assert.NotEqual(policy, atBid);
        Assert.All(atBid, p => Assert.InRange(p, 0, 1));
    }

    /// <summary>ipw-escm2-dr (models.md §15.3) trains on the train split's requests, lost bids included, and reads π̂.</summary>
    [Fact]
    public void The_dr_variant_over_d_trains_on_impressions_and_lost_bids_with_the_fitted_propensity()
    {
        using var data = Load();
        var folder = Path.Combine(TestSimulation.NewFolder("win-dr"), "run");
        var options = new TrainingRunOptions
        {
            OutputDirectory = folder,
            Trainer = new TrainerOptions { Device = "cpu", BatchSize = 1024, Epochs = 1, Seed = 3, Threads = 1, WinPropensity = WinPropensitySource.KaplanMeier },
        };

        var result = TrainingRun.Execute(data, [ModelCatalog.Get("ipw-escm2-dr")], options);

        Assert.True(result.WinPropensity!.Fitted);
        var training = result.Models[0].Training;
        Assert.Equal(data.CountOf(DatasetSplit.Train, includeLostBids: true), training.TrainRows);
        Assert.True(training.TrainRows > data.CountOf(DatasetSplit.Train, includeLostBids: false));
        Assert.True(double.IsFinite(training.BestValidationLogLoss));

        // Its batches hold 1024 impressions on average plus the lost bids in their proportion; other models' hold 1024 rows.
        var impressions = data.CountOf(DatasetSplit.Train, includeLostBids: false);
        using var dr = ModelCatalog.Get("ipw-escm2-dr").Create(TestEntries.Context(data));
        using var ips = ModelCatalog.Get("ipw-escm2").Create(TestEntries.Context(data));
        Assert.Equal((int)Math.Round(1024.0 * training.TrainRows / impressions), Trainer.BatchRows(dr, data, options.Trainer));
        Assert.True(Trainer.BatchRows(dr, data, options.Trainer) > 1024);
        Assert.Equal(1024, Trainer.BatchRows(ips, data, options.Trainer));
    }

    /// <summary>
    /// adsim run trains each model as its own run on one loaded dataset: a later run reuses the win model an earlier one
    /// fitted on that dataset when source and basis match, and fits again when they do not.
    /// </summary>
    [Fact]
    public void A_win_model_fitted_by_an_earlier_run_on_the_same_dataset_is_reused_when_source_and_basis_match()
    {
        using var data = Load();
        var root = TestSimulation.NewFolder("win-reuse");
        var options = new TrainingRunOptions
        {
            OutputDirectory = Path.Combine(root, "first"),
            Trainer = new TrainerOptions { Device = "cpu", BatchSize = 1024, Epochs = 1, Seed = 3, Threads = 1, WinPropensity = WinPropensitySource.KaplanMeier },
        };
        var first = TrainingRun.Execute(data, [ModelCatalog.Get("ipw-escm2")], options).WinPropensity!;
        var fitted = Values(data);

        var second = TrainingRun.Execute(data, [ModelCatalog.Get("ipw-escm2-dr")],
            options with { OutputDirectory = Path.Combine(root, "second"), SettledWinPropensity = first }).WinPropensity!;
        Assert.Same(first, second);
        Assert.Equal(fitted, Values(data));

        var atBid = TrainingRun.Execute(data, [ModelCatalog.Get("ipw-escm2")], options with
        {
            OutputDirectory = Path.Combine(root, "third"),
            SettledWinPropensity = first,
            Trainer = options.Trainer with { WinWeight = WinWeightBasis.AtBid },
        }).WinPropensity!;
        Assert.NotSame(first, atBid);
        Assert.Equal("at-bid", atBid.Basis);
        Assert.NotEqual(fitted, Values(data));
    }

    [Fact]
    public void Runs_without_a_model_that_reads_win_propensities_fit_nothing()
    {
        using var data = Load();
        var logged = Values(data);
        var folder = Path.Combine(TestSimulation.NewFolder("win-unused"), "run");
        var options = new TrainingRunOptions
        {
            OutputDirectory = folder,
            Trainer = new TrainerOptions { Device = "cpu", BatchSize = 1024, Epochs = 1, Seed = 3, Threads = 1 },
        };

        var result = TrainingRun.Execute(data, [ModelCatalog.Get("esmm")], options);

        Assert.False(result.WinPropensity!.Fitted);
        Assert.Equal("censored-lognormal", result.WinPropensity.Source);
        Assert.Equal(logged, Values(data));

        // A win-weighted validation loss reads π for every model: the win model is fitted even for esmm alone.
        var weighted = TrainingRun.Execute(data, [ModelCatalog.Get("esmm")], options with
        {
            OutputDirectory = Path.Combine(TestSimulation.NewFolder("win-validation"), "run"),
            Trainer = options.Trainer with { ValidationLoss = ValidationWeighting.WinWeighted },
        });
        Assert.True(weighted.WinPropensity!.Fitted);
        Assert.NotEqual(logged, Values(data));
        Assert.Contains(new TrainerOptions { ValidationLoss = ValidationWeighting.WinWeighted, WinPropensity = WinPropensitySource.None }.Problems(),
            p => p.Contains("needs a win propensity", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("joint-learning", DrGradientMode.JointLearning)]
    [InlineData("paddle", DrGradientMode.Paddle)]
    [InlineData("label-imputation", DrGradientMode.LabelImputation)]
    public void Dr_gradient_modes_round_trip_their_ids(string id, DrGradientMode mode)
    {
        Assert.True(DrGradientModes.TryParse(id, out var parsed));
        Assert.Equal(mode, parsed);
        Assert.Equal(id, DrGradientModes.Id(mode));
        Assert.False(DrGradientModes.TryParse("detached", out _));
        Assert.All(WinPropensitySources.Ids, s => Assert.True(WinPropensitySources.TryParse(s, out var w) && WinPropensitySources.Id(w) == s));
    }

    private static LoggedDataset Load() => LoggedDataset.Load(LoggedView.Open(TestSimulation.Parquet));

    private static float[] Values(LoggedDataset data) => data.WinPropensity.cpu().data<float>().ToArray();
}
