using System.Runtime.CompilerServices;
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

    private const int ScoreSample = 200_000;
    private const int CalibrationSample = 100_000;
    private const double CalibrationTargetEss = 20_000;
    private const int MaxCalibrationSample = 3_000_000;

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
    /// <summary>
    /// The per-request hot data of each user in one pinned record of <see cref="RecordStride"/> floats:
    /// z_uᵀ G_k for every stage (K × Dim), then the hidden trait and the five observed fields, so that a request
    /// touches one or two cache lines per user and the simulator can prefetch them.
    /// </summary>
    internal float[] UserRecord = [];
    internal int RecordStride;
    internal int RecordHidden;
    /// <summary>
    /// Stage lanes of the per-stage tables: 4 for funnels of up to 4 stages (one Vector128), else 8 (Vector256).
    /// Per-user projections are stored dimension-major, [Dim][Lanes], so one candidate's K stage scores come out of
    /// Dim broadcast multiply-adds; ad, hour and site effects are [row][Lanes]; unused lanes are 0.
    /// </summary>
    internal int Lanes;
    /// <summary>β_k as float lanes (unused lanes 0), for the logging policy's vectorised estimates.</summary>
    internal float[] BetaLanes = [];

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
    /// <summary>Weights of the user's trait and of the request's own draw in the hidden trait: √(1 − s) and √s.</summary>
    internal double HiddenUserWeight = 1;
    internal double HiddenRequestWeight;
    /// <summary>Whether a per-request part of the hidden trait enters the rates (γ ≠ 0 and s > 0).</summary>
    internal bool HasRequestHidden;
    /// <summary>Gauss–Hermite nodes (×γ√s) and weights of E over the per-request part ε ~ N(0, 1).</summary>
    private double[] _explainedNodes = [];
    private double[] _explainedWeights = [];

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
            // Stored at float precision, as in the per-user record the simulator reads.
            w.UserHidden[u] = (float)rng.NextNormal();
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
        // Unit length: a bilinear score z_uᵀ M w_a whose scale varied with |z_u|·|w_a| would make every stage's
        // spread depend on the same rows, and selection on one stage would shift the others' means even at ρ = 0.
        NormaliseRows(userVectors);
        NormaliseRows(w.AdVector);

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
        w.HiddenUserWeight = Math.Sqrt(1 - scenario.Bias.HiddenPerRequest);
        w.HiddenRequestWeight = Math.Sqrt(scenario.Bias.HiddenPerRequest);
        w.HasRequestHidden = w.Gamma != 0 && w.HiddenRequestWeight != 0;
        if (w.HasRequestHidden)
        {
            var (nodes, weights) = GaussHermite.Standard(ExplainedRateNodes);
            w._explainedNodes = [.. nodes.Select(x => x * w.Gamma * w.HiddenRequestWeight)];
            w._explainedWeights = weights;
        }
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
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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

        // Zero point of the click–CVR dial: the ρ = 0 score of stage k is V'_k ∝ V_k + c_k·Σ_{j<k} V'_j, with c_k
        // solved on the sample so that the parent-weighted mean of q_k equals its plain mean. Linear orthogonality
        // alone leaves a finite world's non-linear dependence between stages (about 1–2% in the selection ratio);
        // this removes it, so that "every dial 0" means no selection bias in this world, not only on average.
        var independent = new double[k][];
        var independentCoef = new double[k][];
        independent[0] = basis[3];
        independentCoef[0] = Row(coef, 3, m);
        var targets = Scenario.Funnel.Stages.Select(st => st.Rate).ToArray();
        var parent = new double[n];
        var rates = new double[n];
        SolvePlainStage(basis[3], targets[0], null, rates);
        Array.Copy(rates, parent, n);
        for (var stage = 1; stage < k; stage++)
        {
            var earlier = new double[n];
            var earlierCoef = new double[m];
            for (var j = 0; j < stage; j++)
            {
                for (var i = 0; i < n; i++)
                {
                    earlier[i] += independent[j][i];
                }
                for (var c = 0; c < m; c++)
                {
                    earlierCoef[c] += independentCoef[j][c];
                }
            }
            var v = basis[3 + stage];
            var shift = SolveZeroPoint(v, earlier, parent, targets[stage], rates);
            var mixed = new double[n];
            for (var i = 0; i < n; i++)
            {
                mixed[i] = v[i] + shift * earlier[i];
            }
            var norm = Math.Sqrt(Mean(mixed, mixed));
            for (var i = 0; i < n; i++)
            {
                mixed[i] /= norm;
            }
            independent[stage] = mixed;
            independentCoef[stage] = new double[m];
            for (var c = 0; c < m; c++)
            {
                independentCoef[stage][c] = (coef[3 + stage, c] + shift * earlierCoef[c]) / norm;
            }
            SolvePlainStage(mixed, targets[stage], parent, rates);
            for (var i = 0; i < n; i++)
            {
                parent[i] *= rates[i];
            }
        }

        // score_k = √ρ·e[U₀] + √(1−ρ)·V'_k  =  Σ_i C[k, i]·x_i.
        var rho = Scenario.Bias.ClickCvrCorrelation;
        var a0 = Math.Sqrt(rho);
        var a1 = Math.Sqrt(1 - rho);
        var sites = siteRaw[0].Length;
        var users = Users;
        Lanes = k <= 4 ? 4 : 8;
        RecordHidden = Lanes * Dim;
        RecordStride = Lanes * Dim + 8;
        UserRecord = GC.AllocateArray<float>(users * RecordStride, pinned: true);
        for (var u = 0; u < users; u++)
        {
            var r = u * RecordStride + RecordHidden;
            UserRecord[r] = (float)UserHidden[u];
            UserRecord[r + 1] = UserAge[u];
            UserRecord[r + 2] = UserGender[u];
            UserRecord[r + 3] = UserRegion[u];
            UserRecord[r + 4] = UserDevice[u];
            UserRecord[r + 5] = UserSegment[u];
        }
        AdBias = new float[Ads * Lanes];
        HourEffect = new float[Hours * Lanes];
        SiteEffect = new float[sites * Lanes];
        var effective = new double[Dim * Dim];
        for (var stage = 0; stage < k; stage++)
        {
            var combo = new double[m];
            for (var q = 0; q < m; q++)
            {
                combo[q] = a0 * coef[2, q] + a1 * independentCoef[stage][q];
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
                    UserRecord[u * RecordStride + col * Lanes + stage] = (float)acc;
                }
            }
            for (var a = 0; a < Ads; a++)
            {
                AdBias[a * Lanes + stage] = (float)(combo[0] + combo[1] * AdLogValue[a]);
            }
            for (var h = 0; h < Hours; h++)
            {
                var acc = 0.0;
                for (var c = 0; c < comps; c++)
                {
                    acc += combo[2 + c] * hourRaw[c][h];
                }
                HourEffect[h * Lanes + stage] = (float)acc;
            }
            for (var s = 0; s < sites; s++)
            {
                var acc = 0.0;
                for (var c = 0; c < comps; c++)
                {
                    acc += combo[2 + c] * siteRaw[c][s];
                }
                SiteEffect[s * Lanes + stage] = (float)acc;
            }
        }
    }

    private static double[] Row(double[,] matrix, int row, int columns)
    {
        var r = new double[columns];
        for (var c = 0; c < columns; c++)
        {
            r[c] = matrix[row, c];
        }
        return r;
    }

    /// <summary>
    /// For the zero-point solve: β such that the <paramref name="weight"/>-weighted mean of σ(β + s·score) is the
    /// target (plain mean when null), with hidden trait and examination left out. Writes the rates to <paramref name="q"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private double SolvePlainStage(double[] score, double target, double[]? weight, double[] q)
    {
        var total = 0.0;
        for (var i = 0; i < score.Length; i++)
        {
            total += weight is null ? 1.0 : weight[i];
        }
        return SafeguardedNewton([MethodImpl(MethodImplOptions.AggressiveOptimization)] (beta) =>
        {
            double f = 0, df = 0;
            for (var i = 0; i < score.Length; i++)
            {
                var w = weight is null ? 1.0 : weight[i];
                var p = Sigmoid(beta + Signal * score[i]);
                q[i] = p;
                f += w * p;
                df += w * p * (1 - p);
            }
            return (f / total - target, df / total);
        }, Math.Log(target / (1 - target)), 1e-10 * target);
    }

    /// <summary>
    /// The c for which stage k's rates, with score ∝ v + c·earlier and β solved for the target on the parent
    /// population, have equal parent-weighted and plain means (regula falsi on c; the gap grows with c).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private double SolveZeroPoint(double[] v, double[] earlier, double[] parent, double target, double[] q)
    {
        if (Signal == 0)
        {
            return 0;
        }
        var n = v.Length;
        var mixed = new double[n];
        double Gap(double c)
        {
            for (var i = 0; i < n; i++)
            {
                mixed[i] = v[i] + c * earlier[i];
            }
            var norm = Math.Sqrt(Mean(mixed, mixed));
            for (var i = 0; i < n; i++)
            {
                mixed[i] /= norm;
            }
            SolvePlainStage(mixed, target, parent, q);
            double plain = 0;
            for (var i = 0; i < n; i++)
            {
                plain += q[i];
            }
            return target / (plain / n) - 1;
        }
        double lo = -0.5, hi = 0.5;
        var fLo = Gap(lo);
        var fHi = Gap(hi);
        if (fLo > 0 || fHi < 0)
        {
            return 0; // no sign change in range: leave the stage as orthogonalised
        }
        var c = 0.0;
        for (var it = 0; it < 60; it++)
        {
            c = (lo * fHi - hi * fLo) / (fHi - fLo);
            var f = Gap(c);
            if (Math.Abs(f) < 1e-9)
            {
                break;
            }
            if (f < 0)
            {
                lo = c;
                fLo = f;
                fHi *= 0.5;
            }
            else
            {
                hi = c;
                fHi = f;
                fLo *= 0.5;
            }
        }
        return c;
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
        BetaLanes = new float[Lanes];
        for (var stage = 0; stage < k; stage++)
        {
            BetaLanes[stage] = (float)Beta[stage];
        }
        var sample = new CalibrationSample(CalibrationSample, k);
        var kernel = new RequestKernel(this, CounterRng.SeedKey(Scenario.Seed, 4));
        var smallestEss = double.PositiveInfinity;
        for (var iteration = 0; iteration < 8; iteration++)
        {
            cancellation.ThrowIfCancellationRequested();
            var change = SolveOnce(kernel, sample, targets, out smallestEss);
            if (change < 1e-4)
            {
                break;
            }
        }

        // Deep stages are solved on r_{k−1}-weighted rows whose effective size can be small: re-solve once on a
        // sample large enough that the deepest stage has about CalibrationTargetEss effective rows.
        var finalSize = (int)Math.Clamp(CalibrationSample * (CalibrationTargetEss / smallestEss), CalibrationSample, MaxCalibrationSample);
        if (finalSize > CalibrationSample)
        {
            cancellation.ThrowIfCancellationRequested();
            var large = new CalibrationSample(finalSize, k);
            SolveOnce(kernel, large, targets, out _);
        }

        // Standardise the competitors' value signal v(x) = x-only log r_K(x) on D.
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

    /// <summary>One pass: draw the policy's choices with the current β, then solve each stage in funnel order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private double SolveOnce(RequestKernel kernel, CalibrationSample sample, double[] targets, out double smallestEss)
    {
        for (var i = 0; i < sample.Count; i++)
        {
            kernel.ChooseForCalibration(i, sample, i);
        }
        var change = 0.0;
        smallestEss = double.PositiveInfinity;
        var weight = new double[sample.Count];
        Array.Fill(weight, 1.0);
        for (var stage = 0; stage < Depth; stage++)
        {
            double sum = 0, sumSq = 0;
            foreach (var x in weight)
            {
                sum += x;
                sumSq += x * x;
            }
            smallestEss = Math.Min(smallestEss, sum * sum / sumSq);
            var solved = SolveStage(sample, stage, weight, targets[stage]);
            change = Math.Max(change, Math.Abs(solved - Beta[stage]));
            Beta[stage] = solved;
            BetaLanes[stage] = (float)solved;
            for (var i = 0; i < sample.Count; i++)
            {
                weight[i] *= TrueRate(sample, i, stage);
            }
        }
        return change;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private double SolveStage(CalibrationSample sample, int stage, double[] weight, double target)
    {
        var totalWeight = 0.0;
        foreach (var x in weight)
        {
            totalWeight += x;
        }
        return SafeguardedNewton([MethodImpl(MethodImplOptions.AggressiveOptimization)] (beta) =>
        {
            double f = 0, df = 0;
            for (var i = 0; i < sample.Count; i++)
            {
                var p = Sigmoid(beta + Signal * sample.Scores[i * Depth + stage] + Gamma * sample.Hidden[i]);
                var scale = stage == 0 ? SlotExamination[sample.Slot[i]] : 1.0;
                f += weight[i] * scale * p;
                df += weight[i] * scale * p * (1 - p);
            }
            return (f / totalWeight - target, df / totalWeight);
        }, Beta[stage], 1e-9 * target);
    }

    /// <summary>
    /// The hidden trait of a request: the user's h_u, or √(1 − s)·h_u + √s·ε with ε ~ N(0, 1) drawn from the request's own
    /// stream when part of it is per request (s = <c>bias.hiddenPerRequest</c>), so replays see the same draw.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal double HiddenTrait(double userTrait, ulong requestBase) => HiddenRequestWeight == 0
        ? userTrait
        : (HiddenUserWeight * userTrait)
            + (HiddenRequestWeight * Engine.NormalDistribution.InverseCdf(Engine.CounterRng.OpenUniform(Engine.CounterRng.Bits(requestBase, Engine.CounterRng.Hidden))));

    /// <summary>Gauss–Hermite nodes of <see cref="ExplainedRate"/>: exact for polynomials of degree 63; against a fine
    /// trapezoid rule the relative error is below 1e-9 at γ√s ≈ 0.85 and below 1e-4 at γ√s = 3, the dials' largest.</summary>
    internal const int ExplainedRateNodes = 32;

    /// <summary>
    /// E_ε[σ(<paramref name="logit"/> + γ√s·ε)], ε ~ N(0, 1): a rate averaged over the per-request part of the hidden
    /// trait (<paramref name="logit"/> holds everything else, the user's part of the trait included), by Gauss–Hermite
    /// quadrature.
    /// </summary>
    internal double ExplainedRate(double logit)
    {
        var sum = 0.0;
        for (var j = 0; j < _explainedNodes.Length; j++)
        {
            sum += _explainedWeights[j] * Sigmoid(logit + _explainedNodes[j]);
        }
        return sum;
    }

    /// <summary>
    /// Root of an increasing function given with its slope: Newton steps, replaced by bisection whenever a step
    /// would leave the bracket that the signs so far have established (β stays within ±40).
    /// </summary>
    private static double SafeguardedNewton(Func<double, (double Value, double Slope)> function, double start, double tolerance)
    {
        double lo = -40, hi = 40, x = Math.Clamp(start, lo, hi);
        for (var it = 0; it < 100; it++)
        {
            var (f, df) = function(x);
            if (Math.Abs(f) < tolerance)
            {
                break;
            }
            if (f > 0)
            {
                hi = x;
            }
            else
            {
                lo = x;
            }
            if (hi - lo < 1e-12)
            {
                break;
            }
            var next = df > 0 ? x - f / df : double.NaN;
            x = next > lo && next < hi ? next : 0.5 * (lo + hi);
        }
        return x;
    }

    private double TrueRate(CalibrationSample sample, int i, int stage)
    {
        var p = Sigmoid(Beta[stage] + Signal * sample.Scores[i * Depth + stage] + Gamma * sample.Hidden[i]);
        return stage == 0 ? p * SlotExamination[sample.Slot[i]] : p;
    }

    /// <summary>
    /// x-only log r_K (no hidden trait): what competitors who value the same users would key on. When the true
    /// rates carry no hidden trait they are passed in as <paramref name="rates"/> (examination included), and the
    /// signal is one log of their product.
    /// </summary>
    internal double LogValueSignal(ReadOnlySpan<float> scores, int slot, ReadOnlySpan<double> rates = default)
    {
        var product = 1.0;
        if (rates.Length == scores.Length)
        {
            foreach (var r in rates)
            {
                product *= r;
            }
            return Math.Log(product);
        }
        var lv = SlotLogExamination[slot];
        for (var stage = 0; stage < scores.Length; stage++)
        {
            product *= Sigmoid(Beta[stage] + Signal * scores[stage]);
        }
        return lv + Math.Log(product);
    }

    /// <summary>Solves the competitors' common log-bid level so that the mean true P(win | x) over D is the target.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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
                for (var m = 0; m < Multiplier.Length; m++)
                {
                    var lb = sample.LogBidBase[i] + LogMultiplier[m];
                    if (lb >= LogReserve)
                    {
                        mean += MultiplierProbability[m] * WinCurveFast(lb - shift[i]);
                    }
                }
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
        BuildWinTable();
        _calibration = null;
    }

    /// <summary>
    /// True P(win | x) = Σ_m π(m)·P(win | x, b_m), and P(win | x, b) at multiplier index <paramref name="atMultiplier"/>.
    /// P(win | x, b) = 1[b ≥ reserve]·G(ln b − κ·v(x)) with G(y) = Π_j Φ((y − μ_j) / σ).
    /// </summary>
    internal double WinPropensity(double logBidBase, double shift, out double atBid, int atMultiplier)
    {
        var total = 0.0;
        atBid = 0;
        for (var m = 0; m < Multiplier.Length; m++)
        {
            var lb = logBidBase + LogMultiplier[m];
            var p = lb >= LogReserve ? WinCurve(lb - shift) : 0.0;
            if (m == atMultiplier)
            {
                atBid = p;
            }
            total += MultiplierProbability[m] * p;
        }
        return total;
    }

    /// <summary>G(y) with the Φ table (for the solve, where μ changes each step).</summary>
    private double WinCurveFast(double y)
    {
        var p = 1.0;
        var inv = 1 / CompetitorSigma;
        foreach (var mu in CompetitorMu)
        {
            p *= NormalDistribution.Cdf((y - mu) * inv);
        }
        return p;
    }

    /// <summary>G(y) = Π_j Φ((y − μ_j) / σ): the probability that every competitor bids below e^y.</summary>
    internal double WinCurveExact(double y)
    {
        var p = 1.0;
        var inv = 1 / CompetitorSigma;
        foreach (var mu in CompetitorMu)
        {
            p *= NormalDistribution.CdfExact((y - mu) * inv);
        }
        return p;
    }

    // G tabulated as interleaved [G(y_i), h·G'(y_i)] on a grid of step σ/256 from min μ − 9σ to max μ + 9σ.
    private double[] _winTable = [];
    private double _winStart;
    private double _winInvStep;

    /// <summary>
    /// G(y) by cubic Hermite interpolation of its table. Interpolation error is below h⁴·max|G⁽⁴⁾|/384 with
    /// h = σ/256, i.e. about 1e−12: exact for every use here. Outside the table G is 0 or 1 to within Φ(−9) ≈ 1e−19.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal double WinCurve(double y)
    {
        var u = (y - _winStart) * _winInvStep;
        if (!(u > 0))
        {
            return 0.0;
        }
        var i = (int)u;
        if (i >= (_winTable.Length >> 1) - 1)
        {
            return 1.0;
        }
        var t = u - i;
        var t2 = t * t;
        var t3 = t2 * t;
        var e = _winTable.AsSpan(2 * i, 4);
        return (2 * t3 - 3 * t2 + 1) * e[0] + (t3 - 2 * t2 + t) * e[1] + (-2 * t3 + 3 * t2) * e[2] + (t3 - t2) * e[3];
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void BuildWinTable()
    {
        var sigma = CompetitorSigma;
        var step = sigma / 256;
        _winStart = CompetitorMu.Min() - 9 * sigma;
        var end = CompetitorMu.Max() + 9 * sigma;
        var n = (int)Math.Ceiling((end - _winStart) / step) + 2;
        _winInvStep = 1 / step;
        _winTable = new double[2 * n];
        var c = CompetitorMu.Length;
        var cdf = new double[c];
        for (var i = 0; i < n; i++)
        {
            var y = _winStart + i * step;
            for (var j = 0; j < c; j++)
            {
                cdf[j] = NormalDistribution.CdfExact((y - CompetitorMu[j]) / sigma);
            }
            var g = 1.0;
            var dg = 0.0;
            for (var j = 0; j < c; j++)
            {
                g *= cdf[j];
                var z = (y - CompetitorMu[j]) / sigma;
                var others = Math.Exp(-0.5 * z * z) / (Math.Sqrt(2 * Math.PI) * sigma);
                for (var l = 0; l < c; l++)
                {
                    if (l != j)
                    {
                        others *= cdf[l];
                    }
                }
                dg += others;
            }
            _winTable[2 * i] = g;
            _winTable[2 * i + 1] = step * dg;
        }
        // H(y_i) = ∫ e^t G(t) dt from the grid's start to y_i, by Simpson's rule per cell (G below the start is < 1e-19).
        _paymentTable = new double[n];
        for (var i = 1; i < n; i++)
        {
            _paymentTable[i] = _paymentTable[i - 1] + PaymentIntegrand(_winStart + (i - 1) * step, _winStart + i * step);
        }
    }

    // ∫ e^t G(t) dt over the win table's grid (H at each grid point), for the expected second-price payment.
    private double[] _paymentTable = [];

    /// <summary>∫_a^b e^t G(t) dt by Simpson's rule (b − a at most one grid step, so exact to rounding for this use).</summary>
    private double PaymentIntegrand(double a, double b) =>
        (b - a) / 6 * (Math.Exp(a) * WinCurve(a) + 4 * Math.Exp(0.5 * (a + b)) * WinCurve(0.5 * (a + b)) + Math.Exp(b) * WinCurve(b));

    /// <summary>H(t) = ∫_{−∞}^t e^y G(y) dy (beyond the grid's end G = 1, so the rest is e^t − e^end).</summary>
    private double PaymentPrimitive(double t)
    {
        var u = (t - _winStart) * _winInvStep;
        if (!(u > 0))
        {
            return 0;
        }
        var last = _paymentTable.Length - 1;
        var i = (int)Math.Min(u, last);
        var at = _winStart + i / _winInvStep;
        return i >= last ? _paymentTable[last] + Math.Exp(t) - Math.Exp(at) : _paymentTable[i] + PaymentIntegrand(at, t);
    }

    /// <summary>
    /// Expected payment E[price · 1{win}] of a bid b = e^<paramref name="logBid"/> when the competitors' bids carry the
    /// value shift <paramref name="shift"/>: 0 below the reserve; first price b·P(win); second price
    /// E[max(M, r)·1{M &lt; b}] = b·G(ln b − s) − ∫_{ln r}^{ln b} e^y G(y − s) dy (integration by parts of the market
    /// price M's distribution, P(M &lt; m) = G(ln m − s)), with the integral from the tabulated primitive of e^t G(t).
    /// </summary>
    internal double ExpectedPayment(double logBid, double shift)
    {
        if (logBid < LogReserve)
        {
            return 0;
        }
        var win = WinCurve(logBid - shift);
        var bid = Math.Exp(logBid);
        if (!SecondPrice)
        {
            return bid * win;
        }
        var below = double.IsNegativeInfinity(LogReserve) ? 0 : PaymentPrimitive(LogReserve - shift);
        return Math.Max(0, bid * win - Math.Exp(shift) * (PaymentPrimitive(logBid - shift) - below));
    }

    internal static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    /// <summary>log σ(x) without overflow.</summary>
    internal static double LogSigmoid(double x) => x >= 0 ? -Math.Log(1 + Math.Exp(-x)) : x - Math.Log(1 + Math.Exp(x));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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

    private static void NormaliseRows(float[] vectors)
    {
        for (var r = 0; r < vectors.Length; r += Dim)
        {
            var norm = 0.0;
            for (var d = 0; d < Dim; d++)
            {
                norm += (double)vectors[r + d] * vectors[r + d];
            }
            var inv = 1 / Math.Sqrt(Math.Max(norm, 1e-30));
            for (var d = 0; d < Dim; d++)
            {
                vectors[r + d] = (float)(vectors[r + d] * inv);
            }
        }
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
