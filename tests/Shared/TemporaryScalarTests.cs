using TorchSharp;
using static TorchSharp.torch;

namespace AdAuctionSim.Tests.Shared;

/// <summary>
/// No code of this build hands libtorch a Scalar that the GC may free during the call (see <see cref="TemporaryScalarScanner"/>).
/// </summary>
public class TemporaryScalarTests
{
    [Fact]
    public void No_assembly_of_the_build_passes_libtorch_a_Scalar_nothing_holds()
    {
        var unsafeTorchSharp = TemporaryScalarScanner.UnsafeTorchSharpMembers(typeof(torch).Assembly.Location);
        // TorchSharp 0.107's Tensor + Tensor makes its alpha = 1 on the fly, and Adam's step its β and lr Scalars; if an
        // upgrade holds them, these lists shrink.
        Assert.Contains("TorchSharp.torch/Tensor::op_Addition(TorchSharp.torch/Tensor,TorchSharp.torch/Tensor)", unsafeTorchSharp.Methods);
        Assert.Contains("TorchSharp.Modules.Adam", unsafeTorchSharp.Types);

        var assemblies = Directory.GetFiles(AppContext.BaseDirectory, "AdAuctionSim*.dll")
            .Concat(Directory.GetFiles(AppContext.BaseDirectory, "adsim.dll"))
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.Contains(assemblies, a => Path.GetFileName(a).StartsWith("AdAuctionSim.Models", StringComparison.Ordinal));
        var findings = assemblies
            .SelectMany(a => TemporaryScalarScanner.Findings(a, unsafeTorchSharp).Select(f => $"{Path.GetFileName(a)}: {f}"))
            .ToList();

        // The deliberate mistakes below prove the scanner sees each kind, and the using local that it accepts it.
        string[] mistakes = [nameof(UnsafeOnPurpose), nameof(UnheldConversionOnPurpose), nameof(PlainLocalOnPurpose)];
        var controls = findings.Where(f => mistakes.Any(m => f.Contains($"::{m}(", StringComparison.Ordinal))).ToList();
        Assert.Contains(controls, f => f.EndsWith("TorchSharp.torch/Tensor::op_Multiply(TorchSharp.torch/Tensor,Double)", StringComparison.Ordinal));
        Assert.Contains(controls, f => f.Contains($"::{nameof(UnheldConversionOnPurpose)}(", StringComparison.Ordinal)
            && f.EndsWith("TorchSharp.Scalar::op_Implicit(Double)", StringComparison.Ordinal));
        Assert.Contains(controls, f => f.Contains($"::{nameof(PlainLocalOnPurpose)}(", StringComparison.Ordinal));
        Assert.DoesNotContain(findings, f => f.Contains($"::{nameof(UsingLocal)}(", StringComparison.Ordinal));
        // The one deliberate use: TorchSharp's own Adam as the reference the product's FlatAdam is compared with.
        var reference = findings.Where(f => f.Contains("TrainerTests::The_flat_dense_adam_follows_torch_adam", StringComparison.Ordinal)).ToList();
        var rest = findings.Except(controls).Except(reference).ToList();
        Assert.True(rest.Count == 0, $"{rest.Count} calls pass libtorch a Scalar nothing holds (hold it in a field, or in a using local):\n{string.Join("\n", rest)}");
    }

    /// <summary>Never called: Tensor * double makes its Scalar inside TorchSharp, unheld.</summary>
    internal static Tensor UnsafeOnPurpose(Tensor x) => x * 0.5;

    /// <summary>Never called: the implicit Scalar for clamp_min is held by nothing.</summary>
    internal static Tensor UnheldConversionOnPurpose(Tensor x) => x.clamp_min(1e-6);

    /// <summary>Never called: a plain local is dead, to the JIT, once its last use has read it.</summary>
    internal static Tensor PlainLocalOnPurpose(Tensor x)
    {
        var scale = 0.5.ToScalar();
        return x.mul(scale);
    }

    /// <summary>Never called: the correct form, a using local, alive until its Dispose at the end of the scope.</summary>
    internal static Tensor UsingLocal(Tensor x)
    {
        using var scale = 0.5.ToScalar();
        return x.mul(scale);
    }
}
