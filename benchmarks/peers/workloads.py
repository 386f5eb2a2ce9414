"""The reference workloads and GEMM shapes every peer script measures (the engine's names: README,
benchmarks/Gpu.Benchmarks/TrainingBenchmarks.cs), so the peers and the engine measure the same things."""

WORKLOADS = {
    "W1": dict(layers=(784, 256, 128, 10), batch=128, lr=0.05, momentum=0.9, wd=1e-4),
    "W2": dict(layers=(784, 40, 40, 40, 10), batch=64, lr=0.05, momentum=0.0, wd=1e-3),
    "W3": dict(layers=(784, 2048, 2048, 10), batch=1024, lr=0.05, momentum=0.9, wd=1e-4),
}

# (role, m, n, k): C[m,n] = A[m,k] @ B[k,n]: the W1 step's products (batch 128) and a square
GEMMS = [
    ("W1 fwd", 128, 256, 784), ("W1 fwd", 128, 128, 256), ("W1 fwd", 128, 10, 128),
    ("W1 wgrad", 256, 784, 128), ("W1 wgrad", 128, 256, 128), ("W1 wgrad", 10, 128, 128),
    ("W1 dgrad", 128, 784, 256), ("W1 dgrad", 128, 256, 128), ("W1 dgrad", 128, 128, 10),
    ("square", 1024, 1024, 1024),
]
LARGE_GEMMS = [("square", 4096, 4096, 4096)]
