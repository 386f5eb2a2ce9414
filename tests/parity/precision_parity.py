"""PyTorch parity of `gpu train --precision tf32|bf16` on any device the `gpu` program opens, through the command line
only: the check of TorchParityTests' Tf32_and_bf16_steps_match_pytorch_rounding_the_same_product_inputs for a machine
without .NET (the GPU kit's `$BENCH gpu`, benchmarks/gpu/precision-light.sh), and run in CI on the CPU accelerator
(PrecisionParityScriptTests).

usage: precision_parity.py --gpu "CMD" [--device cuda] [--precision tf32,bf16] [--cases N] [--work DIR]

For each precision and case (one per optimizer, each with its own activation and loss, as the C# test): `CMD train`
trains 784-32-16-10 for 10 full-batch steps (the first 256 Fashion-MNIST training images, --batch-size 256
--val-fraction 0, so the shuffle only reorders one batch) from one starting vector (--init-from init.npy, written
here in the engine's packing), and its model.npy is compared with PyTorch in float64 rounding the same products'
inputs (tests/parity/torch_parity.py's RoundedLinear: TF32 ties away from zero, bf16 ties to even), from the same
start: error = ||p_engine - p_torch|| / ||p_torch - p_init||, which must be at most the precision's limit (1.5e-3
tf32, 2e-3 bf16) or 1.5 times PyTorch's own float32 run's error, whichever is larger (an activation within float32's
error of a rounding boundary rounds to the neighbouring TF32 or bf16 value; over 10 steps of a ReLU network at lr 0.1
PyTorch's float32 run of the rounded arithmetic is up to 4.6e-3 from its float64 run), and at most a fifth of the
precision's effect (how far PyTorch's fp32 run of the case is from its rounded run), so an engine that did not round,
or rounded to another precision, fails. Prints one line per case and
a summary line "precision parity: N of M cases within the limits"; exit code 1 if any case is not, 2 without torch.
"""
import argparse
import gzip
import os
import shlex
import subprocess
import sys
import time

import numpy as np

try:
    import torch
except ImportError:
    print("precision_parity.py: PyTorch is not installed; nothing checked.")
    sys.exit(2)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_parity import cost, flat, network, optimizer, scheduler  # noqa: E402  (the C# test's PyTorch side)

ROWS, STEPS, HIDDEN = 256, 10, [32, 16]
LIMITS = {"tf32": 1.5e-3, "bf16": 2e-3}
OWN = 1.5      # an engine may be this many times as far from the exact answer as PyTorch's own float32 run of it
CLOSER = 5     # and the precision's effect must be this many times its error
# (optimizer, lr, momentum, l2, activation, loss): one per optimizer, as TorchParityTests picks them
CASES = [
    ("sgd", 0.1, 0.9, 0.01, "relu", "softmax-ce"),
    ("nesterov", 0.1, 0.9, 0.01, "sigmoid", "sigmoid-sse"),
    ("adam", 0.01, 0.0, 0.01, "tanh", "softmax-ce"),
    ("adamw", 0.01, 0.0, 0.1, "leaky-relu", "softmax-ce"),
]


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def start_vector(sizes, seed):
    """He-uniform weights and 0.01 biases in the engine's packing: every weight [out, in] row-major layer by layer, then every bias."""
    rng = np.random.default_rng(seed)
    weights = [rng.uniform(-1, 1, (o, i)) * np.sqrt(6.0 / i) for i, o in zip(sizes[:-1], sizes[1:])]
    biases = [np.full(o, 0.01) for o in sizes[1:]]
    return np.concatenate([w.reshape(-1) for w in weights] + biases).astype(np.float32)


def tensors_of(vector, sizes):
    """The flat vector as torch.nn.Sequential's state dict (Linear layers at 0, 2, 4, ...)."""
    out, at = {}, 0
    shapes = list(zip(sizes[:-1], sizes[1:]))
    for l, (i, o) in enumerate(shapes):
        out[f"{2 * l}.weight"] = torch.from_numpy(vector[at:at + i * o].reshape(o, i).copy())
        at += i * o
    for l, (i, o) in enumerate(shapes):
        out[f"{2 * l}.bias"] = torch.from_numpy(vector[at:at + o].copy())
        at += o
    return out


