using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using AdAuctionSim.Simulation.World;

namespace AdAuctionSim.Simulation.Engine;

/// <summary>
/// Simulates one bid request: traffic draw, the logging policy's choice of candidate ad and bid multiplier, the
/// auction against the competitors, the true stage rates and the potential outcomes. A plain loop over arrays
/// that allocates nothing; every random number is a counter-based draw keyed by the request id.
/// </summary>
internal sealed unsafe class RequestKernel
{
    private const int MaxStages = 6;
    private const int MaxCandidates = 64;
    private const ulong UserNoise = 0xA24BAED4963EE407UL;
    private const ulong AdNoise = 0x9FB21C651E98DF25UL;

    private readonly WorldModel _w;
    private readonly ulong _key;
    private readonly int _k;
    private readonly int _n;

    public RequestKernel(WorldModel world, ulong requestKey)
    {
        _w = world;
        _key = requestKey;
        _k = world.Depth;
        _n = world.CandidateCount;
    }

    /// <summary>
    /// The logging policy: scores every candidate, forms its (noisy) estimate of each stage rate, picks an ad by
    /// softmax over log expected value / temperature. Writes the chosen ad's true scores and logged estimates. When
    /// <c>every</c> is given (a replay for off-policy evaluation) it also receives every candidate's probability,
    /// estimated rate, bid base and true stage scores, computed exactly as the chosen one's.
    /// </summary>
    private int Choose(ulong rbase, int user, int hour, int site, int slot, Span<int> candidates,
        Span<float> chosenScores, Span<double> chosenEstimate, out double pscore, ReplayedRequest? every = null)
    {
        var w = _w;
        var k = _k;
        var n = _n;
        var lanes = w.Lanes;
        var cells = n * lanes;
        Span<float> scores = stackalloc float[8 * MaxCandidates + 8];
        Span<float> logits = stackalloc float[8 * MaxCandidates + 8];
        Span<double> utility = stackalloc double[MaxCandidates + 4];
        Span<float> eps = stackalloc float[8];
        eps.Clear();
        var signal = (float)w.Signal;
        var quality = (float)w.Quality;
        var noise = (float)w.QualityNoise;
        var userNoise = w.NoiseKey ^ ((ulong)user * UserNoise);
        var ads = w.Ads;
        ref var projection = ref w.UserRecord[user * w.RecordStride];
        ref var adBias = ref MemoryMarshal.GetArrayDataReference(w.AdBias);
        ref var adVector = ref MemoryMarshal.GetArrayDataReference(w.AdVector);
        ref var sc = ref MemoryMarshal.GetReference(scores);
        ref var lg = ref MemoryMarshal.GetReference(logits);
        ref var ep = ref MemoryMarshal.GetReference(eps);

        // Every candidate's K stage scores at once (stages in lanes): Σ_d w_a[d]·P_u[d, ·] + ad, hour and site effects.
        if (lanes == 4)
        {
            var context = Vector128.LoadUnsafe(ref w.HourEffect[hour * 4]) + Vector128.LoadUnsafe(ref w.SiteEffect[site * 4]);
            var beta = Vector128.LoadUnsafe(ref w.BetaLanes[0]);
            for (var j = 0; j < n; j++)
            {
                var ad = CounterRng.Below(CounterRng.Bits(rbase, CounterRng.Candidate + (ulong)j), ads);
                candidates[j] = ad;
                var score = Vector128.LoadUnsafe(ref adBias, (nuint)(ad * 4)) + context;
                ref var wa = ref Unsafe.Add(ref adVector, ad * WorldModel.Dim);
                for (var d = 0; d < WorldModel.Dim; d++)
                {
                    score += Vector128.Create(Unsafe.Add(ref wa, d)) * Vector128.LoadUnsafe(ref projection, (nuint)(d * 4));
                }
                score.StoreUnsafe(ref sc, (nuint)(j * 4));
                NoiseLanes(userNoise, ad, k, noise, eps);
                (beta + signal * (quality * score + noise * Vector128.LoadUnsafe(ref ep))).StoreUnsafe(ref lg, (nuint)(j * 4));
            }
        }
        else
        {
            var context = Vector256.LoadUnsafe(ref w.HourEffect[hour * 8]) + Vector256.LoadUnsafe(ref w.SiteEffect[site * 8]);
            var beta = Vector256.LoadUnsafe(ref w.BetaLanes[0]);
            for (var j = 0; j < n; j++)
            {
                var ad = CounterRng.Below(CounterRng.Bits(rbase, CounterRng.Candidate + (ulong)j), ads);
                candidates[j] = ad;
                var score = Vector256.LoadUnsafe(ref adBias, (nuint)(ad * 8)) + context;
                ref var wa = ref Unsafe.Add(ref adVector, ad * WorldModel.Dim);
                for (var d = 0; d < WorldModel.Dim; d++)
                {
                    score += Vector256.Create(Unsafe.Add(ref wa, d)) * Vector256.LoadUnsafe(ref projection, (nuint)(d * 8));
                }
                score.StoreUnsafe(ref sc, (nuint)(j * 8));
                NoiseLanes(userNoise, ad, k, noise, eps);
                (beta + signal * (quality * score + noise * Vector256.LoadUnsafe(ref ep))).StoreUnsafe(ref lg, (nuint)(j * 8));
            }
        }

        // σ of every logit, eight at a time.
        for (var i = 0; i < cells; i += 8)
        {
            var z = Vector256.LoadUnsafe(ref lg, (nuint)i);
            (Vector256<float>.One / (Vector256<float>.One + Vector256.Exp(-z))).StoreUnsafe(ref lg, (nuint)i);
        }

        // Log expected value of each candidate: ln value + ln Π_k q̂_k (+ ln examination, equal for all): the
        // products first, then one vectorised log over all candidates.
        Span<float> products = stackalloc float[MaxCandidates + 8];
        for (var j = 0; j < n; j++)
        {
            var product = 1.0f;
            for (var stage = 0; stage < k; stage++)
            {
                product *= logits[j * lanes + stage];
            }
            products[j] = Math.Max(product, 1e-37f);
        }
        for (var j = n; j < ((n + 7) & ~7); j++)
        {
            products[j] = 1;
        }
        ref var pr = ref MemoryMarshal.GetReference(products);
        for (var j = 0; j < n; j += 8)
        {
            Vector256.Log(Vector256.LoadUnsafe(ref pr, (nuint)j)).StoreUnsafe(ref pr, (nuint)j);
        }
        var best = double.NegativeInfinity;
        var invT = w.InverseTemperature;
        for (var j = 0; j < n; j++)
        {
            var u = (w.AdLogValue[candidates[j]] + products[j]) * invT;
            utility[j] = u;
            best = Math.Max(best, u);
        }
        // exp(u_j − max) four at a time; lanes past n are padded with −∞ and contribute 0.
        for (var j = n; j < ((n + 3) & ~3); j++)
        {
            utility[j] = double.NegativeInfinity;
        }
        ref var ut = ref MemoryMarshal.GetReference(utility);
        var top = Vector256.Create(best);
        var sum = Vector256<double>.Zero;
        for (var j = 0; j < n; j += 4)
        {
            var e = Vector256.Exp(Vector256.LoadUnsafe(ref ut, (nuint)j) - top);
            e.StoreUnsafe(ref ut, (nuint)j);
            sum += e;
        }
        var total = Vector256.Sum(sum);
        var draw = CounterRng.Uniform(CounterRng.Bits(rbase, CounterRng.Action)) * total;
        var action = n - 1;
        var acc = 0.0;
        for (var j = 0; j < n; j++)
        {
            acc += utility[j];
            if (draw < acc)
            {
                action = j;
                break;
            }
        }
        pscore = utility[action] / total;
        scores.Slice(action * lanes, k).CopyTo(chosenScores);
        var exam = w.SlotExamination[slot];
        for (var stage = 0; stage < k; stage++)
        {
            chosenEstimate[stage] = logits[action * lanes + stage] * (stage == 0 ? exam : 1.0);
        }
        if (every is not null)
        {
            for (var j = 0; j < n; j++)
            {
                every.AdProbability[j] = utility[j] / total;
                var estimatedRate = 1.0;
                for (var stage = 0; stage < k; stage++)
                {
                    estimatedRate *= logits[j * lanes + stage] * (stage == 0 ? exam : 1.0);
                }
                every.LogBidBase[j] = w.AdLogValue[candidates[j]] + Math.Log(estimatedRate);
                every.LoggingRate[j] = estimatedRate;
                scores.Slice(j * lanes, k).CopyTo(every.Scores.AsSpan(j * k, k));
            }
        }
        return action;
    }

