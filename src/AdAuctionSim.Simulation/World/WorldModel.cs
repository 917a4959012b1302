using AdAuctionSim.Simulation.Engine;
using AdAuctionSim.Simulation.Scenarios;

namespace AdAuctionSim.Simulation.World;

/// <summary>
/// The ground-truth world (DESIGN.md §3), generated once from the scenario's seed: users with observed fields and
/// a hidden trait, ads in campaigns of advertisers with a value per conversion, context tables, the stage logit
/// functions with their base rates solved to the scenario's targets, the logging policy and the competitors.
/// Immutable once built; shared read-only by all simulation threads.
/// </summary>
/// <remarks>
/// Stage k's logit is <c>β_k + s·score_k(x) + γ·h_u</c>, where
/// <c>score_k = √ρ·U₀(x) + √(1−ρ)·V_k(x)</c>. U₀ and every V_k are bilinear forms <c>z_uᵀ M w_a</c> of the
/// ground-truth user and ad embeddings plus hour and site effects, orthonormalised (Gram–Schmidt) on a large sample
/// of requests against each other and against the ad's log value. So each score has unit variance, any two stages'
/// scores have correlation exactly ρ on that sample, and with ρ = 0 no stage is linearly predictable from another
/// or from the value that drives bids: the click–CVR dial is the only observed-feature link between stages.
/// The click probability is additionally multiplied by the slot's examination probability (1 + slot)^−η.
/// </remarks>
public sealed class WorldModel
{
    /// <summary>Width of the ground-truth embeddings (DESIGN.md: d ≈ 8).</summary>
    public const int Dim = 8;

    // Observed field cardinalities.
    public const int AgeBuckets = 7;
    public const int Genders = 3;
    public const int Regions = 30;
    public const int Devices = 4;
    public const int Segments = 20;
    public const int Categories = 30;
    public const int CreativeTypes = 6;
    public const int Hours = 24;

    private const int ScoreSample = 60_000;
    private const int CalibrationSample = 200_000;

    internal WorldModel(Scenario scenario)
    {
        Scenario = scenario;
        Depth = scenario.Depth;
        CandidateCount = scenario.Traffic.CandidateAds;
    }

    public Scenario Scenario { get; }
    public int Depth { get; }
    public int CandidateCount { get; }
    public IReadOnlyList<string> StageNames => Scenario.Funnel.Stages.Select(s => s.Name).ToArray();

    // Users.
    internal int[] UserAge = [];
    internal int[] UserGender = [];
    internal int[] UserRegion = [];
    internal int[] UserDevice = [];
    internal int[] UserSegment = [];
    internal double[] UserHidden = [];
    /// <summary>z_uᵀ G_k per user and stage: [user, stage, Dim].</summary>
    internal float[] UserProjection = [];

    // Ads.
    internal int[] AdCampaign = [];
    internal int[] AdAdvertiser = [];
    internal int[] AdCategory = [];
    internal int[] AdCreative = [];
    internal float[] AdVector = [];
    /// <summary>Per ad and stage: the part of score_k that depends on the ad alone (value term and centring).</summary>
    internal float[] AdBias = [];
    internal double[] AdValue = [];
    internal double[] AdLogValue = [];

    // Context.
    internal float[] HourEffect = [];
    internal float[] SiteEffect = [];
    internal double[] SlotExamination = [];
    internal double[] SlotLogExamination = [];

    // Stage parameters.
    internal double[] Beta = [];
    internal double Signal;
    internal double Gamma;

    // Logging policy.
    internal double Quality;
    internal double QualityNoise;
    internal double InverseTemperature;
    internal double[] Multiplier = [];
    internal double[] LogMultiplier = [];
    internal double[] MultiplierProbability = [];
    internal double[] MultiplierCumulative = [];

    // Competitors.
    internal double[] CompetitorMu = [];
    internal double CompetitorSigma;
    internal double Kappa;
    internal double ValueMean;
    internal double ValueSd = 1;
    internal double Reserve;
    internal double LogReserve = double.NegativeInfinity;
    internal bool SecondPrice;

    internal AliasTable UserAlias = null!;
    internal AliasTable SiteAlias = null!;
    internal AliasTable HourAlias = null!;
    internal ulong NoiseKey;
    internal ulong RequestKey;

