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
    // Null for an asynchronous test, which may finish on another thread than it started on: it gets no scope, so that
    // Before and After stay paired and no scope is left open on a thread (the async tests of this assembly hand their
    // libtorch work to TorchThread).
    [ThreadStatic]
    private static Stack<DisposeScope?>? open;

    /// <summary>The scope this attribute opened for the running test on the calling thread, or null.</summary>
    public static DisposeScope? Current => open is { Count: > 0 } scopes ? scopes.Peek() : null;

    public override void Before(MethodInfo methodUnderTest)
    {
        ArgumentNullException.ThrowIfNull(methodUnderTest);
        (open ??= new()).Push(methodUnderTest.ReturnType == typeof(void) ? torch.NewDisposeScope() : null);
    }

    public override void After(MethodInfo methodUnderTest)
    {
        if (open is { Count: > 0 } scopes)
        {
            scopes.Pop()?.Dispose();
        }
    }
}

/// <summary>The scope of <see cref="TensorScopePerTestAttribute"/> is open while a test runs and holds its tensors.</summary>
public sealed class TensorScopePerTestTests
{
    [Fact]
    public void A_test_runs_inside_a_dispose_scope_that_holds_the_tensors_it_makes()
    {
        var scope = TensorScopePerTestAttribute.Current;
        Assert.NotNull(scope);
        var before = scope.DisposablesCount;
        var temporary = torch.zeros(3);
        Assert.Equal(before + 1, scope.DisposablesCount);
        using (torch.NewDisposeScope())
        {
            // An inner scope takes what is made inside it and leaves the test's scope alone.
            _ = torch.ones(2);
        }
        Assert.Equal(before + 1, scope.DisposablesCount);
        Assert.False(temporary.IsInvalid);
    }
}
