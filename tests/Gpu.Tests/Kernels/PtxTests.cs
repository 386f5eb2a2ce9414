using Gpu.Engine.Analysis;
using Gpu.Engine.Runtime;
using Gpu.Kernels;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime.Cuda;

namespace Gpu.Tests.Kernels;

/// <summary>
/// Every kernel compiled to CUDA PTX, with no GPU (ILGPU's PTX backend and a CUDA capability context), for sm_80 and
/// sm_90 at O1 and O2, as a CUDA device would load it (<see cref="PtxCheck"/>, also `gpu check --ptx`): it must compile,
/// a product must hold no local memory, and no kernel may hold any approximate instruction.
/// </summary>
public sealed class PtxTests
{
    static readonly Dictionary<(string Arch, OptimizationLevel Level), List<PtxResult>> compiled = new();

    /// <summary>All kernels for one architecture and level, compiled once (one context and backend) and shared by the cases.</summary>
    static List<PtxResult> Compiled(CudaArchitecture arch, OptimizationLevel level)
    {
        lock (compiled)
        {
            var key = (arch.ToString(), level);
            if (!compiled.TryGetValue(key, out var list)) compiled[key] = list = PtxCheck.Compile(KernelCatalogue.All, arch, level).ToList();
            return list;
        }
    }

    static IEnumerable<TestCaseData> Cases() =>
        from level in PtxCheck.Levels
        from arch in PtxCheck.Architectures
        from k in KernelCatalogue.All
        select new TestCaseData(k.Name, arch.Major * 10 + arch.Minor, level).SetArgDisplayNames(k.Name, arch.ToString().ToLowerInvariant(), PtxCheck.Name(level));

    [TestCaseSource(nameof(Cases))]
    public void Kernel_compiles_to_clean_ptx(string kernel, int sm, OptimizationLevel level)
    {
        var arch = PtxCheck.Architectures.Single(a => a.Major * 10 + a.Minor == sm);
        var r = Compiled(arch, level).Single(x => x.Kernel == kernel);
        Assert.That(r.Problems, Is.Empty, string.Join("\n", r.Problems));
        Assert.That(r.Ptx, Does.Contain(".entry"));
        TestContext.Out.WriteLine($"{r.Lines} lines, {r.SharedBytes} bytes shared, approximate: {PtxCheck.Describe(r.Approximate)}");
    }

    [Test]
    public void The_catalogue_holds_every_kernel_as_the_engine_loads_it()
    {
        var names = KernelCatalogue.All.Select(k => k.Name).ToList();
        Assert.That(names, Does.Contain("TiledGemmKernels.Gemm<Tile8>").And.Contain("TiledGemmKernels.Gemm<Tile64>"), "each tile is its own kernel");
        foreach (var rounding in new[] { "NoRounding", "Tf32Rounding", "Bf16Rounding" })
            Assert.That(names, Does.Contain($"GemmKernels.DenseForward<{rounding}>").And.Contain($"VectorGemmKernels.InputGrad<{rounding}>"), "each input rounding is its own kernel");
        Assert.That(KernelCatalogue.All.Where(k => k.Grouping == KernelGrouping.Explicit).Select(k => k.Name),
            Is.EquivalentTo(new[]
            {
                "TiledGemmKernels.Gemm<Tile8>", "TiledGemmKernels.Gemm<Tile64>",
                "BlockedGemmKernels.Gemm<Blocked128x128>", "BlockedGemmKernels.Gemm<Blocked128x64>", "BlockedGemmKernels.Gemm<Blocked64x64>",
                "BlockedGemmKernels.Gemm<Blocked64x32>", "BlockedGemmKernels.Gemm<Blocked16x16>",
                "LayerKernels.Loss<SigmoidSquaredErrorRow>", "LayerKernels.Loss<SoftmaxCrossEntropyRow>",
                "LayerKernels.LossOneGroup<SigmoidSquaredErrorRow>", "LayerKernels.LossOneGroup<SoftmaxCrossEntropyRow>",
                "TensorCoreGemmKernels.Gemm<ShuffleWarpMma>", "TensorCoreGemmKernels.Gemm<TensorCoreWarpMma>",
                "TensorCoreGemmKernels.Gemm<ShuffleWarpMmaBf16>", "TensorCoreGemmKernels.Gemm<TensorCoreWarpMmaBf16>",
            }),
            "explicitly grouped: the shared-memory products (each generic one with every tile struct of its interface) and the loss kernels (grid and one group)");
        Assert.That(names, Is.Unique);
        Assert.That(KernelCatalogue.All.Where(k => k.IsProduct).Select(k => k.Name), Has.All.Contain("Gemm"));
        var cuda = DeviceProfile.For(DeviceKind.Cuda, 0);
        Assert.That(KernelCatalogue.All.Where(k => BlockedGemm.TileOf(k.Method) == null && !TensorCoreFamily.IsKernel(k.Method)).Select(k => k.Specialization(cuda)),
            Has.All.EqualTo(ILGPU.Runtime.KernelSpecialization.Empty), "CUDA: auto-grouped, no specialisation");
        Assert.That(KernelCatalogue.All.Where(k => TensorCoreFamily.IsKernel(k.Method)).Select(k => k.Specialization(cuda)),
            Is.EqualTo(Enumerable.Repeat(new ILGPU.Runtime.KernelSpecialization(256, 2), 4)),
            "the staged tensor-core kernel (TF32 and bf16, each on the tensor cores and emulated): 256 threads, two groups per multiprocessor, as both families load it");
        foreach (var k in KernelCatalogue.All.Where(k => BlockedGemm.TileOf(k.Method) != null))
            Assert.That(k.Specialization(cuda), Is.EqualTo(BlockedGemm.TileOf(k.Method)!.Specialization), $"{k.Name}: its group size and register budget, as the launcher loads it");
        var openCl = DeviceProfile.For(DeviceKind.OpenClCpu, 1L << 30);
        var grouped = KernelCatalogue.All.Where(k => k.Specialization(openCl).MaxNumThreadsPerGroup == 1).Select(k => k.Method).ToList();
        Assert.That(grouped, Is.EquivalentTo(CompiledKernels.GroupSized), "an OpenCL CPU device loads the element-wise kernels in groups of one");
    }

