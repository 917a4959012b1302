using AdAuctionSim.Models.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.WinPropensity;

/// <summary>
/// Censored log-normal regression of the market price (id <c>censored-lognormal</c>, models.md §14.2 item 3):
/// ln z = βᵀx + σε with ε ~ N(0, 1), so W(b | x) = Φ((ln b − βᵀx) / σ). βᵀx is an intercept, one coefficient per
/// field value (one-hot) and a slope on the standardised log base bid; σ = softplus(s) + 10⁻³ is learned.
/// Fitted by mini-batch Adam (float64) on the mean negative log-likelihood
/// Σ_won [½((ln z − βᵀx)/σ)² + ln σ] − Σ_lost ln Φ((βᵀx − ln b)/σ), plus λ‖β‖²/(2N), with early stopping on the
/// held-out NLL (<see cref="WinTrainer"/>).
/// </summary>
/// <remarks>
/// Source: Wu, Yeh, Chen, "Predicting winning price in real time bidding with censored data", KDD 2015 (censored
/// linear regression of the winning price; lost bids enter through the normal survival term). As models.md §14.2
/// recommends, we regress log prices, not Wu2015's raw prices, and learn σ rather than fixing it at the sd of won
/// prices; Wu2015's mixture with a wins-only regression is a point-prediction device and is not used.
/// <para>
/// Mildly misspecified here: the simulator's market price is the maximum of several log-normal competitor bids
/// (DESIGN.md §3), whose log is right-skewed (Gumbel-like), not normal; with one competitor the model would be exact
/// up to the x-features it cannot see. A reserve price adds a point mass at the reserve: won rows that paid the
/// reserve are treated as "market below the reserve" (left-censored at r), and W is 0 below r.
/// </para>
/// <para>
/// First-price logs are accepted: a win then reveals only z &lt; b, which enters as the left-censored term
/// ln Φ((ln b − βᵀx)/σ), so the likelihood becomes a probit win model with no exact prices; σ (the bid's own slope)
/// is then identified only by bid variation that the location does not also see, here the random multiplier when
/// the base-bid covariate is on.
/// </para>
/// </remarks>
internal sealed class CensoredLognormalWinModel : WinPropensityModelBase
{
    private const int Exact = 0;
    private const int LeftCensored = 1;
    private const int RightCensored = 2;

    private readonly WinPropensityOptions _options;
    private WinFeatureEncoding? _encoding;
    private LognormalLocation? _net;
    private double _sigma;

    public CensoredLognormalWinModel(WinPropensityOptions options) : base(WinPropensityModels.CensoredLognormal)
    {
        _options = options;
    }

    /// <summary>The fitted σ of ln z.</summary>
    public double Sigma => _sigma;

    protected override void FitCore(WinLogData train, CancellationToken cancellation)
    {
        var o = _options.CensoredLognormal;
        var reserve = train.ReservePrice;
        var keep = new List<int>(train.Count);
        for (var i = 0; i < train.Count; i++)
        {
            // A lost bid below the reserve says nothing about the competitors.
            if (train.Won[i] || train.Bid[i] >= reserve)
            {
                keep.Add(i);
            }
        }
        if (keep.Count == 0)
        {
            throw new ArgumentException("censored-lognormal: every row is a lost bid below the reserve price; nothing to fit.", nameof(train));
        }
        var data = keep.Count == train.Count ? train : train.Select(keep);
        var encoding = new WinFeatureEncoding(data, _options.UseBaseBidCovariate);
        var n = data.Count;
        var value = new double[n];
        var kind = new int[n];
        for (var i = 0; i < n; i++)
        {
            if (!data.Won[i])
            {
                kind[i] = RightCensored;
                value[i] = encoding.CenteredLog(data.Bid[i]);
            }
            else if (!data.SecondPrice)
            {
                kind[i] = LeftCensored;
                value[i] = encoding.CenteredLog(data.Bid[i]);
            }
            else if (reserve > 0 && data.Price[i] <= reserve * (1 + 1e-12))
            {
                kind[i] = LeftCensored;
                value[i] = encoding.CenteredLog(reserve);
            }
            else
            {
                kind[i] = Exact;
                value[i] = encoding.CenteredLog(data.Price[i]);
            }
        }
        var exact = new double[n];
        var left = new double[n];
        var right = new double[n];
        for (var i = 0; i < n; i++)
        {
            (kind[i] == Exact ? exact : kind[i] == LeftCensored ? left : right)[i] = 1;
        }

        torch.manual_seed(_options.Seed);
        _net?.Dispose();
        var net = new LognormalLocation(encoding.TableRows);
        using var rows = encoding.Rows(data);
        using var z = encoding.BaseCovariate(data, ScalarType.Float64);
        using var v = torch.tensor(value);
        using var isExact = torch.tensor(exact);
        using var isLeft = torch.tensor(left);
        using var isRight = torch.tensor(right);
        using var penalty = (o.L2 / (2.0 * n)).ToScalar();

        Tensor MeanLoss(Tensor index)
        {
            var mu = net.Location(rows.index_select(0, index), z.index_select(0, index));
            var sigma = net.Sigma();
            var u = (v.index_select(0, index) - mu) / sigma;
            var nll = isExact.index_select(0, index) * (u * u * HeldScalars.Half).Plus(sigma.log())
                - isLeft.index_select(0, index) * NormalFunctions.LogCdf(u)
                - isRight.index_select(0, index) * NormalFunctions.LogCdf(-u);
            return nll.mean().Plus(net.CoefficientSquares() * penalty);
        }

        var result = WinTrainer.Fit(net, MeanLoss, n, o.Training, weightDecay: 0, _options.Seed, cancellation);
        _encoding = encoding;
        _net = net;
        using (torch.NewDisposeScope())
        using (torch.no_grad())
        {
            _sigma = net.Sigma().item<double>();
        }
        var counts = new int[3];
        foreach (var k in kind)
        {
            counts[k]++;
        }
        Diagnostics = new Dictionary<string, double>
        {
            ["rows"] = n,
            ["exact_prices"] = counts[Exact],
            ["left_censored"] = counts[LeftCensored],
            ["right_censored"] = counts[RightCensored],
            ["sigma"] = _sigma,
            ["epochs"] = result.Epochs,
            ["best_epoch"] = result.BestEpoch,
            ["validation_nll"] = result.BestValidationLoss,
            ["validation_nll_epoch1"] = result.FirstValidationLoss,
        };
    }

