using Gpu.Engine.Settings;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace Gpu.Engine.Runtime;

/// <summary>What kind of device an accelerator is, as far as the engine's choices go.</summary>
internal enum DeviceKind
{
    /// <summary>ILGPU's CPU accelerator: each simulated thread is an OS thread; groups of at most 4; launches cost hundreds of microseconds.</summary>
    CpuAccelerator,
    /// <summary>An NVIDIA GPU through CUDA.</summary>
    Cuda,
    /// <summary>An OpenCL GPU or accelerator (AMD, Intel, ...).</summary>
    OpenClGpu,
    /// <summary>An OpenCL CPU device (POCL, Intel's CPU runtime): the host's cores behind a real OpenCL driver.</summary>
    OpenClCpu,
}

/// <summary>
/// Every per-device decision of the engine, made once when a device opens (<see cref="For(Accelerator)"/>) and
/// read by the kernel set, the device model and the trainer. A new kind of device plugs in here; a new GEMM family
/// in Gemm/GemmFamilies.cs (the profile takes the runnable family its device prefers).
/// Tests and benchmarks derive variants with <c>with</c> (another GEMM family, a smaller memory budget).
/// </summary>
internal sealed record DeviceProfile
{
    public required DeviceKind Kind { get; init; }

    /// <summary>The kernels of the dense-layer products, with the family's own knobs.</summary>
    public required GemmFamily Gemm { get; init; }

    /// <summary>Multiprocessors that run groups side by side: SMs on a CUDA GPU, compute units on OpenCL, cores for the CPU accelerator.</summary>
    public required int Multiprocessors { get; init; }

    /// <summary>The CUDA compute capability (9.0 on an H100 or H200); null on other devices.</summary>
    public (int Major, int Minor)? ComputeCapability { get; init; }

    /// <summary>The most threads a group may hold on this device (4 on ILGPU's CPU accelerator as the engine opens it).</summary>
    public required int MaxGroupSize { get; init; }

    /// <summary>
    /// Element-wise kernels (optimizer, gather, dropout): 0 launches one thread per element (GPUs, and
    /// OpenCL CPU drivers, which vectorise across work-items); otherwise this many threads, each doing a
    /// contiguous chunk (ILGPU's CPU accelerator, where every thread index costs far more than an element).
    /// </summary>
    public int ElementwiseThreads { get; init; }

    /// <summary>
    /// Work-items per group of the element-wise kernels (0: ILGPU picks). An OpenCL CPU driver runs each group on
    /// one core, so chunked work in groups of one spreads over every core; its auto choice (one group of 4096)
    /// would leave all but one core idle. Fixed per device: the kernels are compiled with it.
    /// </summary>
    public int ElementwiseGroupSize { get; init; }

    /// <summary>
    /// The fewest elements a chunk of chunked element-wise work holds (0: no floor): on an OpenCL CPU device 8192, so a
    /// small launch runs on a few of the driver's threads instead of waking every one for a few elements each.
    /// </summary>
    public int ElementwiseMinChunk { get; init; }

    /// <summary>
    /// Threads per group of the loss kernels, a power of two of at most <see cref="Gpu.Kernels.LayerKernels.MaxGroupSize"/>
    /// (capped by the device's group limit): 4 on ILGPU's CPU accelerator (its largest group), 256 elsewhere.
    /// </summary>
    public int LossGroupSize { get; init; } = 256;

    /// <summary>Whether a training step's launches are recorded as a CUDA graph and replayed (CUDA devices; Runtime/TrainingStep.cs).</summary>
    public bool StepGraphs { get; init; }

    /// <summary>
    /// The most groups a loss launch is spread over: unlimited on GPUs (ceil(rows / group size) groups, one thread per row,
    /// the groups' sums met through a small workspace); 1 on ILGPU's CPU accelerator, where each group barrier is an OS
    /// barrier (its 4 threads take rows t, t + 4, ...).
    /// </summary>
    public int LossMaxGroups { get; init; } = int.MaxValue;

