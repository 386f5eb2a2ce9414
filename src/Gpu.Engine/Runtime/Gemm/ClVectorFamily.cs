using Gpu.Engine.Settings;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.OpenCL;

namespace Gpu.Engine.Runtime;

/// <summary>
/// OpenCL C with 16-wide vectors and fma for OpenCL CPU devices (kernels/Gpu.Kernels/OpenCl/dense_layers.cl, built by
/// the driver's own compiler: <see cref="ClVectorGemm"/>). Its knob: a product of at least <see cref="PackAboveMacs"/>
/// multiply-adds (m n k) first packs its operands into contiguous panels. Large layers' rows are far apart (and
/// 2048-wide ones all fall in one cache set), so without packing their products run at half speed; small ones do not
/// pay back the two packing launches. It emulates TF32 and bf16: the program built with -DROUND_TF32 or -DROUND_BF16
/// rounds each product input as it loads it (a second program per precision; the fp32 one is built from the same source
/// without either, so its code is what it was).
/// </summary>
internal sealed record ClVectorFamily : GemmFamily
{
    /// <summary>Where packing starts to pay on an OpenCL CPU device (benchmarks/RESULTS.md): W1's largest product, 128x256x784 (26M), runs unpacked; 1024-row batches of 784-wide layers (above 100M) packed.</summary>
    public const long PackedProductMacs = 1L << 26;

    /// <summary>Products of at least this many multiply-adds pack their operands first (0: every product; long.MaxValue: none).</summary>
    public long PackAboveMacs { get; init; } = PackedProductMacs;

    /// <summary>
    /// The flops each work-item of an unpacked product should do at least, given to the device profile's rule with the
    /// core count (<see cref="DeviceProfile.ProductSplit(long, long, long, int, long)"/>): by default the rule's own
    /// <see cref="DeviceProfile.MinFlopsPerGroup"/>; 1: as many work-items as the rule allows for the cores (small shapes
    /// then split with a remainder); 0: one output block per work-item, as before the rule. The last two are check variants.
    /// </summary>
    public long FlopsPerGroup { get; init; } = DeviceProfile.MinFlopsPerGroup;

    public override string Name => "cl-vector";
    public override string Meaning => "OpenCL C with 16-wide vectors, OpenCL CPU devices";
    public override bool RunsOn(DeviceKind kind) => kind == DeviceKind.OpenClCpu;
    public override int Preference(DeviceProfile profile) => 2;
    public override bool Computes(Precision precision) => true;

    public override string[] Kernels(GemmProduct product) => (product, PackAboveMacs == 0) switch
    {
        (GemmProduct.Forward, false) => ["dense_layers.cl:dense_forward"],
        (GemmProduct.WeightGrad or GemmProduct.WeightAndBiasGrad, false) => ["dense_layers.cl:weight_grad"],
        (GemmProduct.InputGrad, false) => ["dense_layers.cl:input_grad"],
        (GemmProduct.Forward, true) => ["dense_layers.cl:pack_rows", "dense_layers.cl:gemm_packed"],
        (GemmProduct.InputGrad, true) => ["dense_layers.cl:pack_rows", "dense_layers.cl:pack_cols", "dense_layers.cl:gemm_packed"],
        _ => ["dense_layers.cl:pack_cols", "dense_layers.cl:gemm_packed"],
    };

    /// <summary>More than any family's: a full 32-column block with a 16-column one after it, a 784-wide layer, k tails of 0 and 1 after 16-wide chunks.</summary>
    public override IReadOnlyList<(int M, int N, int K)> CheckShapes { get; } = [.. GemmFamilies.AnyShapes, (17, 48, 40), (9, 100, 784), (3, 33, 48), (130, 16, 17)];

    /// <summary>
    /// As it is (the check shapes are small: one work-item each), with every product packed, split as finely as the cores
    /// allow (work-items of several blocks, the last past the edge), and one block per work-item.
    /// </summary>
    public override IEnumerable<(string Variant, GemmFamily Family)> CheckVariants =>
        [(Name, this), ($"{Name} packed", this with { PackAboveMacs = 0 }), ($"{Name} fine", this with { FlopsPerGroup = 1 }),
         ($"{Name} unsplit", this with { FlopsPerGroup = 0 })];

    /// <summary>The built programs, one table per precision (indexed by its value).</summary>
    static readonly PerAccelerator<ClVectorGemm>[] Programs = [.. Enum.GetValues<Precision>().Select(_ => new PerAccelerator<ClVectorGemm>())];

    static ClVectorGemm Program(Accelerator accelerator, Precision precision) =>
        Programs[(int)precision].For(accelerator, a => ClVectorGemm.Build((CLAccelerator)a, precision));

    public override string? Unavailable(Accelerator accelerator)
    {
        try { Program(accelerator, Precision); return null; }
        catch (Exception e) when (e is InvalidOperationException or DllNotFoundException or EntryPointNotFoundException) { return e.Message.Split('\n')[0].Trim(); }
    }

    public override IDenseProducts Open(Accelerator accelerator, AcceleratorStream stream, DeviceProfile profile) =>
        new Products(Program(accelerator, Precision), (CLStream)stream, PackAboveMacs, profile, FlopsPerGroup);

    sealed class Products(ClVectorGemm cl, CLStream s, long packAbove, DeviceProfile profile, long flopsPerGroup) : IDenseProducts
    {
        public int DenseForward(ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y, int m, int n, int k, Activation act) =>
            cl.DenseForward(s, x, w, b, y, m, n, k, act, packAbove, profile, flopsPerGroup);

        public int WeightGrad(ArrayView<float> dz, ArrayView<float> h, ArrayView<float> dw, ArrayView<float> db, int m, int n, int k, bool withBias) =>
            cl.WeightGrad(s, dz, h, dw, withBias ? db : dw, m, n, k, withBias, packAbove, profile, flopsPerGroup);

        public int InputGrad(ArrayView<float> dz, ArrayView<float> w, ArrayView<float> h, ArrayView<float> dx, int m, int n, int k, Activation act) =>
            cl.InputGrad(s, dz, w, h, dx, m, n, k, act, packAbove, profile, flopsPerGroup);
    }
}
