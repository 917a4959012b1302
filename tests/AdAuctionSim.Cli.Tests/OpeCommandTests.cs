using System.Globalization;
using AdAuctionSim.Cli.Runs;
using AdAuctionSim.Evaluation.OffPolicy;
using AdAuctionSim.Simulation.OffPolicy;
using AdAuctionSim.Simulation.Scenarios;

namespace AdAuctionSim.Cli.Tests;

/// <summary>A tiny scenario with an <c>ope</c> section whose policies score with the truth and the logging model (nothing to train).</summary>
internal static class OpeScenarios
{
    public static string Tiny(string ope = DefaultOpe, string extra = "") => $$"""
        {
          // a tiny off-policy study for the tests
          "name": "tiny-ope",
          "seed": 9,
          "traffic": { "requests": 12000, "users": 1500, "advertisers": 5, "campaignsPerAdvertiser": 3, "adsPerCampaign": 4, "sites": 30, "candidateAds": 3 },
          "funnel": { "stages": [ { "name": "click", "rate": 0.08 }, { "name": "convert", "rate": 0.25 } ] },
          "bias": { "winValueCorrelation": 0.8 },
          "training": { "threads": 1 },
          {{extra}}
          "ope": {{ope}}
        }
        """;

    public const string DefaultOpe = """
        {
          "bootstrap": 20,
          "policies": [
            { "name": "greedy-logging", "scores": "logging", "ad": "greedy", "bid": "own", "bidScale": 2 },
            { "name": "softmax-truth", "scores": "truth", "ad": "softmax", "temperature": 0.5, "bid": "logging" },
            { "name": "top-bid", "ad": "uniform", "bid": "fixed", "multiplier": 8 }
          ]
        }
        """;
}

/// <summary><c>adsim ope</c> end to end on a tiny scenario, twice (one and two threads).</summary>
public sealed class OpeRunFixture : IDisposable
{
    internal CliSandbox Sandbox { get; } = new();

    public OpeRunFixture()
    {
        Sandbox.Write("ope.json", OpeScenarios.Tiny());
        One = Sandbox.Run("ope", "ope.json", "--out", "one", "--threads", "1");
        Two = Sandbox.Run("ope", "ope.json", "--out", "two", "--threads", "2");
    }

    internal CliResult One { get; }

    internal CliResult Two { get; }

    public void Dispose() => Sandbox.Dispose();
}

/// <summary>
/// <c>adsim ope</c> and <c>adsim export-obp</c>: the report's files, agreement of the exact truth with its Monte Carlo
/// cross-check, IPS of the logging policy equal to the logged average reward, byte-identical output for any thread count,
/// and bad input (exit 2, nothing written).
/// </summary>
[Collection(TorchTrainingCollection.Name)]
public sealed class OpeCommandTests(OpeRunFixture run) : IClassFixture<OpeRunFixture>
{
    private static string[][] Csv(string path) =>
        [.. File.ReadAllLines(path).Skip(1).Where(l => l.Length > 0).Select(l => l.Split(','))];

    private static double D(string s) => double.Parse(s, CultureInfo.InvariantCulture);

    /// <summary>Simulates 3000 requests of the tiny scenario into <c>sim</c> and exports them with the given reward.</summary>
    private static void ExportTiny(CliSandbox sandbox, string reward)
    {
        sandbox.Write("tiny.json", Scenarios.Tiny);
        var simulate = sandbox.Run("simulate", "tiny.json", "--out", "sim", "--requests", "3000", "--threads", "1");
        Assert.True(simulate.ExitCode == 0, simulate.ToString());
        var export = sandbox.Run("export-obp", "sim", "--reward", reward);
        Assert.True(export.ExitCode == 0, export.ToString());
    }