    [TestCase(80)]
    [TestCase(90)]
    public void The_tensor_core_kernel_issues_tf32_mma_without_local_memory_or_approximate_math(int sm)
    {
        var arch = PtxCheck.Architectures.Single(a => a.Major * 10 + a.Minor == sm);
        foreach (var level in PtxCheck.Levels)
        {
            var r = Compiled(arch, level).Single(k => k.Kernel == "TensorCoreGemmKernels.Gemm<TensorCoreWarpMma>");
            string at = PtxCheck.Name(level);
            var mma = System.Text.RegularExpressions.Regex.Matches(r.Ptx, @"mma\.sync\.aligned\.m16n8k8\.row\.col\.f32\.tf32\.tf32\.f32").Count;
            Assert.That(mma, Is.EqualTo(2 * 16), $"{at}: one mma per m16n8 tile of the warp's 4 x 4, per 8-deep step, two steps per 16-deep tile");
            Assert.That(r.LocalBytes, Is.EqualTo(2 * 16 * PtxCheck.MmaOperandBytes),
                $"{at}: no local memory but ILGPU's inline-PTX operands (14 4-byte variables per mma, which ptxas makes registers): the 64 accumulators and the staged tiles stay in registers");
            Assert.That(r.SharedBytes, Is.EqualTo(2 * TensorCoreGemmKernels.BufferFloats * sizeof(float)),
                $"{at}: two buffers of A's and B's 128 x (16 + 4) tiles in shared memory, nothing else");
            Assert.That(System.Text.RegularExpressions.Regex.Matches(r.Ptx, @"\bbar\.sync\b").Count, Is.EqualTo(1), $"{at}: one barrier, once per tile");
            Assert.That(System.Text.RegularExpressions.Regex.Matches(r.Ptx, @"\bld\.shared\.f32\b").Count, Is.EqualTo(2 * (16 + 8)),
                $"{at}: the fragments come from shared memory: 16 A and 8 B values per lane and 8-deep step");
            Assert.That(r.Ptx, Does.Match(@"\bld(\.global)?\.v4\.f32\b"), $"{at}: 16-byte global reads where aligned (O1 leaves them generic)");
            Assert.That(r.Approximate, Is.Empty);
            Assert.That(r.Ptx, Does.Not.Contain(".approx"));
            Assert.That(r.Passed, string.Join("; ", r.Problems));
        }
    }

