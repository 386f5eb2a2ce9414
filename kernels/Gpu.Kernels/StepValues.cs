using System.Runtime.InteropServices;

namespace Gpu.Kernels;

/// <summary>
/// The values of one training step that change from step to step, computed on the host and read by the kernels
/// from device memory (a one-element view, written before the step runs), so that the launches of a step never
/// change and can be recorded once as a CUDA graph and replayed. 32 bytes, no padding.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct StepValues
{
    /// <summary>The batch's first row in the pass's order (the resident data path gathers order[Offset ..]).</summary>
    public int Offset;

    /// <summary>The learning rate of this step.</summary>
    public float Lr;

    /// <summary>Adam's bias corrections 1 - beta1^t and 1 - beta2^t for t = Step + 1 (computed in double, rounded once).</summary>
    public float C1, C2;

    /// <summary>The global 0-based training step: the dropout masks and the divergence watch.</summary>
    public long Step;

    /// <summary>The pass (epoch) number: the augmentation shifts.</summary>
    public long Pass;
}
