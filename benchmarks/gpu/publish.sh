#!/usr/bin/env bash
# Builds everything the GPU machine needs into publish/ (git-ignored), self-contained, so the
# machine needs no .NET SDK: the CLI (publish/cli/gpu) and the benchmark suites
# (publish/bench/Gpu.Benchmarks, BenchmarkDotNet in-process toolchain). About 40 MB each.
set -euo pipefail
cd "$(dirname "$0")/../.."
opts=(-c Release -r linux-x64 --self-contained -p:PublishSingleFile=true -p:EnableCompressionInSingleFile=true)
dotnet publish src/Gpu.Cli "${opts[@]}" -o publish/cli
dotnet publish benchmarks/Gpu.Benchmarks "${opts[@]}" -o publish/bench
du -sh publish/cli publish/bench
