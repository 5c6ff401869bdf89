#!/usr/bin/env bash
# Decode tokens/s and memory at 4K/32K/128K positions for the 2B-shape and 700M-shape with f16/int8/int4 caches
# (docs/long-context.md): one `tritter bench long` process per shape (the random model is built once), one row per
# (cache, context) cell. Usage: bench/long_context.sh [build/tritter] [threads] [tg] > table.md
set -u
T="${1:-build/tritter}"
THREADS="${2:-2}"
TG="${3:-4}"
lscpu | sed -n 's/^Model name: *//p' | sed 's/^/CPU: /'
echo "| shape | cache | context | threads | tokens/s | ms/token | cache memory | RSS |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for size in 2B-shape 700M-shape; do
  "$T" -t "$THREADS" bench long --size "$size" --kv-cache f16,int8,int4 --context 4096,32768,131072 --tg "$TG" 2>&1
done
