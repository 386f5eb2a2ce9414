"""PyTorch peer benchmark for the engine's MLP training workloads.

What it measures (--precision, default fp32: fp32 throughout, TF32 disabled for
matmul and cuDNN; tf32: fp32 tensors with TF32 allowed for matmul and cuDNN,
torch.set_float32_matmul_precision("high"); bf16: the GEMMs on torch.bfloat16
tensors, and each training step's forward and loss under
torch.autocast(dtype=torch.bfloat16), fp32 master weights, graph-captured like
the fp32 steps; TF32 is a CUDA setting: on the CPU a tf32 run computes fp32,
and says so):

* Training-step throughput (samples/s and ms/step) of three reference MLPs,
  one full step = zero_grad, forward, mean softmax cross-entropy, backward,
  SGD step (weight decay on weights only), in two modes:
    - eager: ordinary PyTorch, one Python-driven kernel launch sequence per step;
    - graph: the whole step captured once in a CUDA graph and replayed, with
      each batch copied into static input/label tensors before the replay.
  W1: 784-256-128-10,       batch 128,  SGD momentum 0.9, lr 0.05, L2 1e-4
  W2: 784-40-40-40-10,      batch 64,   plain SGD,        lr 0.05, L2 1e-3
  W3: 784-2048-2048-10,     batch 1024, SGD momentum 0.9, lr 0.05, L2 1e-4
* torch.matmul GFLOP/s at the W1 forward / weight-gradient / input-gradient
  GEMM shapes (batch 128) and at 1024^3 and 4096^3 squares.

Data is synthetic, already on the device: inputs uniform in [-0.5, 0.5]
(like x/255 - 0.5), labels 0..9, rotated through 50 batches per workload.
Timing uses CUDA event pairs around many steps after a warm-up; the figure
reported is the median over repeats.

Run (on the GPU machine):

    python3 benchmarks/peers/torch_mlp.py --json $OUT/torch.json
    python3 benchmarks/peers/torch_mlp.py --precision tf32 --json $OUT/torch-tf32.json
    python3 benchmarks/peers/torch_mlp.py --device cpu --steps 5 --repeats 1   # smoke test

These figures are meant to sit beside the engine's BenchmarkDotNet figures
measured in the same session on the same GPU; compare only like with like
(same device, same workload, same batch).
"""
import argparse
import contextlib
import datetime
import itertools
import json
import math
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("torch_mlp.py: PyTorch is not installed; nothing measured.")
    sys.exit(2)

from workloads import GEMMS, LARGE_GEMMS, WORKLOADS  # noqa: E402 (the shared list, next to this script)

N_BATCHES = 50


PRECISIONS = ("fp32", "tf32", "bf16")


def set_fp32_strict():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")


def set_precision(precision, device):
    """The matmul settings of a precision; returns the line that says what the run computes."""
    if precision == "tf32" and device.type != "cuda":
        set_fp32_strict()   # so that what the line says holds whatever the CPU backend would do with "high"
        return ("tf32 asked, but TF32 is a CUDA matmul setting: on the CPU PyTorch computes fp32, "
                "so these are fp32 figures")
    if precision == "tf32":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.set_float32_matmul_precision("high")
        return "tf32: fp32 tensors, TF32 allowed for matmul and cuDNN (set_float32_matmul_precision('high'))"
    set_fp32_strict()
    if precision == "bf16":
        return ("bf16: GEMMs on bfloat16 tensors; training steps' forward and loss under "
                f"torch.autocast('{device.type}', dtype=torch.bfloat16), fp32 master weights, TF32 off")
    return "fp32, TF32 off"


def autocast(precision, device):
    """The context a training step's forward and loss run in: bf16 autocast, or nothing."""
    if precision != "bf16":
        return contextlib.nullcontext()
    # cache_enabled=False: autocast's cast cache must not outlive a CUDA graph capture (PyTorch's CUDA graphs notes)
    return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn, iters, device):
    """Seconds taken by `iters` calls of fn (CUDA events on GPU, perf_counter on CPU)."""
    if device.type == "cuda":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return time.perf_counter() - t0


