#!/usr/bin/env bash
# First light on a CUDA machine, in under 8 minutes, from the kit (benchmarks/gpu/publish.sh: publish/kit/Gpu.Benchmarks.xz,
# unpacked here into a temporary folder; the machine needs no .NET SDK and no network). Run from the repository root (it
# cds there itself); see benchmarks/gpu/README.md. In this order, each part with a time limit inside one overall budget,
# correctness first, then performance, then the profile:
#   kit              the program unpacked from publish/kit/Gpu.Benchmarks.xz (xz, or python3's lzma)
#   machine          nvidia-smi (information only)
#   devices          gpu devices: the CUDA device must be usable
#   ptx              gpu check --ptx: every kernel compiled to PTX and checked (no device needed); the PTX kept in $OUT/ptx
#   check            gpu check --device cuda: every kernel against the float64 reference
#   gradcheck-relu   gpu gradcheck --device cuda, ReLU network
#   gradcheck-tanh   gpu gradcheck --device cuda, tanh network
#   train-resident   gpu train, the default (W1, 10 epochs), resident data path: test accuracy within 0.002 of 0.8903
#   train-stream     2 epochs on the streamed data path: test accuracy >= 0.80
#   bench            BenchmarkDotNet (GPU_BENCH_QUICK=1): training steps W1, W2, W3 and the GEMMs at 1024^3 and 4096^3
#   plans            Gpu.Benchmarks plans: the blocked family's tile and split-K plans raced per product shape
#   torch            benchmarks/peers/torch_mlp.py on the same GPU: eager and CUDA graph, the same workloads and GEMMs
#   tables           the engine beside cuBLAS (GEMM TFLOP/s) and PyTorch (samples/s), with ratios (tables.py)
#   ncu-w1           Nsight Compute: per-kernel GPU time over about 20 W1 training steps (the first 5 steps skipped)
#   ncu-w3           the same for W3 (2048,2048, batch 1024)
#   ptxas            ptxas -v on the sm_90 PTX of the ptx part: registers, spills, shared memory per kernel
#   memcheck         compute-sanitizer --tool memcheck on gpu check --device cuda
#   racecheck        compute-sanitizer --tool racecheck on a few training steps
# Writes $OUT/results.txt (every command and its whole output), $OUT/<part>.txt, $OUT/summary.md (one row per part with
# its time and limit, then the tables) and prints the summary. Exit code 1 if any part failed, timed out or was not
# reached; a part whose tool is missing (PyTorch, ncu, compute-sanitizer, ptxas, python3) is "skipped", not a failure.
#
# Settings (environment): OUT (out-gpu), DEVICE (cuda: what check, gradcheck, train and the profile use), BENCH_DEVICE
# (cuda:0), KIT (publish/kit/Gpu.Benchmarks.xz), BENCH (the program; set it to skip the kit, e.g. publish/bench/Gpu.Benchmarks),
# GPU ($BENCH gpu), PYTHON (python3, for PyTorch), HELPER_PYTHON (python3, for tables.py and unpacking without xz), NCU,
# SANITIZER, PTXAS (ncu, compute-sanitizer, ptxas: on the PATH, else in /usr/local/cuda/bin), BUDGET (520 seconds for all
# parts), BENCH_SHAPES (the GEMM shapes, 1024x1024x1024,4096x4096x4096).
# A rehearsal without a GPU: DEVICE=opencl:0 BENCH_DEVICE=opencl:0 BENCH_SHAPES=1024x1024x1024 bash benchmarks/gpu/first-light.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
HERE=benchmarks/gpu
OUT="${OUT:-out-gpu}"
DEVICE="${DEVICE:-cuda}"
BENCH_DEVICE="${BENCH_DEVICE:-cuda:0}"
KIT="${KIT:-publish/kit/Gpu.Benchmarks.xz}"
PYTHON="${PYTHON:-python3}"
HELPER_PYTHON="${HELPER_PYTHON:-python3}"
BUDGET="${BUDGET:-520}"
BENCH_SHAPES="${BENCH_SHAPES:-1024x1024x1024,4096x4096x4096}"
BENCH_FAMILIES="${BENCH_FAMILIES:-blocked,tiled,tensor-tf32,tensor-bf16}"   # the GEMM families raced (the scalar one would spend the budget at 4096^3; tensor-tf32 and tensor-bf16 run their TF32 and bf16 products)
ACC_TARGET="${ACC_TARGET:-0.8903}" ACC_TOLERANCE="${ACC_TOLERANCE:-0.002}"
cuda_tool() { command -v "$1" 2> /dev/null || echo "/usr/local/cuda/bin/$1"; }
NCU="${NCU:-$(cuda_tool ncu)}"
SANITIZER="${SANITIZER:-$(cuda_tool compute-sanitizer)}"
PTXAS="${PTXAS:-$(cuda_tool ptxas)}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 PYTHONUNBUFFERED=1

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/first-light.XXXXXX")   # the unpacked program, its native libraries, scratch runs
trap 'rm -rf "$WORK"' EXIT
export DOTNET_BUNDLE_EXTRACT_BASE_DIR="${DOTNET_BUNDLE_EXTRACT_BASE_DIR:-$WORK/bundle}"
source "$(dirname "${BASH_SOURCE[0]}")/parts.sh"   # RESULTS, SUMMARY, start, failed, rows; RC, LOG, TOOK, LIMIT; row, run, verdict, skip, last, have, kit_part
helper() { have "$HELPER_PYTHON"; }
summary_of() { [[ -f "$1" ]] && grep -E '^(ERROR|RACECHECK) SUMMARY|^=+ (ERROR|RACECHECK) SUMMARY' "$1" | tail -2 | sed -E 's/^=+ //' | paste -sd ';' -; }
count_in() { grep -oE "$1" "$2" 2> /dev/null | tail -1 | grep -oE '[0-9]+' | head -1; }

