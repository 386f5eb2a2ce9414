using System.Collections.Concurrent;
using Gpu.Engine.Data;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Engine.Runtime;

/// <summary>
/// Streamed data path, for datasets that should not live on the device: a background task gathers
/// and normalises each batch (x / 255 - 0.5) into one of <see cref="Slots"/> page-locked host buffers,
/// and the training loop copies it asynchronously (<c>CopyFromPageLockedAsync</c>) on the device's
/// stream while earlier batches compute. A profiling marker recorded after each copy tells the
/// producer when a host buffer may be refilled, so neither side waits for the whole device.
/// Device objects (buffers, markers) are created and destroyed on the thread that uses the accelerator
/// (the caller of the constructor, <see cref="BeginPass"/>, <see cref="Next"/> and <see cref="Dispose"/>); the
/// producer, on its own thread, only fills host memory and waits on markers, with the accelerator bound to
/// that thread (a CUDA context is per thread: a driver call without one fails).
/// </summary>
public sealed class StreamedDataset : IBatchSource
{
    public const int Slots = 3;
    public Dataset Host { get; }
    readonly Accelerator acc;
    readonly PageLockedArray1D<float>[] hostX = new PageLockedArray1D<float>[Slots];
    readonly PageLockedArray1D<int>[] hostY = new PageLockedArray1D<int>[Slots];
    readonly MemoryBuffer1D<float, Stride1D.Dense>[] devX = new MemoryBuffer1D<float, Stride1D.Dense>[Slots];
    readonly MemoryBuffer1D<int, Stride1D.Dense>[] devY = new MemoryBuffer1D<int, Stride1D.Dense>[Slots];
    readonly ProfilingMarker?[] copied = new ProfilingMarker?[Slots];
    readonly SemaphoreSlim free = new(Slots, Slots);
    BlockingCollection<(int Slot, int Rows)>? filled;
    Task? producer;
    CancellationTokenSource? cancel;
    int remaining;

    public StreamedDataset(Accelerator accelerator, Dataset data, int maxRows)
    {
        acc = accelerator; Host = data;
        try
        {
            for (int s = 0; s < Slots; s++)
            {
                hostX[s] = acc.AllocatePageLocked1D<float>((long)maxRows * data.Features);
                hostY[s] = acc.AllocatePageLocked1D<int>(maxRows);
                devX[s] = acc.Allocate1D<float>((long)maxRows * data.Features);
                devY[s] = acc.Allocate1D<int>(maxRows);
            }
        }
        catch (Exception e) when (e is OutOfMemoryException || e is AcceleratorException)
        {
            Dispose();
            throw new UserError($"out of memory on {acc.Name} allocating {Slots} streaming buffers of {maxRows} images; use a smaller --batch-size");
        }
    }