    /// <summary>
    /// Cache hints for a request that will be simulated soon: <paramref name="userEntry"/> touches the alias entry
    /// its user draw reads; otherwise the user's record (whose alias entry should be cached by now).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Prefetch(long requestId, bool userEntry)
    {
        var bits = CounterRng.Bits(CounterRng.RequestBase(_key, requestId), CounterRng.User);
        if (userEntry)
        {
            _w.UserAlias.Prefetch(bits);
        }
        else if (System.Runtime.Intrinsics.X86.Sse.IsSupported)
        {
            var p = (byte*)Unsafe.AsPointer(ref _w.UserRecord[_w.UserAlias.Sample(bits) * _w.RecordStride]);
            System.Runtime.Intrinsics.X86.Sse.Prefetch0(p);
            System.Runtime.Intrinsics.X86.Sse.Prefetch0(p + 64);
            System.Runtime.Intrinsics.X86.Sse.Prefetch0(p + 128);
            System.Runtime.Intrinsics.X86.Sse.Prefetch0(p + 4 * _w.RecordStride - 4);
        }
    }

    /// <summary>The logging model's estimation noise of (user, ad) for each stage: fixed per pair, not per request.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void NoiseLanes(ulong userNoise, int ad, int stages, float noise, Span<float> eps)
    {
        if (noise == 0)
        {
            return;
        }
        var adNoise = CounterRng.Mix(userNoise ^ ((ulong)ad * AdNoise));
        for (var stage = 0; stage < stages; stage++)
        {
            eps[stage] = CounterRng.QuickNormal(CounterRng.Mix(adNoise + (ulong)stage));
        }
    }