    /// <summary>Examination probability of each slot (position effect).</summary>
    public IReadOnlyList<double> Examination => SlotExamination;
    /// <summary>Solved base logits β_k.</summary>
    public IReadOnlyList<double> BaseLogits => Beta;
    /// <summary>Competitors' mean log bids after solving for the target win rate.</summary>
    public IReadOnlyList<double> CompetitorLogBidMeans => CompetitorMu;
    public int Users => UserAge.Length;
    public int Ads => AdCampaign.Length;

    /// <summary>Value per conversion of an ad's campaign.</summary>
    public double ValueOf(int ad) => AdValue[ad];

    /// <summary>Builds the world for a scenario: deterministic in the scenario and its seed.</summary>
    public static WorldModel Build(Scenario scenario, CancellationToken cancellation = default)
    {
        var w = new WorldModel(scenario);
        var rng = new SequentialRng(CounterRng.SeedKey(scenario.Seed, 1));
        w.NoiseKey = CounterRng.SeedKey(scenario.Seed, 2);
        w.RequestKey = CounterRng.SeedKey(scenario.Seed, 3);
        var t = scenario.Traffic;
        var k = w.Depth;

        // Users: Zipf popularity by id, categorical fields, hidden trait.
        w.UserAge = Draw(rng, t.Users, [0.05, 0.2, 0.25, 0.2, 0.15, 0.1, 0.05]);
        w.UserGender = Draw(rng, t.Users, [0.06, 0.47, 0.47]);
        w.UserRegion = Draw(rng, t.Users, ZipfWeights(Regions, 0.8));
        w.UserDevice = Draw(rng, t.Users, [0.55, 0.3, 0.1, 0.05]);
        w.UserSegment = Draw(rng, t.Users, Uniform(Segments));
        w.UserHidden = new double[t.Users];
        for (var u = 0; u < t.Users; u++)
        {
            w.UserHidden[u] = rng.NextNormal();
        }
        w.UserAlias = new AliasTable(ZipfWeights(t.Users, t.UserZipf));

        // Ads: campaign → advertiser hierarchy; category per campaign, creative type per ad; value per campaign.
        var ads = t.Ads;
        w.AdCampaign = new int[ads];
        w.AdAdvertiser = new int[ads];
        w.AdCategory = new int[ads];
        w.AdCreative = new int[ads];
        w.AdValue = new double[ads];
        w.AdLogValue = new double[ads];
        var campaignCategory = new int[t.Campaigns];
        var campaignLogValue = new double[t.Campaigns];
        var v = scenario.Values;
        for (var c = 0; c < t.Campaigns; c++)
        {
            campaignCategory[c] = rng.NextInt(Categories);
            campaignLogValue[c] = Math.Log(v.MeanValuePerConversion) + v.ValueSpread * rng.NextNormal() - 0.5 * v.ValueSpread * v.ValueSpread;
        }
        for (var a = 0; a < ads; a++)
        {
            var c = a / t.AdsPerCampaign;
            w.AdCampaign[a] = c;
            w.AdAdvertiser[a] = c / t.CampaignsPerAdvertiser;
            w.AdCategory[a] = campaignCategory[c];
            w.AdCreative[a] = rng.NextInt(CreativeTypes);
            w.AdLogValue[a] = campaignLogValue[c];
            w.AdValue[a] = Math.Exp(campaignLogValue[c]);
        }

        // Context.
        w.SiteAlias = new AliasTable(ZipfWeights(t.Sites, t.SiteZipf));
        w.HourAlias = new AliasTable(t.HourProfile.ToArray());
        w.SlotExamination = new double[t.Slots];
        w.SlotLogExamination = new double[t.Slots];
        for (var j = 0; j < t.Slots; j++)
        {
            w.SlotLogExamination[j] = -scenario.Bias.PositionEffect * Math.Log(1 + j);
            w.SlotExamination[j] = Math.Exp(w.SlotLogExamination[j]);
        }

        // Ground-truth embeddings: one table per observed field, summed into z_u and w_a.
        var userVectors = SumEmbeddings(rng, t.Users, [t.Users, AgeBuckets, Genders, Regions, Devices, Segments],
            [null, w.UserAge, w.UserGender, w.UserRegion, w.UserDevice, w.UserSegment]);
        w.AdVector = SumEmbeddings(rng, ads, [ads, t.Campaigns, t.Advertisers, Categories, CreativeTypes],
            [null, w.AdCampaign, w.AdAdvertiser, w.AdCategory, w.AdCreative]);

        // K + 1 raw score components (U₀ and one V_k per stage): bilinear matrix plus hour and site effects.
        var components = k + 1;
        var matrices = new double[components][];
        var hourRaw = new double[components][];
        var siteRaw = new double[components][];
        for (var c = 0; c < components; c++)
        {
            matrices[c] = new double[Dim * Dim];
            for (var i = 0; i < matrices[c].Length; i++)
            {
                matrices[c][i] = rng.NextNormal() / Math.Sqrt(Dim);
            }
            hourRaw[c] = new double[Hours];
            for (var h = 0; h < Hours; h++)
            {
                hourRaw[c][h] = 0.3 * rng.NextNormal();
            }
            siteRaw[c] = new double[t.Sites];
            for (var s = 0; s < t.Sites; s++)
            {
                siteRaw[c][s] = 0.5 * rng.NextNormal();
            }
        }

        w.Signal = scenario.Funnel.Signal;
        w.Gamma = scenario.Bias.HiddenConfounding;
        w.Quality = scenario.LoggingPolicy.EstimateQuality;
        w.QualityNoise = Math.Sqrt(Math.Max(0, 1 - w.Quality * w.Quality));
        w.InverseTemperature = 1 / scenario.LoggingPolicy.Temperature;
        w.Multiplier = scenario.LoggingPolicy.BidMultipliers.ToArray();
        w.LogMultiplier = w.Multiplier.Select(m => Math.Log(m)).ToArray();
        w.MultiplierProbability = scenario.LoggingPolicy.MultiplierProbabilities.ToArray();
        w.MultiplierCumulative = new double[w.Multiplier.Length];
        var cum = 0.0;
        for (var m = 0; m < w.Multiplier.Length; m++)
        {
            cum += w.MultiplierProbability[m];
            w.MultiplierCumulative[m] = cum;
        }
        w.MultiplierCumulative[^1] = 1.0;

        w.Orthonormalise(rng, userVectors, matrices, hourRaw, siteRaw);
        cancellation.ThrowIfCancellationRequested();
        w.SolveBaseRates(cancellation);
        w.SolveCompetitors(rng);
        return w;
    }