def median_seconds(fn, warmup, iters, repeats, device):
    for _ in range(warmup):
        fn()
    sync(device)
    return statistics.median(time_calls(fn, iters, device) for _ in range(repeats))


def build_model(layers, device):
    mods = []
    for i, (fan_in, fan_out) in enumerate(zip(layers[:-1], layers[1:])):
        lin = nn.Linear(fan_in, fan_out)
        bound = math.sqrt(6.0 / fan_in)  # He/Kaiming-uniform
        with torch.no_grad():
            lin.weight.uniform_(-bound, bound)
            lin.bias.fill_(0.01)
        mods.append(lin)
        if i < len(layers) - 2:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods).to(device)


def build_optimizer(model, cfg):
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    # Plain SGD / SGD-momentum is graph-capturable without a `capturable` flag
    # (the flag exists only for Adam-family optimizers that keep a step tensor).
    return torch.optim.SGD(
        [dict(params=weights, weight_decay=cfg["wd"]), dict(params=biases, weight_decay=0.0)],
        lr=cfg["lr"], momentum=cfg["momentum"])


def make_data(cfg, device):
    b, d = cfg["batch"], cfg["layers"][0]
    xs = torch.rand(N_BATCHES, b, d, device=device) - 0.5
    ys = torch.randint(0, cfg["layers"][-1], (N_BATCHES, b), device=device)
    return list(zip(xs.unbind(0), ys.unbind(0)))


def eager_step_fn(model, opt, batches, precision, device):
    feed = itertools.cycle(batches)

    def step():
        x, y = next(feed)
        opt.zero_grad(set_to_none=True)
        with autocast(precision, device):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return step


def graph_step_fn(model, opt, batches, warmup, precision, device):
    """Capture one whole training step in a CUDA graph (PyTorch 'whole-network capture')."""
    static_x, static_y = batches[0][0].clone(), batches[0][1].clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up creates momentum buffers, cuBLAS handles, etc.
        for i in range(max(3, warmup)):
            static_x.copy_(batches[i % len(batches)][0])
            static_y.copy_(batches[i % len(batches)][1])
            opt.zero_grad(set_to_none=True)
            with autocast(precision, device):
                loss = F.cross_entropy(model(static_x), static_y)
            loss.backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()

    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)  # grads allocated inside the graph's pool, overwritten per replay
    with torch.cuda.graph(graph):
        with autocast(precision, device):
            loss = F.cross_entropy(model(static_x), static_y)
        loss.backward()
        opt.step()
    feed = itertools.cycle(batches)

    def step():
        x, y = next(feed)
        static_x.copy_(x)
        static_y.copy_(y)
        graph.replay()
    step.keep_alive = (graph, loss)  # keep graph and its outputs referenced
    return step


def bench_steps(name, cfg, mode, args, device):
    torch.manual_seed(0)
    model = build_model(cfg["layers"], device)
    opt = build_optimizer(model, cfg)
    batches = make_data(cfg, device)
    if mode == "eager":
        step = eager_step_fn(model, opt, batches, args.precision, device)
    else:
        step = graph_step_fn(model, opt, batches, args.warmup, args.precision, device)
    secs = median_seconds(step, args.warmup, args.steps, args.repeats, device)
    ms = secs / args.steps * 1e3
    return dict(workload=name, mode=mode, batch=cfg["batch"],
                samples_per_s=cfg["batch"] * args.steps / secs, ms_per_step=ms)


