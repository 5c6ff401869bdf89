#!/usr/bin/env bash
# Decode tokens/s and memory at 4K/32K/128K positions for the 2B-shape and 700M-shape with f16/int8/int4 caches
# (docs/long-context.md): one `tritter bench long` process per cell, so that each peak RSS is that cell's own, and
# the 1-minute load average read just before each cell appended to its row (a loaded machine slows the decode).
# Usage: bench/long_context.sh [build/tritter] [threads] [tg] [shapes] [caches] [contexts] > table.md
set -u
T="${1:-build/tritter}"
THREADS="${2:-2}"
TG="${3:-4}"
SHAPES="${4:-700M-shape 2B-shape}"
CACHES="${5:-int4 int8 f16}"
CONTEXTS="${6:-4096 32768 131072}"
lscpu | sed -n 's/^Model name: *//p' | sed 's/^/CPU: /'
echo "| shape | cache | context | threads | tokens/s | ms/token | cache memory | RSS | peak RSS | load |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for size in $SHAPES; do
  for kv in $CACHES; do
    for n in $CONTEXTS; do
      load=$(cut -d' ' -f1 /proc/loadavg)
      "$T" -t "$THREADS" bench long --size "$size" --kv-cache "$kv" --context "$n" --tg "$TG" --no-header 2>&1 |
        sed "s/|\$/| $load |/"
    done
  done
done