    public void BeginPass(int[] order, IReadOnlyList<(int Offset, int Rows)> batches, Augmentation? augment = null)
    {
        if (augment != null) Augmentation.Width(Host.Features);
        var list = IBatchSource.CheckPass(order, batches, Host.Count, (int)hostY[0].Length);
        StopProducer();
        remaining = list.Length;
        var queue = new BlockingCollection<(int, int)>();
        var token = (cancel = new CancellationTokenSource()).Token;
        filled = queue;
        // a thread of its own (not the pool's): it binds the accelerator, and the binding ends with the thread
        producer = Task.Factory.StartNew(() => Produce(order, list, augment, queue, token), token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    void Produce(int[] order, (int Offset, int Rows)[] batches, Augmentation? augment, BlockingCollection<(int, int)> queue, CancellationToken token)
    {
        try
        {
            using var bound = acc.BindScoped();   // the marker waits below are driver calls: make the accelerator's context current here
            ProducerBound = Accelerator.Current == acc;
            int d = Host.Features, w = augment is { MaxShift: > 0 } ? Augmentation.Width(d) : 0;
            for (int k = 0; k < batches.Length; k++)
            {
                free.Wait(token);
                int s = k % Slots;
                copied[s]?.Synchronize();   // the device has finished copying this buffer's previous batch (Next disposes the marker)
                var (start, rows) = batches[k];
                var xs = hostX[s].Span;
                var ys = hostY[s].Span;
                for (int r = 0; r < rows; r++)
                {
                    int src = order[start + r];
                    var pixels = Host.Pixels.AsSpan(src * d, d);
                    var dst = xs.Slice(r * d, d);
                    if (w > 0) Shift(pixels, dst, w, augment!, src);
                    else for (int c = 0; c < d; c++) dst[c] = Dataset.Normalize(pixels[c]);
                    ys[r] = Host.Labels[src];
                }
                queue.Add((s, rows), token);
            }
            queue.CompleteAdding();
        }
        catch (OperationCanceledException) { queue.CompleteAdding(); }
        catch (Exception e) { queue.CompleteAdding(); throw new InvalidOperationException("the batch producer failed", e); }
    }

    /// <summary>The host side of the random shift: the device gather's shifts and source mapping (<c>DataKernels.Shift</c>, <c>ShiftedSource</c>).</summary>
    static void Shift(ReadOnlySpan<byte> pixels, Span<float> dst, int w, Augmentation a, int src)
    {
        int h = pixels.Length / w;
        int sx = Gpu.Kernels.DataKernels.Shift(a.Seed, a.Pass, src, 0, a.MaxShift), sy = Gpu.Kernels.DataKernels.Shift(a.Seed, a.Pass, src, 1, a.MaxShift);
        for (int c = 0; c < pixels.Length; c++)
        {
            int p = Gpu.Kernels.DataKernels.ShiftedSource(c, w, h, sx, sy);
            dst[c] = Dataset.Normalize(p < pixels.Length ? pixels[p] : (byte)0);
        }
    }

    public (ArrayView<float> X, ArrayView<int> Y, int Rows) Next()
    {
        if (filled == null || remaining <= 0) throw new InvalidOperationException("the pass is over");
        if (!filled.TryTake(out var item, Timeout.Infinite))
        {
            producer?.Wait();   // surfaces the producer's exception
            throw new InvalidOperationException("the batch producer stopped early");
        }
        var (s, rows) = item;
        var stream = acc.DefaultStream;
        devX[s].View.CopyFromPageLockedAsync(stream, hostX[s]);
        devY[s].View.CopyFromPageLockedAsync(stream, hostY[s]);
        Retire(copied[s]);   // the producer waited on it before refilling this buffer
        copied[s] = Marked(stream.AddProfilingMarker());
        free.Release();
        remaining--;
        return (devX[s].View, devY[s].View, rows);
    }

    /// <summary>Whether the producer thread had the accelerator bound (tests check it).</summary>
    internal bool ProducerBound { get; private set; }

    /// <summary>Managed thread ids on which markers were created or disposed (tests check that it is one: the caller's).</summary>
    internal ConcurrentBag<int> MarkerThreads { get; } = [];

    ProfilingMarker Marked(ProfilingMarker m) { MarkerThreads.Add(Environment.CurrentManagedThreadId); return m; }

    void Retire(ProfilingMarker? m)
    {
        if (m == null) return;
        MarkerThreads.Add(Environment.CurrentManagedThreadId);
        m.Dispose();
    }

    void StopProducer()
    {
        if (producer == null) return;
        cancel!.Cancel();
        try { producer.Wait(); } catch (AggregateException) { }
        producer = null;
        cancel.Dispose();
        filled?.Dispose();
        filled = null;
        acc.Synchronize();
        for (int s = 0; s < Slots; s++) { Retire(copied[s]); copied[s] = null; }
        while (free.CurrentCount < Slots) free.Release();
    }

    public void Dispose()
    {
        StopProducer();
        for (int s = 0; s < Slots; s++)
        {
            hostX[s]?.Dispose(); hostY[s]?.Dispose(); devX[s]?.Dispose(); devY[s]?.Dispose();
        }
        free.Dispose();
    }
}