    [TestCase(80)]
    [TestCase(90)]
    public void The_bf16_tensor_core_kernel_issues_bf16_mma_without_local_memory_or_approximate_math(int sm)
    {
        var arch = PtxCheck.Architectures.Single(a => a.Major * 10 + a.Minor == sm);
        foreach (var level in PtxCheck.Levels)
        {
            var r = Compiled(arch, level).Single(k => k.Kernel == "TensorCoreGemmKernels.Gemm<TensorCoreWarpMmaBf16>");
            string at = PtxCheck.Name(level);
            var mma = System.Text.RegularExpressions.Regex.Matches(r.Ptx, @"mma\.sync\.aligned\.m16n8k16\.row\.col\.f32\.bf16\.bf16\.f32").Count;
            Assert.That(mma, Is.EqualTo(16), $"{at}: one mma per m16n8 tile of the warp's 4 x 4, one 16-deep step per tile");
            Assert.That(System.Text.RegularExpressions.Regex.Matches(r.Ptx, @"\bmma\.").Count, Is.EqualTo(16), $"{at}: no other mma (no tf32 one)");
            Assert.That(r.LocalBytes, Is.EqualTo(16 * PtxCheck.MmaOperandBytes),
                $"{at}: no local memory but ILGPU's inline-PTX operands (14 4-byte variables per mma, which ptxas makes registers): the 64 accumulators and the staged tiles stay in registers");
            Assert.That(r.SharedBytes, Is.EqualTo(2 * TensorCoreGemmKernels.BufferFloats * sizeof(float)).And.EqualTo(40960),
                $"{at}: the TF32 instance's two buffers of A's and B's 128 x (16 + 4) tiles (bf16 values stored as fp32), nothing else");
            Assert.That(System.Text.RegularExpressions.Regex.Matches(r.Ptx, @"\bbar\.sync\b").Count, Is.EqualTo(1), $"{at}: one barrier, once per tile");
            Assert.That(System.Text.RegularExpressions.Regex.Matches(r.Ptx, @"\bld\.shared\.f32\b").Count, Is.EqualTo(48),
                $"{at}: the fragments come from shared memory: the TF32 instance's 4-byte reads (32 A and 16 B values per lane and tile), packed in pairs");
            Assert.That(r.Ptx, Does.Match(@"\bld(\.global)?\.v4\.f32\b"), $"{at}: 16-byte global reads where aligned (O1 leaves them generic)");
            Assert.That(r.Approximate, Is.Empty);
            Assert.That(r.Ptx, Does.Not.Contain(".approx"));
            Assert.That(r.Passed, string.Join("; ", r.Problems));
        }
    }

    [Test]
    public void Sm_90_ptx_targets_sm_80_under_ilgpu_1_5_3()
    {
        // README and `gpu check --ptx` say so: ILGPU writes at most the newest architecture its instructions need
        var r = Compiled(CudaArchitecture.SM_90, OptimizationLevel.O2);
        Assert.That(r.Select(x => x.Target).Distinct(), Is.EqualTo(new[] { "sm_80" }));
    }

    [Test]
    public void XMath_Tanh_becomes_tanh_approx_and_is_refused()
    {
        var probe = new KernelEntry("probe tanh", typeof(PtxProbeKernels).GetMethod(nameof(PtxProbeKernels.Tanh))!, KernelGrouping.Implicit, false);
        var r = PtxCheck.Compile([probe], CudaArchitecture.SM_80, OptimizationLevel.O2).Single();
        Assert.That(r.Approximate, Does.Contain("tanh.approx.f32"));
        Assert.That(r.Problems, Has.One.Contain("tanh.approx.f32").And.Contain("an approximate instruction"));
    }

    [Test]
    public void Local_memory_beyond_the_inline_ptx_operands_is_refused()
    {
        string depots(int n, int size) => string.Concat(Enumerable.Range(0, n).Select(i => $"\t.local .align 4 .b8 __local_depot{i}[{size}];\n"));
        const string mma = "\tmma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%f1, %f2, %f3, %f4}, {%r1, %r2, %r3, %r4}, {%r5, %r6}, {%f5, %f6, %f7, %f8};\n";
        Assert.That(PtxCheck.Analyze(depots(14, 4) + mma, product: true).Problems, Is.Empty, "one mma's operands");
        Assert.That(PtxCheck.Analyze(depots(15, 4) + mma, product: true).Problems, Is.Not.Empty, "one variable more");
        Assert.That(PtxCheck.Analyze(depots(1, 56) + mma, product: true).Problems, Is.Not.Empty, "an array of the same size");
        Assert.That(PtxCheck.Analyze(depots(14, 4), product: true).Problems, Is.Not.Empty, "no mma");
    }

