# The budgeted parts of the GPU kit's scripts (first-light.sh, devices-light.sh), sourced by each once it has set BUDGET
# and OUT: the results file (emptied) and the summary beside it, the clock the budget counts from, the summary's rows.

RESULTS="$OUT/results.txt"
SUMMARY="$OUT/summary.md"
: > "$RESULTS"
start=$SECONDS
failed=0
rows=()

RC=0; LOG=""; TOOK=0; LIMIT=0

# row NAME STATUS RESULT: one line of the summary table (seconds taken and the limit from the last run)
row() { rows+=("| $1 | $2 | $TOOK | $LIMIT | ${3//|/\\|} |"); }

# run NAME LIMIT CMD...: CMD with at most LIMIT seconds (fewer when the budget runs short), its output in $OUT/NAME.txt
# and appended to results.txt; sets RC (124: timed out; 125: not run, out of time), LOG, TOOK and LIMIT.
run() {
  local name=$1 limit=$2; shift 2
  local left=$(( BUDGET - (SECONDS - start) ))
  LOG="$OUT/$name.txt"; TOOK=0; LIMIT=$limit
  if (( left < 5 )); then
    RC=125; : > "$LOG"
    echo "=== $name: not run, the ${BUDGET} s budget is spent" >> "$RESULTS"
    return
  fi
  (( limit > left )) && limit=$left
  LIMIT=$limit
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

# skip NAME WHY: a part that cannot run here (a tool missing); NOT RUN instead when the budget is spent anyway
skip() {
  TOOK=0; LIMIT="-"
  if (( BUDGET - (SECONDS - start) < 5 )); then row "$1" "NOT RUN (budget spent)" "-"; failed=1
  else row "$1" "skipped" "$2"; echo "=== $1: skipped, $2" >> "$RESULTS"; fi
}

last() { grep -E "$1" "$LOG" | tail -1; }
have() { [[ -n "$1" ]] && command -v "$1" > /dev/null; }

# kit_part: the kit part, the program unpacked from $KIT into $WORK/kit (unless BENCH names one); sets BENCH and GPU ($BENCH gpu
# unless GPU is given)
kit_part() {
  if [[ -z "${BENCH:-}" ]]; then
    BENCH="$WORK/kit/Gpu.Benchmarks"
    run kit 30 bash "$HERE/unpack-kit.sh" "$KIT" "$WORK/kit"
    verdict kit "$(last '^(unpacked|no kit)')"
  else
    skip kit "BENCH given: $BENCH"
  fi
  GPU="${GPU:-$BENCH gpu}"
}
