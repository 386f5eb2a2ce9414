using System.Reflection;
using Gpu.Engine.Settings;
using Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Engine.Runtime;

/// <summary>
/// A tile of the blocked family as the host sees it: its struct, sizes, threads per group, and the register budget it is
/// compiled for (<see cref="MinGroupsPerMultiprocessor"/>: ILGPU writes it into the PTX as .minnctapersm with .maxntid =
/// <see cref="Threads"/>, so the CUDA compiler keeps that many groups resident; chosen per tile so that ptxas 11.8 for sm_90
/// spills nothing at O2; null: no bound).
/// </summary>
internal sealed record BlockedTile(string Name, Type Type, int BM, int BN, int BK, int Threads, int? MinGroupsPerMultiprocessor)
{
    /// <summary>The specialisation the kernel is loaded (and PTX-checked) with.</summary>
    public KernelSpecialization Specialization => new(Threads, MinGroupsPerMultiprocessor);

    /// <summary>Groups covering C[rows, cols] once (without split-K).</summary>
    public long Blocks(int rows, int cols) => (long)((rows + BM - 1) / BM) * ((cols + BN - 1) / BN);

    /// <summary>BK-deep slices of a contraction of length <paramref name="depth"/>.</summary>
    public int Slices(int depth) => (depth + BK - 1) / BK;

    /// <summary>The most splits the planner uses: every split at least 4 slices deep.</summary>
    public int MaxSplits(int depth) => Math.Max(1, Slices(depth) / 4);

    /// <summary>
    /// How a request for <paramref name="splits"/> splits runs: each split covers the same whole number of slices
    /// (SplitDepth = ceil(slices / splits) * BK) and the splits actually made are ceil(slices / that), every one non-empty
    /// (at most <paramref name="splits"/>; 1 when depth is 0).
    /// </summary>
    public (int Splits, int SplitDepth) Split(int depth, int splits)
    {
        int slices = Slices(depth);
        if (slices == 0) return (1, BK);
        int per = (slices + Math.Max(1, splits) - 1) / Math.Max(1, splits);
        return ((slices + per - 1) / per, per * BK);
    }
}

/// <summary>How one product runs on the blocked family: which tile, and how many contiguous ranges of p (split-K) it is cut into.</summary>
internal sealed record GemmPlan(string Tile, int Splits)
{
    public override string ToString() => Splits == 1 ? Tile : $"{Tile} split {Splits}";
}

/// <summary>
/// Host side of the blocked GEMM family (<see cref="BlockedGemmKernels"/>): the kernels of one accelerator, loaded once with
/// ILGPU's explicit-stream loaders, the three dense-layer products on a stream the caller owns, the split-K workspaces, and
/// the planner that picks a tile and a split factor for a shape. Each product returns the number of launches it enqueued
/// (1, or 2 with split-K: the product into the workspace, then <see cref="BlockedGemmKernels.ReduceSplits"/>).
/// Results are deterministic: the same plan on the same device gives the same bits (no atomics; partial sums added in split order).
/// </summary>
internal sealed class BlockedGemm : IDisposable
{
    /// <summary>The tiles, largest first; the last, 4 threads per group, is the one ILGPU's CPU accelerator can run.</summary>
    public static IReadOnlyList<BlockedTile> Tiles { get; } =
    [
        Describe<Blocked128x128>("128x128", 2), Describe<Blocked128x64>("128x64", 3), Describe<Blocked64x64>("64x64", 8),
        Describe<Blocked64x32>("64x32", 12), Describe<Blocked16x16>("16x16", null),
    ];

    /// <summary>The 4-thread tile: the planner's choice only where no other fits in a group.</summary>
    public const string TinyTile = "16x16";

    static BlockedTile Describe<TTile>(string name, int? minGroups) where TTile : struct, IBlockedTile =>
        new(name, typeof(TTile), default(TTile).BM, default(TTile).BN, default(TTile).BK, BlockedGemmKernels.Threads<TTile>(), minGroups);

    public static BlockedTile Tile(string name) =>
        Tiles.FirstOrDefault(t => t.Name == name) ?? throw new ArgumentException($"no blocked tile '{name}' (there are {string.Join(", ", Tiles.Select(t => t.Name))})");

