"""NumPy (+ OpenBLAS) peer benchmark for the engine's MLP training workloads, on the CPU.

What it measures (float32 throughout):

* Training-step throughput (samples/s and ms/step) of the three reference MLPs.
  One step = gather a shuffled batch out of a uint8 dataset and normalise it
  (x/255 - 0.5), forward, mean softmax cross-entropy, backward, SGD update
  (weight decay on weights only, PyTorch's SGD semantics), the way the engine
  runs a step on its CPU accelerator.
  W1: 784-256-128-10,       batch 128,  SGD momentum 0.9, lr 0.05, L2 1e-4
  W2: 784-40-40-40-10,      batch 64,   plain SGD,        lr 0.05, L2 1e-3
  W3: 784-2048-2048-10,     batch 1024, SGD momentum 0.9, lr 0.05, L2 1e-4
* np.matmul GFLOP/s at the W1 forward / weight-gradient / input-gradient GEMM
  shapes (batch 128), in the layouts the training step uses (X @ W.T,
  dZ.T @ H, dZ @ W), and at 1024^3 (4096^3 with --large).
* A correctness self-check before timing: one W1 step (and one W2 step, the
  plain-SGD path) in float32 against the same code in float64 (loss, gradients,
  updated weights), the float64 gradients against central finite differences,
  and the update against the SGD formula written out.

The step is written the way a careful NumPy user writes it for speed: float32
everywhere, weights stored [out, in] and used as X @ W.T (a transposed view,
no copy: numpy passes the transpose flag to sgemm), every intermediate
preallocated and every operation in place (out=), no input gradient for the
first layer. Data is synthetic: uniform bytes and labels 0..9, 50 batches per
workload, rotated. Timing: perf_counter around a run of steps after a warm-up;
the figure reported is the median over repeats.

BLAS fairness: Debian 12's OpenBLAS 0.3.21 does not recognise some AVX-512
Xeons and silently falls back to its 'Prescott' (SSE3) kernels, about 5x
slower. When the script sees that fallback on a CPU that has AVX-512 (or
AVX2+FMA), it re-executes itself with OPENBLAS_CORETYPE=SkylakeX (or Haswell)
and says so; --no-coretype-fix measures the fallback as is. The BLAS library
actually loaded, its core and its thread count are printed and recorded.

Run (Debian: apt-get install python3-numpy libopenblas0-pthread):

    /usr/bin/python3 benchmarks/peers/numpy_mlp.py --json /tmp/numpy.json
    /usr/bin/python3 benchmarks/peers/numpy_mlp.py --workloads W1 --steps 20 --repeats 1   # smoke test
    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 benchmarks/peers/numpy_mlp.py               # one thread

These figures are meant to sit beside the engine's CPU-accelerator figures
measured on the same machine; compare only like with like (same CPU, same
workload, same batch, same thread count).
"""
import argparse
import ctypes
import datetime
import itertools
import json
import math
import os
import platform
import statistics
import sys
import time

from workloads import GEMMS, LARGE_GEMMS, WORKLOADS  # noqa: E402 (the shared list, next to this script)

# layout: how A and B are laid out in the training step (N = as stored, T = transposed view).
LAYOUT = {"W1 fwd": "NT", "W1 wgrad": "TN", "W1 dgrad": "NN", "square": "NN"}

N_BATCHES = 50
REEXEC_MARK = "NUMPY_MLP_CORETYPE_SET"  # set when this script re-executed itself

# OpenBLAS core names whose kernels use AVX-512 / at least AVX2+FMA.
AVX512_CORES = {"skylakex", "cooperlake", "sapphirerapids"}
AVX2_CORES = AVX512_CORES | {"haswell", "zen"}
SKYLAKEX_FLAGS = {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}


# ---------------------------------------------------------------- machine and BLAS info

