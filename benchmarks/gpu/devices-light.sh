#!/usr/bin/env bash
# Every device of a GPU machine, in under 9 minutes, from the kit (benchmarks/gpu/publish.sh: publish/kit/Gpu.Benchmarks.xz,
# unpacked into a temporary folder; no .NET SDK, no network): issue 21's measurements, the second script after
# first-light.sh (whose budget is spent), run the same way. From the repository root (it cds there itself); see
# benchmarks/gpu/README.md, section 5. In this order, each part with a time limit inside one overall budget:
#   kit            the program unpacked from publish/kit/Gpu.Benchmarks.xz (xz, or python3's lzma)
#   machine        nvidia-smi, the CPU's model and core count (information only)
#   icd            the NVIDIA OpenCL driver registered when /etc/OpenCL/vendors has no ICD file naming it: libnvidia-opencl.so.1
#                  found (NVIDIA_OPENCL, else /usr/local/nvidia/lib64, /usr/lib/x86_64-linux-gnu, ..., ldconfig), written with
#                  the ICD files already there into a temporary folder named by OCL_ICD_VENDORS for every later part
#   devices        gpu devices: which id is the OpenCL GPU (CL_GPU) and which the OpenCL CPU device, POCL (CL_CPU)
#   check-cl-gpu   gpu check --device opencl:N on the GPU: every kernel of every family it runs against the float64 reference
#   w1-cl-gpu      W1 (the default network, batch 128) on the OpenCL GPU, W1_EPOCHS epochs
#   w3-cl-gpu      W3 (784-2048-2048-10, batch 1024) on the OpenCL GPU, W3_EPOCHS epochs on all the data
#   w1-cuda        the same two on CUDA, in the same lease
#   w3-cuda
#   pocl-compile-w1  short POCL runs of W1 and W3 with an empty kernel cache (POCL_CACHE_DIR in the temporary folder): what
#   pocl-compile-w3  compiling costs; the runs below reuse the cache, so their first epoch is the engine's, not the compiler's
#   w1-pocl        W1 on POCL, W1_EPOCHS epochs, with POCL_MAX_PTHREAD_COUNT unset (every core), then 8, then 2
#   w1-pocl-8      (POCL_THREADS lists them: "all 8 2")
#   w1-pocl-2
#   w3-pocl        W3 on POCL: 1 epoch of the first W3_POCL_LIMIT (20000) images, the same thread counts
#   w3-pocl-8
#   w3-pocl-2
#   numpy          benchmarks/peers/numpy_mlp.py --workloads W1,W3 on the same CPU, every core (NumPy and its BLAS as installed)
# Writes $OUT/results.txt (every command and its whole output), $OUT/<part>.txt, the trained models under $OUT/<part>/,
# $OUT/summary.md (one row per part: status, seconds, limit, result; then one table of samples/s per workload and device
# with the ratios the issue's targets are about) and prints the summary. Exit code 1 if any part failed, timed out or was
# not reached; a part that cannot run here (no OpenCL GPU, no CUDA device, no NumPy) is "skipped", not a failure.
#
# Settings (environment): OUT (out-devices), KIT, BENCH (a program instead of the kit's), GPU ($BENCH gpu), BUDGET (500 s),
# CL_GPU, CL_CPU (opencl:N ids; found by the devices part when not given), NVIDIA_OPENCL (the NVIDIA OpenCL library),
# W1_EPOCHS (3), W3_EPOCHS (2), W3_POCL_LIMIT (20000), POCL_THREADS ("all 8 2"), PYTHON (python3, NumPy's),
# HELPER_PYTHON (python3, for unpacking without xz).
# A rehearsal without a GPU (the gpu program of a Release build; OpenCL GPU and CUDA parts skipped):
#   BENCH=none GPU=src/Gpu.Cli/bin/Release/net10.0/gpu bash benchmarks/gpu/devices-light.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
HERE=benchmarks/gpu
OUT="${OUT:-out-devices}"
KIT="${KIT:-publish/kit/Gpu.Benchmarks.xz}"
PYTHON="${PYTHON:-python3}"
HELPER_PYTHON="${HELPER_PYTHON:-python3}"
BUDGET="${BUDGET:-500}"
W1_EPOCHS="${W1_EPOCHS:-3}" W3_EPOCHS="${W3_EPOCHS:-2}" W3_POCL_LIMIT="${W3_POCL_LIMIT:-20000}"
POCL_THREADS="${POCL_THREADS:-all 8 2}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 PYTHONUNBUFFERED=1

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/devices-light.XXXXXX")   # the unpacked program, the ICD folder, POCL's kernel cache
trap 'rm -rf "$WORK"' EXIT
export DOTNET_BUNDLE_EXTRACT_BASE_DIR="${DOTNET_BUNDLE_EXTRACT_BASE_DIR:-$WORK/bundle}"
declare -A FIG   # FIG[W1,device] = "first epoch / last epoch" samples/s, for the figures table
source "$(dirname "${BASH_SOURCE[0]}")/parts.sh"   # RESULTS, SUMMARY, start, failed, rows; RC, LOG, TOOK, LIMIT; row, run, verdict, skip, last, have, kit_part

