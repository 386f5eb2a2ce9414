"""PyTorch side of the engine's parity test (tests/Gpu.Tests/Interop/TorchParityTests.cs), in the spirit of
llm.c's test_gpt2: the same network, from the same starting weights, on the same full batch, trained by
PyTorch's own optimizers and schedulers; the engine's parameters after k steps are compared with these.

usage: torch_parity.py DIR
DIR holds (written by the test): init.safetensors (the starting weights, as `train --init-from` reads them),
pixels.npy (float32 [B, features], raw 0..255), labels.npy (int64 [B]) and cases.json (a list of cases:
name, activation, loss, optimizer, lr, momentum, l2, beta1, beta2, schedule, warmup_epochs, step_every,
step_gamma, steps, record: the step counts to record; precision: fp32, tf32 or bf16, fp32 when absent). Writes DIR/torch32.npy (float32 [cases x records,
parameters]), each row the flat vector in the engine's packing (every weight [out, in] row-major layer by
layer, then every bias) after that many steps, trained in float32 as the engine trains; and DIR/torch64.npy,
the same trained in float64 from the same float32 start: the exact answer the test measures both against
(Adam's first step, sign(g) where |g| >> eps, turns float32 rounding of a gradient near eps into a visible
difference in both float32 implementations).

The engine's semantics matched here (README "train options"): L2 / weight decay on weights only, never
biases (two parameter groups); SGD momentum v = m v + g, p -= lr v (Nesterov: p -= lr (g + m v)), which is
torch.optim.SGD with dampening 0; Adam with L2 in the gradient (torch.optim.Adam weight_decay); AdamW with
decoupled decay p -= lr l2 p (torch.optim.AdamW); epsilon 1e-8 outside the square root; one full-batch step
per epoch, the learning rate set per step: constant, cosine (CosineAnnealingLR, T_max = the steps after
the warm-up, eta_min 0), step (StepLR, gamma every step_every epochs), warm-up (LinearLR from 1/W to 1 over
W steps, then the schedule, through SequentialLR).

Precision (README "Precision"): with tf32 or bf16 every product's two inputs are rounded, as the engine's kernels
(and the tensor cores) round them, and nothing else is: forward X W^T, the weight gradient dZ^T H and the input
gradient dZ W; the bias, the bias gradient (column sums of the unrounded dZ), activations, the loss and the
optimizer stay in the run's float type. TF32 keeps 10 fraction bits, rounding to nearest with ties away from zero
(cvt.rna.tf32.f32); bf16 keeps 7, ties to even (cvt.rn.bf16.f32). Torch on a CPU has no TF32, and its bf16
autocast would round more than the products' inputs, so the rounding is written out here (RoundedLinear), on the
float32 and on the float64 run alike: the float64 run is then the exact answer to the same rounded arithmetic.
"""
import json
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_logits import load  # noqa: E402  (the safetensors reader without the safetensors package)

ACTIVATIONS = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid, "leaky-relu": lambda: torch.nn.LeakyReLU(0.01)}


# fraction bits dropped from float32 and from float64, and whether ties go away from zero (TF32) or to even (bf16)
ROUNDING = {"tf32": ({torch.float32: 13, torch.float64: 42}, False), "bf16": ({torch.float32: 16, torch.float64: 45}, True)}
BITS = {torch.float32: torch.int32, torch.float64: torch.int64}


def rounded(v, precision):
    """v with its fraction rounded to the precision's bits, on the bit pattern (finite values; the sign is untouched)."""
    if precision == "fp32":
        return v
    drops, to_even = ROUNDING[precision]
    drop = drops[v.dtype]
    bits = v.contiguous().view(BITS[v.dtype])
    half = 1 << (drop - 1)
    bits = bits + (half - 1 + ((bits >> drop) & 1)) if to_even else bits + half
    return (bits & ~((1 << drop) - 1)).view(v.dtype)


class RoundedProducts(torch.autograd.Function):
    """y = r(x) r(w)^T + b; dx = r(dy) r(w), dw = r(dy)^T r(x), db = column sums of dy: r rounds a product's inputs."""

    @staticmethod
    def forward(ctx, x, w, b, precision):
        ctx.save_for_backward(x, w)
        ctx.precision = precision
        return rounded(x, precision) @ rounded(w, precision).t() + b

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        r = lambda v: rounded(v, ctx.precision)  # noqa: E731
        dx = r(dy) @ r(w) if ctx.needs_input_grad[0] else None
        return dx, r(dy).t() @ r(x), dy.sum(0), None


