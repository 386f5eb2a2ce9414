using Gpu.Engine.Reference;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Gpu.Kernels;

namespace Gpu.Tests.Kernels;

/// <summary>
/// The rounding of --precision tf32 and bf16: the float64 reference's (arithmetic) against the values PTX's cvt.rna.tf32.f32
/// and cvt.rn.bf16.f32 give, and the kernels' (bit operations, run here on the host) against the reference over random bit
/// patterns; and the one rule that picks a precision's GEMM family per device.
/// </summary>
public sealed class PrecisionRoundingTests
{
    static float F(uint bits) => BitConverter.UInt32BitsToSingle(bits);

    [Test]
    public void Tf32_keeps_10_mantissa_bits_rounding_ties_away_from_zero()
    {
        Assert.That(ReducedPrecision.Tf32(F(0x3f801000)), Is.EqualTo(F(0x3f802000)), "1 + 2^-11, a tie: away from zero (to nearest even would give 1)");
        Assert.That(ReducedPrecision.Tf32(F(0x3f803000)), Is.EqualTo(F(0x3f804000)), "1 + 3 2^-11, a tie: away from zero");
        Assert.That(ReducedPrecision.Tf32(F(0xbf801000)), Is.EqualTo(F(0xbf802000)), "negative ties away from zero too");
        Assert.That(ReducedPrecision.Tf32(F(0x3f800fff)), Is.EqualTo(1f), "below the tie: down");
        Assert.That(ReducedPrecision.Tf32(F(0x3fffffff)), Is.EqualTo(2f), "into the next binade");
        Assert.That(ReducedPrecision.Tf32(float.MaxValue), Is.EqualTo(float.PositiveInfinity), "past float's largest: infinite, as the hardware's bits give");
        Assert.That(ReducedPrecision.Tf32(F(0x00001fff)), Is.EqualTo(F(0x00002000)), "a subnormal keeps the smallest normal's places");
        Assert.That(ReducedPrecision.Tf32(-0f), Is.EqualTo(-0f));
        Assert.That(float.IsNaN(ReducedPrecision.Tf32(float.NaN)) && ReducedPrecision.Tf32(float.NegativeInfinity) == float.NegativeInfinity);
    }

    [Test]
    public void Bf16_keeps_7_mantissa_bits_rounding_ties_to_even()
    {
        Assert.That(ReducedPrecision.Bf16(F(0x3f808000)), Is.EqualTo(1f), "1 + 2^-8, a tie: to the even 1");
        Assert.That(ReducedPrecision.Bf16(F(0x3f818000)), Is.EqualTo(F(0x3f820000)), "1 + 3 2^-8, a tie: to the even 1 + 2^-6");
        Assert.That(ReducedPrecision.Bf16(F(0x3f808001)), Is.EqualTo(F(0x3f810000)), "above the tie: up");
        Assert.That(ReducedPrecision.Bf16(F(0xc0490fdb)), Is.EqualTo(F(0xc0490000)), "-pi");
        Assert.That(ReducedPrecision.Bf16(float.MaxValue), Is.EqualTo(float.PositiveInfinity));
        Assert.That(float.IsNaN(ReducedPrecision.Bf16(F(0x7f800001))), "a NaN whose payload is in the dropped bits stays NaN");
        Assert.That(ReducedPrecision.Bf16(float.PositiveInfinity), Is.EqualTo(float.PositiveInfinity));
    }

    [Test]
    public void The_kernels_rounding_is_the_references_on_random_bit_patterns()
    {
        var r = new Random(7);
        var bits = new byte[4];
        int checkedValues = 0;
        for (int i = 0; i < 1_000_000; i++)
        {
            r.NextBytes(bits);
            uint u = BitConverter.ToUInt32(bits);
            if (i % 3 == 0) u = (u & 0xffffe000u) | 0x1000u;        // TF32 ties
            else if (i % 3 == 1) u = (u & 0xffff0000u) | 0x8000u;   // bf16 ties
            float x = F(u);
            float t = default(Tf32Rounding).Round(x), b = default(Bf16Rounding).Round(x);
            float tr = ReducedPrecision.Tf32(x), br = ReducedPrecision.Bf16(x);
            if (float.IsNaN(x))
            {
                Assert.That(float.IsNaN(t) && float.IsNaN(b), $"NaN {u:x8} stays NaN");
                Assert.That((BitConverter.SingleToUInt32Bits(b) >> 16 & 0x7fffu) > 0x7f80u, $"NaN {u:x8}: its bf16 bits (the top half) a NaN, as the staged kernel packs them");
                continue;
            }
            if (BitConverter.SingleToUInt32Bits(t) != BitConverter.SingleToUInt32Bits(tr)) Assert.Fail($"tf32 of {u:x8}: kernel {BitConverter.SingleToUInt32Bits(t):x8}, reference {BitConverter.SingleToUInt32Bits(tr):x8}");
            if (BitConverter.SingleToUInt32Bits(b) != BitConverter.SingleToUInt32Bits(br)) Assert.Fail($"bf16 of {u:x8}: kernel {BitConverter.SingleToUInt32Bits(b):x8}, reference {BitConverter.SingleToUInt32Bits(br):x8}");
            Assert.That(default(NoRounding).Round(x), Is.EqualTo(x));
            checkedValues++;
        }
        Assert.That(checkedValues, Is.GreaterThan(990_000));
    }