    [Fact]
    public void Ope_writes_the_report_with_every_policy_and_estimator()
    {
        Assert.True(run.One.ExitCode == 0, run.One.ToString());
        var folder = run.Sandbox.PathOf("one");
        foreach (var file in (string[])["report.html", "report.md", "ope.csv", "ope_summary.csv", "policy_values.csv"])
        {
            Assert.True(File.Exists(Path.Combine(folder, file)), file);
        }
        Assert.False(Directory.Exists(Path.Combine(folder, "work")));
        Assert.Equal(4, Directory.GetFiles(Path.Combine(folder, "plots"), "*.png").Length);
        var rows = Csv(Path.Combine(folder, "ope.csv"));
        Assert.Equal(4 * 7, rows.Length);
        Assert.Equal(["logging", "greedy-logging", "softmax-truth", "top-bid"], rows.Select(r => r[3]).Distinct());
        var html = File.ReadAllText(Path.Combine(folder, "report.html"));
        Assert.Contains("Off-policy evaluation", html, StringComparison.Ordinal);
        Assert.Contains("data:image/png;base64,", html, StringComparison.Ordinal);
        Assert.Contains("switch-dr", File.ReadAllText(Path.Combine(folder, "report.md")), StringComparison.Ordinal);
        Assert.DoesNotContain(run.Sandbox.Entries(), e => e.Contains(".partial-", StringComparison.Ordinal));
    }

    [Fact]
    public void Ips_of_the_logging_policy_is_the_logged_average_reward_its_monte_carlo_replay()
    {
        Assert.True(run.One.ExitCode == 0, run.One.ToString());
        var folder = run.Sandbox.PathOf("one");
        var ips = Csv(Path.Combine(folder, "ope.csv")).Single(r => r[3] == "logging" && r[4] == "ips");
        var logging = Csv(Path.Combine(folder, "policy_values.csv")).Single(r => r[3] == "logging");
        // The logging policy's Monte Carlo run replays its own logged draws: the logged average reward.
        Assert.Equal(D(logging[10]), D(ips[5]), 1e-12);
    }