    /// <summary>
    /// Orthonormalises [1, log value, U₀, V₁ … V_K] on a sample of (user, candidate ad, hour, site) and folds the
    /// resulting linear combinations into per-stage effective tables, so the hot loop needs one 8-wide dot per stage.
    /// </summary>
    private void Orthonormalise(SequentialRng rng, float[] userVectors, double[][] matrices, double[][] hourRaw, double[][] siteRaw)
    {
        var k = Depth;
        var comps = k + 1;
        var n = ScoreSample;
        var x = new double[comps + 2][]; // 0: constant, 1: log value, 2..: raw components
        for (var j = 0; j < x.Length; j++)
        {
            x[j] = new double[n];
        }
        Span<double> zm = stackalloc double[Dim];
        for (var i = 0; i < n; i++)
        {
            var u = UserAlias.Sample(rng.NextBits());
            var a = rng.NextInt(Ads);
            var h = HourAlias.Sample(rng.NextBits());
            var s = SiteAlias.Sample(rng.NextBits());
            x[0][i] = 1;
            x[1][i] = AdLogValue[a];
            for (var c = 0; c < comps; c++)
            {
                x[2 + c][i] = Bilinear(userVectors, u, matrices[c], AdVector, a, zm) + hourRaw[c][h] + siteRaw[c][s];
            }
        }

        // Modified Gram–Schmidt with coefficient tracking: basis e_j = Σ_i T[j, i]·x_i, ⟨a, b⟩ = mean(a·b).
        var m = x.Length;
        var basis = new double[m][];
        var coef = new double[m, m];
        for (var j = 0; j < m; j++)
        {
            var e = (double[])x[j].Clone();
            var c = new double[m];
            c[j] = 1;
            for (var p = 0; p < j; p++)
            {
                var dot = Mean(e, basis[p]);
                for (var i = 0; i < n; i++)
                {
                    e[i] -= dot * basis[p][i];
                }
                for (var q = 0; q <= p; q++)
                {
                    c[q] -= dot * coef[p, q];
                }
            }
            var norm = Math.Sqrt(Mean(e, e));
            if (norm < 1e-9)
            {
                // Degenerate (for example every campaign has the same value): drop this direction.
                norm = double.PositiveInfinity;
            }
            basis[j] = new double[n];
            for (var i = 0; i < n; i++)
            {
                basis[j][i] = e[i] / norm;
            }
            for (var q = 0; q <= j; q++)
            {
                coef[j, q] = c[q] / norm;
            }
        }

        // score_k = √ρ·e[U₀] + √(1−ρ)·e[V_k]  =  Σ_i C[k, i]·x_i.
        var rho = Scenario.Bias.ClickCvrCorrelation;
        var a0 = Math.Sqrt(rho);
        var a1 = Math.Sqrt(1 - rho);
        var sites = siteRaw[0].Length;
        var users = Users;
        UserProjection = new float[users * k * Dim];
        AdBias = new float[Ads * k];
        HourEffect = new float[Hours * k];
        SiteEffect = new float[sites * k];
        var effective = new double[Dim * Dim];
        for (var stage = 0; stage < k; stage++)
        {
            var combo = new double[m];
            for (var q = 0; q < m; q++)
            {
                combo[q] = a0 * coef[2, q] + a1 * coef[3 + stage, q];
            }
            Array.Clear(effective);
            for (var c = 0; c < comps; c++)
            {
                for (var i = 0; i < effective.Length; i++)
                {
                    effective[i] += combo[2 + c] * matrices[c][i];
                }
            }
            for (var u = 0; u < users; u++)
            {
                for (var col = 0; col < Dim; col++)
                {
                    var acc = 0.0;
                    for (var row = 0; row < Dim; row++)
                    {
                        acc += userVectors[u * Dim + row] * effective[row * Dim + col];
                    }
                    UserProjection[(u * k + stage) * Dim + col] = (float)acc;
                }
            }
            for (var a = 0; a < Ads; a++)
            {
                AdBias[a * k + stage] = (float)(combo[0] + combo[1] * AdLogValue[a]);
            }
            for (var h = 0; h < Hours; h++)
            {
                var acc = 0.0;
                for (var c = 0; c < comps; c++)
                {
                    acc += combo[2 + c] * hourRaw[c][h];
                }
                HourEffect[h * k + stage] = (float)acc;
            }
            for (var s = 0; s < sites; s++)
            {
                var acc = 0.0;
                for (var c = 0; c < comps; c++)
                {
                    acc += combo[2 + c] * siteRaw[c][s];
                }
                SiteEffect[s * k + stage] = (float)acc;
            }
        }
    }

