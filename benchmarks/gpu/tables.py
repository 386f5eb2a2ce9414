"""The tables of benchmarks/gpu/first-light.sh's summary, from what its parts wrote. Standard library only (python3 >= 3.8).

  compare  --md FILE --bdn DIR --bench-log FILE --torch FILE --device D
           GEMM: each BenchmarkDotNet case's TFLOP/s (from its JSON report) beside torch.matmul's (cuBLAS, fp32, TF32 off)
           at the same product and shape, and the ratio; training steps: samples/s and launches/step (from its table)
           beside PyTorch eager and CUDA graph, and the ratios. Tables to FILE, one line to stdout.
  launches --bench-log FILE --device D --workload W
           the launches/step BenchmarkDotNet's table shows for that workload (nothing when it has none).
  ncu      --md FILE [--title T] [--per-step L] CSV...
           Nsight Compute's raw CSV (--csv --page raw, gpu__time_duration.sum) summed per kernel (name and block size):
           launches, total, mean, share of the GPU time. The table goes to FILE, one line to stdout. The first CSV that
           holds rows is used (ncu's --log-file, then the part's log, where the rows may be mixed with other lines).
  ptxas    --ptxas PATH --arch sm_90 --md FILE DIR
           ptxas -v over DIR/*_<arch>_*.ptx (gpu check --ptx --ptx-out DIR): registers, spill bytes, stack, shared memory
           and barriers per kernel. When ptxas refuses the PTX's .version (an older ptxas than ILGPU's PTX ISA), the file
           is assembled again with the .version it names as its newest, and the row says so. Table to FILE, one line to
           stdout; exit code 1 if a file could not be assembled.

  precision --md FILE --device D [--gpu NAME] --gemm-bdn DIR --steps P=LOG... --torch P=JSON... --train P=LOG...
           [--steps-bdn P=DIR...] [--acc-target A] [--acc-tolerance T]
           benchmarks/gpu/precision-light.sh's tables (issue 20): the tensor-core GEMM families' TFLOP/s beside torch.matmul
           in the same precision, with the fraction of the GPU's dense peak (PEAK_TFLOPS); the training steps per
           precision beside PyTorch eager and CUDA graph in that precision; the default run's test accuracy per precision
           against fp32's; and issue 20's targets (TARGETS), each met, not met or not measured. Tables to FILE, one line
           to stdout.

Tolerant by design: extra columns and parameters (a GEMM family), extra lines (plan lines) and missing inputs give
'-' cells or a line saying what is missing, never a traceback.
"""
import argparse
import csv
import glob
import html
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "peers"))
try:
    from workloads import WORKLOADS  # the batch of each workload, shared with the peers
    BATCH = {name: w["batch"] for name, w in WORKLOADS.items()}
except Exception:  # pragma: no cover - the peers folder travels with the tree
    BATCH = {"W1": 128, "W2": 64, "W3": 1024}
STEPS_PER_INVOCATION = {"W3": 2}  # TrainingStepBenchmarks.StepsPerInvocation: 20, W3: 2
PRODUCTS = {  # GemmBenchmarks method -> (name, torch.matmul shape of the same product for the engine's m x n x k)
    "Forward": ("forward X.W^T", lambda m, n, k: (m, n, k)),
    "WeightGrad": ("weight grad dZ^T.H", lambda m, n, k: (n, k, m)),
    "InputGrad": ("input grad dZ.W", lambda m, n, k: (m, k, n)),
}


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "-"


# ---------------------------------------------------------------- BenchmarkDotNet's markdown tables and JSON report

def markdown_tables(path):
    """Every '|' table in a file, as (header cells, rows of cells); BenchmarkDotNet's bold group rows and entities cleaned."""
    tables, header, rows = [], None, []
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError:
        return tables
    for line in lines + [""]:
        if line.startswith("|"):
            cells = [html.unescape(c.replace("**", "").strip()) for c in line.strip().strip("|").split("|")]
            if header is None:
                header = cells
            elif all(re.fullmatch(r":?-+:?", c) for c in cells if c):
                continue
            else:
                rows.append(cells)
        else:
            if header is not None:
                tables.append((header, rows))
            header, rows = None, []
    return tables


