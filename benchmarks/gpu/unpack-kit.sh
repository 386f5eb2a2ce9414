#!/usr/bin/env bash
# unpack-kit.sh ARCHIVE DIR: the kit's program (publish/kit/Gpu.Benchmarks.xz, written by publish.sh) decompressed to
# DIR/Gpu.Benchmarks, made executable. With xz (XZ names another), or python3's lzma module where there is no xz
# (HELPER_PYTHON names another python). Prints one line: what was unpacked, the sizes, how, and the kit's build line
# (publish/kit/kit.txt) when there is one. Exit code 3 when there is no archive.
set -euo pipefail
archive=$1 dir=$2
if [[ ! -f "$archive" ]]; then
  echo "no kit at $archive: run bash benchmarks/gpu/publish.sh on a machine with the .NET SDK and carry publish/kit"
  exit 3
fi
mkdir -p "$dir"
target="$dir/Gpu.Benchmarks"
xz="${XZ:-xz}"
if command -v "$xz" > /dev/null; then
  "$xz" -dc "$archive" > "$target"; how="$xz"
else
  "${HELPER_PYTHON:-python3}" -c 'import lzma, shutil, sys
with lzma.open(sys.argv[1]) as src, open(sys.argv[2], "wb") as dst: shutil.copyfileobj(src, dst, 1 << 20)' "$archive" "$target"
  how="python3 lzma (no $xz here)"
fi
chmod +x "$target"
mb() { awk -v b="$(wc -c < "$1")" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
built=""
info="$(dirname "$archive")/kit.txt"
[[ -f "$info" ]] && built="; $(head -1 "$info")"
echo "unpacked $archive ($(mb "$archive") -> $(mb "$target")) with $how$built"
