using Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Engine.Runtime;

/// <summary>
/// The second half of a split-K product on one accelerator, for any family that cuts a contraction into ranges (blocked,
/// tensor-core): the workspaces the ranges' partial sums go to, one per stream, and the reduction
/// (<see cref="SplitKKernels.ReduceSplits"/>) that adds them in split order and applies the epilogue.
/// </summary>
internal sealed class SplitK : IDisposable
{
    readonly Accelerator accelerator;
    readonly Lazy<Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>> reduce;
    readonly Dictionary<AcceleratorStream, MemoryBuffer1D<float, Stride1D.Dense>> workspaces = new();
    readonly List<MemoryBuffer1D<float, Stride1D.Dense>> retired = [];

    SplitK(Accelerator accelerator)
    {
        this.accelerator = accelerator;
        reduce = new(() => accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(
            SplitKKernels.ReduceSplits));
    }

    /// <summary>The fewest steps (a kernel's k step: a slice or tile of the contraction) a split covers when a planner cuts one.</summary>
    public const int MinStepsPerSplit = 4;

    /// <summary>Steps of <paramref name="step"/> covering a contraction of length <paramref name="depth"/>.</summary>
    public static int Steps(int depth, int step) => (depth + step - 1) / step;

    /// <summary>The most splits a planner uses: every split at least <see cref="MinStepsPerSplit"/> steps deep.</summary>
    public static int MaxSplits(int depth, int step) => Math.Max(1, Steps(depth, step) / MinStepsPerSplit);

    /// <summary>
    /// How a request for <paramref name="splits"/> splits runs: each split covers the same whole number of steps
    /// (SplitDepth = ceil(steps / splits) * step) and the splits actually made are ceil(steps / that), every one non-empty
    /// (at most <paramref name="splits"/>; 1 when depth is 0).
    /// </summary>
    public static (int Splits, int SplitDepth) Cut(int depth, int step, int splits)
    {
        int steps = Steps(depth, step);
        if (steps == 0) return (1, step);
        int per = (steps + Math.Max(1, splits) - 1) / Math.Max(1, splits);
        return ((steps + per - 1) / per, per * step);
    }

    static readonly PerAccelerator<SplitK> Made = new();

    /// <summary>The split-K workspaces and reduction of an accelerator, made once (the kernel compiles on first use).</summary>
    public static SplitK For(Accelerator accelerator) => Made.For(accelerator, a => new SplitK(a));

    /// <summary>c = epilogue(the sum of <paramref name="partials"/>' <c>g.Splits</c> slices in order), and with RowSums aux = A's row sums; one launch on <paramref name="stream"/>.</summary>
    public void Reduce(AcceleratorStream stream, ArrayView<float> partials, ArrayView<float> c, ArrayView<float> aux, ArrayView<float> a, GemmArgs g) =>
        reduce.Value(stream, g.Rows * g.Cols, partials, c, aux, a, g);

    /// <summary>
    /// The workspace of a stream, at least <paramref name="length"/> floats: one per stream, so that products queued on
    /// different streams never share one. A workspace too small is replaced by one at least twice its size; the old one is kept
    /// (not freed) until the accelerator goes, because a recorded CUDA graph may still name it (a training step recorded at
    /// one batch size, then an evaluation at a larger one), and a replay must never write freed memory.
    /// </summary>
    public ArrayView<float> Workspace(AcceleratorStream stream, long length)
    {
        lock (workspaces)
        {
            if (workspaces.TryGetValue(stream, out var buffer) && buffer.Length >= length) return buffer.View;
            if (buffer != null)
            {
                retired.Add(buffer);
                length = Math.Max(length, 2 * buffer.Length);
            }
            workspaces[stream] = buffer = accelerator.Allocate1D<float>(length);
            return buffer.View;
        }
    }

    /// <summary>Floats held in workspaces (all streams, the replaced ones included).</summary>
    public long WorkspaceFloats { get { lock (workspaces) return workspaces.Values.Concat(retired).Sum(b => b.Length); } }

    /// <summary>Frees every workspace (when the accelerator goes: <see cref="PerAccelerator{T}"/>).</summary>
    public void Dispose()
    {
        lock (workspaces)
        {
            foreach (var b in workspaces.Values.Concat(retired)) b.Dispose();
            workspaces.Clear();
            retired.Clear();
        }
    }
}