# kit: the program, unpacked (unless BENCH names one)
kit_part   # BENCH, GPU

# machine: information only
run machine 15 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
if (( RC == 0 )); then row machine ok "$(head -1 "$LOG")"; else row machine "no nvidia-smi" "-"; fi

# ------------------------------------------------------------------------------------------------ correctness
run devices 30 $GPU devices
usable=0
if [[ "$DEVICE" == cuda* ]]; then grep -qE '^cuda:[0-9]+ +CUDA +yes' "$LOG" || usable=1; fi
verdict devices "$(last 'picks')" $usable "no usable CUDA device"

run ptx 45 $GPU check --ptx --ptx-out "$OUT/ptx"
verdict ptx "$(last 'compilations passed')"

run check 90 $GPU check --device "$DEVICE"
verdict check "$(last 'checks passed')"

for act in relu tanh; do
  run "gradcheck-$act" 45 $GPU gradcheck --device "$DEVICE" --activation "$act"
  verdict "gradcheck-$act" "$(last '^relative error')"
done

# the default train (W1, 10 epochs) on the resident path: its test accuracy within ACC_TOLERANCE of ACC_TARGET (the CPU's),
# its time in all; 2 epochs on the streamed path, at least 0.80
for path in resident stream; do
  if [[ $path == resident ]]; then epochs=10; else epochs=2; fi
  run "train-$path" 60 $GPU train --device "$DEVICE" --data-path "$path" --epochs $epochs --verbose --output "$OUT/train-$path"
  acc=$(grep -oE 'test accuracy [0-9.]+' "$LOG" | tail -1 | awk '{print $3}')
  if [[ $path == resident ]]; then
    off=$(awk -v a="${acc:-0}" -v t="$ACC_TARGET" -v d="$ACC_TOLERANCE" 'BEGIN { x = a - t; if (x < 0) x = -x; print (x <= d + 1e-9) ? 0 : 1 }')
    why="test accuracy not within $ACC_TOLERANCE of $ACC_TARGET"
  else
    off=$(awk -v a="${acc:-0}" 'BEGIN { print (a >= 0.80) ? 0 : 1 }'); why="test accuracy below 0.80"
  fi
  verdict "train-$path" "test accuracy ${acc:-?}; $(grep -oE '[0-9.]+ s in all' "$LOG" | tail -1); $(last "epoch +$epochs/$epochs" | sed -E 's/.*\| //'); $(last 'kernel launches' | sed -E 's/ on .*//'); $(last '^graph replays')" "$off" "$why"
done

# ------------------------------------------------------------------------------------------------ performance
run bench 120 env GPU_BENCH_QUICK=1 GPU_BENCH_DEVICES="$BENCH_DEVICE" GPU_BENCH_SHAPES="$BENCH_SHAPES" GPU_BENCH_FAMILIES="$BENCH_FAMILIES" \
  $BENCH --filter '*TrainingStepBenchmarks*' '*GemmBenchmarks*' --exporters json --artifacts "$OUT/bdn"