    /// <summary>The tile a kernel method is an instance of (BlockedGemmKernels.Gemm&lt;T&gt;), or null: how the kernel catalogue finds the specialisation.</summary>
    public static BlockedTile? TileOf(MethodInfo method) =>
        method.IsGenericMethod && method.GetGenericMethodDefinition() == GemmDefinition
            ? Tiles.Single(t => t.Type == method.GetGenericArguments()[0]) : null;

    static readonly MethodInfo GemmDefinition = typeof(BlockedGemmKernels).GetMethod(nameof(BlockedGemmKernels.Gemm))!;

    /// <summary>Warps per multiprocessor a plan should give the GPU: with 8x8 outputs per thread each warp has 64 independent
    /// multiply-adds per step, and 8 warps per multiprocessor (a quarter of an H200 SM's 64 warps) hide the latency of the
    /// shared-memory reads between them.</summary>
    public const int WarpsPerMultiprocessor = 8;

    /// <summary>
    /// The plan for C[rows, cols] over a contraction of <paramref name="depth"/>, by this model (not measured; the plan race,
    /// Gpu.Benchmarks plans, measures it): a GPU is full when a product launches at least one group per multiprocessor (a
    /// whole wave) and at least <see cref="WarpsPerMultiprocessor"/> warps per multiprocessor; a larger tile reads each value
    /// fewer times per multiply-add, and split-K costs a reduction pass; so
    ///   1. among the tiles whose groups fit (<paramref name="maxThreadsPerGroup"/>; the 4-thread tile only when no other fits),
    ///      largest first, the first that fills the GPU with the fewest splits S &lt;= <see cref="BlockedTile.MaxSplits"/>
    ///      (each split at least 4 slices deep), S = 1 when it fills it alone;
    ///   2. else (a small product: nothing fills it, and it is bound by latency, not arithmetic) the plan with the most groups,
    ///      each tile at its most splits (spread over the most multiprocessors; a large tile over a narrow C would mostly
    ///      idle), then the larger tile.
    /// S is always the number of splits actually made (<see cref="BlockedTile.Split"/>). Pure: the same inputs give the same plan.
    /// </summary>
    public static GemmPlan Plan(int rows, int cols, int depth, int multiprocessors, int maxThreadsPerGroup)
    {
        var fitting = Tiles.Where(t => t.Name != TinyTile && t.Threads <= maxThreadsPerGroup).ToList();
        if (fitting.Count == 0) fitting = Tiles.Where(t => t.Name == TinyTile && t.Threads <= maxThreadsPerGroup).ToList();
        if (fitting.Count == 0) throw new ArgumentException($"no blocked tile fits in groups of {maxThreadsPerGroup} threads");
        int mps = Math.Max(1, multiprocessors);
        foreach (var t in fitting)
            for (int wanted = 1; wanted <= t.MaxSplits(depth); wanted++)
            {
                var (splits, _) = t.Split(depth, wanted);
                if (splits != wanted) continue;   // a request the slices cannot honour exactly: the next
                if (Fills(t, splits, rows, cols, mps)) return new GemmPlan(t.Name, splits);
            }
        var best = fitting.Select(t => (Tile: t, Splits: t.Split(depth, t.MaxSplits(depth)).Splits))
            .OrderByDescending(x => x.Tile.Blocks(rows, cols) * x.Splits).First();   // a stable sort: the larger tile among equals
        return new GemmPlan(best.Tile.Name, best.Splits);
    }

    /// <summary>Whether <paramref name="splits"/> splits of tile <paramref name="t"/> fill <paramref name="multiprocessors"/> multiprocessors (a wave of groups, <see cref="WarpsPerMultiprocessor"/> warps each).</summary>
    static bool Fills(BlockedTile t, int splits, int rows, int cols, int multiprocessors) =>
        t.Blocks(rows, cols) * splits >= multiprocessors && Warps(t, splits, rows, cols) >= (long)WarpsPerMultiprocessor * multiprocessors;

    /// <summary>Warps a plan launches (groups of fewer than 32 threads count as one warp each).</summary>
    static long Warps(BlockedTile t, int splits, int rows, int cols) => t.Blocks(rows, cols) * splits * ((t.Threads + 31) / 32);

