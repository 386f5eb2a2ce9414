#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, after benchmarks/gpu/publish.sh has been run
# on a machine with the SDK and publish/ was copied (or carried) along. Everything it measures
# goes to $OUT (default: out-gpu/): the device list, a W1 training run, the BenchmarkDotNet suites
# on every device, and the PyTorch peer script on the same GPU in the same session.
set -uo pipefail
OUT="${OUT:-out-gpu}"
mkdir -p "$OUT"
export DOTNET_CLI_TELEMETRY_OPTOUT=1
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; } > "$OUT/machine.txt" 2>&1
publish/cli/gpu devices 2>&1 | tee "$OUT/devices.txt"
publish/cli/gpu check --device cuda 2>&1 | tee "$OUT/check.txt"   # every kernel vs the float64 reference, on the GPU
publish/cli/gpu train --device cuda --output "$OUT/w1" 2>&1 | tee "$OUT/train-w1.txt"
publish/cli/gpu train --device cuda --data-path stream --epochs 2 --output "$OUT/w1-stream" 2>&1 | tee "$OUT/train-w1-stream.txt"
# BenchmarkDotNet on the GPU only (the CPU accelerator figures come from the CI machine)
GPU_BENCH_DEVICES="${GPU_BENCH_DEVICES:-cuda:0}" publish/bench/Gpu.Benchmarks --filter '*' --artifacts "$OUT/bdn" 2>&1 | tail -80 > "$OUT/bench.txt"
PYTHONUNBUFFERED=1 python3 benchmarks/peers/torch_mlp.py --json "$OUT/torch.json" 2>&1 | tee "$OUT/torch.txt"
