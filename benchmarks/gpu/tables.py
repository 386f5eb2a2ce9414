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
    a = p.parse_args()
    return {"compare": cmd_compare, "launches": cmd_launches, "ncu": cmd_ncu, "ptxas": cmd_ptxas}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
