#!/usr/bin/env bash
# verify-kit.sh [ARCHIVE]: proves the trimmed kit works, here, before it is carried to a GPU (publish.sh runs it).
# The archive (publish/kit/Gpu.Benchmarks.xz) is unpacked into a temporary folder exactly as first-light.sh unpacks it on
# the GPU machine, and the file runs from there, outside the repository's build outputs:
#   gpu devices; gpu check --ptx (every kernel through ILGPU's PTX backend: the CUDA code path of the compiler);
#   gpu check and gpu train --epochs 1 --limit 5000 (and the same with --precision bf16) on DEVICE (this machine's OpenCL
#   device, else the CPU accelerator: ILGPU emitting and running kernels); BenchmarkDotNet (GPU_BENCH_QUICK=1) on one GEMM
#   shape and the W1 training step.
# Each must exit 0 and print its figure; the trimmer's warnings (publish/trim-warnings.txt) are judged by this, not
# read as errors. Exit code 1 if any step failed. Settings: DEVICE (auto: opencl:0 when usable, else cpu).
set -uo pipefail
cd "$(dirname "$0")/../.."
archive="${1:-publish/kit/Gpu.Benchmarks.xz}"
work=$(mktemp -d "${TMPDIR:-/tmp}/verify-kit.XXXXXX")
trap 'rm -rf "$work"' EXIT
export DOTNET_BUNDLE_EXTRACT_BASE_DIR="$work/bundle" DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
failed=0

# step NAME PATTERN CMD...: runs CMD, passes when it exits 0 and its output matches PATTERN (extended regex)
step() {
  local name=$1 pattern=$2; shift 2
  local t0=$SECONDS log="$work/$name.txt"
  "$@" > "$log" 2>&1
  local rc=$? took=$(( SECONDS - t0 )) hit
  hit=$(grep -E "$pattern" "$log" | tail -1)
  if (( rc == 0 )) && [[ -n "$hit" ]]; then
    echo "ok      $name (${took} s): $hit"
  else
    echo "FAILED  $name (${took} s, exit code $rc): expected /$pattern/; the output's end:"
    tail -15 "$log" | sed 's/^/        /'
    failed=1
  fi
}

step unpack 'unpacked' bash benchmarks/gpu/unpack-kit.sh "$archive" "$work/kit"
bench="$work/kit/Gpu.Benchmarks"
step devices 'picks' "$bench" gpu devices
device="${DEVICE:-}"
if [[ -z "$device" ]]; then
  if grep -qE '^opencl:0 +OpenCL [A-Z]+ +yes' "$work/devices.txt"; then device=opencl:0; else device=cpu; fi
fi
echo "        device for the kernel runs: $device"
step ptx '([0-9]+) of \1 compilations passed' "$bench" gpu check --ptx --ptx-out "$work/ptx"
step check '([0-9]+) of \1 checks passed' "$bench" gpu check --device "$device"
step train 'test accuracy 0\.[6-9]' "$bench" gpu train --device "$device" --epochs 1 --limit 5000 --verbose --output "$work/train"
# the reduced precisions' path (precision-light.sh): bf16 products, emulated here, in the trimmed program
step train-bf16 'test accuracy 0\.[6-9]' "$bench" gpu train --device "$device" --epochs 1 --limit 5000 --precision bf16 --output "$work/train-bf16"
# a GEMM case (GFLOP/s column) and the W1 training step (samples/s column), both with figures, from the quick job
step bench "^\| TrainingStepBenchmarks .*\| $device +\|.*\| W1 +\|.*\| +[0-9][0-9,]* +\| +[0-9.]+ +\|" env GPU_BENCH_QUICK=1 \
  GPU_BENCH_DEVICES="$device" GPU_BENCH_SHAPES=128x256x784 GPU_BENCH_WORKLOADS=W1 \
  "$bench" --filter '*GemmBenchmarks*' '*TrainingStepBenchmarks*' --exporters json --artifacts "$work/bdn"
if (( failed == 0 )); then
  gemm=$(grep -cE "^\| GemmBenchmarks .*\| $device +\| 128x256x784 .*\| +[0-9][0-9.]* +\|" "$work/bench.txt")
  if (( gemm >= 3 )); then echo "ok      bench: $gemm GEMM cases with GFLOP/s figures"
  else echo "FAILED  bench: $gemm of 3 GEMM cases with GFLOP/s figures"; grep -E '^\|' "$work/bench.txt" | sed 's/^/        /'; failed=1; fi
fi
if (( failed )); then echo "verify-kit: FAILED; do not carry this kit"; else echo "verify-kit: the kit runs (unpacked from $archive)"; fi
exit $failed