class RoundedLinear(torch.nn.Linear):
    """torch.nn.Linear (the same parameters and state dict) whose products round their inputs to a precision."""

    def __init__(self, n_in, n_out, precision):
        super().__init__(n_in, n_out)
        self.precision = precision

    def forward(self, x):
        if self.precision == "fp32":
            return super().forward(x)
        return RoundedProducts.apply(x, self.weight, self.bias, self.precision)


def network(sizes, activation, loss, tensors, precision="fp32"):
    modules = []
    for l in range(len(sizes) - 1):
        modules.append(RoundedLinear(sizes[l], sizes[l + 1], precision))
        if l < len(sizes) - 2:
            modules.append(ACTIVATIONS[activation]())
    if loss == "sigmoid-sse":
        modules.append(torch.nn.Sigmoid())
    net = torch.nn.Sequential(*modules)
    net.load_state_dict(tensors, strict=True)
    return net


def cost(out, y, loss):
    if loss == "softmax-ce":
        return F.cross_entropy(out, y)                                   # mean over the batch
    onehot = F.one_hot(y, out.shape[1]).to(out.dtype)
    return 0.5 * ((out - onehot) ** 2).sum(dim=1).mean()                 # 1/2 sum (a - y)^2, mean over the batch


def optimizer(net, c):
    weights = [p for n, p in net.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in net.named_parameters() if n.endswith("bias")]
    groups = [{"params": weights, "weight_decay": c["l2"]}, {"params": biases, "weight_decay": 0.0}]
    kind = c["optimizer"]
    if kind in ("sgd", "nesterov"):
        return torch.optim.SGD(groups, lr=c["lr"], momentum=c["momentum"], dampening=0, nesterov=kind == "nesterov")
    if kind == "adam":
        return torch.optim.Adam(groups, lr=c["lr"], betas=(c["beta1"], c["beta2"]), eps=1e-8)
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=c["lr"], betas=(c["beta1"], c["beta2"]), eps=1e-8)
    raise ValueError(kind)


def scheduler(opt, c):
    total, warm = c["steps"], int(round(c["warmup_epochs"]))   # one step per epoch (full batch)
    after = {
        "constant": lambda: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0),
        "cosine": lambda: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total - warm), eta_min=0.0),
        "step": lambda: torch.optim.lr_scheduler.StepLR(opt, step_size=c["step_every"], gamma=c["step_gamma"]),
    }[c["schedule"]]
    if warm == 0:
        return after()
    ramp = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0 / warm, end_factor=1.0, total_iters=warm - 1)
    return torch.optim.lr_scheduler.SequentialLR(opt, [ramp, after()], milestones=[warm])


def flat(net):
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    return torch.cat([m.weight.detach().reshape(-1) for m in linears] + [m.bias.detach().reshape(-1) for m in linears]).numpy()


def main():
    folder = sys.argv[1]
    warnings.filterwarnings("ignore", message="The epoch parameter")   # SequentialLR's own call into the milestone's scheduler
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    tensors, meta = load(os.path.join(folder, "init.safetensors"))
    sizes = [int(s) for s in meta["layers"].split("-")]
    x = torch.from_numpy(np.load(os.path.join(folder, "pixels.npy"))).float() * (1.0 / 255.0) - 0.5   # the engine's x / 255 - 0.5
    y = torch.from_numpy(np.load(os.path.join(folder, "labels.npy"))).long()
    with open(os.path.join(folder, "cases.json")) as f:
        cases = json.load(f)
    for dtype, name, store in ((torch.float32, "torch32.npy", np.float32), (torch.float64, "torch64.npy", np.float64)):
        rows = []
        for c in cases:
            net = network(sizes, c["activation"], c["loss"], {k: v.clone() for k, v in tensors.items()}, c.get("precision", "fp32")).to(dtype)
            opt = optimizer(net, c)
            sched = scheduler(opt, c)
            for step in range(1, c["steps"] + 1):
                opt.zero_grad()
                cost(net(x.to(dtype)), y, c["loss"]).backward()
                opt.step()
                sched.step()
                if step in c["record"]:
                    rows.append(flat(net))
        np.save(os.path.join(folder, name), np.stack(rows).astype(store))
    print(f"torch {torch.__version__}: {len(cases)} cases, {len(rows)} parameter vectors in float32 and in float64")


if __name__ == "__main__":
    main()