def cpu_info():
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("unknown", "", "x86_64"):
                    model = val.strip()
                elif key == "flags" and not flags:
                    flags = set(val.split())
                if flags and model not in ("unknown", "", "x86_64"):
                    break
    except OSError:
        pass
    return model, flags


def loaded_libraries(*needles):
    """Paths of shared libraries mapped into this process whose file name contains a needle."""
    found = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6 and parts[5].startswith("/"):
                    path = parts[5]
                    base = os.path.basename(path).lower()
                    if any(n in base for n in needles) and path not in found:
                        found.append(path)
    except OSError:
        pass
    return found


def openblas_ctypes(paths):
    """(core, config, threads, path) straight from the loaded OpenBLAS, or None.

    Tries the plain symbols and the 64-bit-integer / scipy-openblas spellings used
    by pip wheels (openblas_get_corename64_, scipy_openblas_get_corename64_)."""
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("", ""), ("", "64_"), ("scipy_", ""), ("scipy_", "64_")):
            try:
                corename = getattr(lib, f"{prefix}openblas_get_corename{suffix}")
                config = getattr(lib, f"{prefix}openblas_get_config{suffix}")
                threads = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}")
            except AttributeError:
                continue
            corename.restype = ctypes.c_char_p
            config.restype = ctypes.c_char_p
            threads.restype = ctypes.c_int
            return dict(core=corename().decode(errors="replace"),
                        config=config().decode(errors="replace"),
                        threads=int(threads()), path=path)
    return None


def numpy_build_blas(np):
    """What numpy was built against, from its own configuration."""
    try:  # numpy >= 1.25
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        return {k: blas.get(k) for k in ("name", "version", "openblas configuration") if blas.get(k)}
    except TypeError:
        pass
    except Exception as e:  # noqa: BLE001 -- report, do not fail on a config quirk
        return {"error": f"{type(e).__name__}: {e}"}
    info = getattr(getattr(np, "__config__", None), "blas_opt_info", None) or {}
    return {k: info[k] for k in ("libraries", "library_dirs") if k in info}


def blas_info(np):
    """The BLAS numpy actually runs: library, OpenBLAS core, threads (threadpoolctl if present)."""
    info = dict(build=numpy_build_blas(np), library=None, api=None, version=None,
                core=None, threads=None, config=None, source=None)
    try:
        import threadpoolctl
        for pool in threadpoolctl.threadpool_info():
            if pool.get("user_api") == "blas":
                info.update(library=pool.get("filepath"), api=pool.get("internal_api"),
                            version=pool.get("version"), core=pool.get("architecture"),
                            threads=pool.get("num_threads"), source="threadpoolctl")
                break
    except Exception:  # noqa: BLE001 -- not installed, or it failed: fall back to ctypes
        pass
    ob = openblas_ctypes(loaded_libraries("openblas", "libblas"))
    if ob is not None:
        info["config"] = ob["config"]
        if info["source"] is None:
            version = ob["config"].split()[1] if ob["config"].startswith("OpenBLAS ") else None
            info.update(library=os.path.realpath(ob["path"]), api="openblas", version=version,
                        core=ob["core"], threads=ob["threads"], source="openblas_get_corename (ctypes)")
    if info["library"] is None:
        libs = loaded_libraries("blas", "mkl", "blis", "accelerate")
        if libs:
            info.update(library=", ".join(libs), source="/proc/self/maps")
    return info


def coretype_fix(core, flags):
    """The OPENBLAS_CORETYPE that fixes a Prescott fallback on this CPU, or None."""
    if not core or core.lower() != "prescott":
        return None
    if SKYLAKEX_FLAGS <= flags:
        return "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Haswell"
    return None


def weak_core_warning(core, flags):
    if not core:
        return None
    c = core.lower()
    if "avx512f" in flags and c not in AVX512_CORES:
        return (f"OpenBLAS runs its '{core}' kernels on a CPU with AVX-512; NumPy is slower "
                "here than it can be (try OPENBLAS_CORETYPE=SkylakeX)")
    if {"avx2", "fma"} <= flags and c not in AVX2_CORES:
        return (f"OpenBLAS runs its '{core}' kernels on a CPU with AVX2+FMA; NumPy is slower "
                "here than it can be (try OPENBLAS_CORETYPE=Haswell)")
    return None