    /// <summary>
    /// Whether the device builds the grid loss kernels, whose groups meet through an integer atomic: not OpenCL CPU devices
    /// (ILGPU casts an OpenCL atomic's target to a generic pointer, and POCL has no generic address space), which run the
    /// one-group loss kernels whatever <see cref="LossMaxGroups"/> says.
    /// </summary>
    public bool LossAtomics { get; init; } = true;

    /// <summary>The groups of a loss launch over <paramref name="rows"/> rows in groups of <paramref name="groupSize"/>: one thread per row, at least 1, at most <see cref="LossMaxGroups"/>, 1 without <see cref="LossAtomics"/>.</summary>
    public int LossGroups(int rows, int groupSize) =>
        LossAtomics ? (int)Math.Clamp(((long)rows + groupSize - 1) / groupSize, 1, LossMaxGroups) : 1;


    /// <summary>Bytes a model, its buffers and resident data may take on the device.</summary>
    public required long MemoryBytes { get; init; }

    /// <summary>The automatic data path keeps datasets of up to this many bytes on the device; larger ones are streamed.</summary>
    public required long ResidentDataBytes { get; init; }

    /// <summary>Whether the device is the host's own processor (so "out of device memory" advice never says "use the CPU").</summary>
    public bool IsHost => Kind is DeviceKind.CpuAccelerator or DeviceKind.OpenClCpu;

    /// <summary>Elements per thread for an element-wise kernel over <paramref name="n"/> elements: at most <see cref="ElementwiseThreads"/> chunks, each of at least <see cref="ElementwiseMinChunk"/> (or all n).</summary>
    public int Chunk(int n) => ElementwiseThreads <= 0 ? 1
        : Math.Max(Math.Max(1, (int)(((long)n + ElementwiseThreads - 1) / ElementwiseThreads)), Math.Min(n, ElementwiseMinChunk));

    /// <summary>
    /// Flops (2 m n k) a product on an OpenCL CPU device must have per work-group: about 20 us of one core's work, the
    /// order of what it costs the driver to wake a thread for a launch (so a small product runs on a few threads, not on
    /// every core).
    /// </summary>
    public const long MinFlopsPerGroup = 1L << 20;

    /// <summary>The most work-groups per core a product is cut into on an OpenCL CPU device: enough for the driver to balance its threads.</summary>
    public const int GroupsPerCore = 8;

    /// <summary>
    /// The rule that sizes an OpenCL CPU product's work from the core count. A product of <paramref name="blocks0"/> x
    /// <paramref name="blocks1"/> output blocks (<paramref name="flops"/> in all) on <paramref name="cores"/> cores (the
    /// driver's threads) is cut into about G = clamp(flops / <see cref="MinFlopsPerGroup"/>, 1, <see cref="GroupsPerCore"/>
    /// x cores) work-groups (<paramref name="flopsPerGroup"/>: a family's check variant may ask for other than the rule's
    /// own), never more than there are blocks: each work-item (a group of one) does Per0 x Per1 blocks, Per0 along dimension 0 first (consecutive blocks there share their rows of one operand). So a small product wakes
    /// few threads and a large one gives every thread several groups to balance; the kernels take the counts as
    /// arguments, so no group shape is compiled twice.
    /// </summary>
    public static (int Per0, int Per1) ProductSplit(long blocks0, long blocks1, long flops, int cores, long flopsPerGroup = MinFlopsPerGroup)
    {
        blocks0 = Math.Max(1, blocks0); blocks1 = Math.Max(1, blocks1);
        long most = (long)GroupsPerCore * Math.Max(1, cores);
        long groups = Math.Min(blocks0 * blocks1, Math.Clamp(flops / Math.Max(1, flopsPerGroup), 1, most));
        long per = (blocks0 * blocks1 + groups - 1) / groups;
        long per0 = Even(blocks0, Math.Min(blocks0, per));
        // the rest along dimension 1: the share rounded down or up, whichever comes nearer the groups wanted within the most allowed
        long down = Even(blocks1, Math.Clamp(per / per0, 1, blocks1)), up = Even(blocks1, Math.Clamp((per + per0 - 1) / per0, 1, blocks1));
        long Groups(long per1) => Ceil(blocks0, per0) * Ceil(blocks1, per1);
        long per1 = Groups(down) <= most && Math.Abs(Groups(down) - groups) <= Math.Abs(Groups(up) - groups) ? down : up;
        return ((int)per0, (int)per1);
    }

