using Gpu.Engine.Settings;
using Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Engine.Runtime;

/// <summary>
/// Shared-memory tiles with barriers (kernels/Gpu.Kernels/TiledGemmKernels.cs): one strided kernel serves the three
/// products. A device whose groups hold 256 threads gets the 64x64-output tile of 16x16 threads; a smaller one (ILGPU's
/// CPU accelerator: groups of 4) the 8x8 tile of 2x2 threads, so the same code is tested there.
/// </summary>
internal sealed record TiledFamily : GemmFamily
{
    public override string Name => "tiled";
    public override string Meaning => "shared-memory tiles, GPUs";
    public override bool RunsOn(DeviceKind kind) => true;
    public override int Preference(DeviceProfile profile) => profile.IsHost ? 0 : 1;
    public override string[] Kernels(GemmProduct product) => ["TiledGemmKernels.Gemm"];

    /// <summary>Whether a device with groups of at most <paramref name="maxGroupSize"/> threads takes the 8x8 tile.</summary>
    public static bool SmallTile(int maxGroupSize) => maxGroupSize < 256;

    public override string Describe(DeviceProfile profile) => $"{Name} ({(SmallTile(profile.MaxGroupSize) ? "8x8" : "64x64")} tiles)";

    public override IDenseProducts Open(Accelerator accelerator, AcceleratorStream stream, DeviceProfile profile) =>
        new Products(Compiled.For(accelerator, a => new TiledKernels(a)), stream, SmallTile(accelerator.MaxNumThreadsPerGroup));

    static readonly PerAccelerator<TiledKernels> Compiled = new();

    sealed class TiledKernels(Accelerator a)
    {
        public readonly Lazy<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int, int, int>>
            Tile8 = new(() => a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int, int, int>(TiledGemmKernels.Gemm<Tile8>)),
            Tile64 = new(() => a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int, int, int>(TiledGemmKernels.Gemm<Tile64>));
    }

    sealed class Products(TiledKernels c, AcceleratorStream s, bool small) : IDenseProducts
    {
        // C[rows, cols] = epilogue(sum_p A(i,p) B(j,p)), A(i,p) = a[i*aRow + p*aCol], B(j,p) = b[j*bRow + p*bCol]
        int Gemm(ArrayView<float> a, ArrayView<float> b, ArrayView<float> cOut, ArrayView<float> aux, int rows, int cols, int depth,
            int aRow, int aCol, int bRow, int bCol, int epilogue, Activation act)
        {
            if (small) c.Tile8.Value(s, TiledGemmKernels.Config<Tile8>(rows, cols), a, b, cOut, aux, rows, cols, depth, aRow, aCol, bRow, bCol, epilogue, (int)act);
            else c.Tile64.Value(s, TiledGemmKernels.Config<Tile64>(rows, cols), a, b, cOut, aux, rows, cols, depth, aRow, aCol, bRow, bCol, epilogue, (int)act);
            return 1;
        }

        public int DenseForward(ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y, int m, int n, int k, Activation act) =>
            Gemm(x, w, y, b, m, n, k, k, 1, k, 1, Epilogue.BiasAct, act);

        public int WeightGrad(ArrayView<float> dz, ArrayView<float> h, ArrayView<float> dw, ArrayView<float> db, int m, int n, int k, bool withBias) =>
            Gemm(dz, h, dw, withBias ? db : dw, n, k, m, 1, n, 1, k, withBias ? Epilogue.RowSums : Epilogue.None, Activation.Identity);

        public int InputGrad(ArrayView<float> dz, ArrayView<float> w, ArrayView<float> h, ArrayView<float> dx, int m, int n, int k, Activation act) =>
            Gemm(dz, w, dx, h, m, k, n, n, 1, 1, k, Epilogue.ActBackprop, act);
    }
}
