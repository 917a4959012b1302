using AdAuctionSim.Reports.Statistics;
using Microsoft.Extensions.DependencyInjection;

namespace AdAuctionSim.Cli.Hosting;

/// <summary>
/// Services the commands take from dependency injection, beside each command's arguments and the terminal.
/// </summary>
/// <remarks>
/// The run evaluator belongs here too, as <c>services.AddSingleton&lt;IRunEvaluator, TheEvaluator&gt;();</c>:
/// <c>adsim run</c> takes the last <see cref="AdAuctionSim.Evaluation.IRunEvaluator"/> registered and stops with a clear
/// error before any work when there is none. Registering another <see cref="IMetricSummarizer"/> after the line below
/// replaces the Student-t summaries (the container resolves the last registration).
/// </remarks>
internal static class CliServices
{
    public static IServiceCollection AddAdsimServices(this IServiceCollection services)
    {
        services.AddSingleton<IMetricSummarizer, StudentTMetricSummarizer>();
        return services;
    }
}