    static long Ceil(long a, long b) => (a + b - 1) / b;

    /// <summary>The same number of pieces as <paramref name="per"/> cuts <paramref name="size"/> into, as even as they go: 64 in 42s is two pieces of 32.</summary>
    static long Even(long size, long per) => Ceil(size, Ceil(size, per));

    /// <summary><see cref="ProductSplit(long, long, long, int, long)"/> on this device's multiprocessors (an OpenCL CPU driver's threads).</summary>
    public (int Per0, int Per1) ProductSplit(long blocks0, long blocks1, long flops, long flopsPerGroup = MinFlopsPerGroup) =>
        ProductSplit(blocks0, blocks1, flops, Multiprocessors, flopsPerGroup);

    /// <summary>The GEMM families this device can run (every one is checked by gpu check and the kernel tests).</summary>
    public IReadOnlyList<GemmFamily> RunnableFamilies => GemmFamilies.RunnableOn(Kind);

    /// <summary>Whether the device runs <paramref name="family"/> (by name: a family with other knobs is the same family).</summary>
    public bool Runs(GemmFamily family) => RunnableFamilies.Any(f => f.Name == family.Name);

    /// <summary>This profile with the products of <paramref name="precision"/>: the family <see cref="GemmFamilies.For"/> gives (fp32: this profile's own).</summary>
    public DeviceProfile WithPrecision(Precision precision) =>
        precision == Gemm.Precision ? this : this with { Gemm = GemmFamilies.For(this, precision) };

    /// <summary>
    /// The line a run prints about the precision of this profile's products, or null for fp32: "precision tf32: tensor cores
    /// (the tensor-tf32 kernels): ..." or "precision tf32: emulated (this device has no tensor cores): each product input rounded
    /// to TF32 in the vector4 kernels, sums in float32"; <paramref name="notUsed"/>: why a tensor-core family the device would
    /// take is not used (its self-test failed).
    /// </summary>
    public string? PrecisionNote(string? notUsed = null)
    {
        var p = Gemm.Precision;
        if (p == Precision.Fp32) return null;
        string word = Words.Name(p), what = $"each product input rounded to {(p == Precision.Tf32 ? "TF32" : "bf16")}";
        if (Gemm.TensorCores(p)) return $"precision {word}: tensor cores (the {Gemm.Name} kernels): {what}, sums in float32";
        string why = notUsed != null ? $"the tensor-core kernels are not used: {notUsed}"
            : Kind != DeviceKind.Cuda ? "this device has no tensor cores"
            : ComputeCapability is not (>= 8, _) ? "this GPU's compute capability is below 8.0, where the engine's tensor-core kernels start"
            : $"the engine's {word} tensor-core kernels do not fit this device";
        return $"precision {word}: emulated ({why}): {what} in the {Gemm.Name} kernels, sums in float32";
    }

    /// <summary>
    /// The profile of an accelerator:
    /// CPU accelerator: element-wise work in 8 chunks per core, memory = what the process may use;
    /// CUDA and OpenCL GPUs: one thread per element, the device's memory;
    /// OpenCL CPU devices: element-wise work in up to 8 chunks per driver thread of at least 8192 elements, one work-item
    /// per group, each product's work sized by <see cref="ProductSplit(long, long, long, int, long)"/>, the host's memory;
    /// the GEMM family the device prefers among those it runs (Gemm/GemmFamilies.cs). Resident data up to half the budget.
    /// </summary>
    public static DeviceProfile For(Accelerator a) => For(KindOf(a), a.MemorySize, a.NumMultiprocessors, a.MaxNumThreadsPerGroup,
        a is CudaAccelerator cuda ? (cuda.Architecture.Major, cuda.Architecture.Minor) : null);