    [Test]
    public void Local_memory_in_a_product_is_refused()
    {
        var method = typeof(PtxProbeKernels).GetMethod(nameof(PtxProbeKernels.LocalArray))!;
        var asProduct = PtxCheck.Compile([new KernelEntry("probe local", method, KernelGrouping.Implicit, true)], CudaArchitecture.SM_80, OptimizationLevel.O2).Single();
        Assert.That(asProduct.LocalBytes, Is.GreaterThan(0));
        Assert.That(asProduct.Problems, Has.Some.Contain("local memory in a product"));
        var elsewhere = PtxCheck.Compile([new KernelEntry("probe local", method, KernelGrouping.Implicit, false)], CudaArchitecture.SM_80, OptimizationLevel.O2).Single();
        Assert.That(elsewhere.Problems, Is.Empty, "only the products must keep everything in registers");
    }

    [Test]
    public void Ilgpu_hands_a_shared_memory_address_to_inline_ptx_so_cp_async_compiles()
    {
        // What the staged tensor-core kernel does not (yet) use, pinned so that a later kernel can: a pointer taken with `fixed`
        // into a SharedMemory view, converted to nint, is the .shared window address itself (mov.b64 of the shared symbol plus the
        // offset, no cvta), and a pointer into a global view is a .global address (cvta.to.global): what cp.async's operands are.
        var probe = new KernelEntry("probe cp.async", typeof(PtxProbeKernels).GetMethod(nameof(PtxProbeKernels.CopyAsync))!, KernelGrouping.Explicit, false);
        foreach (var level in PtxCheck.Levels)
        {
            var r = PtxCheck.Compile([probe], CudaArchitecture.SM_80, level).Single();
            Assert.That(r.Problems, Is.Empty, string.Join("\n", r.Problems));
            var copy = System.Text.RegularExpressions.Regex.Match(r.Ptx, @"cp\.async\.cg\.shared\.global \[\s*(?<d>%rd\d+)\], \[\s*(?<s>%rd\d+)\], 16;");
            Assert.That(copy.Success, $"{PtxCheck.Name(level)}: the cp.async with both addresses in registers\n{r.Ptx}");
            string before = r.Ptx[..copy.Index];
            var symbol = System.Text.RegularExpressions.Regex.Match(before, @"mov\.b64\s+(?<r>%rd\d+), __shared_alloca\d+;");
            Assert.That(symbol.Success, "the shared allocation's address taken from its symbol");
            var lastWrite = System.Text.RegularExpressions.Regex.Matches(before, $@"\t\S+\s+{copy.Groups["d"].Value}, (?<x>[^;]*);").Last();
            Assert.That(lastWrite.Value, Does.StartWith("\tadd.u64").And.Contain(symbol.Groups["r"].Value), "the destination: the shared symbol plus the thread's offset");
            Assert.That(before[symbol.Index..], Does.Not.Contain("cvta.shared"), "a .shared address, never made generic");
        }
    }

    [Test]
    public void XMath_Exp_and_Log_become_ex2_and_lg2_approx_and_are_refused()
    {
        // what the softmax used before ExactMath: lg2.approx.f32's absolute error near 1 lost a confident row's loss on an H200
        var probe = new KernelEntry("probe exp log", typeof(PtxProbeKernels).GetMethod(nameof(PtxProbeKernels.ExpLog))!, KernelGrouping.Implicit, false);
        var r = PtxCheck.Compile([probe], CudaArchitecture.SM_80, OptimizationLevel.O2).Single();
        Assert.That(r.Approximate, Is.EquivalentTo(new[] { "ex2.approx.f32", "lg2.approx.f32" }));
        Assert.That(r.Problems, Has.One.StartWith("ex2.approx.f32: an approximate instruction").And.One.StartWith("lg2.approx.f32: an approximate instruction"));
    }