    [Fact]
    public void Exact_true_values_agree_with_the_monte_carlo_cross_check()
    {
        Assert.True(run.One.ExitCode == 0, run.One.ToString());
        foreach (var r in Csv(run.Sandbox.PathOf("one/policy_values.csv")))
        {
            var (truth, mc, half) = (D(r[9]), D(r[10]), D(r[11]));
            Assert.True(Math.Abs(mc - truth) <= half, $"{r[3]}: exact {truth} outside the Monte Carlo interval {mc} ± {half}");
        }
        Assert.Contains("agree with the Monte Carlo cross-check", run.One.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void The_same_scenario_gives_byte_identical_tables_for_any_thread_count()
    {
        Assert.True(run.Two.ExitCode == 0, run.Two.ToString());
        foreach (var file in (string[])["ope.csv", "ope_summary.csv", "policy_values.csv"])
        {
            Assert.Equal(File.ReadAllBytes(run.Sandbox.PathOf("one/" + file)), File.ReadAllBytes(run.Sandbox.PathOf("two/" + file)));
        }
    }

    [Fact]
    public void An_existing_output_folder_is_bad_input_without_force()
    {
        Assert.True(run.One.ExitCode == 0, run.One.ToString());
        var before = File.ReadAllBytes(run.Sandbox.PathOf("one/ope.csv"));

        var again = run.Sandbox.Run("ope", "ope.json", "--out", "one");

        Assert.Equal(2, again.ExitCode);
        Assert.Contains("already exists", again.Error, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllBytes(run.Sandbox.PathOf("one/ope.csv")));
    }

    public static TheoryData<string, string, string> BadSections => new()
    {
        { "unknown-score-model", """{ "policies": [ { "name": "p", "scores": "no-such-model" } ] }""", "ope.policies[0].scores" },
        { "fixed-multiplier-not-logged", """{ "policies": [ { "name": "p", "ad": "uniform", "bid": "fixed", "multiplier": 3 } ] }""", "ope.policies[0].multiplier" },
        { "unknown-ad-rule", """{ "policies": [ { "name": "p", "ad": "best" } ] }""", "ope.policies[0].ad" },
        { "reserved-name", """{ "policies": [ { "name": "logging", "ad": "uniform", "bid": "logging" } ] }""", "ope.policies[0].name" },
        { "missing-name", """{ "policies": [ { "ad": "uniform", "bid": "logging" } ] }""", "ope.policies[0].name" },
        { "unknown-reward", """{ "reward": "profit" }""", "ope.reward" },
        { "negative-clip", """{ "clip": -1 }""", "ope.clip" },
        { "unknown-field", """{ "estimator": "ips" }""", "ope.estimator" },
        { "unknown-reward-model", """{ "rewardModel": "oracle-ish" }""", "ope.rewardModel" },
    };

    [Theory]
    [MemberData(nameof(BadSections))]
    public void A_bad_ope_section_exits_2_naming_the_file_and_field_and_writes_nothing(string name, string section, string field)
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("bad.json", OpeScenarios.Tiny(section));
        var before = sandbox.Entries();

        var result = sandbox.Run("ope", "bad.json", "--out", "out");

        Assert.True(result.ExitCode == 2, $"{name}: {result}");
        Assert.Contains("bad.json", result.Error, StringComparison.Ordinal);
        Assert.Contains(field, result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Error, StringComparison.Ordinal);
        Assert.Equal(before, sandbox.Entries());
    }

    /// <summary>Kaplan–Meier needs second-price prices: asked for on a first-price auction, the scenario is refused up front.</summary>
    [Theory]
    [InlineData("ope.winModel", """{ "winModel": "km" }""", "ipw-escm2", "censored-lognormal")]
    [InlineData("training.winPropensity", """{ "winModel": "classifier" }""", "ipw-escm2", "km")]
    public void Kaplan_meier_on_a_first_price_auction_is_bad_input_naming_the_field(string field, string ope, string model, string winPropensity)
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("first.json", $$"""
            {
              "name": "first", "seed": 3,
              "traffic": { "requests": 5000 },
              "auction": { "type": "first-price" },
              "models": ["{{model}}"],
              "training": { "winPropensity": "{{winPropensity}}" },
              "ope": {{ope}}
            }
            """);
        var before = sandbox.Entries();

        var result = sandbox.Run("scenario", "validate", "first.json");

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains($"{field}: \"km\" needs a second-price auction", result.Error + result.Out, StringComparison.Ordinal);
        Assert.Equal(before, sandbox.Entries());
    }

    [Fact]
    public void Scenario_validate_summarises_the_ope_section()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("ope.json", OpeScenarios.Tiny());

        var result = sandbox.Run("scenario", "validate", "ope.json");