def torch_run(case, precision, tensors, sizes, x, y, dtype=torch.float64):
    """PyTorch in float64 (or dtype) after STEPS full-batch steps, the products' inputs rounded to the precision."""
    name, lr, momentum, l2, activation, loss = case
    c = {"optimizer": name, "lr": lr, "momentum": momentum, "l2": l2, "beta1": 0.9, "beta2": 0.999, "schedule": "cosine",
         "warmup_epochs": 0, "step_every": 10, "step_gamma": 0.1, "steps": STEPS}
    net = network(sizes, activation, loss, {k: v.clone() for k, v in tensors.items()}, precision).to(dtype)
    opt = optimizer(net, c)
    sched = scheduler(opt, c)
    for _ in range(STEPS):
        opt.zero_grad()
        cost(net(x.to(dtype)), y, loss).backward()
        opt.step()
        sched.step()
    return flat(net)


def engine_run(gpu, device, case, precision, init, work):
    name, lr, momentum, l2, activation, loss = case
    out = os.path.join(work, f"{precision}-{name}")
    args = shlex.split(gpu) + [
        "train", "--device", device, "--precision", precision, "--layers", ",".join(map(str, HIDDEN)), "--activation", activation,
        "--loss", loss, "--optimizer", name, "--lr", str(lr), "--momentum", str(momentum), "--l2", str(l2), "--schedule", "cosine",
        "--epochs", str(STEPS), "--batch-size", str(ROWS), "--limit", str(ROWS), "--val-fraction", "0", "--dropout", "0",
        "--data-path", "resident", "--seed", "3", "--init-from", init, "--overwrite", "--output", out]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {r.returncode}: {(r.stderr or r.stdout).strip()[-400:]}")
    says = [line for line in r.stdout.splitlines() if line.startswith("precision ")]
    return np.load(os.path.join(out, "model.npy")).astype(np.float64), (says[0] if says else "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpu", required=True, help="the gpu program, e.g. \"$BENCH gpu\" or \"dotnet gpu.dll\"")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precision", default="tf32,bf16")
    ap.add_argument("--cases", type=int, default=len(CASES))
    ap.add_argument("--work", default=None)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data", "fashion-mnist"))
    a = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    work = a.work or os.path.join(os.getcwd(), "precision-parity")
    os.makedirs(work, exist_ok=True)
    clock = time.time()

    pixels = idx(os.path.join(a.data, "train-images-idx3-ubyte.gz"))[:ROWS].reshape(ROWS, -1)
    labels = idx(os.path.join(a.data, "train-labels-idx1-ubyte.gz"))[:ROWS]
    x = torch.from_numpy(pixels.astype(np.float32)) * (1.0 / 255.0) - 0.5   # the engine's x / 255 - 0.5, in float32 as it computes it
    y = torch.from_numpy(labels.astype(np.int64))
    sizes = [pixels.shape[1]] + HIDDEN + [10]
    start = start_vector(sizes, 11)
    init = os.path.join(work, "init.npy")
    np.save(init, start)
    tensors = tensors_of(start, sizes)

    failures, total = [], 0
    print(f"precision parity on {a.device}: error = ||p_engine - p_torch|| / ||p_torch - p_init|| after {STEPS} steps, p_torch "
          "trained by PyTorch in float64 rounding the same product inputs; effect: PyTorch's fp32 run against it")
    for precision in [p for p in a.precision.split(",") if p]:
        for case in CASES[:a.cases]:
            total += 1
            exact = torch_run(case, precision, tensors, sizes, x, y)
            fp32 = torch_run(case, "fp32", tensors, sizes, x, y)
            own = torch_run(case, precision, tensors, sizes, x, y, torch.float32).astype(np.float64)
            engine, says = engine_run(a.gpu, a.device, case, precision, init, work)
            update = np.linalg.norm(exact - start)
            error, effect = np.linalg.norm(engine - exact) / update, np.linalg.norm(fp32 - exact) / update
            torch_own = np.linalg.norm(own - exact) / update
            limit = max(LIMITS[precision], OWN * torch_own)
            ok = error <= limit and effect >= CLOSER * error
            where = f"{precision} {case[0]}, {case[4]}, {case[5]}"
            print(f"  {where:<36} error {error:.2e} (limit {limit:.1e}); torch float32 itself {torch_own:.2e}; effect {effect:.2e}  {'ok' if ok else 'FAILED'}  [{says}]")
            if not ok:
                failures.append(where)
    print(f"precision parity: {total - len(failures)} of {total} cases within the limits ({time.time() - clock:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