    /// <summary>The strided product's C[rows, cols] and contraction depth for a dense-layer product of a batch of m rows over a layer of k inputs and n outputs (what <see cref="DenseForward"/>, <see cref="WeightGrad"/> and <see cref="InputGrad"/> plan).</summary>
    public static (int Rows, int Cols, int Depth) Shape(GemmProduct product, int m, int n, int k) => product switch
    {
        GemmProduct.Forward => (m, n, k),
        GemmProduct.InputGrad => (m, k, n),
        _ => (n, k, m),
    };

    /// <summary>Groups a plan launches for C[rows, cols] (per launch of the product; the reduction is one thread per element).</summary>
    public static long Blocks(GemmPlan plan, int rows, int cols, int depth)
    {
        var t = Tile(plan.Tile);
        return t.Blocks(rows, cols) * t.Split(depth, plan.Splits).Splits;
    }

    public Accelerator Accelerator { get; }
    readonly Dictionary<string, Lazy<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BlockedGemmArgs>>> gemm;
    readonly Lazy<Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BlockedGemmArgs>> reduce;
    readonly Dictionary<AcceleratorStream, MemoryBuffer1D<float, Stride1D.Dense>> workspaces = new();

    BlockedGemm(Accelerator accelerator)
    {
        Accelerator = accelerator;
        // compiled on first use: a device runs one or two tiles (the CPU accelerator: the 4-thread one only)
        gemm = new()
        {
            ["128x128"] = Loader<Blocked128x128>(accelerator), ["128x64"] = Loader<Blocked128x64>(accelerator),
            ["64x64"] = Loader<Blocked64x64>(accelerator), ["64x32"] = Loader<Blocked64x32>(accelerator), ["16x16"] = Loader<Blocked16x16>(accelerator),
        };
        reduce = new(() => accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BlockedGemmArgs>(
            BlockedGemmKernels.ReduceSplits));
    }

    static Lazy<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BlockedGemmArgs>> Loader<TTile>(
        Accelerator accelerator) where TTile : struct, IBlockedTile
    {
        var tile = Tiles.Single(t => t.Type == typeof(TTile));
        return new(() => accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BlockedGemmArgs>(
            BlockedGemmKernels.Gemm<TTile>, tile.Specialization));
    }

    static readonly PerAccelerator<BlockedGemm> Compiled = new();

    /// <summary>The blocked family of an accelerator, made once (its kernels compile on first use).</summary>
    public static BlockedGemm For(Accelerator accelerator) => Compiled.For(accelerator, a => new BlockedGemm(a));

    /// <summary>The plan for this accelerator (<see cref="Plan(int, int, int, int, int)"/> with its multiprocessors and group limit).</summary>
    public GemmPlan Plan(int rows, int cols, int depth) => Plan(rows, cols, depth, Accelerator.NumMultiprocessors, Accelerator.MaxNumThreadsPerGroup);

    /// <summary>Y[m,n] = act(X[m,k] . W[n,k]^T + b[n]).</summary>
    public int DenseForward(AcceleratorStream stream, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y,
        int m, int n, int k, Activation act, GemmPlan plan) =>
        Gemm(stream, plan, x, w, y, b, m, n, k, k, 1, k, 1, Epilogue.BiasAct, act);

    /// <summary>dW[n,k] = dZ[m,n]^T . H[m,k], and with <paramref name="db"/> also db[n] = column sums of dZ (each summed over the rows in order).</summary>
    public int WeightGrad(AcceleratorStream stream, ArrayView<float> dz, ArrayView<float> h, ArrayView<float> dw, ArrayView<float>? db,
        int m, int n, int k, GemmPlan plan) =>
        Gemm(stream, plan, dz, h, dw, db ?? dw, n, k, m, 1, n, 1, k, db.HasValue ? Epilogue.RowSums : Epilogue.None, Activation.Identity);

    /// <summary>dX[m,k] = (dZ[m,n] . W[n,k]) * act'(from H[m,k]); Identity: no factor.</summary>
    public int InputGrad(AcceleratorStream stream, ArrayView<float> dz, ArrayView<float> w, ArrayView<float> h, ArrayView<float> dx,
        int m, int n, int k, Activation act, GemmPlan plan) =>
        Gemm(stream, plan, dz, w, dx, h, m, k, n, n, 1, 1, k, Epilogue.ActBackprop, act);

