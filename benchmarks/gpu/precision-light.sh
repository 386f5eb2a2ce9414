#!/usr/bin/env bash
# Issue 20's measurements on a CUDA machine (tensor cores: --precision tf32|bf16), in one command of under 9 minutes, from
# the kit (benchmarks/gpu/publish.sh: publish/kit/Gpu.Benchmarks.xz, unpacked into a temporary folder; no .NET SDK, no
# network), run the same way as first-light.sh. From the repository root (it cds there itself); see
# benchmarks/gpu/README.md, section 6. In this order, each part with a time limit inside one overall budget:
#   kit          the program unpacked from publish/kit/Gpu.Benchmarks.xz (xz, or python3's lzma)
#   machine      nvidia-smi (information only; the GPU's name picks the peak the tables divide by)
#   devices      gpu devices: the CUDA device must be usable
#   ptx          gpu check --ptx: every kernel compiled to PTX and checked (the tensor-core products: their mma.sync, no
#                local memory beyond the inline-PTX operands, no approximate instruction); the PTX files holding the TF32
#                mma (m16n8k8) and the bf16 mma (m16n8k16) counted; no TF32 mma anywhere fails
#   check-tf32   gpu check --device cuda --precision tf32: the products of every family computing tf32 against the emulated
#                reference (inputs rounded as the hardware rounds them), and every other kernel
#   check-bf16   the same in bf16
#   gemm         BenchmarkDotNet GemmBenchmarks (GPU_BENCH_QUICK=1), the families GEMM_FAMILIES (tensor-tf32, tensor-bf16),
#                each in its own precision, at 1024^3 and 4096^3
#   steps-tf32   BenchmarkDotNet TrainingStepBenchmarks, W1 and W3, GPU_BENCH_PRECISION=tf32
#   steps-bf16   the same, GPU_BENCH_PRECISION=bf16
#   torch-fp32   benchmarks/peers/torch_mlp.py --precision fp32 on the same GPU (W1, W3, eager and CUDA graph; torch.matmul)
#   torch-tf32   the same with TF32 matmul allowed
#   torch-bf16   the same with bf16 GEMMs and the steps under bf16 autocast
#   train-tf32   the default gpu train (W1, 10 epochs, resident data) in tf32: test accuracy within ACC_TOLERANCE (0.005) of
#                fp32's ACC_TARGET (0.8903); its time in all and the line saying where the products ran (tensor cores or emulated)
#   train-bf16   the same in bf16
#   parity       tests/parity/precision_parity.py: gpu train in tf32 and bf16 (one case per optimizer, 10 full-batch steps
#                from one start) against PyTorch in float64 rounding the same product inputs: TorchParityTests' precision
#                check, through the command line, on this device
#   tables       tables.py precision: the engine beside PyTorch in the same precision, with issue 20's targets met or not
#                (GEMM 4096^3 TF32 >= 150 TFLOP/s, goal 200; bf16 >= 250, goal 400; W3 tf32 <= 0.5 ms/step, goal PyTorch's
#                TF32 graph; W1 tf32 >= PyTorch's TF32 graph; each accuracy within its tolerance) and the fraction of peak
#   ncu-w3-tf32  Nsight Compute: GPU time per kernel over 20 W3 training steps in tf32 (the first 5 skipped)
# Writes $OUT/results.txt (every command and its whole output), $OUT/<part>.txt, $OUT/summary.md (one row per part with its
# time and limit, then the tables) and prints the summary. Exit code 1 if any part failed, timed out or was not reached (a
# check failing, an accuracy out of its tolerance); a part whose tool is missing (PyTorch, ncu, python3) is "skipped". A
# performance target not met is a figure in the targets table, not a failure of the run.
#
# Settings (environment): OUT (out-precision), DEVICE (cuda), BENCH_DEVICE (cuda:0), KIT, BENCH (a program instead of the
# kit's), GPU ($BENCH gpu), PYTHON (python3, with PyTorch), HELPER_PYTHON (python3, for tables.py and unpacking without
# xz), NCU (ncu: on the PATH, else /usr/local/cuda/bin), BUDGET (480 s), BENCH_SHAPES (1024x1024x1024,4096x4096x4096),
# GEMM_FAMILIES (tensor-tf32,tensor-bf16), ACC_TARGET (0.8903), ACC_TOLERANCE (0.005), TORCH_WORKLOADS (W1,W3).
set -uo pipefail
cd "$(dirname "$0")/../.."
HERE=benchmarks/gpu
OUT="${OUT:-out-precision}"
DEVICE="${DEVICE:-cuda}"
BENCH_DEVICE="${BENCH_DEVICE:-cuda:0}"
KIT="${KIT:-publish/kit/Gpu.Benchmarks.xz}"
PYTHON="${PYTHON:-python3}"
HELPER_PYTHON="${HELPER_PYTHON:-python3}"
BUDGET="${BUDGET:-480}"
BENCH_SHAPES="${BENCH_SHAPES:-1024x1024x1024,4096x4096x4096}"
GEMM_FAMILIES="${GEMM_FAMILIES:-tensor-tf32,tensor-bf16}"
TORCH_WORKLOADS="${TORCH_WORKLOADS:-W1,W3}"
ACC_TARGET="${ACC_TARGET:-0.8903}" ACC_TOLERANCE="${ACC_TOLERANCE:-0.005}"
NCU="${NCU:-$(command -v ncu 2> /dev/null || echo /usr/local/cuda/bin/ncu)}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 PYTHONUNBUFFERED=1

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/precision-light.XXXXXX")   # the unpacked program, the profile's training run
trap 'rm -rf "$WORK"' EXIT
export DOTNET_BUNDLE_EXTRACT_BASE_DIR="${DOTNET_BUNDLE_EXTRACT_BASE_DIR:-$WORK/bundle}"
source "$(dirname "${BASH_SOURCE[0]}")/parts.sh"   # RESULTS, SUMMARY, start, failed, rows; RC, LOG, TOOK, LIMIT; row, run, verdict, skip, last, have, kit_part
helper() { have "$HELPER_PYTHON"; }
# bdn_values TYPE COLUMN [KEY VALUE]: the COLUMN cells of BenchmarkDotNet's table in $LOG, one a line, of the rows on
# BENCH_DEVICE of TYPE (a table of one suite has no Type column: every row is of it) and KEY = VALUE (Workload W1); bold
# cells and extra columns are read as any other
bdn_values() {
  awk -F'|' -v t="$1" -v col_name="$2" -v key="${3:-}" -v val="${4:-}" -v d="$BENCH_DEVICE" '
    !/^\|/ { col = 0; next }
    { for (i = 2; i < NF; i++) { c[i] = $i; gsub(/^[ *]+|[ *]+$/, "", c[i]) } }
    !col { ty = dev = k = 0; for (i = 2; i < NF; i++) { if (c[i] == col_name) col = i; if (c[i] == "Type") ty = i; if (c[i] == "Device") dev = i; if (c[i] == key) k = i }; next }
    c[col] ~ /^-+$/ { next }
    dev && c[dev] == d && (!ty || c[ty] == t) && (key == "" || (k && c[k] == val)) { print c[col] }' "$LOG"
}
bench_figure() { local v; v=$(bdn_values TrainingStepBenchmarks samples/s Workload "$1" | grep -E '^[0-9]' | tail -1); echo "${v:-?}"; }
precision_line() { grep -hE '^precision (tf32|bf16):' "$LOG" | tail -1 | sed -E 's/: each product input.*//'; }

