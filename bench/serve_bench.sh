#!/usr/bin/env bash
# The server under load (not a test): aggregate generated tokens/s and request latency p50/p99 at 1, 4, 16 and 64
# concurrent clients, with wrk on loopback, bounded in time. Every request asks for MAX_TOKENS tokens
# (ignore_eos, greedy), so tokens/s = requests/s × MAX_TOKENS; "sampled tok/s" counts the tokens the server
# generated during the level (from /metrics), which includes requests still running when it ends.
#   bench/serve_bench.sh [SIZE=700M-shape] [SECONDS=20] [MAX_TOKENS=32] [CLIENTS="1 4 16 64"]
# Environment: TRITTER (the CLI, default build/tritter), THREADS (default: all cores), PARALLEL (slots, default
# the largest client count), CTX_PER_SLOT (default 256), KV (default f32), MODEL (a packed file to reuse).
set -euo pipefail
size="${1:-700M-shape}" secs="${2:-20}" max_tokens="${3:-32}" clients="${4:-1 4 16 64}"
tritter="${TRITTER:-build/tritter}"
command -v wrk >/dev/null || { echo "serve_bench: wrk is not installed (apt-get install wrk)"; exit 1; }
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
model="${MODEL:-$work/$size.tpk}"
[ -f "$model" ] || "$tritter" init --size "$size" --packed --head i8 -o "$model" >/dev/null
parallel="${PARALLEL:-$(tr ' ' '\n' <<<"$clients" | sort -n | tail -1)}"
per_slot="${CTX_PER_SLOT:-256}"
threads_flag=(); [ -n "${THREADS:-}" ] && threads_flag=(-t "$THREADS")
"$tritter" "${threads_flag[@]}" serve -m "$model" --port 0 --parallel "$parallel" --ctx $((parallel * per_slot)) \
  --kv-cache "${KV:-f32}" --queue 256 > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 600); do grep -q "http://" "$work/server.log" && break; sleep 0.1; done
url="$(grep -o 'http://[0-9.:]*' "$work/server.log" | head -1)"
echo "# $(grep 'tritter serve:' "$work/server.log")"
echo "# cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $secs s per level, $max_tokens tokens per request"
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"prompt": "def fibonacci(n): return", "max_tokens": $max_tokens, "temperature": 0, "ignore_eos": true}'
LUA
rss() { awk '/VmRSS/ {print $2 * 1024}' "/proc/$server/status"; }
rss0=$(rss)
rows() { curl -s "$url/metrics" | awk '$1 == "tritter_generated_tokens_total" {print $2}'; }
printf "%8s %12s %12s %14s %10s %10s %10s\n" clients "requests/s" "tokens/s" "sampled tok/s" "p50 ms" "p99 ms" "RSS MiB"
base=""
for c in $clients; do
  r0=$(rows) t0=$(date +%s.%N)
  out="$(wrk -t "$(( c < 4 ? c : 4 ))" -c "$c" -d "${secs}s" --timeout 120s --latency -s "$work/post.lua" "$url/v1/completions")"
  rps="$(sed -n 's/^Requests\/sec: *//p' <<<"$out")"
  p50="$(awk '$1 == "50%" {print $2}' <<<"$out")" p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
  ms() { awk -v v="$1" 'BEGIN { if (v ~ /ms$/) print v + 0; else if (v ~ /us$/) print v / 1000; else if (v ~ /m$/) print v * 60000; else print v * 1000 }'; }
  tps="$(awk -v r="$rps" -v n="$max_tokens" 'BEGIN { printf "%.1f", r * n }')"
  # Tokens the server sampled during the level (from /metrics: requests still running count too).
  dps="$(awk -v a="$r0" -v b="$(rows)" -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", (b - a) / (t1 - t0) }')"
  [ -z "$base" ] && base="$dps"
  printf "%8s %12s %12s %14s %10.1f %10.1f %10.0f   x%.2f\n" "$c" "$rps" "$tps" "$dps" "$(ms "$p50")" "$(ms "$p99")" \
    "$(awk -v r="$(rss)" 'BEGIN { print r / 1048576 }')" "$(awk -v a="$dps" -v b="$base" 'BEGIN { print (b > 0 ? a / b : 0) }')"
  grep -q "Non-2xx" <<<"$out" && echo "   (non-2xx answers: $(sed -n 's/.*Non-2xx or 3xx responses: *//p' <<<"$out"))"
done
echo "# RSS at start $(awk -v r="$rss0" 'BEGIN { printf "%.0f", r / 1048576 }') MiB; per slot KV: see the first line"
