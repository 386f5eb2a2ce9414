using Gpu.Engine.Data;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Engine.Runtime;

/// <summary>Where a batch comes from: one pass (epoch) at a time, over the rows in a given order.</summary>
public interface IBatchSource : IDisposable
{
    Dataset Host { get; }
    int Count => Host.Count;

    /// <summary>
    /// Starts a pass over the rows in <paramref name="order"/>, cut into batches of <paramref name="batchSize"/>
    /// (the last may be partial), with random shifts when <paramref name="augment"/> is given.
    /// </summary>
    void BeginPass(int[] order, int batchSize, Augmentation? augment = null);

    /// <summary>The next batch of the pass on the device: X [rows, features] normalised, y [rows].</summary>
    (ArrayView<float> X, ArrayView<int> Y, int Rows) Next();
}

/// <summary>
/// Random shifts of square images by up to <see cref="MaxShift"/> pixels per axis, drawn per image
/// and pass from a counter-based hash of (seed, pass, image): reproducible, and the same on either data path.
/// </summary>
public sealed record Augmentation(int MaxShift, long Seed, long Pass)
{
    /// <summary>Image width for <paramref name="features"/> pixels: the images must be square.</summary>
    public static int Width(int features)
    {
        int w = (int)Math.Round(Math.Sqrt(features));
        if (w * w != features) throw new UserError($"--shift needs square images; these have {features} pixels");
        return w;
    }
}

/// <summary>
/// Resident data path: the dataset lives on the device as raw bytes and int labels (Fashion-MNIST's
/// 60,000 training images are 47 MB) plus a device copy of the pass's row order. Each batch is
/// gathered and normalised on the device, so per step nothing crosses the bus: one copy per pass.
/// </summary>
public sealed class DeviceDataset : IBatchSource
{
    public Dataset Host { get; }
    readonly KernelSet k;
    readonly MemoryBuffer1D<byte, Stride1D.Dense> pixels;
    readonly MemoryBuffer1D<int, Stride1D.Dense> labels, order;
    readonly MemoryBuffer1D<float, Stride1D.Dense> x;
    readonly MemoryBuffer1D<int, Stride1D.Dense> y;
    int offset, batch;
    Augmentation? augment;

    public DeviceDataset(KernelSet kernels, Dataset data, int maxRows)
    {
        k = kernels; Host = data;
        var a = kernels.Accelerator;
        try
        {
            pixels = a.Allocate1D(data.Pixels);
            labels = a.Allocate1D(data.Labels);
            order = a.Allocate1D(Enumerable.Range(0, data.Count).ToArray());
            x = a.Allocate1D<float>((long)maxRows * data.Features);
            y = a.Allocate1D<int>(maxRows);
        }
        catch (Exception e) when (e is OutOfMemoryException || e is AcceleratorException)
        {
            Dispose();
            throw new UserError($"out of device memory on {a.Name}: {data.Name} needs {data.Pixels.Length / 1e6:F1} MB on the device; use --data-path stream or --device cpu");
        }
    }

    public void BeginPass(int[] rows, int batchSize, Augmentation? augment = null)
    {
        this.augment = augment;
        if (augment != null) Augmentation.Width(Host.Features);
        if (rows.Length != Host.Count) throw new ArgumentException("order length must equal the dataset size");
        if (batchSize < 1 || batchSize > y.Length) throw new ArgumentOutOfRangeException(nameof(batchSize));
        order.CopyFromCPU(rows);
        offset = 0; batch = batchSize;
    }

    public (ArrayView<float> X, ArrayView<int> Y, int Rows) Next()
    {
        int rows = Math.Min(batch, Host.Count - offset);
        if (rows <= 0) throw new InvalidOperationException("the pass is over");
        if (augment is { MaxShift: > 0 } a)
            k.GatherBatchShifted(pixels.View, labels.View, order.View, x.View, y.View, offset, rows, Host.Features,
                Augmentation.Width(Host.Features), a.MaxShift, a.Seed, a.Pass);
        else
            Gather(offset, rows, x.View, y.View);
        offset += rows;
        return (x.View, y.View, rows);
    }

    /// <summary>Rows order[offset .. offset+b) into X[b, features] (normalised) and y[b].</summary>
    public void Gather(int start, int b, ArrayView<float> into, ArrayView<int> labelsInto) =>
        k.GatherBatch(pixels.View, labels.View, order.View, into, labelsInto, start, b, Host.Features);

    public void Dispose()
    {
        pixels?.Dispose();
        labels?.Dispose();
        order?.Dispose();
        x?.Dispose();
        y?.Dispose();
    }
}