# ---------------------------------------------------------------- the MLP

class MLP:
    """An MLP trained with plain NumPy: weights [out, in], preallocated buffers, in-place ops."""

    def __init__(self, np, cfg, dtype, seed=0, like=None):
        self.np = np
        self.dtype = dt = np.dtype(dtype)
        self.layers = layers = cfg["layers"]
        self.batch = b = cfg["batch"]
        self.lr, self.mu, self.wd = cfg["lr"], cfg["momentum"], cfg["wd"]
        L = len(layers) - 1
        if like is None:  # He/Kaiming-uniform weights, bias 0.01 (as torch_mlp.py)
            rng = np.random.default_rng(seed)
            self.W = [rng.uniform(-math.sqrt(6.0 / fi), math.sqrt(6.0 / fi), (fo, fi)).astype(dt)
                      for fi, fo in zip(layers[:-1], layers[1:])]
            self.b = [np.full(fo, 0.01, dt) for fo in layers[1:]]
        else:  # same parameters as another model, in this dtype
            self.W = [w.astype(dt) for w in like.W]
            self.b = [v.astype(dt) for v in like.b]
        self.dW = [np.zeros_like(w) for w in self.W]
        self.db = [np.zeros_like(v) for v in self.b]
        self.vW = [np.zeros_like(w) for w in self.W] if self.mu else None
        self.vb = [np.zeros_like(v) for v in self.b] if self.mu else None
        self.Z = [np.empty((b, fo), dt) for fo in layers[1:]]          # activations (ReLU in place)
        self.dH = [np.empty((b, fo), dt) for fo in layers[1:-1]]        # gradients w.r.t. hidden H
        self.mask = [np.empty((b, fo), dt) for fo in layers[1:-1]]      # ReLU derivative, 0/1
        self.P = np.empty((b, layers[-1]), dt)                          # softmax, then dZ of logits
        self.mx = np.empty((b, 1), dt)
        self.s = np.empty((b, 1), dt)
        self.ls = np.empty((b, 1), dt)
        self.rows = np.arange(b)
        self.x = np.empty((b, layers[0]), dt)
        self.xu8 = np.empty((b, layers[0]), np.uint8)
        self.y = np.empty(b, np.intp)
        self.loss = None

    def gather(self, data, labels, idx):
        """Fancy-index a shuffled batch out of the uint8 dataset and normalise: x/255 - 0.5."""
        np = self.np
        np.take(data, idx, axis=0, out=self.xu8)
        np.take(labels, idx, out=self.y)
        np.multiply(self.xu8, 1.0 / 255.0, out=self.x, dtype=self.dtype)
        np.subtract(self.x, 0.5, out=self.x)

    def forward(self, x, y):
        """Logits into self.Z[-1], softmax into self.P; returns the mean cross-entropy."""
        np, W, bias, Z = self.np, self.W, self.b, self.Z
        last = len(W) - 1
        h = x
        for i in range(last + 1):
            z = Z[i]
            np.matmul(h, W[i].T, out=z)
            np.add(z, bias[i], out=z)
            if i < last:
                np.maximum(z, 0, out=z)
            h = z
        P, mx, s = self.P, self.mx, self.s
        np.max(h, axis=1, keepdims=True, out=mx)
        np.subtract(h, mx, out=P)
        np.exp(P, out=P)
        np.sum(P, axis=1, keepdims=True, out=s)
        # loss_i = log(sum_j exp(z_ij - m_i)) + m_i - z_{i, y_i}
        self.loss = (np.log(s, out=self.ls).sum() + mx.sum() - h[self.rows, y].sum()) / self.batch
        return self.loss

    def backward(self, x, y):
        """Gradients of the mean loss into self.dW, self.db (needs forward() first)."""
        np, W, Z = self.np, self.W, self.Z
        dZ, s = self.P, self.s
        np.multiply(s, self.batch, out=s)
        np.divide(dZ, s, out=dZ)                 # softmax / batch
        dZ[self.rows, y] -= 1.0 / self.batch     # (softmax - onehot) / batch
        for i in range(len(W) - 1, -1, -1):
            h_prev = x if i == 0 else Z[i - 1]
            np.matmul(dZ.T, h_prev, out=self.dW[i])
            np.sum(dZ, axis=0, out=self.db[i])
            if i > 0:  # no input gradient for the first layer
                dh, m = self.dH[i - 1], self.mask[i - 1]
                np.matmul(dZ, W[i], out=dh)
                np.greater(h_prev, 0, out=m)     # ReLU'(z) from H = relu(z)
                np.multiply(dh, m, out=dh)
                dZ = dh

    def update(self):
        """SGD as torch.optim.SGD: g = grad + wd*W (weights only); v = mu*v + g; W -= lr*v.
        The gradient buffers are reused as scratch (they are rewritten every step)."""
        np, lr, mu, wd = self.np, self.lr, self.mu, self.wd
        if mu:
            for w, g, v in zip(self.W, self.dW, self.vW):
                np.multiply(v, mu, out=v)
                np.add(v, g, out=v)
                np.multiply(w, wd, out=g)
                np.add(v, g, out=v)
                np.multiply(v, lr, out=g)
                np.subtract(w, g, out=w)
            for p, g, v in zip(self.b, self.db, self.vb):
                np.multiply(v, mu, out=v)
                np.add(v, g, out=v)
                np.multiply(v, lr, out=g)
                np.subtract(p, g, out=p)
        else:
            decay = 1.0 - lr * wd
            for w, g in zip(self.W, self.dW):
                np.multiply(g, lr, out=g)
                np.multiply(w, decay, out=w)
                np.subtract(w, g, out=w)
            for p, g in zip(self.b, self.db):
                np.multiply(g, lr, out=g)
                np.subtract(p, g, out=p)

    def step(self, data, labels, idx):
        self.gather(data, labels, idx)
        self.forward(self.x, self.y)
        self.backward(self.x, self.y)
        self.update()