    /// <summary>Draws a request for solving the world's constants (hour drawn from the hour profile).</summary>
    public void ChooseForCalibration(long requestId, CalibrationSample sample, int i)
    {
        var w = _w;
        var rbase = CounterRng.RequestBase(_key, requestId);
        var user = w.UserAlias.Sample(CounterRng.Bits(rbase, CounterRng.User));
        var site = w.SiteAlias.Sample(CounterRng.Bits(rbase, CounterRng.Site));
        var slot = CounterRng.Below(CounterRng.Bits(rbase, CounterRng.Slot), w.SlotExamination.Length);
        var hour = w.HourAlias.Sample(CounterRng.Bits(rbase, CounterRng.Time));
        Span<int> candidates = stackalloc int[_n];
        Span<double> logq = stackalloc double[_k];
        var scores = sample.Scores.AsSpan(i * _k, _k);
        var action = Choose(rbase, user, hour, site, slot, candidates, scores, logq, out _);
        var lb = w.AdLogValue[candidates[action]];
        foreach (var e in logq)
        {
            lb += Math.Log(e);
        }
        sample.LogBidBase[i] = lb;
        sample.Hidden[i] = w.HiddenTrait(w.UserHidden[user], rbase);
        sample.Slot[i] = slot;
    }

    /// <summary>The request's user, site and slot (the hour follows from its timestamp).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private (int User, int Site, int Slot) DrawContext(ulong rbase) =>
        (_w.UserAlias.Sample(CounterRng.Bits(rbase, CounterRng.User)),
         _w.SiteAlias.Sample(CounterRng.Bits(rbase, CounterRng.Site)),
         CounterRng.Below(CounterRng.Bits(rbase, CounterRng.Slot), _w.SlotExamination.Length));

    /// <summary>The logging policy's bid multiplier index, drawn from its multiplier probabilities.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int DrawMultiplier(ulong rbase)
    {
        var cumulative = _w.MultiplierCumulative;
        var draw = CounterRng.Uniform(CounterRng.Bits(rbase, CounterRng.Multiplier));
        var m = 0;
        while (m < cumulative.Length - 1 && draw >= cumulative[m])
        {
            m++;
        }
        return m;
    }

