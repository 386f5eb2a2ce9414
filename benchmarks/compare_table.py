"""The RESULTS.md table of one benchmarks/compare.sh run: NumPy + OpenBLAS, the CPU accelerator and the
OpenCL device for the W1, W2, W3 training steps (samples/s) and the W1 GEMM shapes plus 1024^3 (GFLOP/s),
each engine figure with its ratio to NumPy. NumPy ran before and after the engine; the ratio uses the
better NumPy figure of the two (the one least favourable to the engine), and both are shown.

Usage: python3 benchmarks/compare_table.py OUT   (OUT as given to compare.sh)
"""
import glob
import json
import os
import sys

out = sys.argv[1]
np_runs = [json.load(open(os.path.join(out, f"numpy-{w}.json"))) for w in ("before", "after")]
bdn = []
for path in glob.glob(os.path.join(out, "bdn", "results", "*-report-full*.json")):
    bdn += json.load(open(path))["Benchmarks"]


def params(b):
    return dict(p.split("=", 1) for p in b["Parameters"].split("&"))


def engine(kind, key, device):
    """Mean time (ns) of the engine benchmark: kind 'step' (key: workload) or a GEMM method (key: shape)."""
    for b in bdn:
        p = params(b)
        if p.get("Device") != device:
            continue
        if kind == "step" and b["Type"] == "TrainingStepBenchmarks" and p.get("Workload") == key:
            return b["Statistics"]["Mean"]
        if kind != "step" and b["Type"] == "GemmBenchmarks" and b["Method"] == kind and p.get("Shape") == key:
            return b["Statistics"]["Mean"]
    return None


batch = {"W1": 128, "W2": 64, "W3": 1024}
steps_per_invocation = {"W1": 20, "W2": 20, "W3": 2}   # TrainingStepBenchmarks.StepsPerInvocation
devices = [("cpu", "CPU accelerator"), ("opencl:0", "OpenCL (POCL)")]


def np_steps(w):
    return [next((s["samples_per_s"] for s in r["steps"] if s["workload"] == w), None) for r in np_runs]


def np_gemm(shape, role):
    return [next((g["gflops"] for g in r["gemm"] if g["shape"] == shape and g["role"].startswith(role)), None) for r in np_runs]


def cell(value, ref, fmt):
    if value is None:
        return "-"
    return f"{fmt(value)} ({value / ref:.2f}x)" if ref else fmt(value)


def both(values, fmt):
    return " / ".join(fmt(v) if v is not None else "-" for v in values)


print(f"NumPy {np_runs[0]['numpy']}, {np_runs[0]['blas_library'].split('/')[-1]} core {np_runs[0]['blas_core']}, "
      f"{np_runs[0]['blas_threads']} threads; CPU: {np_runs[0]['cpu']}; {np_runs[0]['date']} to {np_runs[1]['date']}")
print()
print("| training step | NumPy (before / after) | " + " | ".join(name for _, name in devices) + " |")
print("|---|---|" + "---|" * len(devices))
for w in ("W1", "W2", "W3"):
    ref_runs = np_steps(w)
    ref = max(v for v in ref_runs if v is not None) if any(ref_runs) else None
    row = [f"{w} samples/s", both(ref_runs, lambda v: f"{v:,.0f}")]
    for dev, _ in devices:
        ns = engine("step", w, dev)
        row.append(cell(batch[w] * steps_per_invocation[w] / (ns * 1e-9) if ns else None, ref, lambda v: f"{v:,.0f}"))
    print("| " + " | ".join(row) + " |")
print()
print("| GEMM, GFLOP/s | NumPy (before / after) | " + " | ".join(name for _, name in devices) + " |")
print("|---|---|" + "---|" * len(devices))
# (engine method, engine shape m x n x k of the layer, NumPy shape and role of the same product)
products = []
for m, n, k in ((128, 256, 784), (128, 128, 256), (128, 10, 128)):
    products += [("Forward", f"{m}x{n}x{k}", f"{m}x{n}x{k}", "W1 fwd", f"forward X.W^T {m}x{n}x{k}"),
                 ("WeightGrad", f"{m}x{n}x{k}", f"{n}x{k}x{m}", "W1 wgrad", f"weight grad dZ^T.H {n}x{k}x{m}"),
                 ("InputGrad", f"{m}x{n}x{k}", f"{m}x{k}x{n}", "W1 dgrad", f"input grad dZ.W {m}x{k}x{n}")]
products.append(("Forward", "1024x1024x1024", "1024x1024x1024", "square", "1024^3 (forward X.W^T; NumPy X.W)"))
for method, shape, np_shape, role, label in products:
    ref_runs = np_gemm(np_shape, role)
    ref = max(v for v in ref_runs if v is not None) if any(ref_runs) else None
    m, n, k = (int(x) for x in shape.split("x"))
    row = [label, both(ref_runs, lambda v: f"{v:.1f}")]
    for dev, _ in devices:
        ns = engine(method, shape, dev)
        row.append(cell(2.0 * m * n * k / ns if ns else None, ref, lambda v: f"{v:.1f}"))
    print("| " + " | ".join(row) + " |")
