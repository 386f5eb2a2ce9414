#!/usr/bin/env bash
# First light on a CUDA machine, in under 8 minutes, from the self-contained publish (benchmarks/gpu/publish.sh; the
# machine needs no .NET SDK and no network). Run from the repository root (it cds there itself); see
# benchmarks/gpu/README.md. In this order, each part with a time limit inside one overall budget:
#   machine          nvidia-smi (information only)
#   devices          gpu devices: the CUDA device must be usable
#   ptx              gpu check --ptx: every kernel compiled to PTX and checked (no device needed)
#   check            gpu check --device cuda: every kernel against the float64 reference
#   gradcheck-relu   gpu gradcheck --device cuda, ReLU network
#   gradcheck-tanh   gpu gradcheck --device cuda, tanh network
#   train-resident   gpu train, 2 epochs of W1 on Fashion-MNIST, resident data path: test accuracy >= 0.80
#   train-stream     the same on the streamed data path
#   bench            BenchmarkDotNet: training steps W1, W2, W3 and the GEMMs at 1024^3 and 4096^3 on the GPU
#   torch            benchmarks/peers/torch_mlp.py on the same GPU: eager and CUDA graph, the same workloads and GEMMs
# Writes $OUT/results.txt (every command and its whole output), $OUT/<part>.txt, $OUT/summary.md (one row per part,
# then the benchmark tables) and prints the summary. Exit code 1 if any part failed, timed out or was not reached;
# PyTorch missing on the machine is "skipped", not a failure.
#
# Settings (environment): OUT (out-gpu), DEVICE (cuda: what check, gradcheck and train use), BENCH_DEVICE (cuda:0),
# GPU (publish/bench/Gpu.Benchmarks gpu: the program inside the benchmark file), BENCH (publish/bench/Gpu.Benchmarks), PYTHON (python3), BUDGET (450 seconds for all parts),
# BENCH_SHAPES (the GEMM shapes, 1024x1024x1024,4096x4096x4096).
# A rehearsal without a GPU: DEVICE=opencl:0 BENCH_DEVICE=opencl:0 bash benchmarks/gpu/first-light.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-out-gpu}"
DEVICE="${DEVICE:-cuda}"
BENCH_DEVICE="${BENCH_DEVICE:-cuda:0}"
GPU="${GPU:-publish/bench/Gpu.Benchmarks gpu}"
BENCH="${BENCH:-publish/bench/Gpu.Benchmarks}"
PYTHON="${PYTHON:-python3}"
BUDGET="${BUDGET:-450}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
export DOTNET_BUNDLE_EXTRACT_BASE_DIR="${DOTNET_BUNDLE_EXTRACT_BASE_DIR:-${TMPDIR:-/tmp}/gpu-bundle}"   # the single file's native libraries, not in $OUT

mkdir -p "$OUT"
RESULTS="$OUT/results.txt"
SUMMARY="$OUT/summary.md"
: > "$RESULTS"
start=$SECONDS
failed=0
rows=()
RC=0; LOG=""; TOOK=0

# row NAME STATUS RESULT: one line of the summary table
row() { rows+=("| $1 | $2 | $TOOK | ${3//|/\\|} |"); }

# run NAME LIMIT CMD...: CMD with at most LIMIT seconds (fewer when the budget runs short), its output in $OUT/NAME.txt
# and appended to results.txt; sets RC (124: timed out; 125: not run, out of time), LOG and TOOK.
run() {
  local name=$1 limit=$2; shift 2
  local left=$(( BUDGET - (SECONDS - start) ))
  LOG="$OUT/$name.txt"; TOOK=0
  if (( left < 5 )); then
    RC=125; : > "$LOG"
    echo "=== $name: not run, the ${BUDGET} s budget is spent" >> "$RESULTS"
    return
  fi
  (( limit > left )) && limit=$left
  local t0=$SECONDS
  echo "=== $name (limit ${limit} s): $*" >> "$RESULTS"
  timeout --kill-after=5 "$limit" "$@" > "$LOG" 2>&1
  RC=$?
  TOOK=$(( SECONDS - t0 ))
  cat "$LOG" >> "$RESULTS"
  echo "=== $name: exit code $RC, ${TOOK} s" >> "$RESULTS"
}

