using Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Engine.Runtime;

/// <summary>
/// Per-step values on the device (<see cref="StepValues"/>): a pass's table, one entry per step, computed on the host
/// and uploaded once when the pass begins, and the one-element <see cref="Current"/> the kernels read, filled from the
/// table before each step by a device-to-device copy on the engine's stream. So a step's launches never change from
/// step to step (a CUDA graph can record them once), and nothing they read lives in host memory that a later step
/// overwrites. Each owner has its own: the training step (learning rate, Adam's corrections, the step number) and a
/// resident data set (each batch's offset and the pass, for the gather).
/// </summary>
internal sealed class StepSlot : IDisposable
{
    readonly Accelerator acc;
    readonly AcceleratorStream stream;
    readonly MemoryBuffer1D<StepValues, Stride1D.Dense> current;
    MemoryBuffer1D<StepValues, Stride1D.Dense>? table;
    int count;

    public StepSlot(Accelerator accelerator, AcceleratorStream stream)
    {
        acc = accelerator; this.stream = stream;
        current = acc.Allocate1D<StepValues>(1);
        current.View.CopyFromCPU(stream, new StepValues[1]);
    }

    /// <summary>The values of the selected step (what the kernels read).</summary>
    public ArrayView<StepValues> Current => current.View;

    /// <summary>Uploads a pass's values (waits for the copy; the previous pass's table is no longer read once queued work reaches it).</summary>
    public void BeginPass(ReadOnlySpan<StepValues> values)
    {
        if (table == null || table.Length < values.Length)
        {
            stream.Synchronize();   // the old table may still be the source of a queued copy
            table?.Dispose();
            table = acc.Allocate1D<StepValues>(Math.Max(1, values.Length));
        }
        if (values.Length > 0) table.View.SubView(0, values.Length).CopyFromCPU(stream, values);
        count = values.Length;
    }

    /// <summary>Enqueues the copy of the pass's entry <paramref name="index"/> into <see cref="Current"/> (no wait).</summary>
    public void Select(int index)
    {
        if (index < 0 || index >= count) throw new ArgumentOutOfRangeException(nameof(index), $"step {index} of a pass of {count}");
        table!.View.SubView(index, 1).CopyTo(stream, current.View);
    }

    /// <summary>Writes <paramref name="values"/> into <see cref="Current"/> directly (waits): for single launches outside a pass (kernel checks).</summary>
    public void Set(StepValues values) => current.View.CopyFromCPU(stream, [values]);

    public void Dispose()
    {
        current.Dispose();
        table?.Dispose();
    }
}
