using TorchSharp;

namespace AdAuctionSim.Models.Core;

/// <summary>
/// Scalars that live for the whole process, for libtorch calls that take a Scalar argument.
/// </summary>
/// <remarks>
/// A Scalar made implicitly for one call (<c>1 - x</c>, <c>clamp_min(1)</c>) can be finalized by the GC while libtorch is
/// still reading it: TorchSharp does not keep the temporary alive across the native call. The symptom is a rare
/// "Expected false to be true" from <c>c10::Scalar::toFloat</c>; it failed a trainer test in two of eleven full test runs
/// on the 2-core development machine. Code on the training and prediction paths passes these, or Scalars it holds itself
/// for the call's duration, instead.
/// </remarks>
internal static class HeldScalars
{
    public static readonly Scalar Zero = 0.0.ToScalar();
    public static readonly Scalar One = 1.0.ToScalar();
}
