namespace AdAuctionSim.Cli;

/// <summary>Input a command found unusable after parsing (exit code 2). The message is shown as is.</summary>
internal sealed class CliInputException(string message) : Exception(message);