# ------------------------------------------------------------------------------------------------ the machine
kit_part   # BENCH, GPU

run machine 15 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
gpu_name=""
if (( RC == 0 )); then gpu_name=$(head -1 "$LOG" | cut -d, -f1); row machine ok "$(head -1 "$LOG")"; else row machine "no nvidia-smi" "-"; fi

# ------------------------------------------------------------------------------------------------ correctness
run devices 30 $GPU devices
usable=0
if [[ "$DEVICE" == cuda* ]]; then grep -qE '^cuda:[0-9]+ +CUDA +yes' "$LOG" || usable=1; fi
verdict devices "$(last '^cuda')" $usable "no usable CUDA device"

run ptx 45 $GPU check --ptx --ptx-out "$OUT/ptx"
tf32_mma=$(grep -lE 'mma\.sync\.aligned\.m16n8k8\.row\.col\.f32\.tf32\.tf32\.f32' "$OUT"/ptx/*.ptx 2> /dev/null | wc -l)
bf16_mma=$(grep -lE 'mma\.sync\.aligned\.m16n8k16\.row\.col\.f32\.bf16\.bf16\.f32' "$OUT"/ptx/*.ptx 2> /dev/null | wc -l)
verdict ptx "$(last 'compilations passed' | sed -E 's/; PTX written.*//'); TF32 mma (m16n8k8) in $tf32_mma PTX files, bf16 mma (m16n8k16) in $bf16_mma" \
  "$(( tf32_mma == 0 ))" "no TF32 mma.sync in any PTX file"

for p in tf32 bf16; do
  run "check-$p" 60 $GPU check --device "$DEVICE" --precision "$p"
  verdict "check-$p" "$(last 'checks passed'); $(grep -oE 'checking every kernel family it runs \([^)]*\)' "$LOG" | tail -1 | sed -E 's/checking every kernel family it runs/families/')"
done

# ------------------------------------------------------------------------------------------------ performance
run gemm 90 env GPU_BENCH_QUICK=1 GPU_BENCH_DEVICES="$BENCH_DEVICE" GPU_BENCH_SHAPES="$BENCH_SHAPES" GPU_BENCH_FAMILIES="$GEMM_FAMILIES" \
  $BENCH --filter '*GemmBenchmarks*' --exporters json --artifacts "$OUT/bdn-gemm"
cases=$(bdn_values GemmBenchmarks GFLOP/s | grep -cE '^[0-9]')
families=$(bdn_values GemmBenchmarks Family | sort -u | paste -sd ',' -)
missing=$(tr ',' '\n' <<< "$GEMM_FAMILIES" | grep -vxF -f <(tr ',' '\n' <<< "${families:-none}") | paste -sd ',' -)
verdict gemm "$cases cases with figures (families: ${families:-none}${missing:+; not in the tables: $missing})" \
  "$(( cases == 0 ))" "no GEMM figures"

for p in tf32 bf16; do
  run "steps-$p" 60 env GPU_BENCH_QUICK=1 GPU_BENCH_DEVICES="$BENCH_DEVICE" GPU_BENCH_WORKLOADS=W1,W3 GPU_BENCH_PRECISION="$p" \
    $BENCH --filter '*TrainingStepBenchmarks*' --exporters json --artifacts "$OUT/bdn-steps-$p"
  verdict "steps-$p" "samples/s: W1 $(bench_figure W1), W3 $(bench_figure W3)"
done

for p in fp32 tf32 bf16; do
  if have "${PYTHON%% *}"; then
    run "torch-$p" 60 $PYTHON benchmarks/peers/torch_mlp.py --precision "$p" --workloads "$TORCH_WORKLOADS" --json "$OUT/torch-$p.json"
    if (( RC == 2 )); then row "torch-$p" "skipped" "$(head -1 "$LOG")"
    else
      verdict "torch-$p" "graph samples/s: W1 $(last '^W1 +graph' | awk '{print $4}'), W3 $(last '^W3 +graph' | awk '{print $4}'); 4096^3 $(last '^4096x4096x4096' | awk '{print $3}') GFLOP/s"
    fi
  else
    skip "torch-$p" "no $PYTHON on this machine"
  fi
done

# ------------------------------------------------------------------------------------------------ accuracy
for p in tf32 bf16; do
  run "train-$p" 60 $GPU train --device "$DEVICE" --data-path resident --epochs 10 --precision "$p" --verbose --output "$OUT/train-$p"
  acc=$(grep -oE 'test accuracy [0-9.]+' "$LOG" | tail -1 | awk '{print $3}')
  off=$(awk -v a="${acc:-0}" -v t="$ACC_TARGET" -v d="$ACC_TOLERANCE" 'BEGIN { x = a - t; if (x < 0) x = -x; print (x <= d + 1e-9) ? 0 : 1 }')
  verdict "train-$p" "test accuracy ${acc:-?} (fp32: $ACC_TARGET); $(grep -oE '[0-9.]+ s in all' "$LOG" | tail -1); $(precision_line)" \
    "$off" "test accuracy not within $ACC_TOLERANCE of $ACC_TARGET"
done

# parity: the engine's tf32 and bf16 steps on this device against PyTorch rounding the same products' inputs
if have "${PYTHON%% *}"; then
  run parity 90 $PYTHON tests/parity/precision_parity.py --gpu "$GPU" --device "$DEVICE" --work "$WORK/parity"
  if (( RC == 2 )); then row parity "skipped" "$(head -1 "$LOG")"
  else verdict parity "$(last '^precision parity:')"; fi
else
  skip parity "no $PYTHON on this machine"
fi

# ------------------------------------------------------------------------------------------------ tables
if helper; then
  run tables 20 "$HELPER_PYTHON" "$HERE/tables.py" precision --md "$OUT/precision.md" --device "$BENCH_DEVICE" --gpu "${gpu_name:-?}" \
    --gemm-bdn "$OUT/bdn-gemm" --steps "tf32=$OUT/steps-tf32.txt" --steps "bf16=$OUT/steps-bf16.txt" \
    --torch "fp32=$OUT/torch-fp32.json" --torch "tf32=$OUT/torch-tf32.json" --torch "bf16=$OUT/torch-bf16.json" \
    --train "tf32=$OUT/train-tf32.txt" --train "bf16=$OUT/train-bf16.txt" --acc-target "$ACC_TARGET" --acc-tolerance "$ACC_TOLERANCE"
  verdict tables "$(tail -1 "$LOG")"
else
  skip tables "no $HELPER_PYTHON for benchmarks/gpu/tables.py"
fi

# ------------------------------------------------------------------------------------------------ profile (short)
# ncu-w3-tf32: about 20 W3 steps in tf32 after the first 5, per kernel; the launches per step from the steps-tf32 table (11 when not known)
lps=11
if helper; then
  lps=$("$HELPER_PYTHON" "$HERE/tables.py" launches --bench-log "$OUT/steps-tf32.txt" --device "$BENCH_DEVICE" --workload W3 2> /dev/null)
  lps=$(awk -v v="${lps:-11}" 'BEGIN { r = int(v + 0.5); print (r > 0) ? r : 11 }')
fi
if [[ "$DEVICE" != cuda* ]]; then skip ncu-w3-tf32 "DEVICE $DEVICE is not CUDA"
elif ! have "$NCU"; then skip ncu-w3-tf32 "no ncu ($NCU)"
else
  skip_n=$(( 5 * lps )) count=$(( 20 * lps ))
  rm -f "$OUT/ncu-w3-tf32.csv"
  run ncu-w3-tf32 60 "$NCU" --clock-control none --metrics gpu__time_duration.sum --print-units base \
    --launch-skip "$skip_n" --launch-count "$count" --csv --page raw --log-file "$OUT/ncu-w3-tf32.csv" \
    $GPU train --device "$DEVICE" --layers 2048,2048 --batch-size 1024 --epochs 1 --limit 32000 --precision tf32 --verbose --output "$WORK/ncu-w3-tf32"
  window="launches $skip_n..$(( skip_n + count - 1 )) (5 + 20 steps of $lps)"
  if grep -qhE 'ERR_NVGPUCTRPERM' "$LOG" "$OUT/ncu-w3-tf32.csv" 2> /dev/null; then
    row ncu-w3-tf32 "skipped" "no access to the GPU's performance counters here (ERR_NVGPUCTRPERM)"
  elif helper; then
    line=$("$HELPER_PYTHON" "$HERE/tables.py" ncu --md "$OUT/ncu-w3-tf32.md" --title "W3 in tf32: 2048,2048, batch 1024; $window" \
      --per-step "$lps" "$OUT/ncu-w3-tf32.csv" "$LOG" 2>&1)
    prc=$?
    if (( RC == 0 && prc != 0 )); then verdict ncu-w3-tf32 "$line; $window" 1 "no kernels profiled"; else verdict ncu-w3-tf32 "$line; $window"; fi
  else
    verdict ncu-w3-tf32 "raw CSV in ncu-w3-tf32.csv; $window"
  fi
fi

{
  echo "# Precision light (issue 20): $(date -u '+%Y-%m-%d %H:%M UTC'), device $DEVICE${gpu_name:+ ($gpu_name)}, $(( SECONDS - start )) s of a $BUDGET s budget"
  echo
  echo "| part | status | seconds | limit | result |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "## The engine beside PyTorch, same precision, and issue 20's targets"
  echo
  if [[ -s "$OUT/precision.md" ]]; then cat "$OUT/precision.md"; else echo "(not made: see the tables row)"; fi
  echo
  echo "## GPU time per kernel, W3 in tf32 (Nsight Compute, gpu__time_duration.sum, clocks not locked)"
  echo
  if [[ -s "$OUT/ncu-w3-tf32.md" ]]; then cat "$OUT/ncu-w3-tf32.md"; else echo "(not made: see the ncu-w3-tf32 row)"; fi
  echo
  for p in gemm steps-tf32 steps-bf16; do
    echo "## BenchmarkDotNet: $p ($BENCH_DEVICE, GPU_BENCH_QUICK=1)"
    echo
    grep -E '^\|' "$OUT/$p.txt" 2> /dev/null || echo "(none)"
    echo
  done
  for p in fp32 tf32 bf16; do
    echo "## PyTorch, $p"
    echo
    if [[ -s "$OUT/torch-$p.txt" ]]; then sed -n '1,30p' "$OUT/torch-$p.txt"; else echo "(not run)"; fi
    echo
  done
  if (( failed )); then echo "**FAILED**: see the rows above and $RESULTS"; else echo "all parts passed"; fi
} > "$SUMMARY"
cat "$SUMMARY"
exit $failed
