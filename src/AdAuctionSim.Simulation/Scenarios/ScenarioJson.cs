using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace AdAuctionSim.Simulation.Scenarios;

/// <summary>
/// Writes a resolved <see cref="Scenario"/> as the JSON that <see cref="ScenarioLoader"/> reads: every field, in the
/// loader's order and spelling, so that a manifest's scenario can be copied into a file and run again.
/// </summary>
/// <remarks>
/// The text is a pure function of the scenario (field order fixed, invariant culture, "\n" line ends, doubles in
/// their shortest round-trip form), so <c>Serialize(Parse(Serialize(s))) == Serialize(s)</c> and manifests that embed
/// it are byte-identical across runs and machines. Computed properties (depth, ad and campaign counts) are left out:
/// the loader does not accept them.
/// </remarks>
public static class ScenarioJson
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = true,
        NewLine = "\n",
        // Descriptions are free text: keep '+', '<', quotes and non-ASCII readable instead of \uXXXX escapes.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>
    /// The scenario as indented JSON with the loader's camelCase field names. Fields added after the format settled
    /// (<c>bias.hiddenPerRequest</c>) are written when they differ from their defaults, or always with
    /// <paramref name="allFields"/> (what a sweep walks and what <c>adsim scenario show</c> prints).
    /// </summary>
    /// <exception cref="ArgumentException">A number is NaN or infinite (no valid scenario has one).</exception>
    public static string Serialize(Scenario scenario, bool allFields = false)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            Write(w, scenario, allFields);
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Writes the scenario as one JSON object at the writer's current position (used to embed it in manifests).</summary>
    public static void Write(Utf8JsonWriter w, Scenario s, bool allFields = false)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(s);
        w.WriteStartObject();
        w.WriteString("name", s.Name);
        w.WriteString("description", s.Description);
        w.WriteNumber("seed", s.Seed);

        var t = s.Traffic;
        w.WriteStartObject("traffic");
        w.WriteNumber("requests", t.Requests);
        Number(w, "days", t.Days);
        w.WriteNumber("users", t.Users);
        Number(w, "userZipf", t.UserZipf);
        w.WriteNumber("advertisers", t.Advertisers);
        w.WriteNumber("campaignsPerAdvertiser", t.CampaignsPerAdvertiser);
        w.WriteNumber("adsPerCampaign", t.AdsPerCampaign);
        w.WriteNumber("candidateAds", t.CandidateAds);
        w.WriteNumber("sites", t.Sites);
        Number(w, "siteZipf", t.SiteZipf);
        w.WriteNumber("slots", t.Slots);
        Numbers(w, "hourProfile", t.HourProfile);
        w.WriteEndObject();

        var f = s.Funnel;
        w.WriteStartObject("funnel");
        w.WriteStartArray("stages");
        foreach (var stage in f.Stages)
        {
            w.WriteStartObject();
            w.WriteString("name", stage.Name);
            Number(w, "rate", stage.Rate);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        Number(w, "signal", f.Signal);
        w.WriteEndObject();

        var b = s.Bias;
        w.WriteStartObject("bias");
        Number(w, "clickCvrCorrelation", b.ClickCvrCorrelation);
        Number(w, "hiddenConfounding", b.HiddenConfounding);
        if (allFields || b.HiddenPerRequest != 0)
        {
            // Written when set (or asked for), so that scenarios resolved before the dial existed keep their text.
            Number(w, "hiddenPerRequest", b.HiddenPerRequest);
        }
        Number(w, "winValueCorrelation", b.WinValueCorrelation);
        Number(w, "positionEffect", b.PositionEffect);
        w.WriteEndObject();

        var a = s.Auction;
        w.WriteStartObject("auction");
        w.WriteString("type", AuctionTypeName(a.Type));
        w.WriteNumber("competitors", a.Competitors);
        Number(w, "competitorSpread", a.CompetitorSpread);
        Number(w, "competitorNoise", a.CompetitorNoise);
        Number(w, "targetWinRate", a.TargetWinRate);
        Number(w, "reservePrice", a.ReservePrice);
        w.WriteEndObject();

        var p = s.LoggingPolicy;
        w.WriteStartObject("loggingPolicy");
        Number(w, "estimateQuality", p.EstimateQuality);
        Number(w, "temperature", p.Temperature);
        Numbers(w, "bidMultipliers", p.BidMultipliers);
        Numbers(w, "multiplierProbabilities", p.MultiplierProbabilities);
        w.WriteEndObject();

        var v = s.Values;
        w.WriteStartObject("values");
        Number(w, "meanValuePerConversion", v.MeanValuePerConversion);
        Number(w, "valueSpread", v.ValueSpread);
        w.WriteEndObject();

        var sp = s.Split;
        w.WriteStartObject("split");
        Number(w, "train", sp.Train);
        Number(w, "validation", sp.Validation);
        Number(w, "test", sp.Test);
        w.WriteEndObject();

        w.WriteEndObject();
    }

    /// <summary>The scenario-file spelling of an auction type.</summary>
    public static string AuctionTypeName(AuctionType type) => type switch
    {
        AuctionType.SecondPrice => "second-price",
        AuctionType.FirstPrice => "first-price",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown auction type"),
    };

    private static void Number(Utf8JsonWriter w, string name, double value)
    {
        w.WritePropertyName(name);
        NumberValue(w, name, value);
    }

    private static void Numbers(Utf8JsonWriter w, string name, IReadOnlyList<double> values)
    {
        w.WriteStartArray(name);
        foreach (var value in values)
        {
            NumberValue(w, name, value);
        }
        w.WriteEndArray();
    }

    private static void NumberValue(Utf8JsonWriter w, string name, double value)
    {
        if (!double.IsFinite(value))
        {
            throw new ArgumentException($"scenario field {name} is {value.ToString(CultureInfo.InvariantCulture)}; JSON has no such number");
        }
        // "R" is the shortest text that parses back to the same double, so the loader reads the identical value.
        w.WriteRawValue(value.ToString("R", CultureInfo.InvariantCulture), skipInputValidation: true);
    }
}