bench_tables=$(grep -E '^\|' "$LOG")
cases=$(grep -E '^\| *\**(Gemm|TrainingStep)Benchmarks' "$LOG" | grep -cF "$BENCH_DEVICE")
verdict bench "$cases cases (tables below)"

if have "${PYTHON%% *}"; then
  run torch 120 $PYTHON benchmarks/peers/torch_mlp.py --json "$OUT/torch.json"
  if (( RC == 2 )); then row torch "skipped" "$(head -1 "$LOG")"
  else verdict torch "W1 samples/s: eager $(last '^W1 +eager' | awk '{print $4}'), CUDA graph $(last '^W1 +graph' | awk '{print $4}')"; fi
else
  skip torch "no $PYTHON on this machine"
fi

# the blocked family's plans raced per product shape (Gpu.Benchmarks plans): the planner's model against the device
run plans 90 $BENCH plans "$BENCH_DEVICE" "$OUT/plans.json"
verdict plans "$(last 'products raced')"

if helper; then
  run tables 20 "$HELPER_PYTHON" "$HERE/tables.py" compare --md "$OUT/tables.md" --bdn "$OUT/bdn" --bench-log "$OUT/bench.txt" \
    --torch "$OUT/torch.json" --device "$BENCH_DEVICE"
  verdict tables "$(tail -1 "$LOG")"
else
  skip tables "no $HELPER_PYTHON for benchmarks/gpu/tables.py"
fi

# ------------------------------------------------------------------------------------------------ profile
# launches per training step, to choose the profiled window: W1's from train-resident (W1 is train's default), W3's from
# the bench table; 11 when not known
per_step() { awk -v v="${1:-11}" 'BEGIN { r = int(v + 0.5); print (r > 0) ? r : 11 }'; }
lps_w1=$(per_step "$(grep -oE 'kernel launches: [0-9.]+ per training step' "$OUT/train-resident.txt" 2> /dev/null | tail -1 | grep -oE '[0-9.]+')")
lps_w3=11
if helper; then lps_w3=$(per_step "$("$HELPER_PYTHON" "$HERE/tables.py" launches --bench-log "$OUT/bench.txt" --device "$BENCH_DEVICE" --workload W3 2> /dev/null)"); fi

# profile_ncu NAME LIMIT WORKLOAD LAYERS BATCH IMAGES LAUNCHES_PER_STEP: about 20 steps after the first 5, per kernel
profile_ncu() {
  local name=$1 limit=$2 w=$3 layers=$4 batch=$5 images=$6 lps=$7
  if [[ "$DEVICE" != cuda* ]]; then skip "$name" "DEVICE $DEVICE is not CUDA"; return; fi
  if ! have "$NCU"; then skip "$name" "no ncu ($NCU)"; return; fi
  local skip_n=$(( 5 * lps )) count=$(( 20 * lps ))
  rm -f "$OUT/$name.csv"
  run "$name" "$limit" "$NCU" --clock-control none --metrics gpu__time_duration.sum --print-units base \
    --launch-skip "$skip_n" --launch-count "$count" --csv --page raw --log-file "$OUT/$name.csv" \
    $GPU train --device "$DEVICE" --layers "$layers" --batch-size "$batch" --epochs 1 --limit "$images" --verbose --output "$WORK/$name"
  local window="launches $skip_n..$(( skip_n + count - 1 )) (5 + 20 steps of $lps)"
  local seen; seen=$(grep -hoE 'kernel launches: [0-9.]+ per training step' "$LOG" 2> /dev/null | tail -1 | grep -oE '[0-9.]+')
  [[ -n "$seen" && "$(per_step "$seen")" != "$lps" ]] && window="$window; this run: $seen per step"
  if grep -qhE 'ERR_NVGPUCTRPERM' "$LOG" "$OUT/$name.csv" 2> /dev/null; then
    row "$name" "skipped" "no access to the GPU's performance counters here (ERR_NVGPUCTRPERM)"; return
  fi
  local line="raw CSV in $name.csv"
  if helper; then
    line=$("$HELPER_PYTHON" "$HERE/tables.py" ncu --md "$OUT/$name.md" --title "$w: $layers, batch $batch; $window" \
      --per-step "$lps" "$OUT/$name.csv" "$LOG" 2>&1)
    local prc=$?
    if (( RC == 0 && prc != 0 )); then verdict "$name" "$line; $window" 1 "no kernels profiled"; return; fi
  fi
  verdict "$name" "$line; $window"
}
profile_ncu ncu-w1 60 W1 256,128 128 5000 "$lps_w1"
profile_ncu ncu-w3 75 W3 2048,2048 1024 32000 "$lps_w3"