def table_value(path, device, workload, column):
    for header, rows in markdown_tables(path):
        if not {"Device", "Workload", column} <= set(header):
            continue
        d, w, c = header.index("Device"), header.index("Workload"), header.index(column)
        for r in rows:
            if len(r) == len(header) and r[d] == device and r[w] == workload and re.match(r"[0-9]", r[c]):
                return r[c]
    return None


def bdn_cases(folder):
    cases = []
    for path in sorted(glob.glob(os.path.join(folder, "results", "*report-full*.json"))):
        try:
            cases += json.load(open(path, encoding="utf-8")).get("Benchmarks", [])
        except (OSError, ValueError):
            pass
    out = []
    for b in cases:
        params = dict(p.split("=", 1) for p in (b.get("Parameters") or "").split("&") if "=" in p)
        mean = (b.get("Statistics") or {}).get("Mean")
        out.append(dict(type=b.get("Type", ""), method=b.get("Method", ""), params=params, mean_ns=mean))
    return out


def cmd_compare(a):
    lines, summary = [], []
    try:
        _compare(a, lambda text="": lines.append(text), summary)   # the tables go to --md
    finally:
        with open(a.md, "w") as f:
            f.write("\n".join(lines) + "\n")
    print("; ".join(summary) or "no figures")
    return 0


def _span(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    return f"{lo:.2f}x" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}x-{hi:.2f}x"


