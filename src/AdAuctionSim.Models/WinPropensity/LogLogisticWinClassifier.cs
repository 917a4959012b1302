using AdAuctionSim.Models.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.WinPropensity;

/// <summary>
/// Direct win classifier with a log-logistic bid landscape (id <c>classifier</c>, models.md §14.2 item 1):
/// W(b | x) = σ(κ(x)·(ln b − m(x))) with κ(x) = softplus(·) &gt; 0, so Ŵ is increasing in the bid, fitted by BCE of
/// the won flag on every logged request (won and lost). m(x) and κ(x) come from an MLP over the concatenated field
/// embeddings (models.md §0.2) and the standardised log base bid, plus a linear part (one scalar per field value and
/// a slope on the base bid) so that additive effects need no hidden units.
/// </summary>
/// <remarks>
/// Source: models.md §14.2 (1). The win function of a bid is the one of Zhang, Yuan and Wang, "Optimal real-time
/// bidding for display advertising" (KDD 2014), w(b) = b / (b + c), which is this log-logistic form with κ = 1 and
/// m = ln c; here both depend on x and are learned as a plain supervised P(win | x, b). It needs
/// no prices, so it works unchanged for first-price logs; it is not a censored-data model and uses no price
/// information. Training rows with a bid below the reserve are dropped (they lose whatever the competition does).
/// </remarks>
internal sealed class LogLogisticWinClassifier : WinPropensityModelBase
{
    private readonly WinPropensityOptions _options;
    private WinFeatureEncoding? _encoding;
    private LogLogisticNet? _net;

    public LogLogisticWinClassifier(WinPropensityOptions options) : base(WinPropensityModels.Classifier)
    {
        _options = options;
    }

    protected override void FitCore(WinLogData train, CancellationToken cancellation)
    {
        var o = _options.Classifier;
        var keep = new List<int>(train.Count);
        for (var i = 0; i < train.Count; i++)
        {
            if (train.Bid[i] >= train.ReservePrice)
            {
                keep.Add(i);
            }
        }
        if (keep.Count == 0)
        {
            throw new ArgumentException("classifier: every bid is below the reserve price; nothing to fit.", nameof(train));
        }
        var data = keep.Count == train.Count ? train : train.Select(keep);
        var encoding = new WinFeatureEncoding(data, _options.UseBaseBidCovariate);

        torch.manual_seed(_options.Seed);
        _net?.Dispose();
        var net = new LogLogisticNet(encoding.TableRows, data.FieldCount, o.EmbeddingDim, o.Hidden);
        var y = new float[data.Count];
        var w = new float[data.Count];
        for (var i = 0; i < y.Length; i++)
        {
            y[i] = (float)encoding.CenteredLog(data.Bid[i]);
            w[i] = data.Won[i] ? 1f : 0f;
        }
        using var rows = encoding.Rows(data);
        using var z = encoding.BaseCovariate(data, ScalarType.Float32);
        using var logBid = torch.tensor(y);
        using var won = torch.tensor(w);

        Tensor MeanLoss(Tensor index)
        {
            var (m, kappa) = net.Forward(rows.index_select(0, index), z.index_select(0, index));
            var logits = kappa * (logBid.index_select(0, index) - m);
            return Losses.BceWithLogits(logits, won.index_select(0, index)).mean();
        }

        var result = WinTrainer.Fit(net, MeanLoss, data.Count, o.Training, o.WeightDecay, _options.Seed, cancellation);
        _encoding = encoding;
        _net = net;
        Diagnostics = new Dictionary<string, double>
        {
            ["rows"] = data.Count,
            ["epochs"] = result.Epochs,
            ["best_epoch"] = result.BestEpoch,
            ["validation_logloss"] = result.BestValidationLoss,
            ["validation_logloss_epoch1"] = result.FirstValidationLoss,
        };
    }

    protected override double[][] Evaluate(WinLogData rows, IReadOnlyList<double[]> bidSets)
    {
        var (m, kappa) = Locate(rows);
        var center = _encoding!.LogBidCenter;
        var result = new double[bidSets.Count][];
        for (var s = 0; s < bidSets.Count; s++)
        {
            var bids = bidSets[s];
            var w = new double[rows.Count];
            for (var i = 0; i < w.Length; i++)
            {
                var a = kappa[i] * (Math.Log(bids[i]) - center - m[i]);
                w[i] = 1 / (1 + Math.Exp(-a));
            }
            result[s] = w;
        }
        return result;
    }

    /// <summary>m(x_i) (on the centred log scale) and κ(x_i) of every row, a chunk of rows at a time.</summary>
    private (double[] M, double[] Kappa) Locate(WinLogData rows)
    {
        var net = _net!;
        var encoding = _encoding!;
        var m = new double[rows.Count];
        var kappa = new double[rows.Count];
        using var _ = torch.no_grad();
        using var ids = encoding.Rows(rows);
        using var z = encoding.BaseCovariate(rows, ScalarType.Float32);
        for (var start = 0; start < rows.Count; start += WinFeatureEncoding.ScoringChunk)
        {
            using var scope = torch.NewDisposeScope();
            var length = Math.Min(WinFeatureEncoding.ScoringChunk, rows.Count - start);
            var (mc, kc) = net.Forward(ids.narrow(0, start, length), z.narrow(0, start, length));
            Array.Copy(mc.to_type(ScalarType.Float64).data<double>().ToArray(), 0, m, start, length);
            Array.Copy(kc.to_type(ScalarType.Float64).data<double>().ToArray(), 0, kappa, start, length);
        }
        return (m, kappa);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _net?.Dispose();
            _net = null;
        }
    }

    /// <summary>Emits (m(x), κ(x)) from field rows [B, F] and the base-bid covariate [B, 1].</summary>
    private sealed class LogLogisticNet : nn.Module
    {
        // softplus⁻¹(2): κ starts near 2, the slope of a lognormal max of a few competitors with log-sd 1.
        private static readonly Scalar KappaOffset = 1.854586542131141.ToScalar();

        private readonly Embedding embedding;
        private readonly Embedding fieldBias;
        private readonly Linear baseSlope;
        private readonly Linear hidden;
        private readonly Linear head;

        public LogLogisticNet(long tableRows, int fields, int dim, int hiddenWidth) : base(nameof(LogLogisticNet))
        {
            embedding = nn.Embedding(tableRows, dim);
            fieldBias = nn.Embedding(tableRows, 1);
            baseSlope = nn.Linear(1, 1);
            hidden = nn.Linear(fields * dim + 1, hiddenWidth);
            head = nn.Linear(hiddenWidth, 2);
            using (torch.no_grad())
            {
                nn.init.normal_(embedding.weight, 0, 0.05);
                nn.init.zeros_(fieldBias.weight);
            }
            RegisterComponents();
        }

        public (Tensor M, Tensor Kappa) Forward(Tensor rows, Tensor baseBid)
        {
            var e = embedding.forward(rows).flatten(1);
            var h = nn.functional.relu(hidden.forward(torch.cat([e, baseBid], 1)));
            var o = head.forward(h);
            var m = o.select(1, 0).Plus(fieldBias.forward(rows).sum([1, 2])).Plus(baseSlope.forward(baseBid).squeeze(1));
            var kappa = o.select(1, 1).Plus(KappaOffset).Softplus();
            return (m, kappa);
        }
    }
}