if ! have "$PTXAS"; then skip ptxas "no ptxas ($PTXAS)"
elif ! ls "$OUT"/ptx/*_sm_90_*.ptx > /dev/null 2>&1; then skip ptxas "no sm_90 PTX in $OUT/ptx (the ptx part wrote none)"
elif ! helper; then skip ptxas "no $HELPER_PYTHON for benchmarks/gpu/tables.py"
else
  run ptxas 45 "$HELPER_PYTHON" "$HERE/tables.py" ptxas --ptxas "$PTXAS" --arch sm_90 --md "$OUT/ptxas.md" "$OUT/ptx"
  verdict ptxas "$(last 'PTX files assembled')"
fi

if [[ "$DEVICE" != cuda* ]]; then skip memcheck "DEVICE $DEVICE is not CUDA"; skip racecheck "DEVICE $DEVICE is not CUDA"
elif ! have "$SANITIZER"; then skip memcheck "no compute-sanitizer ($SANITIZER)"; skip racecheck "no compute-sanitizer ($SANITIZER)"
else
  run memcheck 90 "$SANITIZER" --tool memcheck --print-limit 20 $GPU check --device "$DEVICE" --family blocked
  errors=$(count_in 'ERROR SUMMARY: [0-9]+' "$LOG")
  verdict memcheck "${errors:-?} errors; $(last 'checks passed')" "$(( ${errors:-0} > 0 ))" "memcheck errors"
  run racecheck 75 "$SANITIZER" --tool racecheck --print-limit 20 \
    $GPU train --device "$DEVICE" --epochs 1 --limit 1000 --verbose --output "$WORK/racecheck"
  hazards=$(last 'RACECHECK SUMMARY' | sed -E 's/^=+ //')
  errors=$(count_in 'ERROR SUMMARY: [0-9]+' "$LOG")
  verdict racecheck "${errors:-?} errors; ${hazards:-no RACECHECK SUMMARY line}; $(last 'kernel launches' | sed -E 's/ on .*//')" \
    "$(( ${errors:-0} > 0 ))" "racecheck errors"
fi

{
  echo "# First light: $(date -u '+%Y-%m-%d %H:%M UTC'), device $DEVICE, $(( SECONDS - start )) s of a $BUDGET s budget"
  echo
  echo "| part | status | seconds | limit | result |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "## The engine beside cuBLAS and PyTorch"
  echo
  if [[ -s "$OUT/tables.md" ]]; then cat "$OUT/tables.md"; else echo "(not made: see the tables row)"; fi
  echo
  echo "## The blocked family's plans raced (the planner's model against the fastest plan measured)"
  echo
  if [[ -s "$OUT/plans.txt" ]]; then grep -E '^\|' "$OUT/plans.txt"; else echo "(not run: see the plans row)"; fi
  echo
  echo "## GPU time per kernel (Nsight Compute, gpu__time_duration.sum, clocks not locked)"
  echo
  for w in ncu-w1 ncu-w3; do
    if [[ -s "$OUT/$w.md" ]]; then cat "$OUT/$w.md"; else echo "$w: (not made: see its row)"; fi
    echo
  done
  echo "## Registers, spills and shared memory per kernel (ptxas -v, sm_90)"
  echo
  if [[ -s "$OUT/ptxas.md" ]]; then cat "$OUT/ptxas.md"; else echo "(not made: see the ptxas row)"; fi
  echo
  echo "## Sanitizers"
  echo
  echo "- memcheck (gpu check): $(summary_of "$OUT/memcheck.txt" || true)"
  echo "- racecheck (a few training steps): $(summary_of "$OUT/racecheck.txt" || true)"
  echo
  echo "## BenchmarkDotNet ($BENCH_DEVICE; the GEMMs with GPU_BENCH_QUICK=1)"
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