    /// <summary>
    /// The profile of a kind of device with <paramref name="deviceMemory"/> bytes, <paramref name="multiprocessors"/>
    /// multiprocessors and groups of up to <paramref name="maxGroupSize"/> threads (the PTX check uses CUDA's without a
    /// GPU; defaults: the host's cores, and 4 threads for the CPU accelerator, 1024 elsewhere).
    /// </summary>
    public static DeviceProfile For(DeviceKind kind, long deviceMemory, int multiprocessors = 0, int maxGroupSize = 0, (int, int)? computeCapability = null)
    {
        long host = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        long memory = kind switch
        {
            DeviceKind.CpuAccelerator => host,
            DeviceKind.OpenClCpu => Math.Min(host, deviceMemory),
            _ => deviceMemory,
        };
        var profile = new DeviceProfile
        {
            Kind = kind,
            Gemm = GemmFamilies.Scalar,
            Multiprocessors = multiprocessors > 0 ? multiprocessors : Environment.ProcessorCount,
            MaxGroupSize = maxGroupSize > 0 ? maxGroupSize : kind == DeviceKind.CpuAccelerator ? 4 : 1024,
            ComputeCapability = kind == DeviceKind.Cuda ? computeCapability : null,
            ElementwiseThreads = kind switch
            {
                DeviceKind.CpuAccelerator => 8 * Environment.ProcessorCount,
                DeviceKind.OpenClCpu => 8 * (multiprocessors > 0 ? multiprocessors : Environment.ProcessorCount),   // the driver's threads
                _ => 0,
            },
            ElementwiseGroupSize = kind == DeviceKind.OpenClCpu ? 1 : 0,
            ElementwiseMinChunk = kind == DeviceKind.OpenClCpu ? 8192 : 0,
            LossGroupSize = kind == DeviceKind.CpuAccelerator ? 4 : 256,
            StepGraphs = kind == DeviceKind.Cuda,
            LossMaxGroups = kind == DeviceKind.CpuAccelerator ? 1 : int.MaxValue,
            LossAtomics = kind != DeviceKind.OpenClCpu,
            MemoryBytes = memory,
            ResidentDataBytes = memory / 2,
        };
        return profile with { Gemm = GemmFamilies.Preferred(profile) };
    }

    public static DeviceKind KindOf(Accelerator a) => a switch
    {
        CLAccelerator cl => (cl.DeviceType & CLDeviceType.CL_DEVICE_TYPE_CPU) != 0 ? DeviceKind.OpenClCpu : DeviceKind.OpenClGpu,
        _ when a.AcceleratorType == AcceleratorType.Cuda => DeviceKind.Cuda,
        _ => DeviceKind.CpuAccelerator,
    };

    /// <summary>"cl-vector products, one work-item per element, 20.1 GB, 2 multiprocessors" for gpu devices and gpu check.</summary>
    public string Describe() =>
        $"{Gemm.Describe(this)} products{(Gemm.Precision == Precision.Fp32 ? "" : $" ({Words.Name(Gemm.Precision)} inputs, {(Gemm.TensorCores(Gemm.Precision) ? "tensor cores" : "emulated")})")}, " +
        $"{(ElementwiseThreads > 0 ? $"element-wise work in up to {ElementwiseThreads} chunks{(ElementwiseMinChunk > 0 ? $" of at least {ElementwiseMinChunk} elements" : "")}" : "one thread per element")}, {MemoryBytes / 1e9:F1} GB, " +
        $"{Multiprocessors} multiprocessors{(ComputeCapability is var (major, minor) ? $", compute capability {major}.{minor}" : "")}";
}
