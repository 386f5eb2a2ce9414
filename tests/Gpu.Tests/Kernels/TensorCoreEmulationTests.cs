using Gpu.Engine.Reference;
using Gpu.Engine.Runtime;
using Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Tests.Kernels;

/// <summary>
/// The staged product's TF32 instance emulated (<see cref="ShuffleWarpMma"/>) against the float64 product of TF32-rounded inputs
/// (the shared cases: <see cref="StagedTensorCoreTests"/>), the rounding itself, and the split model.
/// </summary>
public sealed class TensorCoreEmulationTests : StagedTensorCoreTests
{
    private protected override Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs> Load(Accelerator a) =>
        a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(TensorCoreGemmKernels.Gemm<ShuffleWarpMma>);

    protected override float Rounded(float x) => ReducedPrecision.Tf32(x);

    [Test]
    public void The_split_model_fills_two_groups_per_multiprocessor_and_keeps_splits_deep()
    {
        Assert.That(TensorCoreFamily.Split(4096, 4096, 4096, 132), Is.EqualTo((1, 4096)), "1024 blocks fill an H200 alone");
        Assert.That(TensorCoreFamily.Split(1024, 1024, 1024, 132), Is.EqualTo((5, 208)), "64 blocks: 5 splits of 13 tiles, 320 groups for 264");
        Assert.That(TensorCoreFamily.Split(1024, 2048, 2048, 132), Is.EqualTo((3, 688)), "W3's hidden products: 128 blocks");
        Assert.That(TensorCoreFamily.Split(1024, 10, 2048, 132), Is.EqualTo((16, 128)), "a narrow C: as many splits as keep 8 tiles each");
        Assert.That(TensorCoreFamily.Split(133, 141, 300, 132), Is.EqualTo((2, 160)), "the self-test's product splits in two");
        Assert.That(TensorCoreFamily.Split(133, 141, 300, 2), Is.EqualTo((1, 304)), "two multiprocessors: its 4 blocks fill them");
        Assert.That(TensorCoreFamily.Split(100, 100, 0, 132), Is.EqualTo((1, 16)), "nothing to split");
    }

    [Test]
    public void The_emulation_rounds_the_inputs_to_tf32_and_not_more()
    {
        // one element whose low mantissa bits TF32 drops: the product must be that of the rounded values, not of the float32 ones
        const int m = 16, n = 8, k = 8;
        float one = BitConverter.Int32BitsToSingle(0x3f800fff);   // 1 + 4095 2^-23, just below TF32's halfway: rounds to 1
        var a = Enumerable.Repeat(one, m * k).ToArray();
        var b = Enumerable.Repeat(1f, n * k).ToArray();
        var (c, _) = Run(a, b, null, 1, m, n, k, k, 1, k, 1, Epilogue.None, 0);
        Assert.That(c, Has.All.EqualTo(8f), "eight products of tf32(1 + 4095 2^-23) = 1");
    }
}