    [Test]
    public void XMath_Sqrt_and_division_are_ieee_rounded_and_pass()
    {
        var probe = new KernelEntry("probe sqrt div", typeof(PtxProbeKernels).GetMethod(nameof(PtxProbeKernels.SqrtDivide))!, KernelGrouping.Implicit, false);
        foreach (var level in PtxCheck.Levels)
        {
            var r = PtxCheck.Compile([probe], CudaArchitecture.SM_80, level).Single();
            Assert.That(r.Ptx, Does.Contain("sqrt.rn.f32").And.Contain("div.rn.f32").And.Contain("rcp.rn.f32"), "IEEE square root, division and reciprocal");
            Assert.That(r.Approximate, Is.Empty);
            Assert.That(r.Problems, Is.Empty);
        }
    }

    [Test]
    public void ExactMath_compiles_to_no_approximate_instruction()
    {
        var probe = new KernelEntry("probe exact math", typeof(ExactMathProbeKernels).GetMethod(nameof(ExactMathProbeKernels.Apply))!, KernelGrouping.Implicit, false);
        foreach (var level in PtxCheck.Levels)
        {
            var r = PtxCheck.Compile([probe], CudaArchitecture.SM_80, level).Single();
            Assert.That(r.Problems, Is.Empty, string.Join("\n", r.Problems));
            Assert.That(r.Ptx, Does.Not.Contain(".approx").And.Not.Contain(".ftz"), "no approximation, and subnormals kept");
        }
    }

    [Test]
    public void Every_approximate_instruction_is_refused_whatever_its_documented_error()
    {
        foreach (var instruction in new[] { "ex2.approx.f32", "ex2.approx.ftz.f32", "lg2.approx.f32", "rcp.approx.f32", "rcp.approx.ftz.f64", "sqrt.approx.f32",
                     "rsqrt.approx.f32", "sin.approx.f32", "cos.approx.ftz.f32", "div.approx.f32", "tanh.approx.f32", "ex2.approx.f16", "div.full.f32", "foo.approx.f32" })
        {
            var (_, _, approximate, problems) = PtxCheck.Analyze($"\t{instruction} %f1, %f2;\n", false);
            Assert.That(approximate, Is.EqualTo(new[] { instruction }), instruction);
            Assert.That(problems, Has.One.EqualTo($"{instruction}: an approximate instruction (every kernel computes with IEEE-rounded arithmetic; exp and log come from ExactMath)"));
        }
        var ieee = PtxCheck.Analyze("\tdiv.rn.f32 %f1, %f2, %f3;\n\trcp.rn.f32 %f4, %f1;\n\tsqrt.rn.f32 %f5, %f4;\n\tfma.rn.f32 %f6, %f5, %f4, %f1;\n", true);
        Assert.That(ieee.Approximate, Is.Empty);
        Assert.That(ieee.Problems, Is.Empty, "IEEE-rounded division, reciprocal and square root pass");
    }
}

/// <summary>Kernels the PTX check must refuse (not in kernels/, so not in the catalogue).</summary>
public static class PtxProbeKernels
{
    public static void Tanh(Index1D i, ArrayView<float> x) => x[i] = XMath.Tanh(x[i]);

    public static void ExpLog(Index1D i, ArrayView<float> x) => x[i] = XMath.Log(XMath.Exp(x[i]) + 1f);

    // what the kernels write: XMath.Sqrt, a division and a reciprocal
    public static void SqrtDivide(Index1D i, ArrayView<float> x, ArrayView<float> y) => x[i] = XMath.Sqrt(x[i]) / y[i] + 1f / (y[i] + 2f);

    // an array indexed by a runtime value: ILGPU keeps it in local memory
    public static void LocalArray(Index1D i, ArrayView<float> x, int j)
    {
        var a = LocalMemory.Allocate1D<float>(16);
        for (int q = 0; q < 16; q++) a[q] = x[q] * q;
        x[i] = a[j & 15];
    }

    // cp.async of 16 bytes from a global view into a shared one, through pointers taken with `fixed` (what ILGPU 1.5.3 allows)
    public static unsafe void CopyAsync(ArrayView<float> a, ArrayView<float> c)
    {
        var s = SharedMemory.Allocate1D<float>(256);
        int t = Group.IdxX;
        fixed (float* dst = &s[t * 4])
        fixed (float* src = &a[t * 4])
            CudaAsm.Emit("cp.async.cg.shared.global [%0], [%1], 16;", (nint)dst, (nint)src);
        CudaAsm.Emit("cp.async.wait_all;");
        Group.Barrier();
        c[t] = s[(t * 4 + 5) & 255];
    }
}
