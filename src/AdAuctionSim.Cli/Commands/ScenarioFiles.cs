using System.Globalization;
using AdAuctionSim.Cli.Terminal;
using AdAuctionSim.Simulation.Scenarios;
using AdAuctionSim.Simulation.World;

namespace AdAuctionSim.Cli.Commands;

/// <summary>Loading a scenario and building its world so that every error names the file as the user typed it.</summary>
internal static class ScenarioFiles
{
    public static Scenario Load(CliTerminal terminal, string file)
    {
        try
        {
            return ScenarioLoader.Load(terminal.Resolve(file));
        }
        catch (ScenarioValidationException e) when (e.File != file)
        {
            throw new ScenarioValidationException(file, e.Errors);
        }
    }

    /// <summary>Builds the world; checks that need it (a reserve price above the bids) fail here, naming <paramref name="file"/>.</summary>
    public static WorldModel BuildWorld(Scenario scenario, string file, CancellationToken cancellation)
    {
        try
        {
            return WorldModel.Build(scenario, cancellation);
        }
        catch (ScenarioValidationException e) when (e.File != file)
        {
            throw new ScenarioValidationException(file, e.Errors);
        }
    }

    /// <summary>The resolved scenario in a few lines: (section, what it says).</summary>
    public static IReadOnlyList<(string Section, string Text)> Describe(Scenario s)
    {
        var t = s.Traffic;
        var a = s.Auction;
        var p = s.LoggingPolicy;
        return
        [
            ("seed", s.Seed.ToString(CultureInfo.InvariantCulture)),
            ("traffic", $"{N(t.Requests)} requests over {F(t.Days)} days; {N(t.Users)} users (zipf {F(t.UserZipf)}), "
                + $"{N(t.Ads)} ads ({N(t.Advertisers)} advertisers x {N(t.CampaignsPerAdvertiser)} campaigns x {N(t.AdsPerCampaign)} ads), "
                + $"{N(t.CandidateAds)} candidates per request, {N(t.Sites)} sites (zipf {F(t.SiteZipf)}), {N(t.Slots)} slots"),
            ("funnel", string.Join(" -> ", s.Funnel.Stages.Select(st => $"{st.Name} {F(st.Rate)}")) + $"; signal {F(s.Funnel.Signal)}"),
            ("bias", $"click-CVR correlation {F(s.Bias.ClickCvrCorrelation)}, hidden confounding {F(s.Bias.HiddenConfounding)} "
                + $"(per-request share {F(s.Bias.HiddenPerRequest)}), win-value correlation {F(s.Bias.WinValueCorrelation)}, position effect {F(s.Bias.PositionEffect)}"),
            ("auction", $"{(a.Type == AuctionType.SecondPrice ? "second-price" : "first-price")}, {N(a.Competitors)} competitors "
                + $"(spread {F(a.CompetitorSpread)}, noise {F(a.CompetitorNoise)}), target win rate {F(a.TargetWinRate)}, reserve price {F(a.ReservePrice)}"),
            ("policy", $"estimate quality {F(p.EstimateQuality)}, temperature {F(p.Temperature)}, bid multipliers "
                + $"{string.Join("/", p.BidMultipliers.Select(F))} with probabilities {string.Join("/", p.MultiplierProbabilities.Select(F))}"),
            ("values", $"mean value per conversion {F(s.Values.MeanValuePerConversion)}, spread {F(s.Values.ValueSpread)}"),
            ("split", $"train {F(s.Split.Train)}, validation {F(s.Split.Validation)}, test {F(s.Split.Test)} (by simulated time)"),
        ];
    }

    public static string F(double v) => v.ToString("0.######", CultureInfo.InvariantCulture);

    public static string N(long v) => v.ToString(CultureInfo.InvariantCulture);
}