    /// <summary>
    /// Solves β_k so that the mean of q_k over the requests of D that reach stage k−1 equals the target rate.
    /// D's ads are those the logging policy picks, and the policy's picks depend on β through its estimates,
    /// so the solve alternates with re-sampling the policy's choices until β settles.
    /// </summary>
    private void SolveBaseRates(CancellationToken cancellation)
    {
        var k = Depth;
        var targets = Scenario.Funnel.Stages.Select(s => s.Rate).ToArray();
        Beta = new double[k];
        for (var stage = 0; stage < k; stage++)
        {
            Beta[stage] = Math.Log(targets[stage] / (1 - targets[stage]));
        }
        var sample = new CalibrationSample(CalibrationSample, k);
        var kernel = new RequestKernel(this, CounterRng.SeedKey(Scenario.Seed, 4));
        for (var iteration = 0; iteration < 8; iteration++)
        {
            cancellation.ThrowIfCancellationRequested();
            kernel.Refresh();
            for (var i = 0; i < sample.Count; i++)
            {
                kernel.ChooseForCalibration(i, sample, i);
            }
            var change = 0.0;
            var weight = new double[sample.Count];
            Array.Fill(weight, 1.0);
            for (var stage = 0; stage < k; stage++)
            {
                var solved = SolveStage(sample, stage, weight, targets[stage]);
                change = Math.Max(change, Math.Abs(solved - Beta[stage]));
                Beta[stage] = solved;
                for (var i = 0; i < sample.Count; i++)
                {
                    weight[i] *= TrueRate(sample, i, stage);
                }
            }
            if (change < 1e-5)
            {
                break;
            }
        }

        // Standardise the competitors' value signal v(x) = x-only log r_K(x) on D.
        kernel.Refresh();
        double sum = 0, sumSq = 0;
        for (var i = 0; i < sample.Count; i++)
        {
            kernel.ChooseForCalibration(i, sample, i);
            var lv = LogValueSignal(sample.Scores.AsSpan(i * k, k), sample.Slot[i]);
            sample.ValueSignal[i] = lv;
            sum += lv;
            sumSq += lv * lv;
        }
        ValueMean = sum / sample.Count;
        ValueSd = Math.Sqrt(Math.Max(sumSq / sample.Count - ValueMean * ValueMean, 1e-12));
        _calibration = sample;
    }

    private CalibrationSample? _calibration;

