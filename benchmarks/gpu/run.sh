#!/usr/bin/env bash
# The longer GPU session, after benchmarks/gpu/first-light.sh has passed: runs on the GPU machine from the repository
# root with publish/kit (benchmarks/gpu/publish.sh) carried along; the program is unpacked from it into a temporary
# folder (BENCH names another instead, e.g. publish/bench/Gpu.Benchmarks). Everything it measures goes to $OUT (default
# out-gpu/): the device list, a 10-epoch W1 training run and a 2-epoch streamed one, every BenchmarkDotNet suite on the
# GPU (4096^3 included), and the PyTorch peer script on the same GPU in the same session. No time budget, and not yet
# timed on a GPU: it runs far longer than first-light.sh (the GEMM suite alone is 21 cases of about 10 s of
# BenchmarkDotNet iterations each), so it needs a session with more than one 10-minute command.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-out-gpu}"
mkdir -p "$OUT"
export DOTNET_CLI_TELEMETRY_OPTOUT=1
export DOTNET_BUNDLE_EXTRACT_BASE_DIR="${DOTNET_BUNDLE_EXTRACT_BASE_DIR:-${TMPDIR:-/tmp}/gpu-bundle}"
if [[ -z "${BENCH:-}" ]]; then
  kit_dir=$(mktemp -d "${TMPDIR:-/tmp}/gpu-kit.XXXXXX"); trap 'rm -rf "$kit_dir"' EXIT
  bash benchmarks/gpu/unpack-kit.sh "${KIT:-publish/kit/Gpu.Benchmarks.xz}" "$kit_dir" || exit 1
  BENCH="$kit_dir/Gpu.Benchmarks"
fi
GPU="${GPU:-$BENCH gpu}"
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; } > "$OUT/machine.txt" 2>&1
$GPU devices 2>&1 | tee "$OUT/devices.txt"
$GPU check --device cuda 2>&1 | tee "$OUT/check.txt"   # every kernel vs the float64 reference, on the GPU
$GPU train --device cuda --verbose --output "$OUT/w1" 2>&1 | tee "$OUT/train-w1.txt"
$GPU train --device cuda --verbose --data-path stream --epochs 2 --output "$OUT/w1-stream" 2>&1 | tee "$OUT/train-w1-stream.txt"
# BenchmarkDotNet on the GPU only (the CPU accelerator figures come from the CI machine)
GPU_BENCH_DEVICES="${GPU_BENCH_DEVICES:-cuda:0}" $BENCH --filter '*' --artifacts "$OUT/bdn" 2>&1 | tail -80 > "$OUT/bench.txt"
PYTHONUNBUFFERED=1 python3 benchmarks/peers/torch_mlp.py --json "$OUT/torch.json" 2>&1 | tee "$OUT/torch.txt"
