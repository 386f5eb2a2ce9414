#!/usr/bin/env bash
# Seeded runs whose model.npy and history.csv (its loss and accuracy columns) must stay bit-identical across a refactor:
# run it before and after (dotnet build -c Release first) and diff the two summary.txt files. Usage: bit-identity.sh LABEL
set -u
cd "$(dirname "$0")/../.."
label=$1; out=${BITIDENT_OUT:-out/bit-identity}/$label; rm -rf $out; mkdir -p $out
G="dotnet src/Gpu.Cli/bin/Release/net10.0/gpu.dll"
runs=(
 "w1|--limit 2000 --epochs 3"
 "adam-dropout-shift-tanh|--limit 2000 --epochs 2 --optimizer adam --lr 0.002 --dropout 0.2 --shift 2 --activation tanh"
 "nesterov-sigmoid-sse-step-stream|--limit 2000 --epochs 2 --optimizer nesterov --loss sigmoid-sse --schedule step --step-every 1 --data-path stream --activation sigmoid"
 "adamw-patience-glorot-leaky|--limit 2000 --epochs 3 --optimizer adamw --lr 0.002 --patience 1 --init glorot --activation leaky-relu"
 "mnist-warmup|--data data/mnist-10k --limit 3000 --epochs 2 --warmup-epochs 0.5 --batch-size 100"
)
for dev in cpu opencl; do
 for r in "${runs[@]}"; do
  name=${r%%|*}; args=${r#*|}
  $G train --device $dev $args --output $out/$dev-$name > $out/$dev-$name.log 2>&1 || echo "FAIL $dev $name"
  echo "$dev $name $(md5sum < $out/$dev-$name/model.npy | cut -c1-12) $(cut -d, -f1-5 $out/$dev-$name/history.csv | md5sum | cut -c1-12) $(grep -o 'test accuracy [0-9.]*' $out/$dev-$name.log | tail -1)"
 done
done | tee $out/summary.txt
