using System.Collections.Concurrent;
using Gpu.Engine.Data;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Engine.Runtime;

/// <summary>
/// Streamed data path, for datasets that should not live on the device: a background task gathers
/// and normalises each batch (x / 255 - 0.5) into one of <see cref="Slots"/> page-locked host buffers,
/// and the training loop copies it asynchronously (<c>CopyFromPageLockedAsync</c>) on the engine's
/// stream into the one device batch (X, y), behind the earlier steps that read it, while they compute. A
/// profiling marker recorded after each copy tells the producer when a host buffer may be refilled, so
/// neither side waits for the whole device. Every batch lands in the same device buffers, so the steps'
/// launches are the same every step (a CUDA graph records them once).
/// Device objects (buffers, markers) are created and destroyed on the thread that uses the accelerator
/// (the caller of the constructor, <see cref="BeginPass"/>, <see cref="Stage"/> and <see cref="Dispose"/>); the
/// producer, on its own thread, only fills host memory and waits on markers, with the accelerator bound to
/// that thread (a CUDA context is per thread: a driver call without one fails).
/// A dataset read in place from a memory-mapped file (<see cref="Dataset.Mapped"/>) is read by the producer too,
/// a block of consecutive rows at a time into a <see cref="BlockCache"/> of a few blocks: with the training
/// scheduler's block-shuffled order (Training/BlockShuffle.cs) each block is read once per pass, and with a set
/// that fits the cache it is read once in all; only the cache and the page-locked batches are in memory.
/// </summary>
internal sealed class StreamedDataset : IBatchSource
{
    public const int Slots = 3;
    public Dataset Host { get; }
    readonly Accelerator acc;
    readonly PageLockedArray1D<float>[] hostX = new PageLockedArray1D<float>[Slots];
    readonly PageLockedArray1D<int>[] hostY = new PageLockedArray1D<int>[Slots];
    readonly MemoryBuffer1D<float, Stride1D.Dense>? devX;
    readonly MemoryBuffer1D<int, Stride1D.Dense>? devY;
    readonly AcceleratorStream stream;
    readonly ProfilingMarker?[] copied = new ProfilingMarker?[Slots];
    readonly SemaphoreSlim free = new(Slots, Slots);
    BlockingCollection<(int Slot, int Rows)>? filled;
    Task? producer;
    CancellationTokenSource? cancel;
    int remaining;
    readonly BlockCache? cache;

    /// <summary>
    /// A streamed source of batches of up to <paramref name="maxRows"/> rows. For a mapped dataset, <paramref name="cacheBlocks"/>
    /// blocks of <paramref name="blockRows"/> rows are held (the training set's buffer; evaluation reads in file order and needs two).
    /// </summary>
    public StreamedDataset(Accelerator accelerator, AcceleratorStream stream, Dataset data, int maxRows, int blockRows = 1024, int cacheBlocks = 2)
    {
        acc = accelerator; this.stream = stream; Host = data;
        if (data.Mapped != null) cache = new BlockCache(data, blockRows, cacheBlocks);
        try
        {
            for (int s = 0; s < Slots; s++)
            {
                hostX[s] = acc.AllocatePageLocked1D<float>((long)maxRows * data.Features);
                hostY[s] = acc.AllocatePageLocked1D<int>(maxRows);
            }
            devX = acc.Allocate1D<float>((long)maxRows * data.Features);
            devY = acc.Allocate1D<int>(maxRows);
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
                    var pixels = cache != null ? cache.Row(src) : Host.Pixels.AsSpan(src * d, d);
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

    public (ArrayView<float> X, ArrayView<int> Y, int Rows) Stage()
    {
        if (filled == null || remaining <= 0) throw new InvalidOperationException("the pass is over");
        if (!filled.TryTake(out var item, Timeout.Infinite))
        {
            producer?.Wait();   // surfaces the producer's exception
            throw new InvalidOperationException("the batch producer stopped early");
        }
        var (s, rows) = item;
        devX!.View.CopyFromPageLockedAsync(stream, hostX[s]);   // after the steps already queued, which read the previous batch
        devY!.View.CopyFromPageLockedAsync(stream, hostY[s]);
        Retire(copied[s]);   // the producer waited on it before refilling this buffer
        copied[s] = Marked(stream.AddProfilingMarker());
        free.Release();
        remaining--;
        return (devX.View, devY.View, rows);
    }

    /// <summary>Nothing: the batch arrives by the copy <see cref="Stage"/> enqueued.</summary>
    public void Load() { }

    /// <summary>Blocks read from the mapped file so far (tests check that a pass reads each once).</summary>
    internal long BlocksRead => cache?.Reads ?? 0;

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
        stream.Synchronize();
        for (int s = 0; s < Slots; s++) { Retire(copied[s]); copied[s] = null; }
        while (free.CurrentCount < Slots) free.Release();
    }

    public void Dispose()
    {
        StopProducer();
        for (int s = 0; s < Slots; s++)
        {
            hostX[s]?.Dispose(); hostY[s]?.Dispose();
        }
        devX?.Dispose(); devY?.Dispose();
        free.Dispose();
    }
}

/// <summary>
/// Blocks of consecutive rows of a mapped dataset held in memory, at most <c>capacity</c> of them; the least
/// recently used one makes room for the next. Used by one thread at a time (the producer).
/// </summary>
sealed class BlockCache(Dataset data, int blockRows, int capacity)
{
    readonly Dictionary<int, (byte[] Rows, long Used)> held = [];
    long clock;

    public long Reads { get; private set; }

    /// <summary>The pixels of row <paramref name="row"/>, its block read in first if it is not held.</summary>
    public ReadOnlySpan<byte> Row(int row)
    {
        int b = row / blockRows, d = data.Features;
        if (!held.TryGetValue(b, out var e))
        {
            byte[] rows;
            if (held.Count < capacity) rows = new byte[(long)blockRows * d];
            else
            {
                var oldest = held.MinBy(kv => kv.Value.Used).Key;
                rows = held[oldest].Rows;
                held.Remove(oldest);
            }
            int first = b * blockRows, n = Math.Min(blockRows, data.Count - first);
            data.CopyRows(first, n, rows);
            Reads++;
            e = (rows, 0);
        }
        held[b] = (e.Rows, ++clock);
        return e.Rows.AsSpan((row - b * blockRows) * d, d);
    }
}