    /// <summary>
    /// C[rows, cols] = epilogue(sum over p &lt; depth of A(i,p) B(j,p)) in the strided form of <see cref="BlockedGemmKernels"/>,
    /// as <paramref name="plan"/> says, enqueued on <paramref name="stream"/>; returns the launches enqueued (0 for an empty C).
    /// </summary>
    public int Gemm(AcceleratorStream stream, GemmPlan plan, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> aux,
        int rows, int cols, int depth, int aRow, int aCol, int bRow, int bCol, int epilogue, Activation act)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        ArgumentOutOfRangeException.ThrowIfNegative(depth);
        if (rows == 0 || cols == 0) return 0;   // (a bias gradient of an empty dW is not asked for: the engine has no empty layers)
        var tile = Tile(plan.Tile);
        if (tile.Threads > Accelerator.MaxNumThreadsPerGroup)
            throw new ArgumentException($"tile {tile.Name} needs groups of {tile.Threads} threads; {Accelerator.Name} allows {Accelerator.MaxNumThreadsPerGroup}");
        var (splits, splitDepth) = tile.Split(depth, plan.Splits);
        var grid = new Index2D((cols + tile.BN - 1) / tile.BN, (rows + tile.BM - 1) / tile.BM * splits);
        if (grid.X > Accelerator.MaxGridSize.X || grid.Y > Accelerator.MaxGridSize.Y)
            throw new ArgumentException($"C[{rows}, {cols}] with tile {tile.Name} and {splits} splits needs a grid of {grid}; the device allows {Accelerator.MaxGridSize}");
        var args = new BlockedGemmArgs
        {
            Rows = rows, Cols = cols, Depth = depth, ARow = aRow, ACol = aCol, BRow = bRow, BCol = bCol,
            Epilogue = epilogue, Act = (int)act, Splits = splits, SplitDepth = splitDepth,
            Aligned = (StartsOn16Bytes(a) ? 1 : 0) | (StartsOn16Bytes(b) ? 2 : 0),
        };
        var config = new KernelConfig(grid, new Index2D(tile.Threads, 1));
        if (splits == 1)
        {
            gemm[tile.Name].Value(stream, config, a, b, c, aux, args);
            return 1;
        }
        var partials = Workspace(stream, (long)splits * rows * cols);
        gemm[tile.Name].Value(stream, config, a, b, partials, aux, args);
        reduce.Value(stream, rows * cols, partials, c, aux, a, args);
        return 2;
    }

    /// <summary>
    /// c = epilogue(the sum of <paramref name="args"/>.Splits partial products [splits, rows, cols] in <paramref name="partials"/>, in
    /// split order), and with RowSums aux[i] = sum over p of A(i, p): how a split product ends, this family's or another's (the
    /// tensor-core family's).
    /// </summary>
    public void ReduceSplits(AcceleratorStream stream, ArrayView<float> partials, ArrayView<float> c, ArrayView<float> aux, ArrayView<float> a, BlockedGemmArgs args) =>
        reduce.Value(stream, args.Rows * args.Cols, partials, c, aux, a, args);

    /// <summary>Whether a view starts on a 16-byte boundary: its element offset is a multiple of 4 (buffers themselves start aligned: CUDA at 256 bytes, OpenCL at its base address alignment).</summary>
    static bool StartsOn16Bytes(ArrayView<float> v) => ((IContiguousArrayView<float>)v).Index % 4 == 0;

    /// <summary>
    /// The split-K workspace of a stream, at least <paramref name="length"/> floats: one per stream, so that products queued on
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
            workspaces[stream] = buffer = Accelerator.Allocate1D<float>(length);
            return buffer.View;
        }
    }

    readonly List<MemoryBuffer1D<float, Stride1D.Dense>> retired = [];

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

    /// <summary>Floats held in split-K workspaces (all streams, the replaced ones included).</summary>
    public long WorkspaceFloats { get { lock (workspaces) return workspaces.Values.Concat(retired).Sum(b => b.Length); } }
}
