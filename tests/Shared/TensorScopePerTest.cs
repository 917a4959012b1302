using System.Reflection;
using TorchSharp;
using Xunit.Sdk;

[assembly: AdAuctionSim.Tests.Shared.TensorScopePerTest]

namespace AdAuctionSim.Tests.Shared;

/// <summary>
/// Runs every test of the assembly inside a TorchSharp dispose scope, opened before the test method and disposed after
/// it on the same thread.
/// </summary>
/// <remarks>
/// TorchSharp 0.107 does not keep a tensor alive across the native call made on it: in
/// <c>x.index_select(0, rows).flatten().unique()</c> the flattened temporary is unreachable once its handle is passed, so a
/// garbage collection during <c>unique</c> can finalize it and libtorch then finds no tensor argument (seen once in CI, in
/// <c>TrainerTests</c>). A dispose scope holds every tensor made on its thread until it is disposed, so no temporary of a
/// test is finalized mid-call. The product's training and scoring paths hold theirs in their own scopes; tests build
/// tensors outside them. Class fixtures are built before the scope opens, so what they hold outlives it.
/// </remarks>
[AttributeUsage(AttributeTargets.Assembly)]
internal sealed class TensorScopePerTestAttribute : BeforeAfterTestAttribute
{
    [ThreadStatic]
    private static Stack<DisposeScope>? open;

    /// <summary>Scopes this attribute holds open on the calling thread (1 inside a test).</summary>
    public static int OpenOnThisThread => open?.Count ?? 0;

    public override void Before(MethodInfo methodUnderTest) => (open ??= new()).Push(torch.NewDisposeScope());

    public override void After(MethodInfo methodUnderTest)
    {
        // A test that resumed on another thread after an await finds no scope here and leaves its scope open on the thread
        // it started on, holding what it registered until the process ends (a leak, not an error).
        if (open is { Count: > 0 } scopes)
        {
            scopes.Pop().Dispose();
        }
    }
}

/// <summary>The scope of <see cref="TensorScopePerTestAttribute"/> is open while a test runs.</summary>
public sealed class TensorScopePerTestTests
{
    [Fact]
    public void A_test_runs_inside_one_dispose_scope_that_holds_its_tensors()
    {
        Assert.Equal(1, TensorScopePerTestAttribute.OpenOnThisThread);
        var temporary = torch.zeros(3);
        using (torch.NewDisposeScope())
        {
            // An inner scope leaves the test's scope's tensors alone.
            _ = torch.ones(2);
        }
        Assert.False(temporary.IsInvalid);
    }
}