# epochs: "14k, 35k, 68k" (samples/s of each epoch in $LOG)
epochs() { grep -oE '[0-9.]+k? samples/s' "$LOG" | awk '{print $1}' | paste -sd ',' - | sed 's/,/, /g'; }
first_last() { local e; e=$(grep -oE '[0-9.]+k? samples/s' "$LOG" | awk '{print $1}'); [[ -n "$e" ]] && echo "$(head -1 <<< "$e") / $(tail -1 <<< "$e")"; }

# train NAME LIMIT WORKLOAD DEVICE [ENV...] -- ARGS...: a training run, its row (epochs' samples/s, test accuracy, time) and its figure
train() {
  local name=$1 limit=$2 w=$3 device=$4; shift 4
  local envs=()
  while [[ $# -gt 0 && "$1" != -- ]]; do envs+=("$1"); shift; done
  shift
  run "$name" "$limit" env "${envs[@]}" $GPU train --device "$device" "$@" --output "$OUT/$name"
  local acc; acc=$(grep -oE 'test accuracy [0-9.]+' "$LOG" | tail -1 | awk '{print $3}')
  local bad=0; [[ -z "$acc" ]] && bad=1
  verdict "$name" "samples/s per epoch: $(epochs); test accuracy ${acc:-?}; $(grep -oE '[0-9.]+ s in all' "$LOG" | tail -1)" "$bad" "no test accuracy"
  (( RC == 0 && bad == 0 )) && FIG[$w,$name]="$(first_last)"
}

# ------------------------------------------------------------------------------------------------ the machine
kit_part   # BENCH, GPU

cores=$(nproc 2> /dev/null || echo "?")
cpu=$(grep -m1 'model name' /proc/cpuinfo 2> /dev/null | sed 's/.*: //')
run machine 15 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
gpu_name="-"; (( RC == 0 )) && gpu_name=$(head -1 "$LOG")
TOOK=0; LIMIT=15; row machine ok "GPU: $gpu_name; CPU: ${cpu:-?}, $cores logical CPUs ($(lscpu 2> /dev/null | grep -E '^(Thread\(s\) per core|Core\(s\) per socket|Socket\(s\))' | sed -E 's/ +/ /g' | paste -sd ',' -))"

# icd: the NVIDIA OpenCL driver registered for this run when no ICD file names it
icd_part() {
  local vendors=/etc/OpenCL/vendors lib="${NVIDIA_OPENCL:-}"
  if grep -qs 'nvidia' "$vendors"/*.icd 2> /dev/null; then echo "already registered: $(grep -ls nvidia "$vendors"/*.icd | paste -sd ' ' -)"; return 0; fi
  if [[ -z "$lib" ]]; then
    for d in /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/nvidia/lib /usr/lib/aarch64-linux-gnu; do
      [[ -e "$d/libnvidia-opencl.so.1" ]] && { lib="$d/libnvidia-opencl.so.1"; break; }
    done
  fi
  [[ -z "$lib" ]] && lib=$(ldconfig -p 2> /dev/null | grep -oE '/[^ ]*libnvidia-opencl\.so\.1$' | head -1)
  if [[ -z "$lib" ]]; then echo "no libnvidia-opencl.so.1 found: the OpenCL GPU parts will find no GPU"; return 3; fi
  mkdir -p "$WORK/vendors"
  cp "$vendors"/*.icd "$WORK/vendors/" 2> /dev/null
  echo "$lib" > "$WORK/vendors/nvidia.icd"
  echo "registered $lib in $WORK/vendors (OCL_ICD_VENDORS), with $(ls "$WORK/vendors" | paste -sd ' ' -)"
}
t0=$SECONDS
echo "=== icd" >> "$RESULTS"
icd_part > "$OUT/icd.txt" 2>&1
icd_rc=$?
cat "$OUT/icd.txt" >> "$RESULTS"
icd_line=$(tail -1 "$OUT/icd.txt")
[[ -d "$WORK/vendors" ]] && export OCL_ICD_VENDORS="$WORK/vendors"
TOOK=$(( SECONDS - t0 )); LIMIT="-"
if (( icd_rc != 0 )); then row icd "skipped" "$icd_line"; else row icd ok "$icd_line"; fi

run devices 30 $GPU devices
verdict devices "$(last 'picks')"
CL_GPU="${CL_GPU:-$(grep -oE '^opencl:[0-9]+ +OpenCL GPU +yes' "$LOG" | head -1 | awk '{print $1}')}"
CL_CPU="${CL_CPU:-$(grep -oE '^opencl:[0-9]+ +OpenCL CPU +yes' "$LOG" | head -1 | awk '{print $1}')}"
cuda_ok=0; grep -qE '^cuda:[0-9]+ +CUDA +yes' "$LOG" && cuda_ok=1
cl_gpu_line=$(grep -E '^[-a-z:0-9]+ +OpenCL GPU' "$LOG" | head -1)

# ------------------------------------------------------------------------------------------------ the GPU: OpenCL, then CUDA
W1=(--epochs "$W1_EPOCHS")
W3=(--layers 2048,2048 --batch-size 1024 --epochs "$W3_EPOCHS")
if [[ -n "$CL_GPU" ]]; then
  run check-cl-gpu 150 $GPU check --device "$CL_GPU"
  verdict check-cl-gpu "$CL_GPU: $(last 'checks passed')"
  train w1-cl-gpu 60 W1 "$CL_GPU" -- "${W1[@]}"
  train w3-cl-gpu 60 W3 "$CL_GPU" -- "${W3[@]}"
else
  why="no usable OpenCL GPU${cl_gpu_line:+: $cl_gpu_line}"
  for p in check-cl-gpu w1-cl-gpu w3-cl-gpu; do skip "$p" "$why"; done
fi
if (( cuda_ok )); then
  train w1-cuda 60 W1 cuda -- "${W1[@]}"
  train w3-cuda 60 W3 cuda -- "${W3[@]}"
else
  for p in w1-cuda w3-cuda; do skip "$p" "no usable CUDA device: $(grep -E '^cuda' "$OUT/devices.txt" | head -1)"; done
fi

# ------------------------------------------------------------------------------------------------ the CPU: POCL and NumPy
if [[ -n "$CL_CPU" ]]; then
  export POCL_CACHE_DIR="$WORK/pocl-cache"
  train pocl-compile-w1 90 W1 "$CL_CPU" -- --epochs 1 --limit 2560
  train pocl-compile-w3 90 W3 "$CL_CPU" -- --layers 2048,2048 --batch-size 1024 --epochs 1 --limit 2048
  for w in W1 W3; do
    for t in $POCL_THREADS; do
      name="${w,,}-pocl"; [[ "$t" != all ]] && name="$name-$t"
      threads=(); [[ "$t" != all ]] && threads=("POCL_MAX_PTHREAD_COUNT=$t")
      if [[ $w == W1 ]]; then train "$name" 60 W1 "$CL_CPU" "${threads[@]}" -- "${W1[@]}"
      else train "$name" 60 W3 "$CL_CPU" "${threads[@]}" -- --layers 2048,2048 --batch-size 1024 --epochs 1 --limit "$W3_POCL_LIMIT"; fi
    done
  done
else
  skip pocl "no usable OpenCL CPU device (POCL): $(grep -E 'OpenCL' "$OUT/devices.txt" | head -1)"
fi

if have "${PYTHON%% *}" && $PYTHON -c 'import numpy' > /dev/null 2>&1; then
  run numpy 120 $PYTHON benchmarks/peers/numpy_mlp.py --workloads W1,W3 --skip-gemm --skip-check --repeats 3 --seconds 1 --json "$OUT/numpy.json"
  n1=$(last '^W1 +numpy' | awk '{print $4}'); n3=$(last '^W3 +numpy' | awk '{print $4}')
  verdict numpy "W1 ${n1:-?}, W3 ${n3:-?} samples/s; $(last '^BLAS:')"
  (( RC == 0 )) && { FIG[W1,numpy]="${n1:-?}"; FIG[W3,numpy]="${n3:-?}"; }
else
  skip numpy "no NumPy for $PYTHON"
fi

# ------------------------------------------------------------------------------------------------ summary
# to_num "68k" -> 68000; "3,699" -> 3699
to_num() { awk -v s="$1" 'BEGIN { gsub(",", "", s); m = 1; if (s ~ /k$/) { m = 1000; sub("k$", "", s) } if (s == "" || s == "?") print ""; else print s * m }'; }
ratio() { local a b; a=$(to_num "$1"); b=$(to_num "$2"); [[ -n "$a" && -n "$b" ]] && awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2fx", a / b }'; }
lastfig() { sed 's/.* \/ //' <<< "${1:-}"; }
{
  echo "# Devices light: $(date -u '+%Y-%m-%d %H:%M UTC'), $(( SECONDS - start )) s of a $BUDGET s budget"
  echo
  echo "GPU: $gpu_name; CPU: ${cpu:-?}, $cores logical CPUs; OpenCL GPU: ${CL_GPU:-none}; OpenCL CPU: ${CL_CPU:-none}"
  echo
  grep -E '^[-a-z:0-9]+ +OpenCL' "$OUT/devices.txt" 2> /dev/null | sed -E 's/; used .*//; s/^/    /'   # their drivers' versions and compute units
  echo
  echo "| part | status | seconds | limit | result |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "## Samples/s, first epoch / last epoch (NumPy: the median of its timed repeats)"
  echo
  echo "| workload | device | samples/s | against |"
  echo "|---|---|---|---|"
  for w in W1 W3; do
    lw=${w,,}
    for p in "$lw-cl-gpu" "$lw-cuda"; do
      [[ -n "${FIG[$w,$p]:-}" ]] || continue
      against=""; [[ $p == *cl-gpu && -n "${FIG[$w,$lw-cuda]:-}" ]] && against="OpenCL / CUDA (last epochs): $(ratio "$(lastfig "${FIG[$w,$p]}")" "$(lastfig "${FIG[$w,$lw-cuda]}")") (target >= 0.5x)"
      echo "| $w | $p | ${FIG[$w,$p]} | ${against:--} |"
    done
    for p in "$lw-pocl" $(for t in $POCL_THREADS; do [[ $t != all ]] && echo "$lw-pocl-$t"; done); do
      [[ -n "${FIG[$w,$p]:-}" ]] || continue
      against=""; [[ -n "${FIG[$w,numpy]:-}" ]] && against="/ NumPy: first epoch $(ratio "${FIG[$w,$p]%% /*}" "${FIG[$w,numpy]}"), last $(ratio "$(lastfig "${FIG[$w,$p]}")" "${FIG[$w,numpy]}")"
      echo "| $w | $p | ${FIG[$w,$p]} | ${against:--} |"
    done
    [[ -n "${FIG[$w,numpy]:-}" ]] && echo "| $w | numpy | ${FIG[$w,numpy]} | - |"
  done
  echo
  echo "Targets (issue 21): OpenCL GPU >= 0.5x CUDA on W1 and W3; POCL on every core: W1 from the first epoch >= the best fixed"
  echo "thread count and >= 1.5x NumPy, W3 >= 2x NumPy. The POCL runs come after pocl-compile-w1 and -w3, which fill the kernel cache."
  echo
  if (( failed )); then echo "**FAILED**: see the rows above and $RESULTS"; else echo "all parts passed"; fi
} > "$SUMMARY"
cat "$SUMMARY"
exit $failed