    [Test]
    public void Each_device_runs_a_reduced_precision_in_the_family_it_prefers_among_those_that_emulate_it()
    {
        var cpu = DeviceProfile.For(DeviceKind.CpuAccelerator, 1L << 30);
        var pocl = DeviceProfile.For(DeviceKind.OpenClCpu, 1L << 30, maxGroupSize: 4096);
        var cuda = DeviceProfile.For(DeviceKind.Cuda, 80L << 30, 132, 1024, (9, 0));
        var openClGpu = DeviceProfile.For(DeviceKind.OpenClGpu, 16L << 30, 60, 256);
        var turing = DeviceProfile.For(DeviceKind.Cuda, 16L << 30, 40, 1024, (7, 5));
        foreach (var p in new[] { Precision.Tf32, Precision.Bf16 })
        {
            Assert.That(cpu.WithPrecision(p).Gemm, Is.EqualTo(GemmFamilies.Vector4 with { Precision = p }));
            Assert.That(pocl.WithPrecision(p).Gemm, Is.EqualTo(GemmFamilies.ClVector with { Precision = p }));
            Assert.That(turing.WithPrecision(p).Gemm, Is.EqualTo(GemmFamilies.Scalar with { Precision = p }), "the blocked family runs fp32 only; no tensor-core family below 8.0");
            Assert.That(openClGpu.WithPrecision(p).Gemm, Is.EqualTo(GemmFamilies.Scalar with { Precision = p }));
            Assert.That(GemmFamilies.For(cuda, p, tensorCores: false), Is.EqualTo(GemmFamilies.Scalar with { Precision = p }), "the emulation, where the tensor-core kernels fail their self-test");
            Assert.That(cpu.WithPrecision(p).PrecisionNote(), Does.StartWith($"precision {Words.Name(p)}: emulated (this device has no tensor cores)").And.Contain("vector4 kernels"));
            Assert.That(turing.WithPrecision(p).PrecisionNote(), Does.Contain("emulated (this GPU's compute capability is below 8.0"));
            Assert.That((cuda with { Gemm = GemmFamilies.For(cuda, p, tensorCores: false) }).PrecisionNote("its self-test failed: x"),
                Does.StartWith($"precision {Words.Name(p)}: emulated (the tensor-core kernels are not used: its self-test failed: x): ").And.Contain("scalar kernels"));
            Assert.That(GemmFamilies.Tiled.Computes(p) || GemmFamilies.Blocked.Computes(p), Is.False);
        }
        Assert.That(cuda.WithPrecision(Precision.Tf32).Gemm, Is.EqualTo(GemmFamilies.TensorTf32 with { Precision = Precision.Tf32 }), "compute capability 9.0: TF32 on tensor cores");
        Assert.That(cuda.WithPrecision(Precision.Tf32).PrecisionNote(), Does.StartWith("precision tf32: tensor cores (the tensor-tf32 kernels)"));
        Assert.That(cuda.WithPrecision(Precision.Bf16).Gemm, Is.EqualTo(GemmFamilies.TensorBf16 with { Precision = Precision.Bf16 }), "compute capability 9.0: bf16 on tensor cores");
        Assert.That(cuda.WithPrecision(Precision.Bf16).PrecisionNote(), Does.StartWith("precision bf16: tensor cores (the tensor-bf16 kernels): each product input rounded to bf16"));
        var ampere = DeviceProfile.For(DeviceKind.Cuda, 40L << 30, 108, 1024, (8, 0));
        Assert.That(ampere.WithPrecision(Precision.Bf16).Gemm.Name, Is.EqualTo("tensor-bf16"), "compute capability 8.0: the first with bf16 mma.sync");
        Assert.That(ampere.WithPrecision(Precision.Tf32).Gemm.Name, Is.EqualTo("tensor-tf32"), "each tensor-core family computes its own precision only");
        Assert.That(cuda.Gemm, Is.EqualTo(GemmFamilies.Blocked), "fp32 never takes a tensor-core family");
        Assert.That(GemmFamilies.TensorTf32.Computes(Precision.Fp32) || GemmFamilies.TensorTf32.Fits(turing), Is.False);
        Assert.That(GemmFamilies.TensorBf16.Computes(Precision.Fp32) || GemmFamilies.TensorBf16.Computes(Precision.Tf32) || GemmFamilies.TensorBf16.Fits(turing), Is.False);
        foreach (var profile in new[] { cpu, pocl, cuda, openClGpu, turing })
        {
            Assert.That(profile.WithPrecision(Precision.Fp32), Is.SameAs(profile), "fp32: the profile as it is");
            Assert.That(profile.PrecisionNote(), Is.Null);
        }
        var cpuScalar = cpu with { Gemm = GemmFamilies.Scalar };
        Assert.That(cpuScalar.WithPrecision(Precision.Tf32).Gemm.Name, Is.EqualTo("scalar"), "a family that emulates the precision is kept");
    }

    [Test]
    public void A_run_folder_written_before_the_setting_reads_as_fp32()
    {
        var json = Hyperparameter.OptionsToJson(new TrainOptions { Precision = Precision.Bf16 });
        Assert.That(json["precision"]!.GetValue<string>(), Is.EqualTo("bf16"));
        Assert.That(Hyperparameter.OptionsFromJson(json).Precision, Is.EqualTo(Precision.Bf16));
        json.Remove("precision");
        Assert.That(Hyperparameter.OptionsFromJson(json).Precision, Is.EqualTo(Precision.Fp32));
    }
}