    /// <summary>
    /// Replays request <paramref name="requestId"/> for off-policy evaluation (common random numbers): the same user,
    /// context, candidates, logging choice, competitor draws and outcome uniforms as <see cref="Simulate"/>, and for
    /// every candidate ad what showing it would mean: its true stage rates, the logging policy's probability and bid
    /// base, and the competitors' value shift (they key on the shown ad's value signal).
    /// </summary>
    public void Replay(long requestId, long timestamp, ReplayedRequest r)
    {
        var w = _w;
        var k = _k;
        var rbase = CounterRng.RequestBase(_key, requestId);
        var (user, site, slot) = DrawContext(rbase);
        var hour = (int)(timestamp / 3600 % 24);
        Span<float> scores = stackalloc float[MaxStages];
        Span<double> logq = stackalloc double[k];
        r.Action = Choose(rbase, user, hour, site, slot, r.Candidates, scores, logq, out _, r);
        var m = DrawMultiplier(rbase);
        r.Multiplier = m;
        var hidden = w.HiddenTrait(w.UserRecord[user * w.RecordStride + w.RecordHidden], rbase);
        for (var stage = 0; stage < k; stage++)
        {
            r.OutcomeUniform[stage] = CounterRng.Uniform(CounterRng.Bits(rbase, CounterRng.Outcome + (ulong)stage));
        }
        Span<double> q = stackalloc double[k];
        for (var j = 0; j < _n; j++)
        {
            var jScores = r.Scores.AsSpan(j * k, k);
            var rate = 1.0;
            for (var stage = 0; stage < k; stage++)
            {
                var p = WorldModel.Sigmoid(w.Beta[stage] + w.Signal * jScores[stage] + w.Gamma * hidden);
                if (stage == 0)
                {
                    p *= w.SlotExamination[slot];
                }
                q[stage] = p;
                r.Q[j * k + stage] = p;
                rate *= p;
            }
            r.TrueRate[j] = rate;
            r.Shift[j] = w.Kappa == 0 ? 0 : w.Kappa * (w.LogValueSignal(jScores, slot, w.Gamma == 0 ? q : default) - w.ValueMean) / w.ValueSd;
        }
        CompetitorNoise(rbase, r.CompetitorNoise);
        r.RequestId = requestId;
        r.RequestBase = rbase;
    }

    /// <summary>
    /// The competitors' noise terms σ·ε_j of a request, ε_j standard normal by Marsaglia's polar method (exact, no
    /// trigonometry), one pair per two competitors; a rejected point redraws from a derived counter stream.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CompetitorNoise(ulong rbase, Span<double> noise)
    {
        var count = noise.Length;
        for (var j = 0; j < count; j += 2)
        {
            var stream = CounterRng.Bits(rbase, CounterRng.Competitor + (ulong)j);
            double u, v, s;
            var attempt = 0UL;
            do
            {
                var bits = CounterRng.Mix(stream + attempt++ * 0x9E3779B97F4A7C15UL);
                u = ((bits >> 32) + 0.5) * (2.0 / 4294967296.0) - 1;
                v = ((bits & 0xFFFFFFFFUL) + 0.5) * (2.0 / 4294967296.0) - 1;
                s = u * u + v * v;
            }
            while (s >= 1);
            var factor = _w.CompetitorSigma * Math.Sqrt(-2 * Math.Log(s) / s);
            noise[j] = factor * u;
            if (j + 1 < count)
            {
                noise[j + 1] = factor * v;
            }
        }
    }

