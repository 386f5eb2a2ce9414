#!/usr/bin/env bash
# Builds what a GPU machine needs into publish/ (git-ignored), self-contained, so the machine needs no .NET SDK:
# publish/bench/Gpu.Benchmarks, one file with the .NET runtime, the BenchmarkDotNet suites (in-process toolchain) and the
# gpu program (`Gpu.Benchmarks gpu VERB ...`), native libraries inside (extracted on first start). About 52 MB, under the
# 64 MiB a device session may carry. With --cli, also publish/cli/gpu, the program alone (45 MB more).
set -euo pipefail
cd "$(dirname "$0")/../.."
opts=(-c Release -r linux-x64 --self-contained -p:PublishSingleFile=true -p:EnableCompressionInSingleFile=true
      -p:IncludeNativeLibrariesForSelfExtract=true -p:DebugType=none)
rm -rf publish/bench
dotnet publish benchmarks/Gpu.Benchmarks "${opts[@]}" -o publish/bench
rm -rf publish/bench/amd64   # Windows-only tracing DLLs of BenchmarkDotNet's diagnosers
if [[ "${1:-}" == "--cli" ]]; then rm -rf publish/cli; dotnet publish src/Gpu.Cli "${opts[@]}" -o publish/cli; fi
du -sh publish/*