def _compare(a, print, summary):
    cases = bdn_cases(a.bdn)
    torch = {}
    try:
        torch = json.load(open(a.torch, encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        pass
    peer = "torch.matmul (cuBLAS)"
    if torch:
        peer = f"torch.matmul (cuBLAS), {torch.get('device', '?')}, torch {torch.get('torch', '?')}"
    cublas = {g.get("shape"): g.get("gflops") for g in torch.get("gemm", [])}

    print(f"### GEMM on {a.device}: the engine beside {peer}, fp32, TF32 off")
    print()
    gemms = [c for c in cases if c["type"] == "GemmBenchmarks" and c["params"].get("Device") == a.device]
    if not gemms:
        print("(no GemmBenchmarks figures: the bench part did not run or wrote no JSON report)")
    else:
        extra = sorted({k for c in gemms for k in c["params"] if k not in ("Device", "Shape")})
        print("| product | shape (m x n x k) | " + "".join(f"{k} | " for k in extra)
              + "engine TFLOP/s | cuBLAS TFLOP/s | engine / cuBLAS |")
        print("|---|---|" + "---|" * len(extra) + "---:|---:|---:|")
        order = list(PRODUCTS)
        gemm_ratios = []
        def key(c):
            dims = [int(x) for x in re.findall(r"[0-9]+", c["params"].get("Shape", ""))]
            return (dims, [c["params"].get(k, "") for k in extra], order.index(c["method"]) if c["method"] in order else 9)
        for c in sorted(gemms, key=key):
            shape = c["params"].get("Shape", "?")
            dims = [int(x) for x in shape.split("x")] if re.fullmatch(r"[0-9]+x[0-9]+x[0-9]+", shape) else None
            name, peer_shape = PRODUCTS.get(c["method"], (c["method"], None))
            mine = 2.0 * dims[0] * dims[1] * dims[2] / c["mean_ns"] / 1e3 if dims and c["mean_ns"] else None
            theirs = None
            if dims and peer_shape:
                g = cublas.get("x".join(map(str, peer_shape(*dims))))
                theirs = g / 1e3 if g else None
            print(f"| {name} | {shape} | " + "".join(f"{c['params'].get(k, '-')} | " for k in extra)
                  + f"{fmt(mine, '.2f')} | {fmt(theirs, '.2f')} | {ratio(mine, theirs)} |")
            gemm_ratios.append(mine / theirs if mine is not None and theirs else None)
        summary.append(f"GEMM: {len(gemms)} cases, engine / cuBLAS {_span(gemm_ratios)}")
    print()

    print(f"### Training steps on {a.device}: the engine beside PyTorch (eager, and the whole step as one CUDA graph)")
    print()
    steps = [c for c in cases if c["type"] == "TrainingStepBenchmarks" and c["params"].get("Device") == a.device]
    peers = {(s.get("workload"), s.get("mode")): s.get("samples_per_s") for s in torch.get("steps", [])}
    workloads = sorted({c["params"].get("Workload") for c in steps if c["params"].get("Workload")}
                       | {w for w, _ in peers if w})
    if not workloads:
        print("(no training-step figures)")
        return
    eager_ratios, graph_ratios = [], []
    print("| workload | engine samples/s | launches/step | PyTorch eager | engine / eager | PyTorch CUDA graph | engine / graph |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for w in workloads:
        mine = None
        shown = table_value(a.bench_log, a.device, w, "samples/s")
        if shown:
            mine = float(shown.replace(",", ""))
        else:
            case = next((c for c in steps if c["params"].get("Workload") == w and c["mean_ns"]), None)
            if case and w in BATCH:
                mine = BATCH[w] * STEPS_PER_INVOCATION.get(w, 20) / (case["mean_ns"] * 1e-9)
        launches = table_value(a.bench_log, a.device, w, "launches/step") or "-"
        eager, graph = peers.get((w, "eager")), peers.get((w, "graph"))
        eager_ratios.append(mine / eager if mine is not None and eager else None)
        graph_ratios.append(mine / graph if mine is not None and graph else None)
        print(f"| {w} | {fmt(mine, ',.0f')} | {launches} | {fmt(eager, ',.0f')} | {ratio(mine, eager)} | "
              f"{fmt(graph, ',.0f')} | {ratio(mine, graph)} |")
    summary.append(f"steps: {len(workloads)} workloads, engine / PyTorch eager {_span(eager_ratios)}, "
                   f"/ CUDA graph {_span(graph_ratios)}")


def cmd_launches(a):
    v = table_value(a.bench_log, a.device, a.workload, "launches/step")
    if v:
        print(v)
    return 0


# ---------------------------------------------------------------- Nsight Compute

UNITS_TO_US = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3, "second": 1e6, "s": 1e6}


def read_ncu(path):
    try:
        lines = [l for l in open(path, encoding="utf-8", errors="replace").read().splitlines() if l.startswith('"')]
    except OSError:
        return None
    rows = list(csv.reader(lines))
    for i, row in enumerate(rows):
        if "Kernel Name" in row and any(c.startswith("gpu__time_duration") for c in row):
            header = row
            name, metric = header.index("Kernel Name"), next(j for j, c in enumerate(header) if c.startswith("gpu__time_duration"))
            block = header.index("Block Size") if "Block Size" in header else None
            scale, data = 1e-3, []   # nanoseconds unless a units row says otherwise
            for r in rows[i + 1:]:
                if len(r) != len(header):
                    continue
                if not r[name] and r[metric] in UNITS_TO_US:
                    scale = UNITS_TO_US[r[metric]]
                    continue
                try:
                    data.append((r[name], r[block] if block is not None else "", float(r[metric].replace(",", "")) * scale))
                except ValueError:
                    continue
            if data:
                return data
    return None


def cmd_ncu(a):
    data = None
    for path in a.csv:
        data = read_ncu(path)
        if data:
            break
    if not data:
        open(a.md, "w").write("(no kernel rows in Nsight Compute's output)\n")
        print("no kernel rows in Nsight Compute's output")
        return 1
    groups = {}
    for name, block, us in data:
        g = groups.setdefault((name, block), [0, 0.0])
        g[0] += 1
        g[1] += us
    total = sum(g[1] for g in groups.values())
    launches = sum(g[0] for g in groups.values())
    with open(a.md, "w") as f:
        if a.title:
            f.write(f"### {a.title}\n\n")
        f.write("| kernel | block | launches | total µs | mean µs | share of GPU time |\n|---|---|---:|---:|---:|---:|\n")
        for (name, block), (n, us) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
            f.write(f"| {name} | {block} | {n} | {us:,.1f} | {us / n:,.2f} | {us / total:.1%} |\n")
        f.write(f"| all | | {launches} | {total:,.1f} | {total / launches:,.2f} | 100% |\n")
    top = max(groups.items(), key=lambda kv: kv[1][1])
    per_step = f", {total / (launches / a.per_step):,.1f} µs per step" if a.per_step else ""
    print(f"{launches} launches of {len(groups)} kernels, {total:,.1f} µs of GPU time{per_step}; "
          f"most: {top[0][0]} {top[1][1] / total:.0%}")
    return 0


# ---------------------------------------------------------------- ptxas

def ptxas_run(ptxas, arch, path):
    """(rc, output, note): ptxas -v on path; once more with the newest .version ptxas names if it refuses the file's."""
    def run(p):
        try:
            r = subprocess.run([ptxas, "-v", f"-arch={arch}", "-o", os.devnull, p], capture_output=True, text=True, timeout=120)
            return r.returncode, r.stdout + r.stderr
        except (OSError, subprocess.TimeoutExpired) as e:
            return 127, str(e)
    rc, out = run(path)
    m = re.search(r"Unsupported \.version ([0-9.]+); current version is '([0-9.]+)'", out)
    if rc != 0 and m:
        text = open(path, encoding="utf-8", errors="replace").read()
        with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as t:
            t.write(re.sub(r"^\.version\s+[0-9.]+", f".version {m.group(2)}", text, count=1, flags=re.M))
        try:
            rc, out = run(t.name)
        finally:
            os.unlink(t.name)
        return rc, out, f".version {m.group(1)} -> {m.group(2)}"
    return rc, out, ""


def ptxas_functions(out):
    """Per entry function: registers, spill stores/loads, stack, shared memory, barriers (ptxas -v's info lines)."""
    funcs, cur = [], None
    for line in out.splitlines():
        m = re.search(r"Compiling entry function '([^']+)'", line)
        if m:
            cur = dict(name=m.group(1))
            funcs.append(cur)
            continue
        if cur is None:
            continue
        for key, pat in (("stack", r"([0-9]+) bytes stack frame"), ("spill_st", r"([0-9]+) bytes spill stores"),
                         ("spill_ld", r"([0-9]+) bytes spill loads"), ("regs", r"Used ([0-9]+) registers"),
                         ("barriers", r"used ([0-9]+) barriers"), ("smem", r"([0-9]+) bytes smem")):
            m = re.search(pat, line)
            if m:
                cur[key] = int(m.group(1))
    return funcs


def cmd_ptxas(a):
    files = sorted(glob.glob(os.path.join(a.dir, f"*_{a.arch}_*.ptx")))
    if not files:
        open(a.md, "w").write(f"(no *_{a.arch}_*.ptx files in {a.dir})\n")
        print(f"no *_{a.arch}_*.ptx files in {a.dir}")
        return 1
    rows, failed, notes = [], [], set()
    for path in files:
        base = os.path.basename(path)[:-4]
        m = re.match(rf"(.*)_{a.arch}_(O[0-9])$", base)
        kernel, opt = (m.group(1), m.group(2)) if m else (base, "")
        rc, out, note = ptxas_run(a.ptxas, a.arch, path)
        sys.stderr.write(f"--- {os.path.basename(path)}{' (' + note + ')' if note else ''}: exit code {rc}\n{out}")
        if note:
            notes.add(note)
        if rc != 0:
            err = next((l.strip() for l in out.splitlines() if "error" in l.lower() or "fatal" in l.lower()), out.strip()[:120])
            failed.append(kernel + " " + opt)
            rows.append((kernel, opt, None, f"refused: {err}"))
            continue
        for fn in ptxas_functions(out) or [dict(name="?")]:
            if "regs" in fn:   # ptxas leaves out the shared memory when there is none (barriers: only newer ptxas says)
                fn.setdefault("smem", 0)
            rows.append((kernel, opt, fn, note))
    shared_note = notes.pop() if len(notes) == 1 and all(r[3] for r in rows) else None
    if shared_note:   # the same for every file: said once, under the table
        rows = [(k, o, fn, "" if fn else n) for k, o, fn, n in rows]
        notes = {shared_note}
    with open(a.md, "w") as f:
        f.write(f"| kernel | opt | registers | spill stores B | spill loads B | stack B | shared B | barriers | note |\n"
                f"|---|---|---:|---:|---:|---:|---:|---:|---|\n")
        for kernel, opt, fn, note in rows:
            if fn is None:
                f.write(f"| {kernel} | {opt} | - | - | - | - | - | - | {note} |\n")
            else:
                g = lambda k: str(fn[k]) if k in fn else "-"
                f.write(f"| {kernel} | {opt} | {g('regs')} | {g('spill_st')} | {g('spill_ld')} | {g('stack')} | "
                        f"{g('smem')} | {g('barriers')} | {note or ''} |\n")
        if shared_note:
            f.write(f"\nEvery file assembled with {shared_note}: this ptxas is older than ILGPU's PTX ISA.\n")
    ok = [(k, o, fn) for k, o, fn, _ in rows if fn and "regs" in fn]
    line = f"{len(files) - len(failed)} of {len(files)} PTX files assembled for {a.arch}"
    if ok:
        most = max(ok, key=lambda r: r[2]["regs"])
        spills = sorted({f"{k} {o}" for k, o, fn in ok if fn.get("spill_st", 0) or fn.get("spill_ld", 0)})
        line += (f"; registers {min(r[2]['regs'] for r in ok)}-{most[2]['regs']} (most: {most[0]} {most[1]}); "
                 f"spills: {', '.join(spills) if spills else 'none'}; shared memory up to {max(r[2].get('smem', 0) for r in ok)} B")
    if notes:
        line += "; " + ", ".join(sorted(notes))
    if failed:
        line += "; refused: " + ", ".join(failed)
    print(line)
    return 1 if failed else 0


# ---------------------------------------------------------------- precision (issue 20)

# Dense tensor-core peaks in TFLOP/s (no sparsity). NVIDIA's H100 SXM and H200 SXM datasheets
# (https://www.nvidia.com/en-us/data-center/h100/, https://www.nvidia.com/en-us/data-center/h200/) list TF32 Tensor Core
# 989 TFLOPS and BF16 Tensor Core 1,979 TFLOPS "with sparsity"; dense is half. Matched against the GPU's name (nvidia-smi);
# the PCIe and NVL boards have lower peaks and get none here (the fraction column says '-').
PEAK_TFLOPS = {
    "H200": {"tf32": 494.5, "bf16": 989.5},
    "H100": {"tf32": 494.5, "bf16": 989.5},
}
PEAK_SOURCE = "H100/H200 SXM datasheets: TF32 989, BF16 1,979 TFLOP/s with sparsity, halved"

# Issue 20's "Done when", as numbers: the GEMM thresholds and goals in TFLOP/s at 4096^3, W3's step in ms
TARGETS = {
    "gemm_tf32": (150.0, 200.0),
    "gemm_bf16": (250.0, 400.0),
    "w3_tf32_ms": 0.5,
}
FAMILY_PRECISION = {"tensor-tf32": "tf32", "tensor-bf16": "bf16"}


def peak_of(gpu):
    if not gpu or re.search(r"PCIe|NVL", gpu, re.I):
        return None
    return next((v for k, v in PEAK_TFLOPS.items() if k in gpu), None)


def pairs(items):
    """['tf32=path', ...] -> {'tf32': 'path'}"""
    return dict(i.split("=", 1) for i in items or [] if "=" in i)


def load_json(path):
    try:
        return json.load(open(path, encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return {}


def number(text):
    try:
        return float(text.replace(",", ""))
    except (AttributeError, ValueError):
        return None


def train_figures(path):
    """(test accuracy, seconds in all, where the products ran) from a gpu train log, None where missing."""
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except (OSError, TypeError):
        return None, None, None
    acc = re.findall(r"test accuracy ([0-9.]+)", text)
    secs = re.findall(r"([0-9.]+) s in all", text)
    where = re.findall(r"^precision (?:tf32|bf16): (tensor cores|emulated[^:]*)", text, re.M)
    return (float(acc[-1]) if acc else None, float(secs[-1]) if secs else None, where[-1] if where else None)


def met(value, ok):
    return "-" if value is None else ("yes" if ok else "no")


def cmd_precision(a):
    lines, summary = [], []
    try:
        _precision(a, lambda text="": lines.append(text), summary)
    finally:
        with open(a.md, "w") as f:
            f.write("\n".join(lines) + "\n")
    print("; ".join(summary) or "no figures")
    return 0


def _precision(a, print, summary):
    peak = peak_of(a.gpu)
    torch = {p: load_json(f) for p, f in pairs(a.torch).items()}
    steps_log, steps_bdn, train_log = pairs(a.steps), pairs(a.steps_bdn), pairs(a.train)

    # GEMM: each case of a tensor-core family, in its precision, beside torch.matmul in that precision
    print(f"### GEMM on {a.device}: the tensor-core families beside torch.matmul in the same precision")
    print()
    gemm4096 = {}   # precision -> [TFLOP/s of each product at 4096^3]
    cases = [c for c in bdn_cases(a.gemm_bdn) if c["type"] == "GemmBenchmarks" and c["params"].get("Device") == a.device]
    if not cases:
        print("(no GemmBenchmarks figures: the gemm part did not run or wrote no JSON report)")
    else:
        print("| precision | family | product | shape (m x n x k) | engine TFLOP/s | PyTorch TFLOP/s | engine / PyTorch | engine / peak |")
        print("|---|---|---|---|---:|---:|---:|---:|")
        order = list(PRODUCTS)
        def key(c):
            dims = [int(x) for x in re.findall(r"[0-9]+", c["params"].get("Shape", ""))]
            return (c["params"].get("Family", ""), dims, order.index(c["method"]) if c["method"] in order else 9)
        for c in sorted(cases, key=key):
            family = c["params"].get("Family", "?")
            precision = FAMILY_PRECISION.get(family, "fp32")
            shape = c["params"].get("Shape", "?")
            dims = [int(x) for x in shape.split("x")] if re.fullmatch(r"[0-9]+x[0-9]+x[0-9]+", shape) else None
            name, peer_shape = PRODUCTS.get(c["method"], (c["method"], None))
            mine = 2.0 * dims[0] * dims[1] * dims[2] / c["mean_ns"] / 1e3 if dims and c["mean_ns"] else None
            theirs = None
            if dims and peer_shape:
                g = {x.get("shape"): x.get("gflops") for x in torch.get(precision, {}).get("gemm", [])}.get(
                    "x".join(map(str, peer_shape(*dims))))
                theirs = g / 1e3 if g else None
            top = (peak or {}).get(precision)
            print(f"| {precision} | {family} | {name} | {shape} | {fmt(mine, '.1f')} | {fmt(theirs, '.1f')} | "
                  f"{ratio(mine, theirs)} | {f'{mine / top:.0%}' if mine is not None and top else '-'} |")
            if shape == "4096x4096x4096" and mine is not None:
                gemm4096.setdefault(precision, []).append(mine)
    print()
    if peak:
        print(f"Peak: {a.gpu}, dense TF32 {peak['tf32']} and bf16 {peak['bf16']} TFLOP/s ({PEAK_SOURCE}).")
    else:
        print(f"Peak: not known for '{a.gpu or '?'}' (tables.py PEAK_TFLOPS: {', '.join(PEAK_TFLOPS)} SXM); no fraction of peak.")
    print()

    # training steps per precision, beside PyTorch in the same precision
    print(f"### Training steps on {a.device} per precision: the engine beside PyTorch (eager, CUDA graph) in the same precision")
    print()
    print("| workload | precision | engine samples/s | engine ms/step | PyTorch eager | PyTorch graph | PyTorch graph ms/step | engine / graph |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    figures = {}   # (workload, precision) -> (engine samples/s, PyTorch graph samples/s)
    for w in ("W1", "W3"):
        for p in ("fp32", "tf32", "bf16"):
            mine = None
            if p in steps_log:
                mine = number(table_value(steps_log[p], a.device, w, "samples/s"))
            if mine is None and p in steps_bdn:
                case = next((c for c in bdn_cases(steps_bdn[p]) if c["type"] == "TrainingStepBenchmarks"
                             and c["params"].get("Device") == a.device and c["params"].get("Workload") == w and c["mean_ns"]), None)
                if case and w in BATCH:
                    mine = BATCH[w] * STEPS_PER_INVOCATION.get(w, 20) / (case["mean_ns"] * 1e-9)
            peers = {s.get("mode"): s.get("samples_per_s") for s in torch.get(p, {}).get("steps", []) if s.get("workload") == w}
            eager, graph = peers.get("eager"), peers.get("graph")
            if mine is None and eager is None and graph is None:
                continue
            figures[(w, p)] = (mine, graph)
            ms = lambda v: BATCH[w] / v * 1e3 if v else None
            print(f"| {w} | {p} | {fmt(mine, ',.0f')} | {fmt(ms(mine), '.3f')} | {fmt(eager, ',.0f')} | {fmt(graph, ',.0f')} | "
                  f"{fmt(ms(graph), '.3f')} | {ratio(mine, graph)} |")
    if not figures:
        print("| - | - | - | - | - | - | - | - |")
    print()

    # accuracy of the default run per precision
    print(f"### Test accuracy of the default run (W1, 10 epochs, resident) per precision, against fp32's {a.acc_target}")
    print()
    print("| precision | test accuracy | difference | within " + f"{a.acc_tolerance} | seconds in all | products |")
    print("|---|---:|---:|---|---:|---|")
    accuracy = {}
    for p in ("tf32", "bf16"):
        acc, secs, where = train_figures(train_log.get(p))
        diff = acc - a.acc_target if acc is not None else None
        accuracy[p] = diff
        print(f"| {p} | {fmt(acc, '.4f')} | {fmt(diff, '+.4f')} | {met(diff, diff is not None and abs(diff) <= a.acc_tolerance + 1e-9)} | "
              f"{fmt(secs, '.1f')} | {where or '-'} |")
    print()

    # issue 20's targets
    g32 = min(gemm4096["tf32"]) if gemm4096.get("tf32") else None
    g16 = min(gemm4096["bf16"]) if gemm4096.get("bf16") else None
    w3, w3_graph = figures.get(("W3", "tf32"), (None, None))
    w1, w1_graph = figures.get(("W1", "tf32"), (None, None))
    w3_ms = BATCH["W3"] / w3 * 1e3 if w3 else None
    w3_graph_ms = BATCH["W3"] / w3_graph * 1e3 if w3_graph else None
    gt = lambda v, t: v is not None and t is not None and v >= t
    frac = lambda v, p: f"{v / peak[p]:.0%}" if v is not None and peak else "-"
    t32, t16 = TARGETS["gemm_tf32"], TARGETS["gemm_bf16"]
    rows = [
        ("TF32 GEMM 4096^3 (the slowest of the 3 products), TFLOP/s", fmt(g32, ".1f"), frac(g32, "tf32"),
         f">= {t32[0]:g}", met(g32, gt(g32, t32[0])), f">= {t32[1]:g}", met(g32, gt(g32, t32[1]))),
        ("bf16 GEMM 4096^3 (the slowest of the 3 products), TFLOP/s", fmt(g16, ".1f"), frac(g16, "bf16"),
         f">= {t16[0]:g}", met(g16, gt(g16, t16[0])), f">= {t16[1]:g}", met(g16, gt(g16, t16[1]))),
        ("W3 step in tf32, ms", fmt(w3_ms, ".3f"), "-", f"<= {TARGETS['w3_tf32_ms']:g}",
         met(w3_ms, w3_ms is not None and w3_ms <= TARGETS["w3_tf32_ms"]),
         f"<= PyTorch TF32 graph ({fmt(w3_graph_ms, '.3f')})",
         met(w3_ms if w3_graph_ms else None, w3_ms is not None and w3_graph_ms is not None and w3_ms <= w3_graph_ms)),
        ("W1 step in tf32, samples/s", fmt(w1, ",.0f"), "-", f">= PyTorch TF32 graph ({fmt(w1_graph, ',.0f')})",
         met(w1 if w1_graph else None, gt(w1, w1_graph)), "-", "-"),
    ]
    for p in ("tf32", "bf16"):
        d = accuracy[p]
        rows.append((f"test accuracy in {p} - fp32's", fmt(d, "+.4f"), "-", f"within {a.acc_tolerance:g}",
                     met(d, d is not None and abs(d) <= a.acc_tolerance + 1e-9), "-", "-"))
    print("### Issue 20's targets (- : not measured)")
    print()
    print("| target | measured | of peak | threshold | met | goal | goal met |")
    print("|---|---:|---:|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    verdicts = [r[4] for r in rows]
    summary.append(f"targets met: {verdicts.count('yes')} of {len(rows)} ({verdicts.count('no')} not met, "
                   f"{verdicts.count('-')} not measured); goals met: {[r[6] for r in rows].count('yes')}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--md", required=True)
    c.add_argument("--bdn", required=True)
    c.add_argument("--bench-log", required=True)
    c.add_argument("--torch", required=True)
    c.add_argument("--device", required=True)
    c = sub.add_parser("launches")
    c.add_argument("--bench-log", required=True)
    c.add_argument("--device", required=True)
    c.add_argument("--workload", required=True)
    c = sub.add_parser("ncu")
    c.add_argument("--md", required=True)
    c.add_argument("--title", default="")
    c.add_argument("--per-step", type=float, default=0)
    c.add_argument("csv", nargs="+")
    c = sub.add_parser("ptxas")
    c.add_argument("--ptxas", required=True)
    c.add_argument("--arch", default="sm_90")
    c.add_argument("--md", required=True)
    c.add_argument("dir")
    c = sub.add_parser("precision")
    c.add_argument("--md", required=True)
    c.add_argument("--device", required=True)
    c.add_argument("--gpu", default="")
    c.add_argument("--gemm-bdn", default="")
    c.add_argument("--steps", action="append", default=[], metavar="P=LOG")
    c.add_argument("--steps-bdn", action="append", default=[], metavar="P=DIR")
    c.add_argument("--torch", action="append", default=[], metavar="P=JSON")
    c.add_argument("--train", action="append", default=[], metavar="P=LOG")
    c.add_argument("--acc-target", type=float, default=0.8903)
    c.add_argument("--acc-tolerance", type=float, default=0.005)
    a = p.parse_args()
    return {"compare": cmd_compare, "launches": cmd_launches, "ncu": cmd_ncu, "ptxas": cmd_ptxas,
            "precision": cmd_precision}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
