using System.Globalization;
using System.Text.Json;
using AdAuctionSim.Evaluation.Metrics;

namespace AdAuctionSim.Evaluation.Tests;

/// <summary>
/// AUC, log loss and ECE on a committed 10,000-row file agree with scikit-learn (AUC, log loss) and numpy (ECE by the
/// documented equal-mass definition) to 1e-9. Golden/make_golden.py made both files.
/// </summary>
public sealed class GoldenTests
{
    private static (double[] Scores, bool[] Labels, JsonElement Expected) Load()
    {
        var folder = Path.Combine(AppContext.BaseDirectory, "Golden");
        var lines = File.ReadAllLines(Path.Combine(folder, "golden.csv"));
        Assert.Equal("label,score", lines[0]);
        var scores = new double[lines.Length - 1];
        var labels = new bool[lines.Length - 1];
        for (var i = 1; i < lines.Length; i++)
        {
            var parts = lines[i].Split(',');
            labels[i - 1] = parts[0] == "1";
            scores[i - 1] = double.Parse(parts[1], CultureInfo.InvariantCulture);
        }
        var expected = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "golden_expected.json"))).RootElement;
        return (scores, labels, expected);
    }

    [Fact]
    public void Auc_log_loss_and_ece_agree_with_scikit_learn_and_numpy()
    {
        var (scores, labels, expected) = Load();
        Assert.Equal(10_000, scores.Length);
        Assert.Equal(expected.GetProperty("rows").GetInt32(), scores.Length);

        var auc = BinaryMetrics.Auc(scores, labels);
        var logLoss = BinaryMetrics.LogLoss(scores, labels);
        var ece = BinaryMetrics.Ece(scores, labels.Select(l => l ? 1.0 : 0.0).ToArray(), expected.GetProperty("bins").GetInt32());

        Assert.Equal(expected.GetProperty("auc").GetDouble(), auc.Value, 1e-9);
        Assert.Equal(expected.GetProperty("log_loss").GetDouble(), logLoss.Value, 1e-9);
        Assert.Equal(expected.GetProperty("ece").GetDouble(), ece.Value, 1e-9);
    }

    [Fact]
    public void The_one_sort_path_gives_the_same_figures_serial_or_parallel()
    {
        var (scores, labels, expected) = Load();

        var serial = BinaryMetrics.Evaluate(scores, labels, parallel: false);
        var parallel = BinaryMetrics.Evaluate(scores, labels, parallel: true);

        Assert.Equal(serial, parallel);
        Assert.Equal(expected.GetProperty("auc").GetDouble(), serial.Auc.Value, 1e-9);
        Assert.Equal(expected.GetProperty("log_loss").GetDouble(), serial.LogLoss.Value, 1e-9);
        Assert.Equal(expected.GetProperty("ece").GetDouble(), serial.Ece.Value, 1e-9);
    }
}