def bench_gemm(m, n, k, args, device):
    sets = 8 if m * n * k <= 1 << 27 else 1  # rotate small shapes over a few input sets
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    a = [torch.randn(m, k, device=device, dtype=dtype) for _ in range(sets)]
    b = [torch.randn(k, n, device=device, dtype=dtype) for _ in range(sets)]
    c = torch.empty(m, n, device=device, dtype=dtype)
    idx = itertools.cycle(range(sets))

    def call():
        i = next(idx)
        torch.matmul(a[i], b[i], out=c)
    for _ in range(3):
        call()
    sync(device)
    per_call = time_calls(call, 5, device) / 5  # calibrate: aim for ~50 ms per repeat
    iters = max(3, min(5000, int(math.ceil(0.05 / max(per_call, 1e-7)))))
    secs = median_seconds(call, 3, iters, args.repeats, device) / iters
    return dict(shape=f"{m}x{n}x{k}", gflops=2.0 * m * n * k / secs / 1e9, ms=secs * 1e3)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", metavar="PATH", help="also write results as JSON to PATH")
    p.add_argument("--workloads", default="W1,W2,W3", help="comma list of W1,W2,W3")
    p.add_argument("--skip-graph", action="store_true", help="skip the CUDA-graph step timings")
    p.add_argument("--skip-gemm", action="store_true", help="skip the torch.matmul GEMM timings")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats (median reported)")
    p.add_argument("--steps", type=int, default=200, help="training steps per timed repeat")
    p.add_argument("--warmup", type=int, default=20, help="warm-up steps before timing")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32 (default: TF32 off), tf32 (TF32 matmul on CUDA; fp32 on the CPU) or bf16 "
                        "(bfloat16 GEMMs, training steps under bf16 autocast)")
    args = p.parse_args()

    names = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in names if w not in WORKLOADS]
    if unknown:
        p.error(f"unknown workload(s): {', '.join(unknown)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        print("torch_mlp.py: no CUDA device available to PyTorch; nothing measured "
              "(use --device cpu for a smoke test).")
        sys.exit(2)

    device = torch.device(args.device)
    computes = set_precision(args.precision, device)
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    info = dict(device=dev_name, torch=torch.__version__, cuda=torch.version.cuda,
                date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                precision=args.precision, computes=computes)
    print(f"device: {info['device']} | torch {info['torch']} | CUDA {info['cuda']} | {info['date']}")
    print(f"{computes}; warm-up {args.warmup}, {args.steps} steps x {args.repeats} repeats (median)\n")

    modes = ["eager"] if (args.skip_graph or device.type != "cuda") else ["eager", "graph"]
    steps = []
    print(f"{'workload':<8} {'mode':<6} {'batch':>6} {'samples/s':>14} {'ms/step':>10}")
    for name in names:
        for mode in modes:
            try:
                r = bench_steps(name, WORKLOADS[name], mode, args, device)
                print(f"{name:<8} {mode:<6} {r['batch']:>6} {r['samples_per_s']:>14,.0f} {r['ms_per_step']:>10.4f}")
            except Exception as e:  # e.g. graph capture refused by this PyTorch build
                if mode == "eager":
                    raise
                r = dict(workload=name, mode=mode, batch=WORKLOADS[name]["batch"],
                         samples_per_s=None, ms_per_step=None, error=f"{type(e).__name__}: {e}")
                print(f"{name:<8} {mode:<6} {r['batch']:>6} {'unavailable':>14}   ({r['error']})")
            steps.append(r)
            sync(device)
            if device.type == "cuda":
                torch.cuda.empty_cache()

    gemm = []
    if not args.skip_gemm:
        print(f"\n{'gemm (m x n x k)':<20} {'role':<9} {'GFLOP/s':>10} {'ms':>10}")
        # the 4096^3 square: quick on a GPU; on the CPU (a smoke test) it would take minutes, so it is left out there
        shapes = GEMMS + LARGE_GEMMS if device.type == "cuda" else GEMMS
        for role, m, n, k in shapes:
            r = bench_gemm(m, n, k, args, device)
            gemm.append(r)
            print(f"{r['shape']:<20} {role:<9} {r['gflops']:>10.1f} {r['ms']:>10.4f}")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(info, steps=steps, gemm=gemm), f, indent=2)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
