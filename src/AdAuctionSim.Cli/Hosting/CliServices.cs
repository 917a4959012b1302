using AdAuctionSim.Reports.Statistics;
using Microsoft.Extensions.DependencyInjection;

namespace AdAuctionSim.Cli.Hosting;

/// <summary>
/// Services the commands take from dependency injection, beside each command's arguments and the terminal. The run
/// evaluator (<see cref="AdAuctionSim.Evaluation.IRunEvaluator"/>) is registered here too: <c>adsim run</c> takes the last
/// one registered and stops with a clear error before any work when there is none.
/// </summary>
internal static class CliServices
{
    public static IServiceCollection AddAdsimServices(this IServiceCollection services)
    {
        services.AddSingleton<IMetricSummarizer, StudentTMetricSummarizer>();
        return services;
    }
}
