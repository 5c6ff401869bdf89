#!/usr/bin/env bash
# Decode tokens/s and memory at 4K/32K/128K positions for the 700M-shape and 2B-shape with f16/int8/int4 caches
# (docs/long-context.md): one `tritter bench long` process per cell, so each peak-memory figure is its own.
# Usage: bench/long_context.sh [build/tritter] [threads] > table.md
set -u
T="${1:-build/tritter}"
THREADS="${2:-2}"
echo "| shape | cache | context | threads | tokens/s | ms/token | cache memory | RSS | peak RSS |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
for size in 700M-shape 2B-shape; do
  for kv in f16 int8 int4; do
    for ctx in 4096 32768 131072; do
      tg=16
      [ "$ctx" -ge 32768 ] && tg=6
      [ "$ctx" -ge 131072 ] && tg=4
      if ! out=$("$T" -t "$THREADS" bench long --size "$size" --kv-cache "$kv" --context "$ctx" --tg "$tg" 2>&1); then
        echo "| $size | $kv | $ctx | $THREADS | not run: ${out#error: } | | | | |"
      else
        echo "$out"
      fi
    done
  done
done