        Assert.True(result.ExitCode == 0, result.ToString());
        var line = Assert.Single(result.Out.Split('\n'), l => l.TrimStart().StartsWith("ope ", StringComparison.Ordinal));
        Assert.Contains("4 policies (logging, greedy-logging, softmax-truth, top-bid), reward value on the test split", line, StringComparison.Ordinal);
    }

    [Fact]
    public void A_scenario_without_an_ope_section_is_bad_input()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("plain.json", Scenarios.Tiny);

        var result = sandbox.Run("ope", "plain.json");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("plain.json", result.Error, StringComparison.Ordinal);
        Assert.Contains("ope", result.Error, StringComparison.Ordinal);
        Assert.Equal(["plain.json"], sandbox.Entries());
    }

    [Fact]
    public void Export_obp_writes_bandit_feedback_with_every_request_and_its_logged_pscore()
    {
        using var sandbox = new CliSandbox();

        ExportTiny(sandbox, "conversions");

        foreach (var file in (string[])["bandit_feedback.parquet", "bandit_feedback.csv", "bandit_feedback.json"])
        {
            Assert.True(File.Exists(sandbox.PathOf("sim/obp/" + file)), file);
        }
        var lines = File.ReadAllLines(sandbox.PathOf("sim/obp/bandit_feedback.csv"));
        var header = lines[0].Split(',');
        Assert.Equal(["round", "request_id", "split", "action", "action_ad", "action_multiplier", "slot", "reward", "pscore"], header.Take(9));
        Assert.Equal(3001, lines.Length);
        var rows = lines.Skip(1).Select(l => l.Split(',')).ToList();
        Assert.All(rows, r => Assert.True(D(r[8]) is > 0 and <= 1));
        Assert.All(rows, r => Assert.Equal(int.Parse(r[4], CultureInfo.InvariantCulture) * 4 + int.Parse(r[5], CultureInfo.InvariantCulture),
            int.Parse(r[3], CultureInfo.InvariantCulture)));
        Assert.All(rows.Where(r => r[9] == "0"), r => Assert.Equal("0", r[7]));
        Assert.Contains("\"n_actions\"", File.ReadAllText(sandbox.PathOf("sim/obp/bandit_feedback.json")), StringComparison.Ordinal);
    }

    /// <summary>
    /// The surplus reward counts what a bid costs: its true value is the conversion value less the exact expected
    /// payment, so the logger's 8× bid level, which buys more value than the logging policy, earns less surplus; the
    /// exact values agree with the Monte Carlo replay, IPS of the logging policy is its logged average surplus, and the
    /// fitted reward model subtracts the win model's expected payment.
    /// </summary>
    [Fact]
    public void Ope_on_the_surplus_subtracts_what_each_bid_costs()
    {
        using var sandbox = new CliSandbox();
        // A reserve of 0.05 binds: some requests' every bid level is below it, so their lost bids log a win propensity of 0.
        sandbox.Write("surplus.json", OpeScenarios.Tiny("""
            {
              "reward": "surplus",
              "bootstrap": 10,
              "policies": [ { "name": "top-bid", "ad": "logging", "bid": "fixed", "multiplier": 8 } ]
            }
            """, extra: "\"auction\": { \"reservePrice\": 0.05 },"));
        var simulate = sandbox.Run("simulate", "surplus.json", "--out", "sim", "--format", "csv", "--threads", "1");
        Assert.True(simulate.ExitCode == 0, simulate.ToString());
        var lost = File.ReadAllLines(sandbox.PathOf("sim/lost_bids.csv"));
        var pi = Array.IndexOf(lost[0].Split(','), "win_propensity");
        Assert.Contains(lost.Skip(1), l => D(l.Split(',')[pi]) == 0);

        var result = sandbox.Run("ope", "surplus.json", "--out", "out", "--threads", "1");

        Assert.True(result.ExitCode == 0, result.ToString());
        var values = Csv(sandbox.PathOf("out/policy_values.csv"));
        foreach (var r in values)
        {
            var (value, cost, truth, mc, half) = (D(r[7]), D(r[8]), D(r[9]), D(r[10]), D(r[11]));
            Assert.Equal(value - cost, truth, 1e-12);
            Assert.True(Math.Abs(mc - truth) <= half, $"{r[3]}: exact {truth} outside the Monte Carlo interval {mc} ± {half}");
        }
        var logging = values.Single(r => r[3] == "logging");
        var top = values.Single(r => r[3] == "top-bid");
        Assert.True(D(top[7]) > D(logging[7]), $"the 8x bids buy {top[7]} value per request against the logger's {logging[7]}");
        Assert.True(D(top[9]) < D(logging[9]), $"the 8x bids earn a surplus of {top[9]} against the logger's {logging[9]}");
        var ips = Csv(sandbox.PathOf("out/ope.csv")).Single(r => r[3] == "logging" && r[4] == "ips");
        Assert.Equal(D(logging[10]), D(ips[5]), 1e-12);
        var fact = Assert.Single(File.ReadAllLines(sandbox.PathOf("out/report.md")), l => l.StartsWith("| reward model |", StringComparison.Ordinal));
        Assert.Contains("less the expected payment Ĉ(b_a", fact, StringComparison.Ordinal);
    }

    [Fact]
    public void Export_obp_with_the_surplus_reward_subtracts_the_price_of_every_won_request()
    {
        using var sandbox = new CliSandbox();

        ExportTiny(sandbox, "surplus");

        var lines = File.ReadAllLines(sandbox.PathOf("sim/obp/bandit_feedback.csv"));
        var header = lines[0].Split(',');
        int Column(string name) => Array.IndexOf(header, name);
        var rows = lines.Skip(1).Select(l => l.Split(',')).ToList();
        foreach (var r in rows)
        {
            var won = r[Column("won")] == "1";
            var converted = r[Column("conversion")] == "1";
            var expected = (converted ? D(r[Column("value_per_conversion")]) : 0) - (won ? D(r[Column("price")]) : 0);
            Assert.Equal(expected, D(r[Column("reward")]), 1e-9);
        }
        Assert.Contains(rows, r => D(r[Column("reward")]) < 0);
        Assert.Contains("surplus", File.ReadAllText(sandbox.PathOf("sim/obp/bandit_feedback.json")), StringComparison.Ordinal);
    }

    [Fact]
    public void Export_obp_of_a_missing_folder_exits_2_and_writes_nothing()
    {
        using var sandbox = new CliSandbox();

        var result = sandbox.Run("export-obp", "nowhere");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("nowhere", result.Error, StringComparison.Ordinal);
        Assert.Empty(sandbox.Entries());
    }
}

