using AdAuctionSim.Simulation.Output;
using Parquet;

namespace AdAuctionSim.Simulation.Tests;

/// <summary>
/// The per-column codecs: Snappy for ids, labels, split names and the low-cardinality doubles; none for continuous
/// doubles. The writer sets the codec through the options object that Parquet.Net reads as each column chunk is
/// written, so this guards against a package upgrade that changes that behaviour silently.
/// </summary>
public sealed class OutputCodecTests(SmallOutputFixture small) : IClassFixture<SmallOutputFixture>
{
    [Theory]
    [InlineData("impressions.parquet")]
    [InlineData("lost_bids.parquet")]
    [InlineData("truth.parquet")]
    public async Task EveryColumnChunkUsesItsIntendedCodec(string file)
    {
        var path = Path.Combine(small.Result.Directory, file);
        await using var stream = File.OpenRead(path);
        await using var reader = await ParquetReader.CreateAsync(stream);
        var fields = reader.Schema.DataFields;
        Assert.True(reader.RowGroupCount > 0);
        var compressed = 0;
        var plain = 0;
        foreach (var group in reader.Metadata!.RowGroups)
        {
            for (var c = 0; c < fields.Length; c++)
            {
                var field = fields[c];
                var expected = field.ClrType == typeof(double) && !ParquetTableWriter.LowCardinalityDoubles.Contains(field.Name)
                    ? "UNCOMPRESSED"
                    : "SNAPPY";
                Assert.Equal(expected, group.Columns[c].MetaData!.Codec.ToString().ToUpperInvariant());
                (expected == "SNAPPY" ? ref compressed : ref plain)++;
            }
        }
        Assert.True(compressed > 0 && plain > 0, $"{file}: both codecs in use");
    }
}
