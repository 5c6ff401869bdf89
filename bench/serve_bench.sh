#!/usr/bin/env bash
# The server under load (not a test): aggregate generated tokens/s and request latency p50/p99 at 1, 2, 4, 8 and
# 16 concurrent clients (64 too if asked), with wrk on loopback, bounded in time, and each level's rate as a ratio
# to the 1-client rate of the same run. Every request asks for MAX_TOKENS tokens (ignore_eos, greedy) of one
# prompt, so after the first request its prompt comes from the prefix cache and the levels measure decoding.
# "gen tok/s" counts the tokens the server generated during the level (from /metrics: requests still running
# count too); "rows/step" and "step ms" are the mean rows per batched forward and its wall time in the level.
#   bench/serve_bench.sh [SIZE=700M-shape] [SECONDS=20] [MAX_TOKENS=32] [CLIENTS="1 2 4 8 16"]
# Environment: TRITTER (the CLI, default build/tritter), THREADS (default: all cores), PARALLEL (slots, default
# the largest client count), CTX_PER_SLOT (default 256), KV (default f16, the server's), MODEL (a packed file to reuse: a
# random 2B-shape takes minutes to make), WARMUP (seconds of one client before the first level, default 5).
# To compare kernels, run it twice on the same MODEL file, e.g. before and after a kernel change:
#   MODEL=/tmp/700M-shape.tpk bench/serve_bench.sh 700M-shape 30 32
# The levels run one after another, so on a shared machine a change of load between levels moves the ratios;
# `tritter bench batch -m MODEL` times the engine's step at each row count in interleaved rounds, split per op.
set -euo pipefail
size="${1:-700M-shape}" secs="${2:-20}" max_tokens="${3:-32}" clients="${4:-1 2 4 8 16}"
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
  --kv-cache "${KV:-f16}" --queue 256 > "$work/server.log" 2>&1 &
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
# One sample of the counters: generated tokens, steps, rows, summed step seconds.
sample() {
  curl -s "$url/metrics" | awk '$1 == "tritter_generated_tokens_total" {g = $2} $1 == "tritter_decode_steps_total" {s = $2}
    $1 == "tritter_decode_rows_total" {r = $2} $1 == "tritter_decode_step_seconds_sum" {t = $2}
    END {print g, s, r, t}'
}
# wrk's latency ("12.3ms", "4.5s") in ms; "-" when no request completed in the level.
ms() { awk -v v="$1" 'BEGIN { if (v == "" || v ~ /^0(\.0*)?us$/) print "-"; else if (v ~ /ms$/) printf "%.0f\n", v + 0; else if (v ~ /us$/) printf "%.1f\n", v / 1000; else if (v ~ /m$/) printf "%.0f\n", v * 60000; else printf "%.0f\n", v * 1000 }'; }
# The first request of the prompt fills the prefix cache; a few seconds at one client warm the process up.
wrk -t 1 -c 1 -d "${WARMUP:-5}s" --timeout 120s -s "$work/post.lua" "$url/v1/completions" >/dev/null
printf "%8s %11s %10s %11s %9s %10s %10s %8s %8s\n" clients "requests/s" "gen tok/s" "x 1 client" "rows/step" "step ms" \
  "p50 ms" "p99 ms" "RSS MiB"
base="" summary=""
for c in $clients; do
  read -r g0 s0 r0 t0s <<<"$(sample)"
  w0=$(date +%s.%N)
  out="$(wrk -t "$(( c < 4 ? c : 4 ))" -c "$c" -d "${secs}s" --timeout 120s --latency -s "$work/post.lua" "$url/v1/completions")"
  read -r g1 s1 r1 t1s <<<"$(sample)"
  w1=$(date +%s.%N)
  rps="$(sed -n 's/^Requests\/sec: *//p' <<<"$out")"
  p50="$(awk '$1 == "50%" {print $2}' <<<"$out")" p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
  tps="$(awk -v a="$g0" -v b="$g1" -v t0="$w0" -v t1="$w1" 'BEGIN { printf "%.1f", (b - a) / (t1 - t0) }')"
  [ -z "$base" ] && base="$tps"
  ratio="$(awk -v a="$tps" -v b="$base" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
  printf "%8s %11s %10s %11s %9s %10s %10s %8s %8.0f\n" "$c" "$rps" "$tps" "x$ratio" \
    "$(awk -v a="$s0" -v b="$s1" -v x="$r0" -v y="$r1" 'BEGIN { printf "%.1f", (b > a ? (y - x) / (b - a) : 0) }')" \
    "$(awk -v a="$s0" -v b="$s1" -v x="$t0s" -v y="$t1s" 'BEGIN { printf "%.1f", (b > a ? 1000 * (y - x) / (b - a) : 0) }')" \
    "$(ms "$p50")" "$(ms "$p99")" "$(awk -v r="$(rss)" 'BEGIN { print r / 1048576 }')"
  grep -q "Non-2xx" <<<"$out" && echo "   (non-2xx answers: $(sed -n 's/.*Non-2xx or 3xx responses: *//p' <<<"$out"))"
  summary+=" $c:x$ratio"
done
echo "# $size, ratios to 1 client:$summary"
echo "# RSS at start $(awk -v r="$rss0" 'BEGIN { printf "%.0f", r / 1048576 }') MiB; per slot KV: see the first line"