    private double SolveStage(CalibrationSample sample, int stage, double[] weight, double target)
    {
        // f(β) = Σ w·q(β) / Σ w − target is increasing in β: Newton steps inside a shrinking bracket.
        double lo = -40, hi = 40, beta = Beta[stage];
        var totalWeight = 0.0;
        foreach (var x in weight)
        {
            totalWeight += x;
        }
        for (var it = 0; it < 100; it++)
        {
            double f = 0, df = 0;
            for (var i = 0; i < sample.Count; i++)
            {
                var logit = beta + Signal * sample.Scores[i * Depth + stage] + Gamma * sample.Hidden[i];
                var p = Sigmoid(logit);
                var scale = stage == 0 ? SlotExamination[sample.Slot[i]] : 1.0;
                f += weight[i] * scale * p;
                df += weight[i] * scale * p * (1 - p);
            }
            f = f / totalWeight - target;
            df /= totalWeight;
            if (Math.Abs(f) < 1e-9 * target)
            {
                break;
            }
            if (f > 0)
            {
                hi = beta;
            }
            else
            {
                lo = beta;
            }
            var next = df > 0 ? beta - f / df : double.NaN;
            beta = next > lo && next < hi ? next : 0.5 * (lo + hi);
            if (hi - lo < 1e-12)
            {
                break;
            }
        }
        return beta;
    }

    private double TrueRate(CalibrationSample sample, int i, int stage)
    {
        var p = Sigmoid(Beta[stage] + Signal * sample.Scores[i * Depth + stage] + Gamma * sample.Hidden[i]);
        return stage == 0 ? p * SlotExamination[sample.Slot[i]] : p;
    }

    /// <summary>x-only log r_K (no hidden trait): what competitors who value the same users would key on.</summary>
    internal double LogValueSignal(ReadOnlySpan<float> scores, int slot)
    {
        var lv = SlotLogExamination[slot];
        for (var stage = 0; stage < scores.Length; stage++)
        {
            lv += LogSigmoid(Beta[stage] + Signal * scores[stage]);
        }
        return lv;
    }

    /// <summary>Solves the competitors' common log-bid level so that the mean true P(win | x) over D is the target.</summary>
    private void SolveCompetitors(SequentialRng rng)
    {
        var a = Scenario.Auction;
        var c = a.Competitors;
        var offsets = new double[c];
        for (var j = 0; j < c; j++)
        {
            offsets[j] = a.CompetitorSpread * rng.NextNormal();
        }
        CompetitorSigma = a.CompetitorNoise;
        Kappa = Scenario.Bias.WinValueCorrelation;
        Reserve = a.ReservePrice;
        LogReserve = a.ReservePrice > 0 ? Math.Log(a.ReservePrice) : double.NegativeInfinity;
        SecondPrice = a.Type == AuctionType.SecondPrice;
        CompetitorMu = new double[c];

        var sample = _calibration!;
        var n = Math.Min(sample.Count, 50_000);
        var shift = new double[n];
        var sortedBids = new double[n];
        var maxWin = 0.0;
        for (var i = 0; i < n; i++)
        {
            shift[i] = Kappa * (sample.ValueSignal[i] - ValueMean) / ValueSd;
            sortedBids[i] = sample.LogBidBase[i];
            for (var m = 0; m < Multiplier.Length; m++)
            {
                if (sample.LogBidBase[i] + LogMultiplier[m] >= LogReserve)
                {
                    maxWin += MultiplierProbability[m];
                }
            }
        }
        maxWin /= n;
        if (maxWin <= a.TargetWinRate + 1e-3)
        {
            throw new ScenarioValidationException(Scenario.Name,
            [
                new ScenarioError("auction.reservePrice",
                    $"value {ScenarioLoader.Fmt(a.ReservePrice)} is too high: only {ScenarioLoader.Fmt(maxWin)} of bids clear it, so auction.targetWinRate "
                    + $"{ScenarioLoader.Fmt(a.TargetWinRate)} cannot be reached; expected a reserve below the bids (median bid {ScenarioLoader.Fmt(Math.Exp(Median(sortedBids)))})"),
            ]);
        }
        var center = Median(sortedBids);
        double lo = center - 60, hi = center + 60;
        for (var it = 0; it < 80 && hi - lo > 1e-6; it++)
        {
            var mid = 0.5 * (lo + hi);
            for (var j = 0; j < c; j++)
            {
                CompetitorMu[j] = mid + offsets[j];
            }
            var mean = 0.0;
            for (var i = 0; i < n; i++)
            {
                mean += WinPropensity(sample.LogBidBase[i], shift[i], out _, 0);
            }
            mean /= n;
            if (mean > a.TargetWinRate)
            {
                lo = mid;
            }
            else
            {
                hi = mid;
            }
        }
        for (var j = 0; j < c; j++)
        {
            CompetitorMu[j] = 0.5 * (lo + hi) + offsets[j];
        }
        _calibration = null;
    }

