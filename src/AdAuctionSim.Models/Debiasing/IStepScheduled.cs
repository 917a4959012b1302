using AdAuctionSim.Models.Core;

namespace AdAuctionSim.Models.Debiasing;

/// <summary>
/// A model whose forward pass depends on the training step (APEM's γ schedule). The trainer should call
/// <see cref="SetStep"/> before each training forward; without it the model advances its own schedule in
/// <see cref="MultiTaskModel.Loss"/> to the step after the one given, i.e. the next forward uses the right value as
/// long as steps are consecutive.
/// </summary>
internal interface IStepScheduled
{
    /// <summary>Sets the schedule to <paramref name="step"/> (needs <see cref="TrainingStep.TotalSteps"/> &gt; 0 unless the model has a fixed rate).</summary>
    void SetStep(TrainingStep step);
}