def make_data(np, cfg, seed=0):
    """uint8 dataset of N_BATCHES*batch samples, labels 0..9, one shuffled order cut into batches."""
    rng = np.random.default_rng(seed + 1)
    n, d = N_BATCHES * cfg["batch"], cfg["layers"][0]
    data = rng.integers(0, 256, (n, d), dtype=np.uint8)
    labels = rng.integers(0, cfg["layers"][-1], n).astype(np.intp)
    perm = rng.permutation(n)
    batches = [perm[i * cfg["batch"]:(i + 1) * cfg["batch"]] for i in range(N_BATCHES)]
    return data, labels, batches


# ---------------------------------------------------------------- correctness self-check

def rel_err(np, a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def self_check(np, name):
    """float32 step vs the same code in float64, finite differences, update formula. Returns a dict."""
    cfg = WORKLOADS[name]
    data, labels, batches = make_data(np, cfg)
    m32 = MLP(np, cfg, np.float32)
    m64 = MLP(np, cfg, np.float64, like=m32)
    res = dict(workload=name)

    # 1. loss and gradients: float32 vs float64, same parameters, same batch
    for m in (m32, m64):
        m.gather(data, labels, batches[0])
        m.forward(m.x, m.y)
        m.backward(m.x, m.y)
    res["loss_f32"], res["loss_f64"] = float(m32.loss), float(m64.loss)
    res["loss_rel_err"] = abs(res["loss_f32"] - res["loss_f64"]) / abs(res["loss_f64"])
    res["grad_rel_err"] = max(rel_err(np, a, b) for a, b in
                              zip(m32.dW + m32.db, m64.dW + m64.db))

    # 2. float64 gradients vs central finite differences at a few coordinates per tensor
    rng = np.random.default_rng(7)
    fd_err, eps = 0.0, 1e-6
    grads = [g.copy() for g in m64.dW + m64.db]
    x, y = m64.x.copy(), m64.y.copy()
    for p, g in zip(m64.W + m64.b, grads):
        scale = float(np.abs(g).max()) or 1.0
        for _ in range(4):
            j = tuple(int(rng.integers(0, n)) for n in p.shape)
            old = p[j]
            p[j] = old + eps
            up = float(m64.forward(x, y))
            p[j] = old - eps
            down = float(m64.forward(x, y))
            p[j] = old
            fd_err = max(fd_err, abs((up - down) / (2 * eps) - g[j]) / scale)
    res["fd_err"] = fd_err
    m64.forward(x, y)
    m64.backward(x, y)

    # 3. the update: float32 step vs float64 step, and float64 vs the formula, two steps
    #    (the second exercises the momentum buffer)
    W0 = [w.copy() for w in m64.W + m64.b]
    g1 = [g.copy() for g in m64.dW + m64.db]
    m32.update()
    m64.update()
    res["step_weight_rel_err"] = max(rel_err(np, a, b) for a, b in zip(m32.W + m32.b, m64.W + m64.b))
    m64.gather(data, labels, batches[1])
    m64.forward(m64.x, m64.y)
    m64.backward(m64.x, m64.y)
    g2 = [g.copy() for g in m64.dW + m64.db]
    W1 = [w.copy() for w in m64.W + m64.b]
    m64.update()
    n_w = len(m64.W)
    lr, mu, wd = cfg["lr"], cfg["momentum"], cfg["wd"]
    formula_err = 0.0
    for k, (w0, w1, a, b2, w2) in enumerate(zip(W0, W1, g1, g2, m64.W + m64.b)):
        decay = wd if k < n_w else 0.0
        v1 = a + decay * w0
        e1 = w0 - lr * v1
        v2 = mu * v1 + b2 + decay * w1
        e2 = w1 - lr * v2
        formula_err = max(formula_err, rel_err(np, w1, e1), rel_err(np, w2, e2))
    res["update_formula_rel_err"] = formula_err

    res["ok"] = bool(res["loss_rel_err"] < 1e-5 and res["grad_rel_err"] < 1e-4 and fd_err < 1e-5
                     and res["step_weight_rel_err"] < 1e-5 and formula_err < 1e-12)
    return res


# ---------------------------------------------------------------- timing

def time_calls(fn, iters):
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return time.perf_counter() - t0


def bench_steps(np, name, cfg, args):
    model = MLP(np, cfg, np.float32)
    data, labels, batches = make_data(np, cfg)
    feed = itertools.cycle(batches)

    def step():
        model.step(data, labels, next(feed))

    # Warm-up: --warmup steps, cut short (but at least 2) once they take --seconds; the
    # per-step estimate for choosing the repeat length comes from its later half.
    warm_times, t_start = [], time.perf_counter()
    while len(warm_times) < max(2, args.warmup) and \
            (len(warm_times) < 2 or time.perf_counter() - t_start < args.seconds):
        warm_times.append(time_calls(step, 1))
    per_step = statistics.median(warm_times[len(warm_times) // 2:])
    iters = args.steps if args.steps > 0 else max(3, min(100000, math.ceil(args.seconds / per_step)))
    times = [time_calls(step, iters) for _ in range(args.repeats)]
    secs = statistics.median(times)
    if not math.isfinite(float(model.loss)):
        raise RuntimeError(f"{name}: loss is not finite after training ({model.loss})")
    return dict(workload=name, mode="numpy", batch=cfg["batch"],
                samples_per_s=cfg["batch"] * iters / secs, ms_per_step=secs / iters * 1e3,
                steps=iters, repeats=args.repeats,
                ms_per_step_repeats=[round(t / iters * 1e3, 4) for t in times],
                final_loss=float(model.loss))


def bench_gemm(np, role, m, n, k, args):
    rng = np.random.default_rng(3)
    sets = 8 if m * n * k <= 1 << 27 else 1  # rotate small shapes over a few input sets
    layout = LAYOUT[role]

    def operand(rows, cols, transposed):
        a = rng.standard_normal((cols, rows) if transposed else (rows, cols), dtype=np.float32)
        return a.T if transposed else a
    a = [operand(m, k, layout[0] == "T") for _ in range(sets)]
    b = [operand(k, n, layout[1] == "T") for _ in range(sets)]
    c = np.empty((m, n), np.float32)
    idx = itertools.cycle(range(sets))

    def call():
        i = next(idx)
        np.matmul(a[i], b[i], out=c)
    for _ in range(3):
        call()
    per_call = time_calls(call, 3) / 3  # calibrate: aim for --gemm-seconds per repeat
    iters = max(2, min(100000, int(math.ceil(args.gemm_seconds / max(per_call, 1e-7)))))
    secs = statistics.median(time_calls(call, iters) for _ in range(args.repeats)) / iters
    return dict(shape=f"{m}x{n}x{k}", role=role, layout=layout,
                gflops=2.0 * m * n * k / secs / 1e9, ms=secs * 1e3)


# ---------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", metavar="PATH", help="also write results as JSON to PATH")
    p.add_argument("--workloads", default="W1,W2,W3", help="comma list of W1,W2,W3")
    p.add_argument("--skip-gemm", action="store_true", help="skip the np.matmul GEMM timings")
    p.add_argument("--skip-check", action="store_true", help="skip the correctness self-check")
    p.add_argument("--large", action="store_true", help="also time a 4096^3 GEMM (slow on few cores)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats (median reported)")
    p.add_argument("--steps", type=int, default=0,
                   help="training steps per timed repeat (default 0: enough for --seconds)")
    p.add_argument("--seconds", type=float, default=2.0,
                   help="target seconds per timed repeat when --steps is 0")
    p.add_argument("--gemm-seconds", type=float, default=0.2, help="target seconds per GEMM repeat")
    p.add_argument("--warmup", type=int, default=10,
                   help="warm-up steps before timing (stopped early, after 2, once they take --seconds)")
    p.add_argument("--threads", type=int, default=0,
                   help="BLAS threads (sets OPENBLAS_NUM_THREADS etc.; default: the library's choice)")
    p.add_argument("--no-coretype-fix", action="store_true",
                   help="do not re-run with OPENBLAS_CORETYPE set when OpenBLAS falls back to Prescott")
    args = p.parse_args()

    names = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in names if w not in WORKLOADS]
    if unknown:
        p.error(f"unknown workload(s): {', '.join(unknown)}")
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    if args.threads > 0:  # before numpy loads its BLAS
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
            os.environ[var] = str(args.threads)

    try:
        import numpy as np
    except ImportError:
        print("numpy_mlp.py: NumPy is not installed; nothing measured.")
        sys.exit(2)

    cpu_model, flags = cpu_info()
    blas = blas_info(np)

    # Debian's OpenBLAS 0.3.21 falls back to Prescott kernels on CPUs it does not know.
    fix = coretype_fix(blas["core"], flags)
    if fix and not args.no_coretype_fix and "OPENBLAS_CORETYPE" not in os.environ \
            and REEXEC_MARK not in os.environ:
        print(f"numpy_mlp.py: OpenBLAS chose its '{blas['core']}' fallback kernels on this CPU "
              f"({cpu_model}); re-running with OPENBLAS_CORETYPE={fix} "
              f"(--no-coretype-fix measures the fallback)", flush=True)
        env = dict(os.environ, OPENBLAS_CORETYPE=fix)
        env[REEXEC_MARK] = blas["core"]
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)

    coretype_env = os.environ.get("OPENBLAS_CORETYPE")
    if REEXEC_MARK in os.environ:
        coretype_note = (f"set by this script: OpenBLAS had fallen back to "
                         f"'{os.environ[REEXEC_MARK]}'")
    elif coretype_env:
        coretype_note = "from the environment"
    else:
        coretype_note = "not set"
    warning = weak_core_warning(blas["core"], flags)

    info = dict(
        peer="numpy", numpy=np.__version__, python=platform.python_version(),
        cpu=cpu_model, cpu_count=os.cpu_count(),
        cpu_affinity=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        blas_library=blas["library"], blas_api=blas["api"], blas_version=blas["version"],
        blas_core=blas["core"], blas_threads=blas["threads"], blas_config=blas["config"],
        blas_info_source=blas["source"], numpy_build_blas=blas["build"],
        openblas_coretype=coretype_env, openblas_coretype_note=coretype_note,
        openblas_num_threads_env=os.environ.get("OPENBLAS_NUM_THREADS"),
        blas_warning=warning,
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))

    print(f"cpu: {cpu_model} | {info['cpu_affinity']} of {info['cpu_count']} logical CPUs usable "
          f"| {info['date']}")
    print(f"numpy {info['numpy']} (python {info['python']}), built against {blas['build']}")
    print(f"BLAS: {blas['library']} | {blas['api']} {blas['version']} | core {blas['core']} "
          f"| threads {blas['threads']} | via {blas['source']}")
    print(f"OPENBLAS_CORETYPE: {coretype_env or '-'} ({coretype_note})")
    if warning:
        print(f"WARNING: {warning}")
    steps_desc = f"{args.steps} steps" if args.steps > 0 else f"steps for ~{args.seconds:g} s"
    print(f"float32; warm-up {args.warmup}, {steps_desc} x {args.repeats} repeats (median)\n")

    checks = []
    if not args.skip_check:
        for name in ("W1", "W2"):
            c = self_check(np, name)
            checks.append(c)
            print(f"check {name}: loss f32 {c['loss_f32']:.6f} vs f64 {c['loss_f64']:.6f} "
                  f"(rel {c['loss_rel_err']:.1e}); grads rel {c['grad_rel_err']:.1e}; "
                  f"finite diff {c['fd_err']:.1e}; step weights rel {c['step_weight_rel_err']:.1e}; "
                  f"update formula {c['update_formula_rel_err']:.1e} -> {'ok' if c['ok'] else 'FAILED'}")
        print()
        if not all(c["ok"] for c in checks):
            print("numpy_mlp.py: the self-check failed; the timed code is wrong, nothing timed.")
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(dict(info, check=checks, steps=[], gemm=[]), f, indent=2)
            sys.exit(1)

    steps = []
    print(f"{'workload':<8} {'mode':<6} {'batch':>6} {'samples/s':>14} {'ms/step':>10} {'steps':>7}")
    for name in names:
        r = bench_steps(np, name, WORKLOADS[name], args)
        steps.append(r)
        print(f"{name:<8} {r['mode']:<6} {r['batch']:>6} {r['samples_per_s']:>14,.0f} "
              f"{r['ms_per_step']:>10.4f} {r['steps']:>7}", flush=True)

    gemm = []
    if not args.skip_gemm:
        print(f"\n{'gemm (m x n x k)':<20} {'role':<9} {'layout':<6} {'GFLOP/s':>10} {'ms':>10}")
        for role, m, n, k in GEMMS + (LARGE_GEMMS if args.large else []):
            r = bench_gemm(np, role, m, n, k, args)
            gemm.append(r)
            print(f"{r['shape']:<20} {role:<9} {r['layout']:<6} {r['gflops']:>10.1f} {r['ms']:>10.4f}",
                  flush=True)

    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(info, check=checks, steps=steps, gemm=gemm), f, indent=2)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