    /// <summary>Simulates request <paramref name="requestId"/> into row <paramref name="row"/> of the batch.</summary>
    public void Simulate(long requestId, long timestamp, DataSplit split, RequestBatch b, int row)
    {
        var w = _w;
        var k = _k;
        var rbase = CounterRng.RequestBase(_key, requestId);
        var (user, site, slot) = DrawContext(rbase);
        var hour = (int)(timestamp / 3600 % 24);

        var candidates = b.Candidates.AsSpan(row * _n, _n);
        Span<float> scores = stackalloc float[MaxStages];
        var logq = b.LoggingQ.AsSpan(row * k, k);
        var action = Choose(rbase, user, hour, site, slot, candidates, scores, logq, out var pscoreAd);
        var ad = candidates[action];

        var m = DrawMultiplier(rbase);

        var estimatedRate = 1.0;
        for (var stage = 0; stage < k; stage++)
        {
            estimatedRate *= logq[stage];
        }
        var logBidBase = w.AdLogValue[ad] + Math.Log(estimatedRate);
        var logBid = logBidBase + w.LogMultiplier[m];
        var bid = Math.Exp(logBid);

        // Truth: stage rates with the hidden trait; the competitors key on the x-only value signal.
        ref var record = ref w.UserRecord[user * w.RecordStride + w.RecordHidden];
        var hidden = w.HiddenTrait(record, rbase);
        var q = b.Q.AsSpan(row * k, k);
        var explained = b.ExplainedQ.AsSpan(row * k, k);
        var outcome = b.Outcome.AsSpan(row * k, k);
        for (var stage = 0; stage < k; stage++)
        {
            var p = WorldModel.Sigmoid(w.Beta[stage] + w.Signal * scores[stage] + w.Gamma * hidden);
            if (stage == 0)
            {
                p *= w.SlotExamination[slot];
            }
            q[stage] = p;
            explained[stage] = p;
            outcome[stage] = CounterRng.Uniform(CounterRng.Bits(rbase, CounterRng.Outcome + (ulong)stage)) < p;
        }
        var shift = w.Kappa == 0 ? 0 : w.Kappa * (w.LogValueSignal(scores[..k], slot, w.Gamma == 0 ? q : default) - w.ValueMean) / w.ValueSd;
        var winPropensity = w.WinPropensity(logBidBase, shift, out var atBid, m);

        // Competitors' log bids: μ_j + κ·v(x) + σ·ε_j.
        var mu = w.CompetitorMu;
        Span<double> noise = stackalloc double[mu.Length];
        CompetitorNoise(rbase, noise);
        var maxLog = double.NegativeInfinity;
        for (var j = 0; j < mu.Length; j++)
        {
            maxLog = Math.Max(maxLog, mu[j] + shift + noise[j]);
        }
        var market = Math.Exp(maxLog);
        var won = logBid > maxLog && logBid >= w.LogReserve;
        if (won && w.HasRequestHidden)
        {
            // E[q_k | x] feeds only the impressions' statistics, so it is computed for them alone (32 rates a stage).
            for (var stage = 0; stage < k; stage++)
            {
                explained[stage] = w.ExplainedRate(w.Beta[stage] + w.Signal * scores[stage] + w.Gamma * w.HiddenUserWeight * record)
                    * (stage == 0 ? w.SlotExamination[slot] : 1);
            }
        }

        b.RequestId[row] = requestId;
        b.Timestamp[row] = timestamp;
        b.Split[row] = split;
        b.Hour[row] = hour;
        b.Site[row] = site;
        b.Slot[row] = slot;
        b.User[row] = user;
        b.Age[row] = (int)Unsafe.Add(ref record, 1);
        b.Gender[row] = (int)Unsafe.Add(ref record, 2);
        b.Region[row] = (int)Unsafe.Add(ref record, 3);
        b.Device[row] = (int)Unsafe.Add(ref record, 4);
        b.Segment[row] = (int)Unsafe.Add(ref record, 5);
        b.Ad[row] = ad;
        b.Campaign[row] = w.AdCampaign[ad];
        b.Advertiser[row] = w.AdAdvertiser[ad];
        b.Category[row] = w.AdCategory[ad];
        b.Creative[row] = w.AdCreative[ad];
        b.Action[row] = action;
        b.MultiplierIndex[row] = m;
        b.BidMultiplier[row] = w.Multiplier[m];
        b.Bid[row] = bid;
        b.PscoreAd[row] = pscoreAd;
        b.PscoreMultiplier[row] = w.MultiplierProbability[m];
        b.ValuePerConversion[row] = w.AdValue[ad];
        b.WinPropensity[row] = winPropensity;
        b.WinProbabilityAtBid[row] = atBid;
        b.Won[row] = won;
        b.MarketPrice[row] = market;
        b.Price[row] = won ? (w.SecondPrice ? Math.Max(market, w.Reserve) : bid) : 0.0;
        b.HiddenTrait[row] = hidden;
    }
}
