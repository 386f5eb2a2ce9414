#!/usr/bin/env bash
# Builds the kit a GPU machine runs (benchmarks/gpu/README.md), so that machine needs no .NET SDK and no network:
#   publish/kit/Gpu.Benchmarks.xz   THE path to carry: one self-contained file (the .NET runtime, the BenchmarkDotNet suites
#                                   with the in-process toolchain, and the gpu program: `Gpu.Benchmarks gpu VERB ...`),
#                                   IL-trimmed (framework only, benchmarks/gpu/kit.targets), stored uncompressed, then
#                                   compressed with xz -9e: about 17 MB
#   publish/kit/kit.txt             what it was built from (commit, date, sizes); first-light.sh prints its first line
#   publish/bench/Gpu.Benchmarks    the same file uncompressed (67 MB; not carried: with the tracked tree it is over 64 MiB)
#   publish/trim-warnings.txt       the trimmer's warnings (not errors here: the kit is proven by running it, see below)
# Then it proves the kit (benchmarks/gpu/verify-kit.sh: unpacked as a GPU machine unpacks it, it runs gpu devices,
# check --ptx, check and a short train on this machine's OpenCL device (or the CPU accelerator), and a BenchmarkDotNet
# GEMM and training-step case), and checks that the kit plus the tracked tree fit the 64 MiB a device session carries.
# Options: --no-verify (skip the proof), --cli (also publish/cli/gpu, the program alone, untrimmed; not part of the kit).
# About 2-5 minutes on 2 cores (4.5 measured on a busy shared machine): publish, xz -9e (40-90 s), the proof (30 s).
set -euo pipefail
cd "$(dirname "$0")/../.."
verify=1 cli=0
for a in "$@"; do
  case "$a" in
    --no-verify) verify=0 ;;
    --cli) cli=1 ;;
    *) echo "usage: bash benchmarks/gpu/publish.sh [--no-verify] [--cli]"; exit 2 ;;
  esac
done
opts=(-c Release -r linux-x64 --self-contained -p:PublishSingleFile=true -p:IncludeNativeLibrariesForSelfExtract=true
      -p:DebugType=none)
# The kit: uncompressed inside (xz compresses the whole file far better than the runtime's per-assembly compression),
# invariant globalization (as the gpu program itself: no libicu needed on the GPU machine), the framework trimmed.
# Trimming globally turns on the trim analyzer, whose warnings this repository's TreatWarningsAsErrors would make errors;
# the app's assemblies are kept whole, so those warnings do not apply, and the trimmer's are kept in trim-warnings.txt.
kit=(-p:EnableCompressionInSingleFile=false -p:InvariantGlobalization=true -p:PublishTrimmed=true -p:TrimMode=partial
     "-p:CustomAfterMicrosoftCommonTargets=$PWD/benchmarks/gpu/kit.targets" -p:EnableTrimAnalyzer=false
     -p:TreatWarningsAsErrors=false)
rm -rf publish/bench publish/kit
mkdir -p publish/kit
dotnet publish benchmarks/Gpu.Benchmarks "${opts[@]}" "${kit[@]}" -o publish/bench > publish/publish.log 2>&1 \
  || { tail -30 publish/publish.log; echo "publish failed: publish/publish.log"; exit 1; }
rm -rf publish/bench/amd64   # Windows-only tracing DLLs of BenchmarkDotNet's diagnosers
grep -E 'warning IL[0-9]+' publish/publish.log | sed -E 's/ \[[^]]*\]$//' | sort -u > publish/trim-warnings.txt || true
echo "publish: publish/bench/Gpu.Benchmarks, $(wc -c < publish/bench/Gpu.Benchmarks) bytes; trimmer: $(wc -l < publish/trim-warnings.txt) warnings (publish/trim-warnings.txt)"

xz -9e -T1 -c publish/bench/Gpu.Benchmarks > publish/kit/Gpu.Benchmarks.xz
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]] && commit="$commit+changes"
{
  echo "kit built from $commit on $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "Gpu.Benchmarks: $(wc -c < publish/bench/Gpu.Benchmarks) bytes (self-contained single file, uncompressed inside, framework IL-trimmed, invariant globalization)"
  echo "Gpu.Benchmarks.xz: $(wc -c < publish/kit/Gpu.Benchmarks.xz) bytes (xz -9e)"
  echo "unpack: bash benchmarks/gpu/unpack-kit.sh publish/kit/Gpu.Benchmarks.xz DIR (first-light.sh does)"
} > publish/kit/kit.txt
cat publish/kit/kit.txt

# The carry limit: every tracked file (data/ included) plus publish/kit
tracked=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
carried=$(du -cb publish/kit | tail -1 | cut -f1)
limit=$(( 64 * 1024 * 1024 ))
echo "carry: tracked tree $tracked + publish/kit $carried = $(( tracked + carried )) bytes of $limit ($(( (limit - tracked - carried) / 1024 / 1024 )) MiB to spare)"
(( tracked + carried < limit )) || { echo "publish/kit plus the tracked tree exceed 64 MiB: a device session cannot carry them"; exit 1; }

if (( cli )); then
  rm -rf publish/cli
  dotnet publish src/Gpu.Cli "${opts[@]}" -p:EnableCompressionInSingleFile=true -o publish/cli
fi
if (( verify )); then bash benchmarks/gpu/verify-kit.sh publish/kit/Gpu.Benchmarks.xz; fi