    protected override double[][] Evaluate(WinLogData rows, IReadOnlyList<double[]> bidSets)
    {
        var mu = Locations(rows);
        var center = _encoding!.LogBidCenter;
        var result = new double[bidSets.Count][];
        for (var s = 0; s < bidSets.Count; s++)
        {
            var bids = bidSets[s];
            var w = new double[rows.Count];
            for (var i = 0; i < w.Length; i++)
            {
                w[i] = NormalFunctions.Cdf((Math.Log(bids[i]) - center - mu[i]) / _sigma);
            }
            result[s] = w;
        }
        return result;
    }

    /// <summary>
    /// Closed form of the second-price payment: with m = βᵀx and d(p) = (ln p − m)/σ, the price max(z, r) gives
    /// Ĉ(b) = r·Φ(d(r)) + e^{m + σ²/2}·[Φ(d(b) − σ) − Φ(d(r) − σ)] for b ≥ r (the reserve's terms vanish at r = 0), and 0
    /// below r: the partial mean of a log-normal, E[z·1{r ≤ z &lt; b}] = e^{m + σ²/2}·[Φ(d(b) − σ) − Φ(d(r) − σ)].
    /// </summary>
    protected override double[][] SecondPricePayment(WinLogData rows, IReadOnlyList<double[]> bidSets)
    {
        var mu = Locations(rows);
        var center = _encoding!.LogBidCenter;
        var reserve = rows.ReservePrice;
        var sigma = _sigma;
        return PerBid(rows, bidSets, (_, i, bid) =>
        {
            var m = center + mu[i];
            var scale = Math.Exp(m + (sigma * sigma / 2));
            var atBid = NormalFunctions.Cdf(((Math.Log(bid) - m) / sigma) - sigma);
            var atReserve = 0.0;
            var reserveMass = 0.0;
            if (reserve > 0)
            {
                var d = (Math.Log(reserve) - m) / sigma;
                atReserve = NormalFunctions.Cdf(d - sigma);
                reserveMass = reserve * NormalFunctions.Cdf(d);
            }
            return reserveMass + (scale * Math.Max(0, atBid - atReserve));
        });
    }

    /// <summary>βᵀx_i on the centred log scale, a chunk of rows at a time.</summary>
    internal double[] Locations(WinLogData rows)
    {
        var mu = new double[rows.Count];
        using var _ = torch.no_grad();
        using var ids = _encoding!.Rows(rows);
        using var z = _encoding.BaseCovariate(rows, ScalarType.Float64);
        for (var start = 0; start < rows.Count; start += WinFeatureEncoding.ScoringChunk)
        {
            using var scope = torch.NewDisposeScope();
            var length = Math.Min(WinFeatureEncoding.ScoringChunk, rows.Count - start);
            var chunk = _net!.Location(ids.narrow(0, start, length), z.narrow(0, start, length));
            Array.Copy(chunk.data<double>().ToArray(), 0, mu, start, length);
        }
        return mu;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _net?.Dispose();
            _net = null;
        }
    }

    /// <summary>βᵀx = intercept + Σ_f β_f[x_f] + β_b·z, and σ; float64.</summary>
    private sealed class LognormalLocation : nn.Module
    {
        // softplus⁻¹(1 − 10⁻³): σ starts at 1, the competitors' default log-bid noise.
        private const double SigmaStart = 0.5397424172369522;
        private static readonly Scalar SigmaFloor = 1e-3.ToScalar();

        private readonly Embedding coefficients;
        private readonly Linear baseSlope;
        private readonly Parameter sigmaRaw;

        public LognormalLocation(long tableRows) : base(nameof(LognormalLocation))
        {
            coefficients = nn.Embedding(tableRows, 1, dtype: ScalarType.Float64);
            baseSlope = nn.Linear(1, 1, dtype: ScalarType.Float64);
            sigmaRaw = nn.Parameter(torch.tensor(SigmaStart, ScalarType.Float64));
            using (torch.no_grad())
            {
                nn.init.zeros_(coefficients.weight);
                nn.init.zeros_(baseSlope.weight);
                nn.init.zeros_(baseSlope.bias);
            }
            RegisterComponents();
        }

        public Tensor Location(Tensor rows, Tensor baseBid) =>
            coefficients.forward(rows).sum([1, 2]).Plus(baseSlope.forward(baseBid).squeeze(1));

        public Tensor Sigma() => sigmaRaw.Softplus().Plus(SigmaFloor);

        /// <summary>‖β‖² over the field coefficients (intercept and base-bid slope unpenalised).</summary>
        public Tensor CoefficientSquares() => coefficients.weight!.Squared().sum();
    }
}
