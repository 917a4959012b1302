using TorchSharp;
using static TorchSharp.torch;

namespace AdAuctionSim.Models.Core;

/// <summary>
/// Scalars that live for the whole process, and the tensor sums that need one, for libtorch calls that take a Scalar.
/// </summary>
/// <remarks>
/// TorchSharp 0.107 frees a Scalar's native value in its finalizer and does not keep the managed Scalar alive across the
/// native call it was made for. A Scalar made for one call, whether implicitly by our code (<c>x * 0.5</c>,
/// <c>clamp_min(1e-6)</c>) or inside TorchSharp (<c>a + b</c> and <c>add(b)</c> pass a fresh <c>alpha = 1</c>;
/// <c>1 - x</c>, <c>x + 1.0</c>, <c>x.square()</c> and <c>softplus</c> make theirs too), is unreachable once its handle
/// has been read, so a collection triggered by another thread can free it while libtorch reads it. Seen as
/// "For integral input tensors, argument alpha must not be a floating point number" from <c>LoggedDataset.Load</c> in
/// CI and as "Expected false to be true" from <c>c10::Scalar::toFloat</c>. Code passes Scalars held in fields (these,
/// or a module's own) or in <c>using</c> locals; <c>TemporaryScalarTests</c> scans every assembly's IL for the rest.
/// </remarks>
internal static class HeldScalars
{
    public static readonly Scalar Zero = 0.0.ToScalar();
    public static readonly Scalar One = 1.0.ToScalar();
    public static readonly Scalar Two = 2.0.ToScalar();
    public static readonly Scalar Half = 0.5.ToScalar();

    // The alpha of a plain sum: an integer 1, as TorchSharp's own a + b passes, so integer tensors add too.
    private static readonly Scalar UnitAlpha = 1.ToScalar();

    /// <summary><paramref name="a"/> + <paramref name="b"/>, with a held alpha (TorchSharp's <c>a + b</c> makes its own).</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, UnitAlpha);

    /// <summary><paramref name="a"/> + <paramref name="b"/> for a held <paramref name="b"/>.</summary>
    public static Tensor Plus(this Tensor a, Scalar b) => a.add(b, UnitAlpha);

    /// <summary>In-place <paramref name="a"/> += <paramref name="b"/>.</summary>
    public static Tensor PlusInPlace(this Tensor a, Tensor b) => a.add_(b, UnitAlpha);

    /// <summary>In-place <paramref name="a"/> += <paramref name="b"/> for a held <paramref name="b"/>.</summary>
    public static Tensor PlusInPlace(this Tensor a, Scalar b) => a.add_(b, UnitAlpha);

    /// <summary>1 − <paramref name="x"/>.</summary>
    public static Tensor OneMinus(this Tensor x) => x.neg().add_(One, UnitAlpha);

    /// <summary>softplus(x) = log(1 + eˣ) = −log σ(−x), without TorchSharp's softplus, which makes its β and threshold per call.</summary>
    public static Tensor Softplus(this Tensor x) => x.neg().log_sigmoid().neg();

    /// <summary><paramref name="x"/>², elementwise.</summary>
    public static Tensor Squared(this Tensor x) => x.mul(x);
}