# verdict NAME RESULT [EXTRA WHY]: a row from RC; EXTRA other than 0 fails the part too, saying WHY
verdict() {
  local name=$1 result=$2 extra=${3:-0} why=${4:-}
  if (( RC == 125 )); then row "$name" "NOT RUN (budget spent)" "-"; failed=1
  elif (( RC == 124 || RC == 137 )); then row "$name" "FAILED (timed out)" "$result"; failed=1
  elif (( RC != 0 )); then row "$name" "FAILED (exit code $RC)" "$result"; failed=1
  elif (( extra != 0 )); then row "$name" "FAILED ($why)" "$result"; failed=1
  else row "$name" "ok" "$result"; fi
}

last() { grep -E "$1" "$LOG" | tail -1; }

# machine: information only
run machine 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
if (( RC == 0 )); then row machine ok "$(head -1 "$LOG")"; else row machine "no nvidia-smi" "-"; fi

run devices 30 $GPU devices
usable=0
if [[ "$DEVICE" == cuda* ]]; then grep -qE '^cuda:[0-9]+ +CUDA +yes' "$LOG" || usable=1; fi
verdict devices "$(last 'picks')" $usable "no usable CUDA device"

run ptx 60 $GPU check --ptx --ptx-out "$OUT/ptx"
verdict ptx "$(last 'compilations passed')"

run check 120 $GPU check --device "$DEVICE"
verdict check "$(last 'checks passed')"

for act in relu tanh; do
  run "gradcheck-$act" 60 $GPU gradcheck --device "$DEVICE" --activation "$act"
  verdict "gradcheck-$act" "$(last '^relative error')"
done

for path in resident stream; do
  run "train-$path" 60 $GPU train --device "$DEVICE" --data-path "$path" --epochs 2 --verbose --output "$OUT/train-$path"
  acc=$(grep -oE 'test accuracy [0-9.]+' "$LOG" | tail -1 | awk '{print $3}')
  low=$(awk -v a="${acc:-0}" 'BEGIN { print (a >= 0.80) ? 0 : 1 }')
  verdict "train-$path" "test accuracy ${acc:-?}; $(last 'epoch +2/2' | sed -E 's/.*\| //'); $(last 'kernel launches' | sed -E 's/ on .*//')" "$low" "test accuracy below 0.80"
done

run bench 180 env GPU_BENCH_DEVICES="$BENCH_DEVICE" GPU_BENCH_SHAPES="${BENCH_SHAPES:-1024x1024x1024,4096x4096x4096}" \
  $BENCH --filter '*TrainingStepBenchmarks*' '*GemmBenchmarks*' --artifacts "$OUT/bdn"
bench_tables=$(grep -E '^\|' "$LOG")
cases=$(grep -cF "| $BENCH_DEVICE " "$LOG" || true)
w1=$(grep -F "| $BENCH_DEVICE " "$LOG" | grep -E '\| W1 +\|' | awk -F'|' '{print $(NF-2) "samples/s," $(NF-1) "launches/step"}' | tr -s ' ')
verdict bench "$cases cases (tables below); W1:${w1:- -}"

if command -v "${PYTHON%% *}" > /dev/null; then
  run torch 150 $PYTHON benchmarks/peers/torch_mlp.py --json "$OUT/torch.json"
  if (( RC == 2 )); then row torch "skipped" "$(head -1 "$LOG")"
  else verdict torch "W1 samples/s: eager $(last '^W1 +eager' | awk '{print $4}'), CUDA graph $(last '^W1 +graph' | awk '{print $4}')"; fi
else
  TOOK=0; row torch "skipped" "no $PYTHON on this machine"
fi

{
  echo "# First light: $(date -u '+%Y-%m-%d %H:%M UTC'), device $DEVICE, $(( SECONDS - start )) s"
  echo
  echo "| part | status | seconds | result |"
  echo "|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "## BenchmarkDotNet ($BENCH_DEVICE)"
  echo
  echo "${bench_tables:-(none)}"
  echo
  echo "## PyTorch"
  echo
  if [[ -s "$OUT/torch.txt" ]]; then sed -n '1,40p' "$OUT/torch.txt"; else echo "(not run)"; fi
  echo
  if (( failed )); then echo "**FAILED**: see the rows above and $RESULTS"; else echo "all parts passed"; fi
} > "$SUMMARY"
cat "$SUMMARY"
exit $failed
