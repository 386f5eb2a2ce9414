#!/usr/bin/env bash
# One run of the CPU comparison RESULTS.md reports: NumPy + OpenBLAS (benchmarks/peers/numpy_mlp.py),
# ILGPU's CPU accelerator and the OpenCL CPU device (POCL), on the same machine, one after another:
#   NumPy, then the engine's BenchmarkDotNet suites (GEMM products, training steps W1/W2/W3) on both
#   devices, then NumPy again (so a machine that slows down during the run shows up), then the table
#   (benchmarks/compare_table.py), with each engine figure's ratio to the better of the two NumPy runs.
# Usage: bash benchmarks/compare.sh [OUT]   (default OUT: out-compare/; takes 10-15 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-out-compare}"
mkdir -p "$OUT"
bash .ci/install-opencl
PY=/usr/bin/python3
$PY -c "import numpy" 2>/dev/null || { echo "compare.sh: needs Debian's python3-numpy (and libopenblas0-pthread for OpenBLAS)"; exit 1; }
{ date -u; lscpu | grep -E "Model name|^CPU\(s\)|Flags" | cut -c1-200; } > "$OUT/machine.txt"
dotnet build benchmarks/Gpu.Benchmarks -c Release -v q -nologo >/dev/null
$PY benchmarks/peers/numpy_mlp.py --json "$OUT/numpy-before.json" | tee "$OUT/numpy-before.txt"
GPU_BENCH_DEVICES="${GPU_BENCH_DEVICES:-cpu,opencl:0}" \
  dotnet benchmarks/Gpu.Benchmarks/bin/Release/net10.0/Gpu.Benchmarks.dll \
  --filter '*GemmBenchmarks*' '*TrainingStepBenchmarks*' --exporters json --artifacts "$OUT/bdn" 2>&1 | tail -60 | tee "$OUT/bdn.txt"
$PY benchmarks/peers/numpy_mlp.py --json "$OUT/numpy-after.json" --skip-check | tee "$OUT/numpy-after.txt"
$PY benchmarks/compare_table.py "$OUT" | tee "$OUT/table.md"
