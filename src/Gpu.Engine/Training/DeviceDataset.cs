using Gpu.Engine.Data;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Engine.Training;

/// <summary>
/// A dataset resident on the device as raw bytes and int labels (Fashion-MNIST's 60,000 images are
/// 47 MB), plus a device copy of the current row order. A batch is gathered and normalised on the
/// device from the order, so per step nothing crosses the bus.
/// </summary>
public sealed class DeviceDataset : IDisposable
{
    public Dataset Host { get; }
    readonly KernelSet k;
    readonly MemoryBuffer1D<byte, Stride1D.Dense> pixels;
    readonly MemoryBuffer1D<int, Stride1D.Dense> labels, order;

    public DeviceDataset(KernelSet kernels, Dataset data)
    {
        k = kernels; Host = data;
        var a = kernels.Accelerator;
        try
        {
            pixels = a.Allocate1D(data.Pixels);
            labels = a.Allocate1D(data.Labels);
            order = a.Allocate1D(Enumerable.Range(0, data.Count).ToArray());
        }
        catch (Exception e) when (e is OutOfMemoryException || e is AcceleratorException)
        {
            Dispose();
            throw new UserError($"out of device memory on {a.Name}: {data.Name} needs {data.Pixels.Length / 1e6:F1} MB on the device; use --device cpu");
        }
    }

    public int Count => Host.Count;

    /// <summary>Uploads a new row order (an epoch's permutation); one copy per epoch.</summary>
    public void SetOrder(int[] rows)
    {
        if (rows.Length != Count) throw new ArgumentException("order length must equal the dataset size");
        order.CopyFromCPU(rows);
    }

    /// <summary>Rows order[offset .. offset+b) into X[b, features] (normalised) and y[b].</summary>
    public void Gather(int offset, int b, ArrayView<float> x, ArrayView<int> y) =>
        k.GatherBatch(pixels.View, labels.View, order.View, x, y, offset, b, Host.Features);

    public void Dispose()
    {
        pixels?.Dispose();
        labels?.Dispose();
        order?.Dispose();
    }
}
