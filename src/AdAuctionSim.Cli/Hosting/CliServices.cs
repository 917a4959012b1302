using AdAuctionSim.Evaluation;
using AdAuctionSim.Evaluation.Runs;
using Microsoft.Extensions.DependencyInjection;

namespace AdAuctionSim.Cli.Hosting;

/// <summary>
/// Services the commands take from dependency injection, beside each command's arguments and the terminal.
/// </summary>
/// <remarks>
/// <c>adsim run</c> takes the last <see cref="IRunEvaluator"/> registered (tests register a fake one after this), and
/// summarises across repeats with <see cref="AdAuctionSim.Evaluation.Statistics.MetricStatistics"/>.
/// </remarks>
internal static class CliServices
{
    public static IServiceCollection AddAdsimServices(this IServiceCollection services)
    {
        services.AddSingleton<IRunEvaluator>(_ => new RunEvaluator());
        return services;
    }
}
