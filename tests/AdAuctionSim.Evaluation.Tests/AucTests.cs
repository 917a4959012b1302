using AdAuctionSim.Evaluation.Metrics;

namespace AdAuctionSim.Evaluation.Tests;

/// <summary>AUC equals the brute-force pair count (ties half); undefined cases say so; the radix sort is a stable sort.</summary>
public sealed class AucTests
{
    private static double BruteForce(double[] scores, bool[] labels)
    {
        double pairs = 0, wins = 0;
        for (var i = 0; i < scores.Length; i++)
        {
            for (var j = 0; j < scores.Length; j++)
            {
                if (labels[i] && !labels[j])
                {
                    pairs++;
                    wins += scores[i] > scores[j] ? 1 : scores[i] == scores[j] ? 0.5 : 0;
                }
            }
        }
        return wins / pairs;
    }

    [Fact]
    public void Auc_equals_the_brute_force_pair_count_on_random_small_arrays_with_ties()
    {
        var random = new Random(12345);
        for (var trial = 0; trial < 500; trial++)
        {
            var n = random.Next(2, 60);
            var levels = random.Next(1, 8); // few distinct scores: many ties
            var scores = new double[n];
            var labels = new bool[n];
            for (var i = 0; i < n; i++)
            {
                scores[i] = trial % 2 == 0 ? random.Next(levels) / 7.0 : random.NextDouble();
                labels[i] = random.NextDouble() < 0.4;
            }
            labels[0] = true;
            labels[1] = false;
            var auc = BinaryMetrics.Auc(scores, labels);
            Assert.True(auc.IsDefined, auc.Note);
            Assert.Equal(BruteForce(scores, labels), auc.Value, 12);
        }
    }

    [Fact]
    public void All_equal_scores_give_one_half()
    {
        var scores = Enumerable.Repeat(0.3, 11).ToArray();
        var labels = Enumerable.Range(0, 11).Select(i => i % 3 == 0).ToArray();

        Assert.Equal(0.5, BinaryMetrics.Auc(scores, labels).Value);
    }

    [Fact]
    public void Zero_and_negative_zero_are_one_tie_group()
    {
        var auc = BinaryMetrics.Auc([0.0, -0.0, 0.5], [true, false, true]);

        Assert.Equal(BruteForce([0.0, 0.0, 0.5], [true, false, true]), auc.Value);
    }

    [Theory]
    [InlineData(true, "all 5 labels are 1")]
    [InlineData(false, "all 5 labels are 0")]
    public void A_single_class_is_undefined_with_a_reason(bool label, string says)
    {
        var auc = BinaryMetrics.Auc([0.1, 0.2, 0.3, 0.4, 0.5], Enumerable.Repeat(label, 5).ToArray());
        var ne = BinaryMetrics.NormalisedEntropy([0.1, 0.2, 0.3, 0.4, 0.5], Enumerable.Repeat(label, 5).ToArray());

        Assert.False(auc.IsDefined);
        Assert.True(double.IsNaN(auc.Value));
        Assert.Contains("single class", auc.Note, StringComparison.Ordinal);
        Assert.Contains(says, auc.Note, StringComparison.Ordinal);
        Assert.False(ne.IsDefined);
        Assert.Contains("single class", ne.Note, StringComparison.Ordinal);
    }

    [Fact]
    public void No_rows_is_undefined_with_a_reason()
    {
        var auc = BinaryMetrics.Auc([], []);

        Assert.False(auc.IsDefined);
        Assert.Equal(MetricValue.NoRows, auc.Note);
    }

    [Theory]
    [InlineData(double.NaN)]
    [InlineData(1.5)]
    [InlineData(-0.25)]
    public void A_score_outside_0_1_is_refused(double bad)
    {
        var e = Assert.Throws<ArgumentException>(() => BinaryMetrics.Auc([0.2, bad], [true, false]));

        Assert.Contains("row 1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Radix_sort_matches_a_stable_comparison_sort_and_carries_the_payload()
    {
        var random = new Random(7);
        foreach (var n in new[] { 0, 1, 2, 17, 5000 })
        {
            var keys = new ulong[n];
            for (var i = 0; i < n; i++)
            {
                // Mixed magnitudes and repeated keys: every digit position varies, and ties test stability.
                keys[i] = i % 3 == 0 ? (ulong)random.Next(20) : (ulong)random.NextInt64() << random.Next(0, 2);
            }
            var payload = Enumerable.Range(0, n).ToArray();
            var expected = payload.OrderBy(i => keys[i]).ToArray(); // LINQ OrderBy is stable
            var sorted = (ulong[])keys.Clone();

            RadixSort.Sort(sorted, payload, new ulong[n], new int[n], n);

            Assert.Equal(expected.Select(i => keys[i]), sorted);
            Assert.Equal(expected, payload);
        }
    }

    [Fact]
    public void The_parallel_radix_sort_gives_the_same_order_for_any_thread_count()
    {
        var random = new Random(11);
        var n = RadixSort.ParallelThreshold + 12_345;
        var keys = Enumerable.Range(0, n).Select(i => i % 5 == 0 ? (ulong)random.Next(50) : (ulong)random.NextInt64(1L << 40)).ToArray();
        (ulong[] Keys, int[] Order) SortWith(int threads)
        {
            var sorted = (ulong[])keys.Clone();
            var order = Enumerable.Range(0, n).ToArray();
            RadixSort.Sort(sorted, order, new ulong[n], new int[n], n, threads);
            return (sorted, order);
        }

        var one = SortWith(1);
        var expected = Enumerable.Range(0, n).OrderBy(i => keys[i]).ToArray();
        Assert.Equal(expected, one.Order);
        foreach (var threads in new[] { 2, 3, 8 })
        {
            var other = SortWith(threads);
            Assert.Equal(one.Keys, other.Keys);
            Assert.Equal(one.Order, other.Order);
        }
    }

    [Fact]
    public void Weighted_auc_equals_the_auc_of_the_rows_repeated()
    {
        var random = new Random(3);
        var n = 40;
        var scores = Enumerable.Range(0, n).Select(_ => random.Next(6) / 5.0).ToArray();
        var labels = Enumerable.Range(0, n).Select(i => i % 4 == 0 || random.NextDouble() < 0.3).ToArray();
        var weights = Enumerable.Range(0, n).Select(_ => random.Next(0, 4)).ToArray();
        var ranking = new ScoreRanking();
        ranking.Rank(scores, [], keepOrder: true);

        var weighted = ranking.WeightedAuc(labels, weights);

        var repeatedScores = scores.SelectMany((s, i) => Enumerable.Repeat(s, weights[i])).ToArray();
        var repeatedLabels = labels.SelectMany((l, i) => Enumerable.Repeat(l, weights[i])).ToArray();
        Assert.Equal(BruteForce(repeatedScores, repeatedLabels), weighted.Value, 12);
    }
}