    /// <summary>
    /// True P(win | x) = Σ_m π(m)·P(win | x, b_m), and P(win | x, b) at multiplier index <paramref name="atMultiplier"/>.
    /// P(win | x, b) = 1[b ≥ reserve]·Π_j Φ((ln b − μ_j − κ·v(x)) / σ).
    /// </summary>
    internal double WinPropensity(double logBidBase, double shift, out double atBid, int atMultiplier)
    {
        var total = 0.0;
        atBid = 0;
        var inv = 1 / CompetitorSigma;
        for (var m = 0; m < Multiplier.Length; m++)
        {
            var lb = logBidBase + LogMultiplier[m];
            var p = 0.0;
            if (lb >= LogReserve)
            {
                p = 1.0;
                for (var j = 0; j < CompetitorMu.Length; j++)
                {
                    p *= NormalDistribution.Cdf((lb - CompetitorMu[j] - shift) * inv);
                }
            }
            if (m == atMultiplier)
            {
                atBid = p;
            }
            total += MultiplierProbability[m] * p;
        }
        return total;
    }

    internal static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    /// <summary>log σ(x) without overflow.</summary>
    internal static double LogSigmoid(double x) => x >= 0 ? -Math.Log(1 + Math.Exp(-x)) : x - Math.Log(1 + Math.Exp(x));

    private static double Bilinear(float[] z, int u, double[] matrix, float[] w, int a, Span<double> zm)
    {
        zm.Clear();
        for (var row = 0; row < Dim; row++)
        {
            var zr = z[u * Dim + row];
            for (var col = 0; col < Dim; col++)
            {
                zm[col] += zr * matrix[row * Dim + col];
            }
        }
        var acc = 0.0;
        for (var col = 0; col < Dim; col++)
        {
            acc += zm[col] * w[a * Dim + col];
        }
        return acc;
    }

    private static double Mean(double[] a, double[] b)
    {
        var s = 0.0;
        for (var i = 0; i < a.Length; i++)
        {
            s += a[i] * b[i];
        }
        return s / a.Length;
    }

    private static double Median(double[] values)
    {
        var copy = (double[])values.Clone();
        Array.Sort(copy);
        return copy[copy.Length / 2];
    }

    private static float[] SumEmbeddings(SequentialRng rng, int rows, int[] cardinalities, int[]?[] fieldOf)
    {
        var scale = Math.Sqrt(1.0 / cardinalities.Length);
        var result = new float[rows * Dim];
        for (var f = 0; f < cardinalities.Length; f++)
        {
            var table = new double[cardinalities[f] * Dim];
            for (var i = 0; i < table.Length; i++)
            {
                table[i] = scale * rng.NextNormal();
            }
            for (var r = 0; r < rows; r++)
            {
                var id = fieldOf[f] is { } map ? map[r] : r;
                for (var d = 0; d < Dim; d++)
                {
                    result[r * Dim + d] += (float)table[id * Dim + d];
                }
            }
        }
        return result;
    }

    private static int[] Draw(SequentialRng rng, int n, double[] weights)
    {
        var alias = new AliasTable(weights);
        var result = new int[n];
        for (var i = 0; i < n; i++)
        {
            result[i] = alias.Sample(rng.NextBits());
        }
        return result;
    }

    private static double[] ZipfWeights(int n, double exponent)
    {
        var w = new double[n];
        for (var i = 0; i < n; i++)
        {
            w[i] = Math.Pow(i + 1, -exponent);
        }
        return w;
    }

    private static double[] Uniform(int n)
    {
        var w = new double[n];
        Array.Fill(w, 1.0);
        return w;
    }
}

/// <summary>Requests drawn to solve the world's constants: the chosen ad's stage scores and what bids depend on.</summary>
internal sealed class CalibrationSample(int count, int depth)
{
    public int Count { get; } = count;
    public float[] Scores { get; } = new float[count * depth];
    public double[] Hidden { get; } = new double[count];
    public int[] Slot { get; } = new int[count];
    public double[] LogBidBase { get; } = new double[count];
    public double[] ValueSignal { get; } = new double[count];
}