/// <summary><c>adsim run</c> honours an <c>ope</c> section: a policy scored by a trained model, and the model as reward model.</summary>
[Collection(TorchTrainingCollection.Name)]
public sealed class RunOpeSectionTests
{
    [Fact]
    public void A_run_with_an_ope_section_values_a_model_policy_and_reports_it()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("study.json", OpeScenarios.Tiny("""
            {
              "rewardModel": "single-task",
              "bootstrap": 10,
              "policies": [ { "name": "greedy-model", "scores": "single-task", "ad": "greedy", "bid": "own" } ]
            }
            """, """
            "models": ["single-task"],
            "training": { "epochs": 1, "batchSize": 1024, "threads": 1 },
            """).Replace("\"training\": { \"threads\": 1 },", "", StringComparison.Ordinal));

        var result = RunCli.Run(sandbox, "run", "study.json");

        Assert.True(result.ExitCode == 0, result.ToString());
        var folder = RunCli.RunFolders(sandbox.PathOf("reports")).Single();
        var rows = File.ReadAllLines(Path.Combine(folder, "ope.csv")).Skip(1).Select(l => l.Split(',')).ToList();
        Assert.Equal(2 * 7, rows.Count);
        Assert.Contains(rows, r => r[3] == "greedy-model" && r[4] == "dm");
        Assert.True(File.Exists(Path.Combine(folder, "work", "p00", "r00", "ope.json")));
        var markdown = File.ReadAllText(Path.Combine(folder, "report.md"));
        Assert.Contains("## Off-policy evaluation", markdown, StringComparison.Ordinal);
        Assert.Contains("plots/ope-greedy-model.png", markdown, StringComparison.Ordinal);
    }

    [Fact]
    public void A_run_whose_ope_policy_scores_with_an_untrained_model_exits_2()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("study.json", OpeScenarios.Tiny("""{ "policies": [ { "name": "p", "scores": "esmm" } ] }""", "\"models\": [\"single-task\"],"));

        var result = RunCli.Run(sandbox, "run", "study.json");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("ope.policies[0].scores", result.Error, StringComparison.Ordinal);
        Assert.Contains("not trained by this run", result.Error, StringComparison.Ordinal);
        Assert.Equal(["study.json"], sandbox.Entries());
    }
}

