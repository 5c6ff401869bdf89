#!/bin/bash
# Runs one libFuzzer target of the -DTRITTER_FUZZ=ON build (CTest fuzz_TARGET, docs/testing.md):
#   1. every crasher ever found for it (tests/fuzz/TARGET_crashers/) once: a fixed bug stays fixed;
#   2. SECONDS of fuzzing from its seeds (TARGET_seeds/, read-only) and the corpus earlier runs grew (WORK_DIR),
#      with libFuzzer's -seed=$TRITTER_FUZZ_SEED (unset or 0: a random seed). `make test` fixes the seed so that a
#      clean clone fuzzes the same inputs on every run: a CI failure is a fuzzing find anyone can replay, not
#      luck; `make fuzz` draws a new seed each run to explore further.
# New crashers are copied to tests/fuzz/TARGET_crashers/ (fix the reader, then commit them).
# Usage: run_fuzz.sh BINARY TARGET SOURCE_DIR WORK_DIR [SECONDS]
set -u
bin=${1:?fuzz binary} target=${2:?target} src=${3:?source dir} work=${4:?work dir}/$target secs=${5:-10}
fz=$src/tests/fuzz
mkdir -p "$work/corpus" "$fz/${target}_crashers"
# libFuzzer's own exit codes for a finding (77 for a timeout) would read as a CTest skip: every finding exits 1.
opts=(-timeout=10 -rss_limit_mb=2048 -error_exitcode=1 -timeout_exitcode=1 -artifact_prefix="$work/$target-"
      -seed="${TRITTER_FUZZ_SEED:-0}")
[ -f "$fz/$target.dict" ] && opts+=(-dict="$fz/$target.dict")
shopt -s nullglob
crashers=("$fz/${target}_crashers"/*)
if [ ${#crashers[@]} -gt 0 ]; then
  echo "replaying ${#crashers[@]} crasher(s) from tests/fuzz/${target}_crashers"
  "$bin" "${opts[@]}" "${crashers[@]}" > "$work/replay.log" 2>&1 || { tail -40 "$work/replay.log"; exit 1; }
fi
"$bin" "${opts[@]}" -max_total_time="$secs" -print_final_stats=1 "$work/corpus" "$fz/${target}_seeds" \
  > "$work/fuzz.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then tail -60 "$work/fuzz.log"; else grep -E '^Done|stat::number_of_executed_units|INITED' "$work/fuzz.log"; fi
for f in "$work/$target"-crash-* "$work/$target"-timeout-* "$work/$target"-oom-* "$work/$target"-leak-*; do
  cp "$f" "$fz/${target}_crashers/" && echo "new crasher: tests/fuzz/${target}_crashers/$(basename "$f")"
  rm -f "$f"
done
exit $rc
