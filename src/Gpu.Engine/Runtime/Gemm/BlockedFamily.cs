using Gpu.Engine.Settings;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Engine.Runtime;

/// <summary>
/// Register-blocked SIMT products for GPUs (kernels/Gpu.Kernels/BlockedGemmKernels.cs, launched by <see cref="BlockedGemm"/>):
/// 8x8 outputs per thread, double-buffered shared-memory slices, 16-byte loads where aligned, and a plan per product shape
/// (a tile and a split-K factor, <see cref="BlockedGemm.Plan(int, int, int, int, int)"/>: modelled, not measured) so that a
/// product launches enough groups to fill the GPU; split-K partial sums are added in a fixed order, so a seed gives one
/// result per device. It runs everywhere (ILGPU's CPU accelerator runs its 4-thread tile, so CI checks the same code); CUDA
/// devices prefer it. Its knob, <see cref="FixedPlan"/>, runs every product with one plan (the checks of each tile).
/// </summary>
internal sealed record BlockedFamily : GemmFamily
{
    /// <summary>One plan for every product (a tile and a split factor); null: the planner's per shape.</summary>
    public GemmPlan? FixedPlan { get; init; }

    public override string Name => "blocked";
    public override string Meaning => "8x8 register blocks, shape-aware split-K plans, GPUs (CUDA and OpenCL)";
    public override bool RunsOn(DeviceKind kind) => true;
    public override int Preference(DeviceProfile profile) => profile.IsHost ? -1 : 3;   // every GPU, CUDA or OpenCL; CPUs have their own

    public override string[] Kernels(GemmProduct product) => ["BlockedGemmKernels.Gemm", "SplitKKernels.ReduceSplits"];

    /// <summary>The planner, then every tile with one split and with three (the plans the planner can choose).</summary>
    public override IEnumerable<(string Variant, GemmFamily Family)> CheckVariants =>
        [(Name, this), .. BlockedGemm.Tiles.SelectMany(t => new[] { 1, 3 }.Select(s => ($"{Name} {new GemmPlan(t.Name, s)}", (GemmFamily)(this with { FixedPlan = new(t.Name, s) }))))];

    public override bool Fits(DeviceProfile profile) => FixedPlan == null || BlockedGemm.Tile(FixedPlan.Tile).Threads <= profile.MaxGroupSize;

    public override string Describe(DeviceProfile profile) => $"{Name} ({(FixedPlan == null ? "planned per shape" : FixedPlan.ToString())})";

    /// <summary>"forward 128x256x784 (C 128x256 over 784): 64x32 split 17, 272 groups on 132 multiprocessors".</summary>
    public override IEnumerable<string> Plans(DeviceProfile profile, IEnumerable<(GemmProduct Product, int M, int N, int K)> products) =>
        products.Select(p =>
        {
            var (rows, cols, depth) = BlockedGemm.Shape(p.Product, p.M, p.N, p.K);
            var plan = FixedPlan ?? BlockedGemm.Plan(rows, cols, depth, profile.Multiprocessors, profile.MaxGroupSize);
            return $"{Words(p.Product)} {p.M}x{p.N}x{p.K} (C {rows}x{cols} over {depth}): {plan}, {BlockedGemm.Blocks(plan, rows, cols, depth)} groups on {profile.Multiprocessors} multiprocessors";
        });

    static string Words(GemmProduct p) => p switch
    {
        GemmProduct.Forward => "forward", GemmProduct.InputGrad => "input gradient", GemmProduct.WeightGrad => "weight gradient", _ => "weight and bias gradient",
    };

    public override IDenseProducts Open(Accelerator accelerator, AcceleratorStream stream, DeviceProfile profile) =>
        new Products(BlockedGemm.For(accelerator), stream, FixedPlan);

    sealed class Products(BlockedGemm gemm, AcceleratorStream s, GemmPlan? fixedPlan) : IDenseProducts
    {
        readonly Dictionary<(int, int, int), GemmPlan> plans = [];   // the planner's, by (rows, cols, depth)

        GemmPlan Plan(GemmProduct product, int m, int n, int k)
        {
            if (fixedPlan != null) return fixedPlan;
            var shape = BlockedGemm.Shape(product, m, n, k);
            if (!plans.TryGetValue(shape, out var plan)) plans[shape] = plan = gemm.Plan(shape.Rows, shape.Cols, shape.Depth);
            return plan;
        }

        public int DenseForward(ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y, int m, int n, int k, Activation act) =>
            gemm.DenseForward(s, x, w, b, y, m, n, k, act, Plan(GemmProduct.Forward, m, n, k));

        public int WeightGrad(ArrayView<float> dz, ArrayView<float> h, ArrayView<float> dw, ArrayView<float> db, int m, int n, int k, bool withBias) =>
            gemm.WeightGrad(s, dz, h, dw, withBias ? db : null, m, n, k, Plan(GemmProduct.WeightGrad, m, n, k));

        public int InputGrad(ArrayView<float> dz, ArrayView<float> w, ArrayView<float> h, ArrayView<float> dx, int m, int n, int k, Activation act) =>
            gemm.InputGrad(s, dz, w, h, dx, m, n, k, act, Plan(GemmProduct.InputGrad, m, n, k));
    }
}