/// <summary>
/// What the report says of the reward model is what <see cref="OpeUnit"/> does: with <c>rewardModel: "truth"</c> the
/// reward model is the simulator's E[R | x, a] (its true win probability), no win model is fitted, and neither the facts
/// nor the timings may say otherwise.
/// </summary>
[Collection(TorchTrainingCollection.Name)]
public sealed class OpeRewardModelTests
{
    private static OpePlan Plan(string rewardModel, OpeReward reward = OpeReward.Value, IReadOnlyList<string>? models = null) =>
        new(new OpeOptions { RewardModel = rewardModel, WinModel = "censored-lognormal" }, [TargetPolicy.Logging], reward, new EstimatorOptions(), models ?? []);

    [Fact]
    public void The_truth_reward_model_is_described_as_the_true_reward_function_without_a_win_model()
    {
        var truth = Plan("truth");

        foreach (var text in (string[])[truth.RewardModelText, truth.ScoresCovers("cpu"), truth.Describe()])
        {
            Assert.DoesNotContain("win model", text, StringComparison.Ordinal);
            Assert.DoesNotContain("Ŵ", text, StringComparison.Ordinal);
            Assert.DoesNotContain("censored-lognormal", text, StringComparison.Ordinal);
            Assert.DoesNotContain("fitting", text, StringComparison.Ordinal);
        }
        Assert.Contains("true E[R | x, a] = P(win | x, b_a)·r_K(x, j)·value_j", truth.RewardModelText, StringComparison.Ordinal);
        Assert.DoesNotContain("value_j", Plan("truth", OpeReward.Conversions).RewardModelText, StringComparison.Ordinal);
        Assert.Contains("scoring every candidate ad with single-task", Plan("truth", models: ["single-task"]).ScoresCovers("cpu"), StringComparison.Ordinal);
    }

    [Fact]
    public void A_fitted_reward_model_names_its_win_model_and_score_source()
    {
        var logging = Plan("logging");

        Assert.Contains("Ŵ(b_a | x) of the censored-lognormal win model", logging.RewardModelText, StringComparison.Ordinal);
        Assert.Contains("r̂_K(x, j) from logging", logging.RewardModelText, StringComparison.Ordinal);
        Assert.Contains("fitting the censored-lognormal win model", logging.ScoresCovers("cpu"), StringComparison.Ordinal);
    }

    [Fact]
    public void Ope_with_the_truth_as_reward_model_reports_it_and_dm_equals_the_truth()
    {
        using var sandbox = new CliSandbox();
        sandbox.Write("truth.json", OpeScenarios.Tiny("""
            {
              "rewardModel": "truth",
              "bootstrap": 10,
              "policies": [ { "name": "greedy-truth", "scores": "truth", "ad": "greedy", "bid": "own" } ]
            }
            """));

        var result = sandbox.Run("ope", "truth.json", "--out", "out", "--threads", "1");

        Assert.True(result.ExitCode == 0, result.ToString());
        var markdown = File.ReadAllLines(sandbox.PathOf("out/report.md"));
        var fact = Assert.Single(markdown, l => l.StartsWith("| reward model |", StringComparison.Ordinal));
        Assert.Contains("true E[R", fact, StringComparison.Ordinal);
        Assert.DoesNotContain("win model", fact, StringComparison.Ordinal);
        Assert.All(markdown.Where(l => l.StartsWith("| ope scores |", StringComparison.Ordinal)), l => Assert.DoesNotContain("win model", l, StringComparison.Ordinal));
        Assert.Contains(markdown, l => l.StartsWith("| ope scores |", StringComparison.Ordinal));
        // DM with the true reward function is the exact value (the report's facts describe what was used).
        foreach (var row in File.ReadAllLines(sandbox.PathOf("out/ope.csv")).Skip(1).Select(l => l.Split(',')).Where(r => r.Length > 8 && r[4] == "dm"))
        {
            var (dm, truth) = (double.Parse(row[5], CultureInfo.InvariantCulture), double.Parse(row[8], CultureInfo.InvariantCulture));
            Assert.True(Math.Abs(dm - truth) <= 1e-9 * Math.Abs(truth), $"{row[3]}: DM {dm} is not the truth {truth}");
        }
    }
}
