using Gpu.Engine.Data;
using Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Engine.Runtime;

/// <summary>
/// Where a batch comes from: one pass (epoch) at a time, over the rows in a given order, cut into the
/// batches the caller hands over (the training scheduler owns the cut; a source never cuts a pass itself).
/// </summary>
internal interface IBatchSource : IDisposable
{
    Dataset Host { get; }
    int Count => Host.Count;

    /// <summary>
    /// Starts a pass over the rows in <paramref name="order"/> (a permutation of the dataset's rows):
    /// <see cref="Next"/> hands out <paramref name="batches"/> one after the other, each the rows
    /// order[Offset .. Offset + Rows), with random shifts when <paramref name="augment"/> is given.
    /// The whole list comes up front so that a source may work ahead (the streamed path does).
    /// </summary>
    void BeginPass(int[] order, IReadOnlyList<(int Offset, int Rows)> batches, Augmentation? augment = null);

    /// <summary>
    /// The pass's next batch, staged: what happens outside a recorded step (selecting the batch's place on the device;
    /// on the streamed path, the copy of its rows). Returns the source's fixed X [rows, features] and y [rows] buffers,
    /// which hold the batch once <see cref="Load"/>'s work has run.
    /// </summary>
    (ArrayView<float> X, ArrayView<int> Y, int Rows) Stage();

    /// <summary>
    /// The device work that fills X and y with the staged batch (the resident path's gather; nothing on the streamed
    /// path), enqueued on the engine's stream. It reads the batch's place from device memory, so its launch is the same
    /// for every batch of a size, and a training step can be recorded once and replayed.
    /// </summary>
    void Load();

    /// <summary>The pass's next batch on the device: X [rows, features] normalised, y [rows] (<see cref="Stage"/>, then <see cref="Load"/>).</summary>
    (ArrayView<float> X, ArrayView<int> Y, int Rows) Next()
    {
        var batch = Stage();
        Load();
        return batch;
    }

    /// <summary>Checks a pass's arguments against a source of <paramref name="count"/> rows and room for <paramref name="maxRows"/> per batch; returns the batches as an array.</summary>
    internal static (int Offset, int Rows)[] CheckPass(int[] order, IReadOnlyList<(int Offset, int Rows)> batches, int count, int maxRows)
    {
        if (order.Length != count) throw new ArgumentException($"the order has {order.Length} rows but the dataset {count}");
        var list = batches.ToArray();
        foreach (var (offset, rows) in list)
            if (rows < 1 || rows > maxRows || offset < 0 || offset > count - rows)
                throw new ArgumentOutOfRangeException(nameof(batches), $"batch ({offset}, {rows}) does not fit {count} rows in batches of at most {maxRows}");
        return list;
    }
}

/// <summary>
/// Random shifts of square images by up to <see cref="MaxShift"/> pixels per axis, drawn per image
/// and pass from a counter-based hash of (seed, pass, image): reproducible, and the same on either data path.
/// </summary>
internal sealed record Augmentation(int MaxShift, long Seed, long Pass)
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
/// 60,000 training images are 47 MB) plus a device copy of the pass's row order and of each batch's place (its
/// offset in that order, and the pass for the random shifts: a <see cref="StepSlot"/>). Each batch is gathered and
/// normalised on the device, so per step nothing crosses the bus: two copies per pass.
/// </summary>
internal sealed class DeviceDataset : IBatchSource
{
    public Dataset Host { get; }
    readonly KernelSet k;
    readonly MemoryBuffer1D<byte, Stride1D.Dense> pixels;
    readonly MemoryBuffer1D<int, Stride1D.Dense> labels, order;
    readonly MemoryBuffer1D<float, Stride1D.Dense> x;
    readonly MemoryBuffer1D<int, Stride1D.Dense> y;
    readonly StepSlot places;   // per batch of the pass: Offset, Pass
    (int Offset, int Rows)[] batches = [];
    int next, staged;
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
            places = kernels.NewStepSlot();
        }
        catch (Exception e) when (e is OutOfMemoryException || e is AcceleratorException)
        {
            Dispose();
            throw new UserError($"out of device memory on {a.Name}: {data.Name} needs {data.Pixels.Length / 1e6:F1} MB on the device; use --data-path stream or --device cpu");
        }
    }

    public void BeginPass(int[] rows, IReadOnlyList<(int Offset, int Rows)> batches, Augmentation? augment = null)
    {
        if (augment != null) Augmentation.Width(Host.Features);
        this.batches = IBatchSource.CheckPass(rows, batches, Host.Count, (int)y.Length);
        this.augment = augment;
        order.View.CopyFromCPU(k.Stream, rows);
        places.BeginPass(this.batches.Select(b => new StepValues { Offset = b.Offset, Pass = augment?.Pass ?? 0 }).ToArray());
        next = 0;
    }

    public (ArrayView<float> X, ArrayView<int> Y, int Rows) Stage()
    {
        if (next >= batches.Length) throw new InvalidOperationException("the pass is over");
        places.Select(next);
        staged = batches[next++].Rows;
        return (x.View, y.View, staged);
    }

    public void Load()
    {
        if (augment is { MaxShift: > 0 } a)
            k.GatherBatchShifted(pixels.View, labels.View, order.View, x.View, y.View, places.Current, staged, Host.Features,
                Augmentation.Width(Host.Features), a.MaxShift, a.Seed);
        else
            k.GatherBatch(pixels.View, labels.View, order.View, x.View, y.View, places.Current, staged, Host.Features);   // rows order[offset ..) into X (normalised) and y
    }

    public void Dispose()
    {
        pixels?.Dispose();
        labels?.Dispose();
        order?.Dispose();
        x?.Dispose();
        y?.Dispose();
        places?.Dispose();
    }
}
